/**
 * DeleteRecords is durable across a leader failover (Kafka's DelayedDeleteRecords), with real
 * processes: three combined nodes, an RF=2 partition on brokers 1 and 2. The leader answers only
 * once every live replica's log start has reached the deleted offset, so:
 * - with the follower paused (SIGSTOP) the answer waits, and comes once the follower is resumed,
 *   fetches, and reports the new log start, which by then is in its checkpoint;
 * - with the follower paused for longer than the request's timeout, the answer is
 *   REQUEST_TIMED_OUT (the deletion is not acknowledged);
 * - the leader is then killed and the follower is elected: it serves no record that an
 *   acknowledged deletion removed. Before, the leader answered on its own log start alone, at
 *   once, and the new leader served records it had acknowledged as deleted (the follower was to
 *   learn the new log start from the answer to its held fetch, which a leader holds for up to
 *   replica.fetch.wait.max.ms: 10 s here, so that window is wide enough to hit every time).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Acks, ErrorCode, encodeRecordBatch, type DeleteRecordsRequest, type DeleteRecordsResponse, type ListOffsetsRequest, type ListOffsetsResponse, type ProduceRequest, type ProduceResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(180_000);

test('DeleteRecords waits for the follower\'s log start, times out without it, and stays deleted after a failover', async () => {
  const cluster = await ProcessCluster.create({
    controllers: 3,
    combined: true,
    // A pause (up to ~2.5 s here) stays well within the session timeout, so the paused follower
    // stays alive (unfenced) in the leader's view and in the ISR.
    overrides: ['broker.session.timeout.ms=6000', 'broker.heartbeat.interval.ms=300', 'auto.leader.rebalance.enable=false', 'replica.fetch.wait.max.ms=10000'],
  });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 90_000);
    const created = await brokers.createTopics({ topics: [{ name: 'dr', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [] }], validateOnly: false });
    expect(created.topics[0]?.errorCode).toBe(0);
    const isr = async (): Promise<number[]> => [...((await brokers.metadata(['dr'])).topics[0]?.partitions[0]?.isr ?? [])].sort();
    await until('full ISR', async () => ((await isr()).length === 2 ? true : undefined), 30_000);
    const leader = await until('the leader serving dr-0', async () => brokers.servingLeaderOf('dr', 0), 30_000);
    const follower = leader.id === 1 ? 2 : 1;

    // 20 records in four acks=all batches of 5: both replicas hold them all.
    for (let b = 0; b < 4; b++) {
      const r = await brokers.call<ProduceRequest, ProduceResponse>(leader.address, (c, q, m, o, cb) => c.produce(q, m, o, cb), {
        acks: Acks.ACKS_ALL, timeoutMs: 10_000, topics: [{ name: 'dr', partitions: [{ partition: 0, records: encodeRecordBatch({ records: Array.from({ length: 5 }, (_, i) => ({ value: Buffer.from(`v${5 * b + i}`) })), baseTimestamp: Date.now() }) }] }],
      }, 15_000);
      expect(r.topics[0]?.partitions[0]?.errorCode).toBe(0);
    }
    const deleteBefore = (offset: number, timeoutMs: number): Promise<{ errorCode: number; lowWatermark: number }> =>
      brokers
        .call<DeleteRecordsRequest, DeleteRecordsResponse>(leader.address, (c, r, m, o, cb) => c.deleteRecords(r, m, o, cb), { topics: [{ name: 'dr', partitions: [{ partition: 0, offset }] }], timeoutMs }, timeoutMs + 10_000)
        .then((res) => ({ errorCode: res.topics[0]!.partitions[0]!.errorCode, lowWatermark: Number(res.topics[0]!.partitions[0]!.lowWatermark) }));
    const logStartOf = (id: number): number => {
      const file = path.join(cluster.node(id).dataDir, 'logs', 'dr-0', 'log-start-offset-checkpoint');
      return fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8').split('\n')[1]) : 0;
    };
    /** The largest offset a DeleteRecords was acknowledged for: no leader may serve below it. */
    let acknowledged = 0;

    // 1. Follower paused: the answer waits for it.
    cluster.pause(follower);
    let answered = false;
    const first = deleteBefore(5, 30_000).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(answered).toBe(false);
    cluster.resume(follower);
    const firstAnswer = await first;
    expect(firstAnswer).toEqual({ errorCode: 0, lowWatermark: 5 });
    // Answered only once the follower had durably moved its log start.
    expect(logStartOf(follower)).toBe(5);
    acknowledged = Math.max(acknowledged, firstAnswer.lowWatermark);

    // 2. Follower paused past the request's timeout: REQUEST_TIMED_OUT, with the low watermark
    // as of the request.
    cluster.pause(follower);
    const second = await deleteBefore(10, 1000);
    if (second.errorCode === 0) acknowledged = Math.max(acknowledged, second.lowWatermark);
    expect(second).toEqual({ errorCode: ErrorCode.REQUEST_TIMED_OUT, lowWatermark: 5 });

    // 3. The leader dies before the follower learns of the second deletion; the follower is elected.
    await cluster.kill(leader.id);
    cluster.resume(follower);
    const next = await until('the follower elected', async () => {
      const l = await brokers.leaderOf('dr', 0).catch(() => undefined);
      return l !== undefined && l.id === follower ? l : undefined;
    }, 60_000);
    const earliest = await until('the new leader answering ListOffsets', async () => {
      const res = await brokers.call<ListOffsetsRequest, ListOffsetsResponse>(next.address, (c, r, m, o, cb) => c.listOffsets(r, m, o, cb), { isolationLevel: 0, topics: [{ name: 'dr', partitions: [{ partition: 0, timestamp: -2, currentLeaderEpoch: -1 }] }] });
      const p = res.topics[0]?.partitions[0];
      return p !== undefined && p.errorCode === 0 ? Number(p.offset) : undefined;
    }, 30_000);
    // Every acknowledged deletion holds. (The unacknowledged one may have reached this replica
    // too: the leader's answer to its fetch, telling the new log start, can have been waiting in
    // its socket while it was paused.)
    expect(earliest).toBeGreaterThanOrEqual(acknowledged);
    expect([5, 10]).toContain(earliest);
  } finally {
    brokers.close();
    await cluster.close();
  }
});
