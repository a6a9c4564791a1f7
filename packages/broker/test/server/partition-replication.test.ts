/**
 * Two brokers' ReplicaManagers in one process, over real logs, with follower fetches pumped by
 * hand the way the replica fetcher does (follower pollFetch -> leader answerFollowerFetch ->
 * follower applyFetchResponse). Covers how a follower starts over when the leader's log start
 * has moved past it:
 * - DeleteRecords to an offset inside a batch, then a new follower: the leader sends the whole
 *   batch, the follower starts its log at the batch's base and takes the leader's log start;
 * - the log start moved past the end of the follower's last epoch (its epoch entry is gone on
 *   the leader): the leader answers OFFSET_OUT_OF_RANGE (Kafka's endOffsetFor for an epoch
 *   older than all), not a divergence the follower cannot resolve, so it starts over;
 * - an uncleanly elected leader whose log ends below the follower's (empty) log start: the
 *   follower truncates to the leader's log end (Kafka's fetchOffsetAndTruncate), not a backoff
 *   repeated for ever.
 * A new leader records its epoch at the log end at election (Kafka's makeLeader): its epoch and
 * one it never wrote in end there, also when its log was emptied at the log start (no (-1, -1)
 * answer), and a former leader that wrote nothing in its epoch drops it when it follows.
 * Also: a full replica fetch response answers without records but counts the fetch, and a new
 * leader answers ListOffsets (OFFSET_NOT_AVAILABLE otherwise) only once its high watermark
 * reaches the start of its epoch. The leader's produce path: idempotent retries answered only
 * as durably as the original, one idempotent batch per partition per request; a follower backs
 * off after a storage error from the leader; a failed fdatasync is reported to the host.
 * DeleteRecords (Kafka's DelayedDeleteRecords): answered only once the follower's fetch reports
 * the new log start, REQUEST_TIMED_OUT if it never does, not waiting for a fenced follower, and
 * failed on leadership loss (NOT_LEADER_OR_FOLLOWER) and deletion (UNKNOWN_TOPIC_OR_PARTITION).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigResourceType, ErrorCode, encodeRecordBatch, errorByCode, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { ReplicaManager } from '../../src/server/replica-manager';
import type { Partition, PartitionHost } from '../../src/server/partition';

const dirs: string[] = [];
const managers: ReplicaManager[] = [];
/** Log failures the hosts were told of: [topic-partition, error name]. */
const failures: [string, string][] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close().catch(() => undefined);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  failures.length = 0;
});

const topicId = 'fedcba9876543210fedcba9876543210';
const quiet = { info: () => undefined, warn: () => undefined };
let clock = 0;

/** Brokers 1 and 2 (those in `fenced` fenced); topic t's partition 0 on both, led by `leader` (broker 1 by default). */
function image(offset: number, leaderEpoch: number, isr: number[], leader = 1, flushPolicy = 'page-cache', fenced: readonly number[] = []): MetadataImage {
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: fenced.includes(id), inControlledShutdown: false, previousShutdownClean: true } });
  return MetadataImage.fromRecords(offset, [
    { cluster: { clusterId: 'c' } },
    broker(1),
    broker(2),
    { topic: { name: 't', topicId: topicIdToBytes(topicId) } },
    { partition: { topicId: topicIdToBytes(topicId), partition: 0, replicas: [1, 2], isr, leader, leaderEpoch, partitionEpoch: offset, addingReplicas: [], removingReplicas: [] } },
    { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 't', name: 'flush.policy', value: flushPolicy } },
  ]);
}

/** The same brokers with no topic (t was deleted). */
function imageWithoutTopic(offset: number): MetadataImage {
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  return MetadataImage.fromRecords(offset, [{ cluster: { clusterId: 'c' } }, broker(1), broker(2)]);
}

