/**
 * Multi-process: a new partition leader records its epoch at election (Kafka's makeLeader), so a
 * consumer from the previous epoch is answered with a real end offset, never (-1, -1).
 *
 * Three combined nodes; partition 0 of an RF=2 topic on brokers 1 and 2. Broker 2 is stopped
 * while broker 1 writes 10 records; a consumer (auto.offset.reset=none) reads them; DeleteRecords
 * removes them all. Broker 2 returns, is out of range, starts over with an empty log at 10 (and
 * an empty epoch cache) and rejoins the ISR. Broker 1 is killed; broker 2 is elected. Before it
 * writes anything: OffsetForLeaderEpoch for the records' epoch answers (that epoch, 10), and a
 * fetch at 10 naming it reads instead of diverging. Then the consumer goes on with the next
 * record, with no reset. Bounded by monotonic deadlines; the cluster is closed in finally.
 */
import { Consumer } from '@strand/client';
import type { ConsumerRecord } from '@strand/client';
import { Acks, encodeRecordBatch, type DeleteRecordsRequest, type DeleteRecordsResponse, type FetchRequest, type FetchResponse, type OffsetForLeaderEpochRequest, type OffsetForLeaderEpochResponse, type ProduceRequest, type ProduceResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(180_000);

test('a leader elected with an emptied log answers the previous epoch with its log start, and a consumer goes on', async () => {
  const cluster = await ProcessCluster.create({
    controllers: 3,
    combined: true,
    overrides: ['broker.session.timeout.ms=2500', 'broker.heartbeat.interval.ms=300', 'replica.lag.time.max.ms=5000', 'auto.leader.rebalance.enable=false'],
  });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  const addressOf = (id: number): string => cluster.brokerAddresses()[id - 1] as string;
  const partitionState = async (): Promise<{ leader: number; epoch: number; isr: number[] } | undefined> => {
    const p = (await brokers.metadata(['e'])).topics[0]?.partitions[0];
    return p === undefined ? undefined : { leader: p.leaderId, epoch: p.leaderEpoch, isr: [...p.isr].sort() };
  };
  const produce = async (address: string, values: string[]): Promise<number> => {
    const records = encodeRecordBatch({ baseTimestamp: Date.now(), records: values.map((v) => ({ value: Buffer.from(v) })) });
    const res = await brokers.call<ProduceRequest, ProduceResponse>(address, (c, r, m, o, cb) => c.produce(r, m, o, cb), { acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ name: 'e', partitions: [{ partition: 0, records }] }] });
    const p = res.topics[0]?.partitions[0];
    if (p === undefined || p.errorCode !== 0) throw new Error(`produce error ${p?.errorCode}: ${p?.errorMessage}`);
    return p.baseOffset;
  };
  let consumer: Consumer | undefined;
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const created = await brokers.createTopics({
      topics: [{ name: 'e', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [{ name: 'min.insync.replicas', value: '1' }] }],
      validateOnly: false,
    });
    expect(created.topics[0]?.errorCode).toBe(0);
    await until('broker 1 leading with a full ISR', async () => {
      const s = await partitionState();
      return s?.leader === 1 && s.isr.length === 2 ? true : undefined;
    }, 30_000);

    // Broker 2 away; broker 1 writes 10 records in its epoch.
    await cluster.stop(2, 30_000);
    await until('broker 2 out of the ISR', async () => ((await partitionState())?.isr.join(',') === '1' ? true : undefined), 30_000);
    const writeEpoch = (await partitionState())!.epoch;
    expect(await produce(addressOf(1), Array.from({ length: 10 }, (_, i) => `v${i}`))).toBe(0);

    // The consumer reads them: its position is 10 and its last fetched epoch is writeEpoch.
    consumer = new Consumer({ 'bootstrap.servers': cluster.brokerAddresses().join(','), 'auto.offset.reset': 'none', 'fetch.max.wait.ms': 100, 'retry.backoff.ms': 50 });
    consumer.assign([{ topic: 'e', partition: 0 }]);
    consumer.seek({ topic: 'e', partition: 0 }, 0);
    const read: ConsumerRecord[] = [];
    const readDeadline = performance.now() + 30_000;
    while (read.length < 10 && performance.now() < readDeadline) read.push(...(await consumer.poll(500)));
    expect(read.map((r) => r.offset)).toEqual([...Array(10).keys()]);
    expect(read.every((r) => r.leaderEpoch === writeEpoch)).toBe(true);

    const del = await brokers.call<DeleteRecordsRequest, DeleteRecordsResponse>(addressOf(1), (c, r, m, o, cb) => c.deleteRecords(r, m, o, cb), { topics: [{ name: 'e', partitions: [{ partition: 0, offset: 10 }] }], timeoutMs: 5000 });
    expect(del.topics[0]?.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 10 });

    // Broker 2 returns: out of range at 0, it starts over empty at 10 and rejoins the ISR.
    cluster.start(2);
    await until('broker 2 back in the ISR', async () => ((await partitionState())?.isr.join(',') === '1,2' ? true : undefined), 60_000);

    // Broker 1 dies; broker 2 is elected and has written nothing in its epoch.
    await cluster.kill(1);
    const electedEpoch = await until('broker 2 elected', async () => {
      const s = await partitionState();
      return s?.leader === 2 && s.epoch > writeEpoch ? s.epoch : undefined;
    }, 60_000);
    const epochEnd = await until('broker 2 answering as leader', async () => {
      const res = await brokers.call<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(addressOf(2), (c, r, m, o, cb) => c.offsetForLeaderEpoch(r, m, o, cb), {
        topics: [{ name: 'e', partitions: [{ partition: 0, currentLeaderEpoch: electedEpoch, leaderEpoch: writeEpoch }] }],
      });
      const p = res.topics[0]?.partitions[0];
      return p !== undefined && p.errorCode === 0 ? p : undefined;
    }, 30_000);
    // Kafka's answer: the records' epoch ends at 10 here (where broker 2's epoch starts).
    expect({ leaderEpoch: epochEnd.leaderEpoch, endOffset: Number(epochEnd.endOffset) }).toEqual({ leaderEpoch: writeEpoch, endOffset: 10 });
    const fetched = await brokers.call<FetchRequest, FetchResponse>(addressOf(2), (c, r, m, o, cb) => c.fetch(r, m, o, cb), {
      maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, replicaId: -1,
      topics: [{ name: 'e', partitions: [{ partition: 0, fetchOffset: 10, partitionMaxBytes: 1 << 20, currentLeaderEpoch: electedEpoch, lastFetchedEpoch: writeEpoch }] }],
    });
    const fp = fetched.topics[0]?.partitions[0];
    expect(fp?.errorCode).toBe(0);
    expect(fp?.divergingEpoch ?? null).toBeNull();

    // The consumer follows the new leader and reads the next record: no reset, no error.
    expect(await produce(addressOf(2), ['after'])).toBe(10);
    const next: ConsumerRecord[] = [];
    const nextDeadline = performance.now() + 30_000;
    while (next.length < 1 && performance.now() < nextDeadline) next.push(...(await consumer.poll(500)));
    expect(next.map((r) => [r.offset, r.value?.toString(), r.leaderEpoch])).toEqual([[10, 'after', electedEpoch]]);
  } finally {
    await consumer?.close().catch(() => undefined);
    brokers.close();
    await cluster.close();
  }
});
