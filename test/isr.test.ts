/**
 * ISR shrink and expand with real processes (five combined nodes, so pausing two keeps a
 * controller quorum). An RF=3 partition on brokers 1-3 with min.insync.replicas=2: pausing one
 * follower (SIGSTOP) takes it out of the ISR and acks=all writes carry on with two; pausing the
 * second leaves the leader alone and acks=all writes are refused with NOT_ENOUGH_REPLICAS (the
 * Jepsen 2013 guard, SCENARIOS 1); resuming both brings them back into the ISR and acks=all
 * writes are acknowledged again. Every acknowledged record is readable at the end. Idle, healthy
 * followers stay in the ISR (held idle fetches count as of their arrival), and the second pause
 * happens with nothing written, so an idle dead follower leaves it too.
 *
 * Then DeleteRecords on the leader: the followers adopt its log start from their next fetch
 * answer (as Kafka's followers do), so after the leader stops and a follower takes over, the
 * deleted records stay deleted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Acks, ErrorCode, encodeRecordBatch, type DeleteRecordsRequest, type DeleteRecordsResponse, type ListOffsetsRequest, type ListOffsetsResponse, type ProduceRequest, type ProduceResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(180_000);

test('a paused follower leaves the ISR and rejoins; acks=all stops below min.insync.replicas and resumes', async () => {
  const cluster = await ProcessCluster.create({
    controllers: 5,
    combined: true,
    overrides: ['broker.session.timeout.ms=4000', 'broker.heartbeat.interval.ms=300', 'replica.lag.time.max.ms=1500', 'auto.leader.rebalance.enable=false'],
  });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    await until('five brokers', async () => ((await brokers.metadata([])).brokers.length === 5 ? true : undefined), 90_000);
    const res = await brokers.createTopics({
      topics: [{ name: 'isr', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2, 3] }], configs: [{ name: 'min.insync.replicas', value: '2' }] }],
      validateOnly: false,
    });
    expect(res.topics[0]?.errorCode).toBe(0);
    const isr = async (): Promise<number[]> => [...((await brokers.metadata(['isr'])).topics[0]?.partitions[0]?.isr ?? [])].sort();
    await until('full ISR', async () => ((await isr()).length === 3 ? true : undefined), 30_000);
    const leader = await until('the leader serving isr-0', async () => brokers.servingLeaderOf('isr', 0), 30_000);
    const [f1, f2] = [1, 2, 3].filter((b) => b !== leader.id) as [number, number];
    const acked: string[] = [];
    let n = 0;
    // One acks=all produce; a transport failure (not a Kafka error) is retried until a deadline.
    const send = async (): Promise<number> => {
      const value = `r${n++}`;
      const deadline = performance.now() + 30_000;
      for (;;) {
        try {
          const r = await brokers.call<ProduceRequest, ProduceResponse>(leader.address, (c, q, m, o, cb) => c.produce(q, m, o, cb), {
            acks: Acks.ACKS_ALL, timeoutMs: 10_000, topics: [{ name: 'isr', partitions: [{ partition: 0, records: encodeRecordBatch({ records: [{ value: Buffer.from(value) }], baseTimestamp: Date.now() }) }] }],
          }, 15_000);
          const code = r.topics[0]!.partitions[0]!.errorCode;
          if (code === 0) acked.push(value);
          return code;
        } catch (e: unknown) {
          if (performance.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    // With all three in the ISR, this acks=all write proves both followers are up and fetching.
    expect(await send()).toBe(0);
    // Idle, the leader holds follower fetches that have nothing to tell (up to half of
    // replica.lag.time.max.ms) and counts them as of their arrival: healthy idle followers must
    // stay in the ISR through three lag periods with nothing written.
    await new Promise((r) => setTimeout(r, 3 * 1500));
    expect(await isr()).toHaveLength(3);

    cluster.pause(f1);
    // The write waits until the ISR shrink commits (KIP-497), then succeeds with two in sync.
    expect(await send()).toBe(0);
    await until('f1 out of the ISR', async () => (!(await isr()).includes(f1) ? true : undefined), 30_000);
    expect(await send()).toBe(0);

    cluster.pause(f2);
    await until('the leader alone in the ISR', async () => ((await isr()).length === 1 ? true : undefined), 30_000);
    expect(await send()).toBe(ErrorCode.NOT_ENOUGH_REPLICAS);

    cluster.resume(f1);
    cluster.resume(f2);
    await until('full ISR again', async () => ((await isr()).length === 3 ? true : undefined), 60_000);
    expect(await until('acks=all accepted again', async () => ((await send()) === 0 ? true : undefined), 30_000)).toBe(true);
    const read = (await brokers.readAll('isr', 0)).map((r) => r.value);
    for (const v of acked) expect(read).toContain(v);

    // DeleteRecords up to the high watermark (offset -1), on the leader only.
    const del = await brokers.call<DeleteRecordsRequest, DeleteRecordsResponse>(leader.address, (c, r, m, o, cb) => c.deleteRecords(r, m, o, cb), { topics: [{ name: 'isr', partitions: [{ partition: 0, offset: -1 }] }], timeoutMs: 5_000 });
    expect(del.topics[0]!.partitions[0]!.errorCode).toBe(0);
    const deletedBefore = del.topics[0]!.partitions[0]!.lowWatermark;
    expect(deletedBefore).toBeGreaterThanOrEqual(acked.length);
    const logStartOf = (id: number): number => {
      const text = fs.readFileSync(path.join(cluster.node(id).dataDir, 'logs', 'isr-0', 'log-start-offset-checkpoint'), 'utf8');
      return Number(text.split('\n')[1]);
    };
    await until('every replica at the new log start', async () => ([1, 2, 3].every((id) => fs.existsSync(path.join(cluster.node(id).dataDir, 'logs', 'isr-0', 'log-start-offset-checkpoint')) && logStartOf(id) === deletedBefore) ? true : undefined), 30_000);
    await cluster.stop(leader.id);
    const next = await until('a new leader', async () => {
      const l = await brokers.leaderOf('isr', 0).catch(() => undefined);
      return l !== undefined && l.id !== leader.id ? l : undefined;
    }, 30_000);
    const earliest = await brokers.call<ListOffsetsRequest, ListOffsetsResponse>(next.address, (c, r, m, o, cb) => c.listOffsets(r, m, o, cb), {
      isolationLevel: 0,
      topics: [{ name: 'isr', partitions: [{ partition: 0, timestamp: -2, currentLeaderEpoch: -1 }] }],
    });
    expect(earliest.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, offset: deletedBefore });
  } finally {
    brokers.close();
    await cluster.close();
  }
});
