// npm run bench:broker [-- --json] [--only NAME,...] [--scale F] [--idle-seconds S] [--warmup-seconds W]
//                      [--measure-seconds M]
//
// The broker's speed and memory benchmarks, run the way a user runs them: each group of
// scenarios on a fresh `strand dev` cluster (three `strand server` processes with combined
// roles, on free loopback ports, data in a temporary directory removed afterwards), driven by
// `strand bench` and `strand topics` child processes, 100-byte records, 6 partitions:
//
//   produce-rf3         RF=3 acks=all, 2M records                   >= 400k records/s (stretch 600k)
//   consume             one consumer reading 1M records of that topic, start-up included
//                                                                   >= 1M records/s
//   produce-rf1         RF=1 acks=1, 3M records                     >= 1M records/s
//   latency-fsync       RF=3 acks=all at a steady 10k records/s for W seconds of warm-up
//                       (default 30) and M measured (default 30; --warmup-records)
//                                                                   p50 <= 5 ms, p99 <= 15 ms
//   latency-page-cache  the same on a flush.policy=page-cache topic  p99 <= 5 ms
//   end-to-end          a consumer alongside the latency-fsync load, from each record's create
//                       timestamp to the poll that returns it        p50 and p99 within 5 ms of
//                                                                   the producer's
//   idle-1000           1,000 partitions RF=3, idle for S seconds    < 5% of a core and RSS
//                                                                   < 500 MiB per broker
//
// --scale multiplies every record count (e.g. 0.01 for a smoke run); --only picks scenarios.
// Why 30 s of warm-up for the latency scenarios: on a fresh cluster at this rate V8 is still
// compiling the brokers' hot paths for about that long (TurboFan jobs of several ms each on
// worker threads, which take a core from the other processes on a 2-core machine): one broker
// ran ~230 optimizing compiles in the first 12 s of the load, ~60 in the next 12 s, ~35 in the
// third, and the page-cache p99 of 10 s windows still fell between seconds 30-40 and 60-70.
// Why 30 s measured: a p99 over 10 s rests on its ~10 slowest 10 ms slices and moved by +-0.7 ms
// from run to run. `--warmup-seconds 2 --measure-seconds 10` measures the way sessions 5-16 did
// (a fresh cluster's first seconds); `wholeRunP99Ms` is the p99 over the whole run, warm-up
// included.
// Broker CPU comes from /proc (Linux). Prints a table; with --json, one JSON object on the last
// line. The figures move with whatever else the machine is doing: compare runs of one sitting.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchResult } from '../commands/bench';
import { printJson, printTable } from '../commands/common';

const STRAND = path.resolve(__dirname, '../bin/strand.js');
const SCENARIOS = ['produce-rf3', 'consume', 'produce-rf1', 'latency-fsync', 'latency-page-cache', 'end-to-end', 'idle-1000'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
const CLUSTER_READY_TIMEOUT_MS = 90_000;
const CLUSTER_STOP_TIMEOUT_MS = 60_000;
const TOPIC_READY_TIMEOUT_MS = 60_000;
const CLOCK_TICKS_PER_SECOND = 100;
/** The latency scenarios' steady rate, records/s. */
const LATENCY_RATE = 10_000;

interface Args {
  json: boolean;
  only: ReadonlySet<ScenarioName>;
  scale: number;
  idleSeconds: number;
  warmupSeconds: number;
  measureSeconds: number;
}

export interface ScenarioOutcome {
  name: ScenarioName;
  /** Figures by name: records/s, latencies in ms, CPU in seconds or % of a core, RSS in MiB. */
  figures: Record<string, number>;
  target: string;
  met: boolean;
}

function usage(message: string): never {
  process.stderr.write(`broker-bench: ${message}\n`);
  process.exit(2);
}

function parse(argv: readonly string[]): Args {
  const a: Args = { json: false, only: new Set(SCENARIOS), scale: 1, idleSeconds: 30, warmupSeconds: 30, measureSeconds: 30 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const value = (): string => argv[++i] ?? usage(`${k} needs a value`);
    if (k === '--json') a.json = true;
    else if (k === '--only') {
      const names = value().split(',');
      for (const n of names) if (!(SCENARIOS as readonly string[]).includes(n)) usage(`unknown scenario '${n}' (known: ${SCENARIOS.join(', ')})`);
      a.only = new Set(names as ScenarioName[]);
    } else if (k === '--scale') {
      a.scale = Number(value());
      if (!(a.scale > 0)) usage('--scale needs a positive number');
    } else if (k === '--idle-seconds') {
      a.idleSeconds = Number(value());
      if (!(a.idleSeconds > 0)) usage('--idle-seconds needs a positive number');
    } else if (k === '--warmup-seconds') {
      a.warmupSeconds = Number(value());
      if (!(a.warmupSeconds >= 0)) usage('--warmup-seconds needs a number >= 0');
    } else if (k === '--measure-seconds') {
      a.measureSeconds = Number(value());
      if (!(a.measureSeconds > 0)) usage('--measure-seconds needs a positive number');
    } else usage(`unknown argument '${k}'`);
  }
  return a;
}

/** A base port B with B..B+n-1 all free on loopback (strand dev numbers its ports from a base). */
async function freePortRange(n: number): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await free(p);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free loopback ports found`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `strand` child processes running now (killed if the bench is interrupted). */
const children = new Set<ChildProcess>();

function run(args: readonly string[]): { proc: ChildProcess; done: Promise<Run> } {
  const proc = spawn(process.execPath, [STRAND, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code, signal) => resolve({ code: code ?? 128, stdout, stderr: signal === null ? stderr : `${stderr}(killed by ${signal})` }));
  });
  return { proc, done };
}

async function strand(args: readonly string[]): Promise<string> {
  const r = await run(args).done;
  if (r.code !== 0) throw new Error(`strand ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as T;
}

