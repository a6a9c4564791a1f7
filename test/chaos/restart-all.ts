/**
 * Restart-all recovery timeline (a measurement, not a test): 3 controller-only + 3 broker-only
 * processes on 127.0.0.1 (free ports, temp dirs, removed at the end), topics chaos-0 and chaos-1
 * (2 partitions each, RF=3, min.insync.replicas=2), one acks=all idempotent producer per
 * partition. Then, `--runs N` times: SIGKILL every broker at once, apply the power-loss cut, restart
 * them at once, and time each step from the nodes' info-level logs (node.log) and the producers'
 * attempts: process start -> registered -> unfenced -> leader role -> first acknowledged write.
 *
 * Every step is in ms since the kill. `--hold MS` waits that long before the restart (the chaos
 * nemesis holds 2-8 s); `-o key=value` adds a server override; `--verbose` prints every node's
 * role, fencing and warning lines; `--keep-data` keeps the nodes' directories and logs.
 *
 *   npm run bench:recovery -- [--runs 3] [--hold 0] [--verbose] [-o key=value ...]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Acks, encodeRecordBatch, type CreateTopicsRequest, type CreateTopicsResponse, type ProduceRequest, type ProduceResponse } from '@strand/protocol';
import { ChaosCluster } from './chaos-cluster';
import { ChaosClient } from './workload';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface LogLine {
  time: number;
  msg: string;
  [k: string]: unknown;
}

/** Lines of a node's log at or after `since` (epoch ms). */
function logLines(file: string, since: number): LogLine[] {
  if (!fs.existsSync(file)) return [];
  const out: LogLine[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as LogLine;
      if (typeof l.time === 'number' && l.time >= since) out.push(l);
    } catch {
      // a torn line
    }
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const runs = opt('--runs', 3);
  const holdMs = opt('--hold', 0);
  const extra: string[] = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '-o') extra.push(argv[i + 1] as string);
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const cluster = await ChaosCluster.create({
    controllers: 3,
    brokers: 3,
    netns: false,
    log,
    overrides: ['broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=300', 'broker:replica.lag.time.max.ms=4000', 'auto.leader.rebalance.enable=false', 'broker:offsets.topic.num.partitions=3', ...extra],
  });
  const client = new ChaosClient(cluster.brokerAddresses());
  const topics = ['chaos-0', 'chaos-1'];
  const parts = topics.flatMap((t) => [0, 1].map((p) => `${t}/${p}`));
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const acks = new Map<string, number[]>();
  const attempts = new Map<string, { t: number; what: string; done?: number }[]>();
  let stopping = false;
  const loops: Promise<void>[] = [];
  const produce = async (topic: string, partition: number, producer: { id: number; epoch: number }): Promise<void> => {
    const k = `${topic}/${partition}`;
    acks.set(k, []);
    attempts.set(k, []);
    for (let seq = 0; !stopping; seq++) {
      const batch = Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(`${k}/${seq}`) }], baseTimestamp: Date.now(), producerId: producer.id, producerEpoch: producer.epoch, baseSequence: seq }));
      let refresh = false;
      for (;;) {
        if (stopping) return;
        const sentAt = now();
        let what = '';
        try {
          const leader = await client.leader(topic, partition, refresh);
          if (leader === undefined) throw new Error('no leader');
          const res = await client.brokers.call<ProduceRequest, ProduceResponse>(leader, (c, r, m, o, cb) => c.produce(r, m, o, cb), { acks: Acks.ACKS_ALL, timeoutMs: 4000, topics: [{ name: topic, partitions: [{ partition, records: batch }] }] }, 6000);
          const pr = res.topics[0]?.partitions[0];
          if (pr !== undefined && pr.errorCode === 0) {
            (acks.get(k) as number[]).push(now());
            (attempts.get(k) as { t: number; what: string; done?: number }[]).push({ t: sentAt, what: 'ok', done: now() });
            break;
          }
          what = `produce error ${pr?.errorCode}`;
        } catch (e: unknown) {
          what = e instanceof Error ? e.message : String(e);
        }
        (attempts.get(k) as { t: number; what: string; done?: number }[]).push({ t: sentAt, what });
        refresh = true;
        await sleep(100);
      }
      await sleep(20);
    }
  };
  const verbose = argv.includes('--verbose');
  const summary: Record<string, number>[] = [];
  try {
    cluster.startAll();
    for (const n of cluster.nodes) if (!(await cluster.waitReady(n.id, 90_000))) throw new Error(`node ${n.id} not ready:\n${cluster.tail(n.id).slice(-3000)}`);
    for (const name of topics) {
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await client.brokers.call<CreateTopicsRequest, CreateTopicsResponse>(cluster.brokerAddresses()[attempt % 3] as string, (c, q, m, o, cb) => c.createTopics(q, m, o, cb), {
            topics: [{ name, numPartitions: 2, replicationFactor: 3, assignments: [], configs: [{ name: 'min.insync.replicas', value: '2' }] }],
            validateOnly: false,
          }, 10_000);
          if (r.topics[0]?.errorCode === 0 || r.topics[0]?.errorCode === 36) break;
          throw new Error(`CreateTopics ${name}: ${r.topics[0]?.errorCode}`);
        } catch (e: unknown) {
          if (attempt >= 20) throw e;
          await sleep(500);
        }
      }
    }
    const fullIsr = async (): Promise<void> => {
      const deadline = now() + 60_000;
      for (;;) {
        const md = await client.metadata(topics).catch(() => undefined);
        if (md !== undefined && md.topics.length === 2 && md.topics.every((t) => t.partitions.length === 2 && t.partitions.every((p) => p.leaderId >= 0 && p.isr.length === 3))) return;
        if (now() > deadline) throw new Error('ISR not full within 60 s');
        await sleep(200);
      }
    };
    await fullIsr();
    for (const topic of topics) for (const p of [0, 1]) loops.push(produce(topic, p, await client.initProducerId()));
    for (let run = 1; run <= runs; run++) {
      await sleep(3000); // some acknowledged writes before the fault
      const brokers = cluster.brokers().map((b) => b.id);
      const killWall = Date.now();
      const killAt = now();
      await Promise.all(brokers.map((b) => cluster.kill(b)));
      for (const b of brokers) cluster.applyPowerLoss(b);
      if (holdMs > 0) await sleep(holdMs);
      const startWall = Date.now();
      for (const b of brokers) cluster.start(b);
      // Wait for the first ack on every partition.
      const deadline = now() + 120_000;
      // An ack of a send made after the kill (one in flight at the kill may still be answered).
      const firstAck = (k: string): number | undefined => attempts.get(k)?.find((a) => a.t > killAt && a.what === 'ok')?.done;
      while (parts.some((k) => firstAck(k) === undefined) && now() < deadline) await sleep(50);
      const ackWall = (k: string): number => (firstAck(k) ?? Number.NaN) - killAt + killWall;
      const ms = (t: number): number => Math.round(t - killWall);
      const brokerLogs = brokers.map((b) => ({ b, lines: logLines(path.join(cluster.node(b).dataDir, 'node.log'), startWall) }));
      const per = brokerLogs.map(({ b, lines }) => ({
        b,
        registered: ms(lines.find((l) => l.msg === 'registered with the controller')?.time ?? Number.NaN),
        unfenced: ms(lines.find((l) => l.msg === 'unfenced')?.time ?? Number.NaN),
      }));
      const byPart = parts.map((k) => {
        const [topic, partition] = [k.split('/')[0] as string, Number(k.split('/')[1])];
        const mine = (l: LogLine): boolean => l.topic === topic && l.partition === partition;
        const first = (msg: string, extra: (l: LogLine) => boolean): number => Math.min(...brokerLogs.map(({ lines }) => lines.find((l) => mine(l) && l.msg === msg && extra(l))?.time ?? Infinity));
        const att = attempts.get(k)?.filter((a) => a.t > killAt) ?? [];
        // The first attempt the partition's leader answered (an error such as NOT_ENOUGH_REPLICAS counts).
        const answered = att.find((a) => a.what === 'ok' || a.what.startsWith('produce error'));
        return {
          k,
          elected: ms(first('replica role', (l) => l.role === 'leader')),
          isrProposed: ms(first('proposing ISR change', (l) => Array.isArray(l.newIsr) && l.newIsr.length >= 2)),
          answered: answered === undefined ? Number.NaN : Math.round(answered.t - killAt),
          acked: ms(ackWall(k)),
          errors: [...new Set(att.filter((a) => a.what !== 'ok').map((a) => a.what.replace(/^(14 UNAVAILABLE: [^.:]*).*$/s, '$1').slice(0, 60)))],
        };
      });
      const max = (xs: number[]): number => Math.max(...xs);
      const min = (xs: number[]): number => Math.min(...xs);
      const row = {
        run,
        restart: ms(startWall),
        registeredFirst: min(per.map((p) => p.registered)),
        registeredLast: max(per.map((p) => p.registered)),
        unfencedFirst: min(per.map((p) => p.unfenced)),
        unfencedLast: max(per.map((p) => p.unfenced)),
        leadersElected: max(byPart.map((p) => p.elected)),
        isrExpansionProposed: max(byPart.map((p) => p.isrProposed)),
        producerAnsweredByLeader: max(byPart.map((p) => p.answered)),
        firstAckEveryPartition: max(byPart.map((p) => p.acked)),
      };
      summary.push(row);
      log(`run ${run}: ${Object.entries(row).slice(1).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      log(`  per broker: ${per.map((p) => `${p.b}: registered ${p.registered}, unfenced ${p.unfenced}`).join('; ')}`);
      for (const p of byPart) log(`  ${p.k}: leader elected ${p.elected}, ISR expansion proposed ${p.isrProposed}, producer answered ${p.answered}, acked ${p.acked}; errors before: ${p.errors.join(' | ') || '-'}`);
      if (verbose) {
        for (const c of cluster.controllers()) {
          for (const l of logLines(path.join(c.dataDir, 'node.log'), killWall)) if (l.time < killWall + 60_000) log(`  controller ${c.id} ${ms(l.time)}: ${l.msg} ${JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => !['time', 'msg', 'pid', 'hostname', 'name', 'level'].includes(k))))}`);
        }
        for (const { b, lines } of brokerLogs) {
          for (const l of lines) {
            if (l.time > killWall + 60_000) break;
            if (l.msg === 'replica role' || (typeof l.level === 'number' && l.level >= 40) || l.msg === 'unfenced' || l.msg === 'registered with the controller' || l.msg === 'proposing ISR change') log(`  broker ${b} ${ms(l.time)}: ${l.msg} ${JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => !['time', 'msg', 'pid', 'hostname', 'name', 'level'].includes(k))))}`);
          }
        }
      }
      await fullIsr();
    }
    const median = (xs: number[]): number => {
      const v = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
      return v.length === 0 ? Number.NaN : v.length % 2 === 1 ? (v[(v.length - 1) / 2] as number) : Math.round(((v[v.length / 2 - 1] as number) + (v[v.length / 2] as number)) / 2);
    };
    const keys = Object.keys(summary[0] ?? {}).filter((k) => k !== 'run');
    log(`medians over ${summary.length} runs (ms since the kill): ${keys.map((k) => `${k} ${median(summary.map((r) => r[k] as number))}`).join(', ')}`);
    log(JSON.stringify({ bench: 'restart-all recovery ms', holdMs, runs: summary }));
  } finally {
    stopping = true;
    await Promise.all(loops);
    client.close();
    await cluster.close(argv.includes('--keep-data'));
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