async function brokerWith(id: number, img: MetadataImage): Promise<Partition> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strand-repl-${id}-`));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: id, nowMs: () => clock, sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100, onLogFailure: (tp, e) => failures.push([tp, e.errorName]) };
  const rm = new ReplicaManager(dir, host, quiet);
  managers.push(rm);
  await rm.applyImage(img);
  return rm.partitionByName('t', 0)!;
}

/** One replica fetch round trip from `follower` to `leader`: "fetchOffset:what the leader said". */
function pump(leader: Partition, follower: Partition): string {
  clock += 200; // past the follower's retry backoff
  const out = follower.follower!.pollFetch(clock, 30_000);
  if (out === null) throw new Error('the follower wants no fetch');
  const q = out.request;
  const answer = leader.answerFollowerFetch({ replicaId: 2, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset, logStartOffset: q.logStartOffset }, 1 << 20, clock);
  follower.applyFetchResponse(out.correlationId, q.fetchOffset, answer);
  const what = answer.errorCode !== 0 ? errorByCode(answer.errorCode).name : answer.divergingEpoch !== null ? 'diverging' : 'read';
  return `${q.fetchOffset}:${what}`;
}

const batch = (from: number, n: number): Buffer => encodeRecordBatch({ baseTimestamp: 1, records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`v${from + i}`) })) });

test('a new follower of a log whose start is inside a batch starts at the batch and takes the leader\'s log start', async () => {
  const leader = await brokerWith(1, image(10, 0, [1]));
  expect((await leader.produce(batch(0, 10), -1, 5000)).errorCode).toBe(0);
  expect(leader.highWatermark).toBe(10);
  leader.deleteRecordsBefore(5);
  const follower = await brokerWith(2, image(10, 0, [1]));
  const offsets: string[] = [];
  for (let i = 0; i < 4 && follower.log.logEndOffset < 10; i++) offsets.push(pump(leader, follower));
  // From 0 (out of range), then from the leader's log start 5, which returns the batch 0..9.
  expect(offsets).toEqual(['0:OFFSET_OUT_OF_RANGE', '5:read']);
  expect(follower.log.logEndOffset).toBe(10);
  expect(follower.log.logStartOffset).toBe(5);
  // Replication goes on normally from there.
  expect((await leader.produce(batch(10, 2), 1, 5000)).errorCode).toBe(0);
  pump(leader, follower);
  expect(follower.log.logEndOffset).toBe(12);
});

test('a follower whose last epoch went with the leader\'s log start starts over at the log start', async () => {
  const leader = await brokerWith(1, image(10, 0, [1, 2]));
  const follower = await brokerWith(2, image(10, 0, [1, 2]));
  const acked = leader.produce(batch(0, 5), -1, 5000);
  pump(leader, follower);
  pump(leader, follower);
  expect((await acked).errorCode).toBe(0);
  expect(follower.log.logEndOffset).toBe(5);
  // Broker 2 is away while broker 1 leads again in epoch 1, appends, and the log start moves
  // past the start of epoch 1 (so epoch 0's entry is dropped from its cache).
  await managersOf(leader).applyImage(image(11, 1, [1]));
  expect((await leader.produce(batch(5, 5), -1, 5000)).errorCode).toBe(0);
  leader.deleteRecordsBefore(8);
  await managersOf(follower).applyImage(image(11, 1, [1]));
  const offsets: string[] = [];
  for (let i = 0; i < 6 && follower.log.logEndOffset < 10; i++) offsets.push(pump(leader, follower));
  // 5 with last epoch 0: out of range (not diverging), start over at 8, which returns the batch 5..9.
  expect(offsets).toEqual(['5:OFFSET_OUT_OF_RANGE', '8:read']);
  expect(follower.log.logStartOffset).toBe(8);
  expect(follower.log.logEndOffset).toBe(10);
});

test('a follower whose log starts past the log end of an uncleanly elected leader truncates to that end and replicates (Kafka\'s fetchOffsetAndTruncate)', async () => {
  // Broker 1, out of sync with 3 records, is elected uncleanly in epoch 2. Broker 2 had emptied
  // its log at the previous leader's log start, 8 (so it names no last fetched epoch), past the
  // new leader's log end: every fetch from 8 is out of range, whatever it waits.
  const leader = await brokerWith(1, image(10, 2, [1]));
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  const follower = await brokerWith(2, image(10, 2, [1]));
  follower.log.truncateFullyAndStartAt(8);
  const offsets: string[] = [];
  for (let i = 0; i < 4 && follower.log.logEndOffset !== 3; i++) offsets.push(pump(leader, follower));
  // Kafka: the leader's log end is below the follower's, so the follower truncates to it (here
  // fully, the target being below its log start) and fetches from there.
  expect(offsets).toEqual(['8:OFFSET_OUT_OF_RANGE']);
  expect([follower.log.logStartOffset, follower.log.logEndOffset]).toEqual([3, 3]);
  expect((await leader.produce(batch(3, 2), 1, 5000)).errorCode).toBe(0);
  expect(pump(leader, follower)).toBe('3:read');
  expect(follower.log.logEndOffset).toBe(5);
});

/** One replica fetch round trip from `follower` (broker `followerId`) to `leader`, as `pump`. */
function pumpAs(leader: Partition, follower: Partition, followerId: number): string {
  clock += 200;
  const out = follower.follower!.pollFetch(clock, 30_000);
  if (out === null) throw new Error('the follower wants no fetch');
  const q = out.request;
  const answer = leader.answerFollowerFetch({ replicaId: followerId, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset, logStartOffset: q.logStartOffset }, 1 << 20, clock);
  follower.applyFetchResponse(out.correlationId, q.fetchOffset, answer);
  const what = answer.errorCode !== 0 ? errorByCode(answer.errorCode).name : answer.divergingEpoch !== null ? `diverging(${answer.divergingEpoch.epoch},${answer.divergingEpoch.endOffset})` : 'read';
  return `${q.lastFetchedEpoch}@${q.fetchOffset}:${what}`;
}

test('a new leader records its epoch at election: its epoch and one it never wrote in end at its log end', async () => {
  const one = await brokerWith(1, image(10, 0, [1, 2]));
  const two = await brokerWith(2, image(10, 0, [1, 2]));
  expect((await one.produce(batch(0, 5), 1, 5000)).errorCode).toBe(0);
  pump(one, two);
  expect(two.log.logEndOffset).toBe(5);
  // Broker 2 leads epoch 2 (epoch 1 was a leadership that wrote nothing): before any write the
  // cache holds epoch 2 from 5, in the checkpoint on disk too.
  await managersOf(two).applyImage(image(12, 2, [1, 2], 2));
  expect(two.isLeader).toBe(true);
  expect(two.log.leaderEpochs.list()).toEqual([{ epoch: 0, startOffset: 0 }, { epoch: 2, startOffset: 5 }]);
  expect(fs.readFileSync(path.join(two.log.dir, 'leader-epoch-checkpoint'), 'utf8')).toBe('0\n2\n0 0\n2 5\n');
  // OffsetForLeaderEpoch (and a fetch's divergence check) as Kafka's LeaderEpochFileCache answers.
  expect(two.log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 5 });
  expect(two.log.endOffsetForEpoch(1)).toEqual({ epoch: 0, endOffset: 5 });
  expect(two.log.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 5 });
  // ListOffsets latest names the current epoch.
  expect(two.log.offsetForTimestamp(-1)?.leaderEpoch).toBe(2);
  expect((await two.produce(batch(5, 2), 1, 5000)).errorCode).toBe(0);
  expect(two.log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 7 });
  expect(two.log.leaderEpochs.list()).toEqual([{ epoch: 0, startOffset: 0 }, { epoch: 2, startOffset: 5 }]);
});

test('a leader elected with a log emptied at the log start answers the previous epoch with its start, not (-1, -1)', async () => {
  const one = await brokerWith(1, image(10, 0, [1]));
  expect((await one.produce(batch(0, 10), 1, 5000)).errorCode).toBe(0);
  one.deleteRecordsBefore(10);
  // Broker 2 was behind: it starts over at the log start 10 with an empty log and epoch cache.
  const two = await brokerWith(2, image(10, 0, [1]));
  expect([pump(one, two), pump(one, two)]).toEqual(['0:OFFSET_OUT_OF_RANGE', '10:read']);
  expect([two.log.logStartOffset, two.log.logEndOffset]).toEqual([10, 10]);
  expect(two.log.leaderEpochs.list()).toEqual([]);
  // Broker 2 leads epoch 1 and writes nothing yet. A consumer at 10 that last fetched epoch 0
  // from broker 1 is checked with endOffsetForEpoch(0) (Fetch's divergence check, and
  // OffsetForLeaderEpoch): epoch 0 ends at 10, so its position is valid. (-1, -1) would make it
  // reset by auto.offset.reset (an error under `none`).
  await managersOf(two).applyImage(image(11, 1, [1, 2], 2));
  await managersOf(one).applyImage(image(11, 1, [1, 2], 2));
  expect(two.log.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 10 });
  // Broker 1 follows from 10 with last epoch 0: a plain read, no divergence, nothing truncated.
  expect(pumpAs(two, one, 1)).toBe('0@10:read');
  expect([one.log.logStartOffset, one.log.logEndOffset]).toEqual([10, 10]);
  expect((await two.produce(batch(10, 2), 1, 5000)).errorCode).toBe(0);
  expect(pumpAs(two, one, 1)).toBe('0@10:read');
  expect(one.log.leaderEpochs.list()).toEqual([{ epoch: 1, startOffset: 10 }]);
});

test('a former leader that wrote nothing in its epoch drops that epoch when it follows and catches up', async () => {
  const one = await brokerWith(1, image(10, 0, [1, 2]));
  const two = await brokerWith(2, image(10, 0, [1, 2]));
  expect((await one.produce(batch(0, 5), 1, 5000)).errorCode).toBe(0);
  pump(one, two);
  // Broker 1 leads epoch 1 and writes nothing; broker 2 then leads epoch 2.
  await managersOf(one).applyImage(image(11, 1, [1, 2], 1));
  expect(one.log.leaderEpochs.latest).toEqual({ epoch: 1, startOffset: 5 });
  await managersOf(one).applyImage(image(12, 2, [1, 2], 2));
  await managersOf(two).applyImage(image(12, 2, [1, 2], 2));
  expect((await two.produce(batch(5, 3), 1, 5000)).errorCode).toBe(0);
  // Broker 1's last epoch 1 is unknown on broker 2: epoch 0 ends at 5 there. Truncating to 5
  // removes no batch but drops epoch 1, so the next fetch names epoch 0 and reads.
  const rounds: string[] = [];
  for (let i = 0; i < 4 && one.log.logEndOffset < 8; i++) rounds.push(pumpAs(two, one, 1));
  expect(rounds).toEqual(['1@5:diverging(0,5)', '0@5:read']);
  expect(one.log.leaderEpochs.list()).toEqual([{ epoch: 0, startOffset: 0 }, { epoch: 2, startOffset: 5 }]);
  expect(one.log.logEndOffset).toBe(8);
});

function managersOf(p: Partition): ReplicaManager {
  const m = managers.find((x) => x.partitionByName('t', 0) === p);
  if (m === undefined) throw new Error('no manager');
  return m;
}

test('a full replica fetch response answers a partition without records but still counts its fetch', async () => {
  const leader = await brokerWith(1, image(10, 0, [1, 2]));
  const follower = await brokerWith(2, image(10, 0, [1, 2]));
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  pump(leader, follower);
  expect(follower.log.logEndOffset).toBe(3);
  expect((await leader.produce(batch(3, 2), 1, 5000)).errorCode).toBe(0);
  clock += 200;
  const out = follower.follower!.pollFetch(clock, 30_000)!;
  const q = out.request;
  const answer = leader.answerFollowerFetch({ replicaId: 2, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset, logStartOffset: q.logStartOffset }, 0, clock);
  expect(answer.errorCode).toBe(0);
  expect(answer.records.length).toBe(0);
  // The follower's offset 3 counted: the high watermark moved to it.
  expect(leader.highWatermark).toBe(3);
  expect(answer.highWatermark).toBe(3);
  follower.applyFetchResponse(out.correlationId, q.fetchOffset, answer);
  pump(leader, follower);
  expect(follower.log.logEndOffset).toBe(5);
});

test('a new leader answers ListOffsets only once its high watermark reaches the start of its epoch', async () => {
  const one = await brokerWith(1, image(10, 0, [1, 2]));
  const two = await brokerWith(2, image(10, 0, [1, 2]));
  expect(one.offsetsAvailable).toBe(true);
  expect((await one.produce(batch(0, 5), 1, 5000)).errorCode).toBe(0);
  pump(one, two); // broker 2 has offsets 0..4 but learns the high watermark only later
  expect(two.log.logEndOffset).toBe(5);
  expect(two.highWatermark).toBe(0);
  // Broker 2 leads epoch 1: its epoch starts at 5, its high watermark is 0.
  await managersOf(two).applyImage(image(11, 1, [1, 2], 2));
  await managersOf(one).applyImage(image(11, 1, [1, 2], 2));
  expect(two.isLeader).toBe(true);
  expect(two.offsetsAvailable).toBe(false);
  // Broker 1 follows and fetches from 5: the high watermark reaches the epoch start.
  clock += 200;
  const out = one.follower!.pollFetch(clock, 30_000)!;
  const q = out.request;
  one.applyFetchResponse(out.correlationId, q.fetchOffset, two.answerFollowerFetch({ replicaId: 1, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset, logStartOffset: q.logStartOffset }, 1 << 20, clock));
  expect(two.highWatermark).toBe(5);
  expect(two.offsetsAvailable).toBe(true);
});

const idempotent = (seq: number): Buffer => encodeRecordBatch({ baseTimestamp: Date.now(), producerId: 7, producerEpoch: 0, baseSequence: seq, records: [{ value: Buffer.from(`v${seq}`) }] });

test('an acks=1 retry of a batch still being synced is answered once the original is durable (flush.policy=fsync)', async () => {
  const leader = await brokerWith(1, image(10, 0, [1], 1, 'fsync'));
  const original = leader.produce(idempotent(0), 1, 5000); // appended; waits for its fdatasync
  const retry = await leader.produce(idempotent(0), 1, 5000); // same producer/epoch/sequence: a retry
  expect(retry.errorCode).toBe(0);
  expect(retry.baseOffset).toBe(0);
  // The retry was acknowledged, so offset 0 must already be durable on the leader, as the
  // original's acknowledgement requires (Partition.produce: acks=1 waits for waitForDurable).
  const durableWhenRetryAcked = leader.log.durableEndOffset;
  await original;
  expect(durableWhenRetryAcked).toBeGreaterThan(0);
});

test('a follower answered with a storage error refetches only after the backoff, not at once', async () => {
  const leader = await brokerWith(1, image(10, 0, [1, 2]));
  const follower = await brokerWith(2, image(10, 0, [1, 2]));
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  // Corrupt the leader's only batch on disk (a byte inside the CRC-covered records).
  const seg = path.join(leader.log.dir, '00000000000000000000.log');
  const fd = fs.openSync(seg, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, fs.fstatSync(fd).size - 2);
  fs.closeSync(fd);
  const answers: string[] = [];
  let immediate = 0;
  clock += 1000;
  for (let i = 0; i < 5; i++) {
    // Same clock every round: a backoff (replica.fetch.backoff.ms, Kafka's delayPartitions) would return null.
    const out = follower.follower!.pollFetch(clock, 30_000);
    if (out === null) break;
    immediate++;
    const q = out.request;
    const a = leader.answerFollowerFetch({ replicaId: 2, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset, logStartOffset: q.logStartOffset }, 1 << 20, clock);
    answers.push(errorByCode(a.errorCode).name);
    follower.applyFetchResponse(out.correlationId, q.fetchOffset, a);
  }
  expect(answers[0]).toBe('KAFKA_STORAGE_ERROR');
  expect(immediate).toBe(1);
});

test('an idempotent batch behind a plain one in one request is refused, not appended unchecked', async () => {
  const leader = await brokerWith(1, image(10, 0, [1]));
  expect((await leader.produce(idempotent(0), 1, 5000)).errorCode).toBe(0);
  const retryBehindPlain = Buffer.concat([batch(0, 1), idempotent(0)]);
  const r = await leader.produce(retryBehindPlain, 1, 5000);
  expect(errorByCode(r.errorCode).name).toBe('INVALID_RECORD');
  expect(leader.log.logEndOffset).toBe(1);
});

test('a partition log whose fdatasync failed is reported to the host (the broker halts)', async () => {
  const leader = await brokerWith(1, image(10, 0, [1], 1, 'page-cache'));
  expect((await leader.produce(batch(0, 1), 1, 5000)).errorCode).toBe(0);
  // page-cache: nothing synced yet; the segment's descriptor is closed so the next fdatasync fails.
  const segment = (leader.log as unknown as { activeSegment: { fd: number } }).activeSegment;
  fs.closeSync(segment.fd);
  await expect(leader.log.flush()).rejects.toMatchObject({ errorName: 'KAFKA_STORAGE_ERROR' });
  expect(failures).toEqual([['t-0', 'KAFKA_STORAGE_ERROR']]);
  segment.fd = fs.openSync(path.join(leader.log.dir, '00000000000000000000.log'), 'r');
});


test('a late error answer to a previous follower core\'s fetch neither cancels the current fetch nor drops its answer', async () => {
  const leader = await brokerWith(1, image(10, 0, [1, 2]));
  const follower = await brokerWith(2, image(10, 0, [1, 2]));
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  clock += 200;
  // Epoch 0's fetch goes out, then epoch 1 replaces the follower core (same leader) and its own
  // fetch goes out while the first is still unanswered.
  const stale = follower.follower!.pollFetch(clock, 30_000)!;
  await managersOf(leader).applyImage(image(11, 1, [1, 2]));
  await managersOf(follower).applyImage(image(11, 1, [1, 2]));
  const out = follower.follower!.pollFetch(clock, 30_000)!;
  expect(out.request.currentLeaderEpoch).toBe(1);
  // The first fetch's late answer: a storage error on the leader (not a leadership error).
  follower.applyFetchResponse(stale.correlationId, stale.request.fetchOffset, { partition: 0, errorCode: ErrorCode.KAFKA_STORAGE_ERROR, highWatermark: -1, logStartOffset: 0, leaderEpoch: 0, divergingEpoch: null, records: Buffer.alloc(0) });
  // The same for a lost connection of the first fetch.
  follower.follower!.onFetchLost(stale.correlationId);
  expect(follower.follower!.pollFetch(clock, 30_000)).toBeNull(); // still one fetch in flight: ours
  const q = out.request;
  follower.applyFetchResponse(out.correlationId, q.fetchOffset, leader.answerFollowerFetch({ replicaId: 2, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset, logStartOffset: q.logStartOffset }, 1 << 20, clock));
  expect(follower.log.logEndOffset).toBe(3);
});

/** Whether `p` has settled (after letting pending callbacks run). */
async function settled<T>(p: Promise<T>): Promise<T | 'pending'> {
  await new Promise((resolve) => setImmediate(resolve));
  return Promise.race([p, Promise.resolve('pending' as const)]);
}

describe('DeleteRecords waits for every live replica\'s log start (Kafka\'s DelayedDeleteRecords)', () => {
  /** Leader 1 and follower 2 in sync over 10 acknowledged records. */
  async function inSync(): Promise<{ leader: Partition; follower: Partition }> {
    const leader = await brokerWith(1, image(10, 0, [1, 2]));
    const follower = await brokerWith(2, image(10, 0, [1, 2]));
    const acked = leader.produce(batch(0, 10), -1, 5000);
    pump(leader, follower);
    pump(leader, follower);
    expect((await acked).errorCode).toBe(0);
    return { leader, follower };
  }

  test('answered only once the follower has fetched, learned the new log start and reported it', async () => {
    const { leader, follower } = await inSync();
    const del = leader.deleteRecords(6, 30_000);
    // The leader's own log start moved at once, but the follower (not fetching) still holds 0..5:
    // elected now, it would serve the deleted records again.
    expect(leader.log.logStartOffset).toBe(6);
    expect(await settled(del)).toBe('pending');
    pump(leader, follower); // the follower learns the leader's log start and moves its own
    expect(follower.log.logStartOffset).toBe(6);
    expect(await settled(del)).toBe('pending');
    pump(leader, follower); // its next fetch reports it
    expect(await settled(del)).toEqual({ error: null, message: '', lowWatermark: 6 });
  });

  test("a compacted topic refuses it with POLICY_VIOLATION and keeps its log start (Kafka's delete-policy rule)", async () => {
    const { leader } = await inSync();
    const compact: MetadataRecord = { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 't', name: 'cleanup.policy', value: 'compact' } };
    await managersOf(leader).applyImage(MetadataImage.fromRecords(11, [...image(11, 0, [1, 2]).toRecords(), compact]));
    expect(await leader.deleteRecords(6, 30_000)).toMatchObject({ error: 'POLICY_VIOLATION', lowWatermark: 0 });
    expect(leader.log.logStartOffset).toBe(0);
    const both: MetadataRecord = { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 't', name: 'cleanup.policy', value: 'compact,delete' } };
    await managersOf(leader).applyImage(MetadataImage.fromRecords(12, [...image(12, 0, [1, 2]).toRecords(), both]));
    void leader.deleteRecords(6, 30_000);
    expect(leader.log.logStartOffset).toBe(6);
  });

  test('a follower that never fetches makes it time out with REQUEST_TIMED_OUT and the low watermark as of the request', async () => {
    const { leader } = await inSync();
    const del = leader.deleteRecords(6, 1000);
    clock += 999;
    leader.tick();
    expect(await settled(del)).toBe('pending');
    clock += 1;
    leader.tick();
    expect(await settled(del)).toMatchObject({ error: 'REQUEST_TIMED_OUT', lowWatermark: 0 });
    // The log start stays moved (as in Kafka); a retry is answered once the follower reports it.
    expect(leader.log.logStartOffset).toBe(6);
  });

  test('a new leader epoch with the same leader (a reassignment step) carries the waiting acks=all produce and DeleteRecords over, deadlines kept', async () => {
    const { leader, follower } = await inSync();
    const produced = leader.produce(batch(10, 5), -1, 30_000);
    const del = leader.deleteRecords(4, 30_000);
    const expiring = leader.produce(batch(15, 1), -1, 1000);
    expect([await settled(produced), await settled(del), await settled(expiring)]).toEqual(['pending', 'pending', 'pending']);
    await managersOf(leader).applyImage(image(11, 1, [1, 2]));
    await managersOf(follower).applyImage(image(11, 1, [1, 2]));
    // Before, all three failed NOT_LEADER_OR_FOLLOWER here, the broker leading on.
    expect([await settled(produced), await settled(del), await settled(expiring)]).toEqual(['pending', 'pending', 'pending']);
    clock += 1000; // the short one's deadline, counted from its request
    leader.tick();
    expect((await settled(expiring)) as { errorCode: number }).toMatchObject({ errorCode: ErrorCode.REQUEST_TIMED_OUT });
    pump(leader, follower);
    pump(leader, follower);
    expect((await settled(produced)) as { errorCode: number; baseOffset: number }).toMatchObject({ errorCode: 0, baseOffset: 10 });
    expect(await settled(del)).toEqual({ error: null, message: '', lowWatermark: 4 });
  });

  test('a fenced follower is not waited for; leadership loss and deletion fail the wait', async () => {
    const { leader, follower } = await inSync();
    const fencedWait = leader.deleteRecords(3, 30_000);
    expect(await settled(fencedWait)).toBe('pending');
    await managersOf(leader).applyImage(image(11, 0, [1, 2], 1, 'page-cache', [2]));
    expect(await settled(fencedWait)).toEqual({ error: null, message: '', lowWatermark: 3 });

    await managersOf(leader).applyImage(image(12, 0, [1, 2]));
    const lost = leader.deleteRecords(5, 30_000);
    expect(await settled(lost)).toBe('pending');
    await managersOf(leader).applyImage(image(13, 1, [1, 2], 2));
    expect(await settled(lost)).toMatchObject({ error: 'NOT_LEADER_OR_FOLLOWER', lowWatermark: -1 });

    await managersOf(follower).applyImage(image(14, 2, [1, 2], 2));
    await managersOf(leader).applyImage(image(14, 2, [1, 2], 2));
    const gone = follower.deleteRecords(5, 30_000);
    expect(await settled(gone)).toBe('pending');
    await managersOf(follower).applyImage(imageWithoutTopic(15));
    expect(await settled(gone)).toMatchObject({ error: 'UNKNOWN_TOPIC_OR_PARTITION', lowWatermark: -1 });
  });
});
