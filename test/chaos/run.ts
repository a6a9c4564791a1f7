/**
 * One chaos run (`npm run test:chaos -- --seed S --duration SECONDS --faults kill,pause,...`):
 * starts separate controllers and brokers, creates RF=3 topics (min.insync.replicas=2), runs the
 * producers and readers, lets the seeded nemesis inject faults for the duration, heals
 * everything, reads every partition back, checks the history, prints a summary whose last line
 * is JSON, writes the history and verdict as JSON, and exits non-zero on any anomaly.
 * `--topic-config k=v` adds topic configs (`flush.policy=page-cache` is the control that must lose data).
 * `--group N` adds N consumers in one group (subscribe, commit after each poll).
 * scripts/chaos.js compiles this and re-executes it inside `unshare -n` when root (`--netns`).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CreateTopicsRequest, CreateTopicsResponse } from '@strand/protocol';
import { ChaosCluster } from './chaos-cluster';
import { check } from './checker';
import { FAULT_KINDS, Nemesis, type FaultKind } from './nemesis';
import { ChaosClient, GroupWorkload, Workload } from './workload';

interface Args {
  seed: number;
  durationS: number;
  faults: FaultKind[];
  controllers: number;
  brokers: number;
  topics: number;
  partitions: number;
  out: string;
  netns: boolean;
  keepData: boolean;
  /** Members of the consumer-group workload (0: none). */
  group: number;
  /** Extra topic configs (`--topic-config k=v`, repeatable), e.g. flush.policy=page-cache as a control. */
  topicConfigs: { name: string; value: string }[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seed: Date.now() % 1_000_000, durationS: 60, faults: [...FAULT_KINDS], controllers: 3, brokers: 3, topics: 2, partitions: 2, out: 'chaos-results', netns: false, keepData: false, group: 0, topicConfigs: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i] as string;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    const int = (): number => {
      const s = v();
      const n = Number(s);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${k}: not a non-negative integer: ${s}`);
      return n;
    };
    if (k === '--seed') a.seed = int();
    else if (k === '--duration') a.durationS = int();
    else if (k === '--faults') {
      const kinds = v().split(',').filter((s) => s !== '');
      for (const f of kinds) if (!(FAULT_KINDS as string[]).includes(f)) throw new Error(`unknown fault ${f} (known: ${FAULT_KINDS.join(',')})`);
      a.faults = kinds as FaultKind[];
    } else if (k === '--controllers') a.controllers = int();
    else if (k === '--brokers') a.brokers = int();
    else if (k === '--topics') a.topics = int();
    else if (k === '--partitions') a.partitions = int();
    else if (k === '--out') a.out = v();
    else if (k === '--netns') a.netns = true;
    else if (k === '--keep-data') a.keepData = true;
    else if (k === '--group') a.group = int();
    else if (k === '--topic-config') {
      const kv = v();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`--topic-config wants key=value, got ${kv}`);
      a.topicConfigs.push({ name: kv.slice(0, eq), value: kv.slice(eq + 1) });
    }
    else throw new Error(`unknown argument ${k}`);
  }
  if (a.brokers < 3) throw new Error('--brokers must be at least 3 (RF=3 topics)');
  return a;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const log = (line: string): void => void process.stdout.write(`[${(now() / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
  if (args.netns) {
    const r = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip link set lo up failed: ${r.stderr}`);
  }
  let faults = args.faults;
  if (faults.includes('partition') && !args.netns) {
    log('NOTICE: partition faults skipped (they need root and a private network namespace; scripts/chaos.js re-executes in one when root)');
    faults = faults.filter((f) => f !== 'partition');
  }
  log(`seed ${args.seed}, ${args.durationS} s, faults ${faults.join(',') || 'none'}, ${args.controllers} controllers + ${args.brokers} brokers, ${args.topics} topics x ${args.partitions} partitions RF=3${args.netns ? ', private netns' : ''}`);

  const cluster = await ChaosCluster.create({
    controllers: args.controllers,
    brokers: args.brokers,
    netns: args.netns,
    log,
    overrides: ['broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=300', 'broker:replica.lag.time.max.ms=4000', 'auto.leader.rebalance.enable=false', 'broker:offsets.topic.num.partitions=3', 'controller.snapshot.interval.entries=100'],
  });
  const client = new ChaosClient(cluster.brokerAddresses());
  const topics = Array.from({ length: args.topics }, (_, i) => `chaos-${i}`);
  let verdictValid = false;
  const stopSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: cleaning up`);
    void cluster.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopSignal);
  process.once('SIGTERM', stopSignal);
  try {
    cluster.startAll();
    for (const n of cluster.nodes) {
      if (!(await cluster.waitReady(n.id, 90_000))) throw new Error(`node ${n.id} not ready after 90 s:\n${cluster.tail(n.id).slice(-3000)}`);
    }
    log('cluster ready');
    for (const name of topics) {
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await client.brokers.call<CreateTopicsRequest, CreateTopicsResponse>(cluster.brokerAddresses()[attempt % args.brokers] as string, (c, q, m, o, cb) => c.createTopics(q, m, o, cb), {
            topics: [{ name, numPartitions: args.partitions, replicationFactor: 3, assignments: [], configs: [{ name: 'min.insync.replicas', value: '2' }, ...args.topicConfigs] }],
            validateOnly: false,
          }, 10_000);
          const code = r.topics[0]?.errorCode;
          if (code === 0 || code === 36) break;
          throw new Error(`CreateTopics ${name}: error ${code}`);
        } catch (e: unknown) {
          if (attempt >= 20) throw e;
          await sleep(500);
        }
      }
    }
    // Every partition led, with a full ISR.
    const deadline = now() + 60_000;
    for (;;) {
      const md = await client.metadata(topics).catch(() => undefined);
      if (md !== undefined && md.topics.length === topics.length && md.topics.every((t) => t.partitions.length === args.partitions && t.partitions.every((p) => p.leaderId >= 0 && p.isr.length === 3))) break;
      if (now() > deadline) throw new Error('topics not fully in sync 60 s after creation');
      await sleep(200);
    }
    log(`topics ${topics.join(', ')} ready`);

    let nemesis: Nemesis | undefined;
    const workload = new Workload(client, { topics, partitions: args.partitions, sendIntervalMs: 20, readers: true, now, onAck: (t, p, time) => nemesis?.onAck(t, p, time) });
    nemesis = new Nemesis(args.seed, cluster, client, { kinds: faults, topics, partitions: args.partitions, now, log, holdMs: [2000, 8000], quietMs: [1000, 5000] });
    await workload.start();
    const group = args.group > 0 ? new GroupWorkload(cluster.brokerAddresses(), topics, args.group, now, log) : undefined;
    await group?.start();
    const end = now() + args.durationS * 1000;
    if (faults.length > 0) await nemesis.run(end);
    while (now() < end) await sleep(200);
    log('faults over; healing and letting producers finish (30 s grace)');
    if (cluster.canPartition) cluster.heal();
    for (const n of cluster.nodes) {
      cluster.resume(n.id);
      if (!cluster.isRunning(n.id)) cluster.start(n.id);
    }
    for (const n of cluster.nodes) if (!(await cluster.waitReady(n.id, 60_000))) log(`node ${n.id} not ready 60 s after the final heal`);
    await workload.stop(30_000);
    const problems = await workload.finalRead(60_000);
    for (const p of problems) log(`WARNING: ${p}`);
    if (group !== undefined) {
      const ends = new Map(Object.entries(workload.history.finalReads).map(([k, recs]) => [k, recs.length ? (recs[recs.length - 1] as [number, string])[0] + 1 : 0]));
      if (!(await group.drainAndStop(ends, 60_000))) log('WARNING: the consumer group did not reach the end of every partition within 60 s');
      workload.history.group = group.history;
    }

    const verdict = check(workload.history);
    verdictValid = verdict.valid;
    const recoveries = nemesis.faults.map((f) => f.recoveryMs).filter((x) => x >= 0);
    const summary = {
      seed: args.seed,
      durationS: args.durationS,
      faultKinds: faults,
      ...(args.topicConfigs.length ? { topicConfigs: args.topicConfigs.map((c) => `${c.name}=${c.value}`).join(',') } : {}),
      acked: verdict.counts.acked,
      lost: verdict.counts.lost,
      duplicated: verdict.counts.duplicated,
      reordered: verdict.counts.reordered,
      inconsistent: verdict.counts.inconsistent,
      unseen: verdict.counts.unseen,
      pollSkips: verdict.counts.pollSkips,
      nonmonotonicPolls: verdict.counts.nonmonotonicPolls,
      phantom: verdict.counts.phantom,
      ...(group === undefined ? {} : { groupRead: verdict.counts.groupRead, commitsBackwards: verdict.counts.commitsBackwards, groupPollSkips: verdict.counts.groupPollSkips, groupNonmonotonicPolls: verdict.counts.groupNonmonotonicPolls, groupUnseen: verdict.counts.groupUnseen }),
      indeterminate: verdict.counts.indeterminate,
      faults: nemesis.faults.length,
      faultsByKind: Object.fromEntries(FAULT_KINDS.map((k) => [k, nemesis?.faults.filter((f) => f.kind === k).length ?? 0])),
      recoveryMsMax: recoveries.length ? Math.round(Math.max(...recoveries)) : -1,
      recoveryMsMaxLeader: Math.round(Math.max(-1, ...nemesis.faults.filter((f) => f.kind === 'kill' || f.kind === 'power' || f.kind === 'wipe').map((f) => f.recoveryMs))),
      recoveryMsMaxController: Math.round(Math.max(-1, ...nemesis.faults.filter((f) => f.kind === 'controller' || f.recoveryWhat.startsWith('next metadata')).map((f) => f.recoveryMs))),
      valid: verdict.valid && problems.length === 0,
    };
    verdictValid = summary.valid;
    fs.mkdirSync(args.out, { recursive: true });
    const file = path.resolve(args.out, `chaos-seed-${args.seed}.json`);
    fs.writeFileSync(file, JSON.stringify({ summary, verdict, faults: nemesis.faults, readProblems: problems, history: workload.history }, null, 1));
    for (const a of verdict.anomalies.slice(0, 30)) log(`ANOMALY ${a.kind} ${a.partition}: ${a.detail}`);
    if (verdict.anomalies.length > 30) log(`... ${verdict.anomalies.length - 30} more anomalies in ${file}`);
    log(`history and verdict: ${file}`);
    log(`${summary.valid ? 'VALID' : 'INVALID'}: ${summary.acked} acknowledged writes, ${summary.lost} lost, ${summary.duplicated} duplicated, ${summary.reordered} reordered, ${summary.inconsistent} inconsistent offsets, ${summary.unseen} unseen, ${summary.faults} faults, max recovery ${summary.recoveryMsMax} ms`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    client.close();
    await cluster.close(args.keepData);
  }
  return verdictValid ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`chaos run failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