/** The fields of /proc/PID/stat after the command name: [0] is field 3 (state), [1] the parent's PID. */
function statFields(pid: number | string): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process, in seconds, and its resident set in bytes (Linux /proc). */
function procUsage(pid: number): { cpuSeconds: number; rssBytes: number } | null {
  try {
    const fields = statFields(pid);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND, rssBytes: rssKb * 1024 };
  } catch {
    return null;
  }
}

function childPids(parent: number): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (Number(statFields(e)[1]) === parent) pids.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return pids.sort((x, y) => x - y);
}

/** The cluster of the scenario running now, from its start (stopped on SIGINT/SIGTERM). */
let active: DevCluster | null = null;

/** A `strand dev` cluster in a temporary directory. */
class DevCluster {
  private exited: Promise<void>;

  private constructor(
    readonly dir: string,
    readonly bootstrap: string,
    private readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  static async start(): Promise<DevCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-bench-'));
    const base = await freePortRange(9);
    // Its own process group (with the nodes it starts), so nothing outlives a failed run.
    const proc = spawn(process.execPath, [STRAND, 'dev', '--data-dir', dir, '--broker-port', String(base), '--controller-port', String(base + 3), '--http-port', String(base + 6)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const cluster = new DevCluster(dir, [0, 1, 2].map((i) => `127.0.0.1:${base + i}`).join(','), proc);
    active = cluster;
    let output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), CLUSTER_READY_TIMEOUT_MS);
      const onData = (d: Buffer): void => {
        output += d.toString();
        if (output.includes('cluster ready')) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready) {
      await cluster.stop();
      throw new Error(`strand dev did not become ready: ${output.trim().split('\n').slice(-5).join(' | ')}`);
    }
    return cluster;
  }

  /** The node processes (children of strand dev). */
  nodePids(): number[] {
    return this.proc.pid === undefined ? [] : childPids(this.proc.pid);
  }

  brokersCpuSeconds(): number {
    return this.nodePids().reduce((sum, pid) => sum + (procUsage(pid)?.cpuSeconds ?? 0), 0);
  }

