/**
 * The client against a real cluster: three combined `strand server` processes on loopback
 * (test/support/process-cluster.ts). An idempotent, gzip-compressing Producer (acks=all) streams
 * keyed records with headers to an RF=3 topic while the leader of partition 0 is killed with
 * SIGKILL; every send must be acknowledged. Then a Consumer reads everything back: each record
 * exactly once, at the offset its send() reported, keys on the Java client's partition, per-key
 * order kept, headers intact; with the killed broker back (__consumer_offsets needs three live
 * brokers), a group consumer commits it all (lag 0) and DescribeGroups shows its client.id; and
 * the CLI describes the cluster and topic (exit 0). Bounded by monotonic deadlines; the cluster is
 * closed in finally.
 */
import { Admin, Consumer, Producer, partitionForKey } from '@strand/client';
import type { ConsumerRecord, RecordMetadata } from '@strand/client';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { until } from './support/until';

jest.setTimeout(240_000);

test('idempotent producer across a leader kill -9: every record once, in key order; consumers read it all', async () => {
  const cluster = await ProcessCluster.create({
    controllers: 3,
    combined: true,
    overrides: ['broker.session.timeout.ms=2500', 'broker.heartbeat.interval.ms=300', 'replica.lag.time.max.ms=5000', 'auto.leader.rebalance.enable=false'],
  });
  const bootstrap = cluster.brokerAddresses().join(',');
  const admin = new Admin({ 'bootstrap.servers': bootstrap, 'retry.backoff.ms': 50 });
  const producer = new Producer({ 'bootstrap.servers': bootstrap, 'compression.type': 'gzip', 'linger.ms': 5, 'delivery.timeout.ms': 90_000, 'request.timeout.ms': 5_000, 'retry.backoff.ms': 50 });
  const closers: (() => Promise<void>)[] = [];
  try {
    cluster.startAll();
    await until('three running brokers', async () => ((await admin.describeCluster()).brokers.filter((b) => b.state === 'running').length === 3 ? true : undefined), 60_000);
    await admin.createTopic({ name: 'events', numPartitions: 3, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } });
    await until('leaders with full ISRs', async () => ((await admin.describeTopics(['events']))[0]?.partitions.every((p) => p.leader >= 0 && p.isr.length === 3) ? true : undefined), 30_000);

    const total = 3000;
    const sent: { key: string; value: string; md: RecordMetadata }[] = [];
    let victim = -1;
    for (let i = 0; i < total; i += 100) {
      if (i === 1000) {
        victim = (await admin.describeTopics(['events']))[0]?.partitions[0]?.leader ?? -1;
        await cluster.kill(victim);
      }
      const batch = Array.from({ length: 100 }, (_, j) => ({ key: `key-${(i + j) % 20}`, value: `value-${i + j}`, headers: { seq: String(i + j) } }));
      const mds = await producer.sendBatch(batch.map((r) => ({ topic: 'events', ...r })));
      batch.forEach((r, j) => sent.push({ ...r, md: mds[j] as RecordMetadata }));
    }
    expect(victim).toBeGreaterThan(0);
    for (const s of sent) expect(s.md.partition).toBe(partitionForKey(Buffer.from(s.key), 3));

    const consumer = new Consumer({ 'bootstrap.servers': bootstrap, 'auto.offset.reset': 'earliest', 'fetch.max.wait.ms': 100 });
    closers.push(() => consumer.close());
    consumer.assign([0, 1, 2].map((partition) => ({ topic: 'events', partition })));
    const read: ConsumerRecord[] = [];
    const deadline = performance.now() + 60_000;
    while (read.length < total && performance.now() < deadline) read.push(...(await consumer.poll(500)));
    expect(read.length).toBe(total);
    const values = read.map((r) => r.value?.toString());
    expect(new Set(values).size).toBe(total);
    const at = new Map(sent.map((s) => [s.value, s.md]));
    for (const r of read) {
      const md = at.get(r.value?.toString() ?? '');
      expect([r.partition, r.offset]).toEqual([md?.partition, md?.offset]);
      expect(r.headers[0]?.value?.toString()).toBe(r.value?.toString().slice('value-'.length));
    }
    for (let k = 0; k < 20; k++) {
      const seqs = read.filter((r) => r.key?.toString() === `key-${k}`).map((r) => Number(r.value?.toString().slice('value-'.length)));
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }

    // A group reads it all and commits: no lag left. The killed broker comes back first:
    // __consumer_offsets is created only with offsets.topic.replication.factor (3) live brokers.
    cluster.start(victim);
    const member = new Consumer({ 'bootstrap.servers': bootstrap, 'group.id': 'checker', 'client.id': 'checker-app', 'auto.offset.reset': 'earliest', 'fetch.max.wait.ms': 100, 'enable.auto.commit': false });
    closers.push(() => member.close());
    member.subscribe(['events']);
    let got = 0;
    const groupDeadline = performance.now() + 60_000;
    while (got < total && performance.now() < groupDeadline) got += (await member.poll(500)).length;
    expect(got).toBe(total);
    await member.commit();
    expect((await admin.groupOffsets('checker', ['events'])).map((o) => o.lag)).toEqual([0, 0, 0]);
    // The member's client.id reached the coordinator (gRPC metadata client-id on JoinGroup).
    expect((await admin.describeGroup('checker')).members.map((m) => m.clientId)).toEqual(['checker-app']);

    const desc = await cli(['topics', 'describe', 'events', '--json'], bootstrap);
    expect([desc.code, desc.stderr]).toEqual([0, '']);
    expect(JSON.parse(desc.stdout)[0].partitions).toHaveLength(3);
    expect((await cli(['cluster', 'describe'], bootstrap)).code).toBe(0);
  } finally {
    for (const c of closers) await c().catch(() => undefined);
    await producer.close({ timeoutMs: 1000 }).catch(() => undefined);
    await admin.close();
    await cluster.close();
  }
});
