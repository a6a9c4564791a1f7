/**
 * The leader's produce path and the follower's error handling, on real logs with two
 * ReplicaManagers driven by hand (as partition-replication.test.ts): idempotent retries answered
 * only as durably as the original, one idempotent batch per partition per request, a follower
 * backing off after a storage error from the leader, and a failed fdatasync reported to the host.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigResourceType, encodeRecordBatch, errorByCode, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { ReplicaManager } from '../../src/server/replica-manager';
import type { Partition, PartitionHost } from '../../src/server/partition';

const dirs: string[] = [];
const managers: ReplicaManager[] = [];
const failures: [string, string][] = [];
afterEach(async () => {
  jest.restoreAllMocks();
  for (const m of managers.splice(0)) await m.close().catch(() => undefined);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  failures.length = 0;
});

const topicId = 'fedcba9876543210fedcba9876543210';
const quiet = { info: () => undefined, warn: () => undefined };
let clock = 0;

function image(offset: number, leaderEpoch: number, isr: number[], leader = 1, flushPolicy = 'page-cache'): MetadataImage {
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  return MetadataImage.fromRecords(offset, [
    { cluster: { clusterId: 'c' } },
    broker(1),
    broker(2),
    { topic: { name: 't', topicId: topicIdToBytes(topicId) } },
    { partition: { topicId: topicIdToBytes(topicId), partition: 0, replicas: [1, 2], isr, leader, leaderEpoch, partitionEpoch: offset, addingReplicas: [], removingReplicas: [] } },
    { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 't', name: 'flush.policy', value: flushPolicy } },
  ]);
}

async function brokerWith(id: number, img: MetadataImage): Promise<Partition> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strand-review-${id}-`));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: id, nowMs: () => clock, sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100, onLogFailure: (tp, e) => failures.push([tp, e.errorName]) };
  const rm = new ReplicaManager(dir, host, quiet);
  managers.push(rm);
  await rm.applyImage(img);
  return rm.partitionByName('t', 0)!;
}

const idempotent = (seq: number): Buffer => encodeRecordBatch({ baseTimestamp: Date.now(), producerId: 7, producerEpoch: 0, baseSequence: seq, records: [{ value: Buffer.from(`v${seq}`) }] });
const plain = (n: number): Buffer => encodeRecordBatch({ baseTimestamp: Date.now(), records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`v${i}`) })) });

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
  expect((await leader.produce(plain(3), 1, 5000)).errorCode).toBe(0);
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
    const a = leader.answerFollowerFetch({ replicaId: 2, currentLeaderEpoch: q.currentLeaderEpoch, fetchOffset: q.fetchOffset, lastFetchedEpoch: q.lastFetchedEpoch, countableEndOffset: q.countableEndOffset }, 1 << 20, clock);
    answers.push(errorByCode(a.errorCode).name);
    follower.applyFetchResponse(out.correlationId, q.fetchOffset, a);
  }
  expect(answers[0]).toBe('KAFKA_STORAGE_ERROR');
  expect(immediate).toBe(1);
});

test('an idempotent batch behind a plain one in one request is refused, not appended unchecked', async () => {
  const leader = await brokerWith(1, image(10, 0, [1]));
  expect((await leader.produce(idempotent(0), 1, 5000)).errorCode).toBe(0);
  const retryBehindPlain = Buffer.concat([plain(1), idempotent(0)]);
  const r = await leader.produce(retryBehindPlain, 1, 5000);
  expect(errorByCode(r.errorCode).name).toBe('INVALID_RECORD');
  expect(leader.log.logEndOffset).toBe(1);
});

test('a partition log whose fdatasync failed is reported to the host (the broker halts)', async () => {
  const leader = await brokerWith(1, image(10, 0, [1], 1, 'page-cache'));
  expect((await leader.produce(plain(1), 1, 5000)).errorCode).toBe(0);
  // page-cache: nothing synced yet; the segment's descriptor is closed so the next fdatasync fails.
  const segment = (leader.log as unknown as { activeSegment: { fd: number } }).activeSegment;
  fs.closeSync(segment.fd);
  await expect(leader.log.flush()).rejects.toMatchObject({ errorName: 'KAFKA_STORAGE_ERROR' });
  expect(failures).toEqual([['t-0', 'KAFKA_STORAGE_ERROR']]);
  segment.fd = fs.openSync(path.join(leader.log.dir, '00000000000000000000.log'), 'r');
});