  async createTopic(name: string, partitions: number, replicationFactor: number, configs: readonly string[] = []): Promise<void> {
    await strand(['topics', 'create', name, '--partitions', String(partitions), '--replication-factor', String(replicationFactor), ...configs.flatMap((c) => ['--config', c]), '-b', this.bootstrap]);
    // Wait until every partition has a leader and a full ISR, so no run starts with elections.
    const deadline = performance.now() + TOPIC_READY_TIMEOUT_MS;
    for (;;) {
      const [topic] = lastJson<Array<{ partitions: Array<{ leader: number; isr: number[] }> }>>(await strand(['topics', 'describe', name, '--json', '-b', this.bootstrap]));
      if (topic !== undefined && topic.partitions.length === partitions && topic.partitions.every((p) => p.leader >= 0 && p.isr.length === replicationFactor)) return;
      if (performance.now() > deadline) throw new Error(`topic ${name} has no leader and full ISR for every partition after ${TOPIC_READY_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async bench(args: readonly string[]): Promise<BenchResult> {
    return lastJson<BenchResult>(await strand(['bench', ...args, '--json', '-b', this.bootstrap]));
  }

  private stopped: Promise<void> | null = null;

  /** Ctrl-C to strand dev (it stops every node cleanly), then removes the data. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    const pid = this.proc.pid;
    if (pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGINT');
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, CLUSTER_STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function withCluster<T>(fn: (c: DevCluster) => Promise<T>): Promise<T> {
  const c = await DevCluster.start();
  try {
    return await fn(c);
  } finally {
    await c.stop();
    active = null;
  }
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

async function throughputScenarios(args: Args, records: (n: number) => number): Promise<ScenarioOutcome[]> {
  const out: ScenarioOutcome[] = [];
  if (args.only.has('produce-rf3') || args.only.has('consume')) {
    await withCluster(async (c) => {
      await c.createTopic('bench-rf3', 6, 3);
      const cpu0 = c.brokersCpuSeconds();
      const p = await c.bench(['produce', '-t', 'bench-rf3', '--records', String(records(args.only.has('produce-rf3') ? 2_000_000 : 1_000_000)), '--acks', 'all']);
      const cpu1 = c.brokersCpuSeconds();
      if (args.only.has('produce-rf3')) {
        out.push({ name: 'produce-rf3', figures: { recordsPerSec: p.recordsPerSec, p50Ms: p.latencyMs.p50, clientCpuSeconds: p.clientCpuSeconds ?? NaN, brokersCpuSeconds: round(cpu1 - cpu0) }, target: '>= 400k records/s (stretch 600k)', met: p.recordsPerSec >= 400_000 });
      }
      if (args.only.has('consume')) {
        const r = await c.bench(['consume', '-t', 'bench-rf3', '--records', String(records(1_000_000))]);
        out.push({ name: 'consume', figures: { recordsPerSec: r.recordsPerSec, clientCpuSeconds: r.clientCpuSeconds ?? NaN }, target: '>= 1M records/s', met: r.recordsPerSec >= 1_000_000 });
      }
    });
  }
  if (args.only.has('produce-rf1')) {
    await withCluster(async (c) => {
      await c.createTopic('bench-rf1', 6, 1);
      const cpu0 = c.brokersCpuSeconds();
      const p = await c.bench(['produce', '-t', 'bench-rf1', '--records', String(records(3_000_000)), '--acks', '1']);
      const cpu1 = c.brokersCpuSeconds();
      out.push({ name: 'produce-rf1', figures: { recordsPerSec: p.recordsPerSec, p50Ms: p.latencyMs.p50, clientCpuSeconds: p.clientCpuSeconds ?? NaN, brokersCpuSeconds: round(cpu1 - cpu0) }, target: '>= 1M records/s', met: p.recordsPerSec >= 1_000_000 });
    });
  }
  return out;
}

function steadyFigures(r: BenchResult, prefix = ''): Record<string, number> {
  const s = r.steadyState?.latencyMs ?? r.latencyMs;
  return { [`${prefix}p50Ms`]: s.p50, [`${prefix}p99Ms`]: s.p99, [`${prefix}p999Ms`]: s.p999, [`${prefix}maxMs`]: s.max };
}

async function latencyScenarios(args: Args, records: (n: number) => number): Promise<ScenarioOutcome[]> {
  const out: ScenarioOutcome[] = [];
  // W seconds of warm-up, then M measured (why: the header).
  const warmup = args.warmupSeconds > 0 ? records(args.warmupSeconds * LATENCY_RATE) : 0;
  const total = warmup + records(args.measureSeconds * LATENCY_RATE);
  const steadyArgs = (topic: string): string[] => ['produce', '-t', topic, '--records', String(total), '--warmup-records', String(warmup), '--throughput', String(LATENCY_RATE), '--acks', 'all'];
  if (args.only.has('latency-fsync')) {
    await withCluster(async (c) => {
      await c.createTopic('bench-latency', 6, 3);
      const cpu0 = c.brokersCpuSeconds();
      const p = await c.bench(steadyArgs('bench-latency'));
      const cpu1 = c.brokersCpuSeconds();
      const f = steadyFigures(p);
      out.push({ name: 'latency-fsync', figures: { ...f, wholeRunP99Ms: p.latencyMs.p99, brokersCpuSeconds: round(cpu1 - cpu0) }, target: 'steady p50 <= 5 ms, p99 <= 15 ms', met: (f['p50Ms'] ?? Infinity) <= 5 && (f['p99Ms'] ?? Infinity) <= 15 });
    });
  }
  if (args.only.has('latency-page-cache')) {
    await withCluster(async (c) => {
      await c.createTopic('bench-latency', 6, 3, ['flush.policy=page-cache']);
      const p = await c.bench(steadyArgs('bench-latency'));
      const f = steadyFigures(p);
      out.push({ name: 'latency-page-cache', figures: { ...f, wholeRunP99Ms: p.latencyMs.p99 }, target: 'steady p99 <= 5 ms', met: (f['p99Ms'] ?? Infinity) <= 5 });
    });
  }
  if (args.only.has('end-to-end')) {
    await withCluster(async (c) => {
      await c.createTopic('bench-e2e', 6, 3);
      // The consumer reads from the start, so none of the load is missed while it starts up;
      // its start-up falls in the warm-up.
      const consumer = run(['bench', 'consume', '-t', 'bench-e2e', '--records', String(total), '--warmup-records', String(warmup), '--json', '-b', c.bootstrap]);
      let p: BenchResult;
      try {
        p = await c.bench(steadyArgs('bench-e2e'));
      } catch (e: unknown) {
        consumer.proc.kill('SIGKILL');
        await consumer.done;
        throw e;
      }
      const r = await consumer.done;
      if (r.code !== 0) throw new Error(`strand bench consume exited ${r.code}: ${r.stderr.trim()}`);
      const cons = lastJson<BenchResult>(r.stdout);
      const pf = steadyFigures(p, 'produce');
      const cf = steadyFigures(cons, 'consume');
      const dp50 = (cf['consumep50Ms'] ?? Infinity) - (pf['producep50Ms'] ?? 0);
      const dp99 = (cf['consumep99Ms'] ?? Infinity) - (pf['producep99Ms'] ?? 0);
      out.push({ name: 'end-to-end', figures: { ...pf, ...cf, p50AboveProduceMs: round(dp50), p99AboveProduceMs: round(dp99) }, target: 'consumer p50 and p99 within 5 ms of the producer\'s', met: dp50 <= 5 && dp99 <= 5 });
    });
  }
  return out;
}

async function idleScenario(args: Args): Promise<ScenarioOutcome[]> {
  if (!args.only.has('idle-1000')) return [];
  return withCluster(async (c) => {
    await c.createTopic('bench-idle', 1000, 3);
    // Let leadership, ISR and the first checkpoints settle before measuring.
    await new Promise((r) => setTimeout(r, Math.min(20_000, args.idleSeconds * 1000)));
    const pids = c.nodePids();
    const before = pids.map((p) => procUsage(p)?.cpuSeconds ?? 0);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, args.idleSeconds * 1000));
    const seconds = (performance.now() - t0) / 1000;
    const after = pids.map((p) => procUsage(p));
    const cpuPct = after.map((u, i) => (100 * ((u?.cpuSeconds ?? 0) - (before[i] ?? 0))) / seconds);
    const rssMiB = after.map((u) => (u?.rssBytes ?? 0) / 1048576);
    const maxCpu = Math.max(...cpuPct);
    const maxRss = Math.max(...rssMiB);
    return [{ name: 'idle-1000' as const, figures: { maxCpuPercentOfCore: round(maxCpu), maxRssMiB: round(maxRss, 1), brokers: pids.length }, target: '< 5% of a core, RSS < 500 MiB per broker', met: pids.length > 0 && maxCpu < 5 && maxRss < 500 }];
  });
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const records = (n: number): number => Math.max(1000, Math.round(n * args.scale));
  const onSignal = (sig: NodeJS.Signals): void => {
    for (const child of children) child.kill('SIGKILL');
    const c = active;
    void (c === null ? Promise.resolve() : c.stop()).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = performance.now();
  const scenarios = [...(await throughputScenarios(args, records)), ...(await latencyScenarios(args, records)), ...(await idleScenario(args))];
  const result = { kind: 'broker-bench', scale: args.scale, cpus: os.cpus().length, seconds: round((performance.now() - started) / 1000, 1), scenarios };
  if (args.json) printJson(result);
  else {
    printTable(
      ['scenario', 'target', 'met'],
      scenarios.map((s) => [s.name, s.target, s.met ? 'yes' : 'no']),
    );
    for (const s of scenarios) process.stdout.write(`\n${s.name}: ${Object.entries(s.figures).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    process.stdout.write(`\n\n${result.seconds} s in all, ${result.cpus} CPUs, scale ${result.scale}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`broker-bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
