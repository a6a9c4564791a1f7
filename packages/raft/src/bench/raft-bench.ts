// npm run bench:raft [-- --json] [--count N] [--concurrency C] [--latency-count N] [--latency-warmup N]
//                    [--bytes B] [--elections N]
//
// Three raft-process children over gRPC on loopback, WalStorage (one append + fdatasync per write), default
// timeouts (10 ms ticks, election timeout 50 ticks: 510-1000 ms, heartbeats every 50 ms). Measures, on the leader:
// - commitsPerSec: pipelined proposals (C in flight) of B bytes, propose -> applied on the leader;
// - commitLatencyP50Ms / P99Ms: one proposal at a time, after --latency-warmup (default 2000) unmeasured ones:
//   the first ~1,500 one-at-a-time proposals run while V8 is still optimizing that path (hundreds of
//   optimizations and deopts in the followers and the leader, `node --trace-opt --trace-deopt`) and
//   take p50 ~1.05 / p99 ~5 ms against ~0.65 / ~1.5 ms after; commitLatencyWholeRunP99Ms is the p99 of
//   the warm-up and the measured proposals together;
// - electionMs: SIGKILL of the leader -> a new leader has committed an entry of its term; the
//   median of N kills (default 5), each followed by a restart and catch-up of the killed node
//   (electionMsMax is the worst).
// Prints a table; with --json, one JSON object on the last line.

import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { ProcessCluster } from '../bin/process-cluster';
import { ProcessEvent } from '../bin/process-protocol';

type LeaderReady = Extract<ProcessEvent, { ev: 'leader-ready' }>;
const isLeaderReady = (e: ProcessEvent): e is LeaderReady => e.ev === 'leader-ready';

interface Args {
  json: boolean;
  count: number;
  concurrency: number;
  latencyCount: number;
  latencyWarmup: number;
  bytes: number;
  elections: number;
}

function parse(argv: readonly string[]): Args {
  const a: Args = { json: false, count: 200_000, concurrency: 4096, latencyCount: 2000, latencyWarmup: 2000, bytes: 100, elections: 5 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (min = 1): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < min) throw new Error(`${k ?? ''} needs a ${min === 0 ? 'non-negative' : 'positive'} integer`);
      return v;
    };
    if (k === '--json') a.json = true;
    else if (k === '--count') a.count = num();
    else if (k === '--concurrency') a.concurrency = num();
    else if (k === '--latency-count') a.latencyCount = num();
    else if (k === '--latency-warmup') a.latencyWarmup = num(0);
    else if (k === '--bytes') a.bytes = num();
    else if (k === '--elections') a.elections = num();
    else throw new Error(`unknown argument ${k ?? ''}`);
  }
  return a;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const cluster = new ProcessCluster({ nodes: 3, keepValues: false, snapshotEveryEntries: 50_000, script: join(__dirname, '../bin/raft-process.js') });
  const log = (s: string): void => {
    if (!args.json) process.stdout.write(`${s}\n`);
  };
  try {
    const first = cluster.waitEvent(isLeaderReady, 30_000, 'first leader');
    first.catch(() => {}); // observed below; keeps a failed start() from leaving it unhandled
    await cluster.start();
    const leader = (await first).id;
    log(`leader: ${leader}`);

    // Warm up the JIT, the gRPC streams and LevelDB.
    await cluster.request(leader, { op: 'load', count: 20_000, concurrency: 1024, bytes: args.bytes }, 120_000);

    const load = await cluster.request(leader, { op: 'load', count: args.count, concurrency: args.concurrency, bytes: args.bytes }, 600_000);
    if (!load.ok || !('committed' in load)) throw new Error(`load failed: ${JSON.stringify(load)}`);
    const commitsPerSec = load.committed / (load.ms / 1000);
    log(`pipelined: ${load.committed} commits (${load.failed} failed) in ${load.ms.toFixed(0)} ms`);

    const oneAtATime = async (count: number): Promise<readonly number[]> => {
      if (count === 0) return [];
      const lat = await cluster.request(leader, { op: 'latency', count, bytes: args.bytes }, 600_000);
      if (!lat.ok || !('latenciesMs' in lat)) throw new Error(`latency failed: ${JSON.stringify(lat)}`);
      return lat.latenciesMs;
    };
    const warmup = await oneAtATime(args.latencyWarmup);
    const measured = await oneAtATime(args.latencyCount);
    const sorted = [...measured].sort((x, y) => x - y);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const wholeRunP99 = percentile([...warmup, ...measured].sort((x, y) => x - y), 99);

    const status = await cluster.request(leader, { op: 'status' });
    const elections: number[] = [];
    let current = leader;
    for (let i = 0; i < args.elections; i++) {
      const victim = current;
      const next = cluster.waitEvent((e): e is LeaderReady => isLeaderReady(e) && e.id !== victim, 30_000, 'a new leader');
      const t0 = performance.now();
      await cluster.kill9(victim);
      const nl = await next;
      elections.push(performance.now() - t0);
      log(`kill -9 ${victim}: ${nl.id} leads term ${nl.term} after ${(performance.now() - t0).toFixed(0)} ms`);
      current = nl.id;
      // Bring the victim back and let it catch up, so every round starts from a healthy cluster.
      await cluster.restart(victim);
      const caughtUp = await cluster.request(victim, { op: 'dump' }, 30_000);
      if (!caughtUp.ok) throw new Error(`${victim} did not catch up: ${JSON.stringify(caughtUp)}`);
    }
    const es = [...elections].sort((x, y) => x - y);
    const electionMs = percentile(es, 50);
    const electionMsMax = es[es.length - 1] ?? NaN;

    const rows: Array<[string, string]> = [
      ['commitsPerSec (pipelined, ' + String(args.concurrency) + ' in flight)', commitsPerSec.toFixed(0)],
      ['commitLatencyP50Ms (one at a time)', p50.toFixed(3)],
      ['commitLatencyP99Ms (one at a time)', p99.toFixed(3)],
      [`commitLatencyWholeRunP99Ms (with the ${args.latencyWarmup} warm-up proposals)`, wholeRunP99.toFixed(3)],
      [`electionMs (kill -9 leader -> new leader ready, median of ${args.elections})`, electionMs.toFixed(0)],
      ['electionMsMax', electionMsMax.toFixed(0)],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    log('');
    for (const [k, v] of rows) log(`${k.padEnd(w)}  ${v.padStart(10)}`);
    if ('metrics' in status && status.ok) log(`\nleader metrics: ${JSON.stringify(status.metrics)}`);
    const result = {
      commitsPerSec: Math.round(commitsPerSec),
      commitLatencyP50Ms: Number(p50.toFixed(3)),
      commitLatencyP99Ms: Number(p99.toFixed(3)),
      commitLatencyWholeRunP99Ms: Number(wholeRunP99.toFixed(3)),
      electionMs: Math.round(electionMs),
      electionMsMax: Math.round(electionMsMax),
      electionSamples: args.elections,
      proposalBytes: args.bytes,
      pipelinedCount: args.count,
      concurrency: args.concurrency,
      latencyCount: args.latencyCount,
      latencyWarmup: args.latencyWarmup,
    };
    if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await cluster.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`raft-bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
