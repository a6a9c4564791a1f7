/**
 * Multi-process replication: three combined nodes (controller + broker) on loopback. An
 * idempotent producer writes one record per request to an RF=3 partition with acks=all; the
 * partition leader is killed with SIGKILL mid-stream and the producer carries on through the new
 * leader, retrying unacknowledged sends with the same sequence number. Then: every acknowledged
 * record is readable exactly once, in order; the killed broker restarts, rejoins the ISR, and
 * after a clean stop the three replicas' segment files are byte-identical.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InitProducerIdRequest, InitProducerIdResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(180_000);

function segments(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.log')).sort()) out.set(f, fs.readFileSync(path.join(dir, f)));
  return out;
}

test('acks=all survives kill -9 of the leader: nothing lost, nothing duplicated, replicas identical', async () => {
  const cluster = await ProcessCluster.create({
    controllers: 3,
    combined: true,
    overrides: ['broker.session.timeout.ms=2500', 'broker.heartbeat.interval.ms=300', 'replica.lag.time.max.ms=5000', 'auto.leader.rebalance.enable=false'],
  });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const created = await brokers.createTopics({
      topics: [{ name: 'orders', numPartitions: 1, replicationFactor: 3, assignments: [], configs: [{ name: 'min.insync.replicas', value: '2' }] }],
      validateOnly: false,
    });
    expect(created.topics[0]?.errorCode).toBe(0);
    await until('a leader with a full ISR', async () => {
      const md = await brokers.metadata(['orders']);
      const p = md.topics[0]?.partitions[0];
      return p && p.leaderId >= 0 && p.isr.length === 3 ? true : undefined;
    }, 30_000);
    const pid = await brokers.call<InitProducerIdRequest, InitProducerIdResponse>(cluster.brokerAddresses()[0] as string, (c, r, m, o, cb) => c.initProducerId(r, m, o, cb), { transactionalId: undefined, transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1 } as InitProducerIdRequest);
    expect(pid.errorCode).toBe(0);
    const producer = { id: pid.producerId, epoch: pid.producerEpoch };

    const total = 200;
    const acked: { value: string; offset: number }[] = [];
    let victim = -1;
    let failoverMs = -1;
    for (let i = 0; i < total; i++) {
      if (i === 80) {
        const leader = await brokers.leaderOf('orders', 0);
        victim = leader!.id;
        const t0 = performance.now();
        await cluster.kill(victim);
        const offset = await brokers.sendIdempotent('orders', 0, `v${i}`, producer, i, performance.now() + 60_000);
        failoverMs = performance.now() - t0;
        acked.push({ value: `v${i}`, offset });
        continue;
      }
      const offset = await brokers.sendIdempotent('orders', 0, `v${i}`, producer, i, performance.now() + 60_000);
      acked.push({ value: `v${i}`, offset });
    }
    process.stdout.write(`replication failover: first acks=all write acknowledged ${Math.round(failoverMs)} ms after kill -9 of leader ${victim} (session timeout 2500 ms)\n`);

    // Exactly once, in order, at the offsets that were acknowledged.
    const read = await brokers.readAll('orders', 0);
    expect(read.map((r) => r.value)).toEqual(acked.map((a) => a.value));
    expect(read.map((r) => r.offset)).toEqual(acked.map((a) => a.offset));

    // The killed broker returns and catches up; the ISR is full again.
    cluster.start(victim);
    await until('the killed broker back in the ISR', async () => {
      const p = (await brokers.metadata(['orders'])).topics[0]?.partitions[0];
      return p && p.isr.length === 3 ? true : undefined;
    }, 60_000);
    // Stop everything cleanly, then compare the replicas' bytes.
    for (const n of cluster.nodes) await cluster.stop(n.id, 30_000);
    // Segments roll independently per replica; the log, their concatenation, must be identical.
    const logs = cluster.nodes.map((n) => Buffer.concat([...segments(path.join(n.dataDir, 'logs', 'orders-0')).values()]));
    const first = logs[0]!;
    expect(first.length).toBeGreaterThan(0);
    for (const other of logs.slice(1)) expect(other.equals(first)).toBe(true);
  } finally {
    brokers.close();
    await cluster.close();
  }
});
