/**
 * The broker's error paths against a real single-node cluster (controller + broker process):
 * unknown topics and partitions, corrupt / wrong-magic / oversize / truncated / empty batches,
 * out-of-range and fenced fetches, idempotent duplicates and sequence gaps, DeleteRecords past the
 * high watermark (also through `strand topics delete-records`, which answers per partition), bytes
 * that are not even protobuf, and the same errors over ProduceStream
 * (answers tagged with their correlation ids); hostile fields (a batch claiming more offsets than
 * records, an undefined acks, writes to the internal __consumer_offsets, a DeleteRecords offset
 * below -1) and a fetch naming no partitions. Each gets its Kafka error code, and the log holds
 * exactly the good records afterwards.
 */
import * as grpc from '@grpc/grpc-js';
import {
  Acks,
  ErrorCode,
  crc32c,
  encodeRecordBatch,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteRecordsRequest,
  type DeleteRecordsResponse,
  type FetchRequest,
  type FetchResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponse,
  type ProduceRequest,
  type ProduceResponse,
} from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(90_000);

let cluster: ProcessCluster;
let brokers: TestBrokers;
let address: string;

beforeAll(async () => {
  cluster = await ProcessCluster.create({ controllers: 1, combined: true, overrides: ['broker.heartbeat.interval.ms=300'] });
  cluster.startAll();
  brokers = new TestBrokers(cluster.brokerAddresses());
  address = cluster.brokerAddresses()[0] as string;
  await until('the broker', async () => ((await brokers.metadata([])).brokers.length === 1 ? true : undefined), 60_000);
  const res = await brokers.call<CreateTopicsRequest, CreateTopicsResponse>(address, (c, r, m, o, cb) => c.createTopics(r, m, o, cb), {
    topics: [{ name: 't', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'max.message.bytes', value: '2000' }] }],
    validateOnly: false,
  });
  expect(res.topics[0]?.errorCode).toBe(0);
  await until('a leader serving t-0', async () => ((await brokers.servingLeaderOf('t', 0)) ? true : undefined), 30_000);
});

afterAll(async () => {
  brokers.close();
  await cluster.close();
});

function produce(topic: string, partition: number, records: Buffer, acks = Acks.ACKS_ALL): Promise<ProduceResponse> {
  return brokers.call<ProduceRequest, ProduceResponse>(address, (c, r, m, o, cb) => c.produce(r, m, o, cb), { acks, timeoutMs: 5000, topics: [{ name: topic, partitions: [{ partition, records }] }] });
}

async function produceCode(topic: string, partition: number, records: Buffer): Promise<number> {
  return (await produce(topic, partition, records)).topics[0]!.partitions[0]!.errorCode;
}

function fetch(fetchOffset: number, currentLeaderEpoch = -1): Promise<FetchResponse> {
  return brokers.call<FetchRequest, FetchResponse>(address, (c, r, m, o, cb) => c.fetch(r, m, o, cb), {
    maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, replicaId: -1,
    topics: [{ name: 't', partitions: [{ partition: 0, fetchOffset, partitionMaxBytes: 1 << 20, currentLeaderEpoch, lastFetchedEpoch: -1 }] }],
  });
}

const good = (v: string): Buffer => encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: 1_700_000_000_000 });

test('bad batches get typed errors and never reach the log', async () => {
  expect(await produceCode('t', 0, good('a'))).toBe(0);
  expect(await produceCode('nope', 0, good('x'))).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  expect(await produceCode('t', 7, good('x'))).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const badCrc = good('x');
  badCrc[badCrc.length - 1]! ^= 1;
  expect(await produceCode('t', 0, badCrc)).toBe(ErrorCode.CORRUPT_MESSAGE);
  const magic = good('x');
  magic[16] = 1;
  magic.writeUInt32BE(crc32c(magic.subarray(21)), 17);
  expect(await produceCode('t', 0, magic)).toBe(ErrorCode.UNSUPPORTED_VERSION);
  expect(await produceCode('t', 0, good('x'.repeat(3000)))).toBe(ErrorCode.MESSAGE_TOO_LARGE);
  expect(await produceCode('t', 0, good('x').subarray(0, 40))).toBe(ErrorCode.CORRUPT_MESSAGE);
  expect(await produceCode('t', 0, Buffer.alloc(0))).toBe(ErrorCode.INVALID_RECORD);
  expect(await produceCode('t', 0, Buffer.concat([good('y'), badCrc]))).toBe(ErrorCode.CORRUPT_MESSAGE);
  expect(await produceCode('t', 0, good('b'))).toBe(0);
  const all = await brokers.readAll('t', 0);
  expect(all.map((r) => r.value)).toEqual(['a', 'b']);
});

test('idempotent producers: a retry gets its original offset, a gap is refused', async () => {
  const batch = (seq: number): Buffer => encodeRecordBatch({ records: [{ value: Buffer.from(`p${seq}`) }], baseTimestamp: 1, producerId: 4242, producerEpoch: 0, baseSequence: seq });
  const first = await produce('t', 0, batch(0));
  const again = await produce('t', 0, batch(0));
  expect(again.topics[0]!.partitions[0]!.baseOffset).toBe(first.topics[0]!.partitions[0]!.baseOffset);
  expect((await produce('t', 0, batch(5))).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
  expect((await produce('t', 0, batch(1))).topics[0]!.partitions[0]!.errorCode).toBe(0);
  const values = (await brokers.readAll('t', 0)).map((r) => r.value);
  expect(values.filter((v) => v === 'p0')).toHaveLength(1);
});

test('fetch, list offsets and epochs: out of range, fenced, unknown epoch', async () => {
  const hw = (await fetch(0)).topics[0]!.partitions[0]!.highWatermark;
  expect(hw).toBeGreaterThan(0);
  expect((await fetch(hw + 5)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
  expect((await fetch(0, 99)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_LEADER_EPOCH);
  const offsets = await brokers.call<ListOffsetsRequest, ListOffsetsResponse>(address, (c, r, m, o, cb) => c.listOffsets(r, m, o, cb), {
    isolationLevel: 0,
    topics: [{ name: 't', partitions: [{ partition: 0, timestamp: -2, currentLeaderEpoch: -1 }, { partition: 0, timestamp: -1, currentLeaderEpoch: -1 }, { partition: 0, timestamp: 1_700_000_000_000, currentLeaderEpoch: -1 }] }],
  });
  expect(offsets.topics[0]!.partitions.map((p) => [p.errorCode, p.offset])).toEqual([[0, 0], [0, hw], [0, 0]]);
  const epochs = await brokers.call<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(address, (c, r, m, o, cb) => c.offsetForLeaderEpoch(r, m, o, cb), {
    topics: [{ name: 't', partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }],
  });
  expect(epochs.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, leaderEpoch: 0, endOffset: hw });
  const del = await brokers.call<DeleteRecordsRequest, DeleteRecordsResponse>(address, (c, r, m, o, cb) => c.deleteRecords(r, m, o, cb), { topics: [{ name: 't', partitions: [{ partition: 0, offset: hw + 1 }] }], timeoutMs: 1000 });
  expect(del.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
});

test('strand topics delete-records: one partition deleted, the other past its high watermark refused, exit 1', async () => {
  const created = await brokers.call<CreateTopicsRequest, CreateTopicsResponse>(address, (c, r, m, o, cb) => c.createTopics(r, m, o, cb), {
    topics: [{ name: 'dr', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    validateOnly: false,
  });
  expect(created.topics[0]?.errorCode).toBe(0);
  await until('leaders serving dr', async () => ((await brokers.servingLeaderOf('dr', 0)) && (await brokers.servingLeaderOf('dr', 1)) ? true : undefined), 30_000);
  for (const v of ['a', 'b', 'c']) expect(await produceCode('dr', 0, good(v))).toBe(0);
  expect(await produceCode('dr', 1, good('x'))).toBe(0);
  const r = await cli(['topics', 'delete-records', 'dr', '--offset', '0=2', '--offset', '1=5'], address);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('partition: dr-0\tlow_watermark: 2\n');
  expect(r.stderr).toMatch(/dr-1: OFFSET_OUT_OF_RANGE/);
  // The records before offset 2 of dr-0 are gone (its log start moved); dr-1 is untouched.
  const earliest = await brokers.call<ListOffsetsRequest, ListOffsetsResponse>(address, (c, r, m, o, cb) => c.listOffsets(r, m, o, cb), {
    isolationLevel: 0,
    topics: [{ name: 'dr', partitions: [{ partition: 0, timestamp: -2, currentLeaderEpoch: -1 }, { partition: 1, timestamp: -2, currentLeaderEpoch: -1 }] }],
  });
  expect(earliest.topics[0]!.partitions.map((p) => [p.partition, p.errorCode, p.offset])).toEqual([[0, 0, 2], [1, 0, 0]]);
  const gone = await brokers.call<FetchRequest, FetchResponse>(address, (c, r, m, o, cb) => c.fetch(r, m, o, cb), {
    maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, isolationLevel: 0, replicaId: -1,
    topics: [{ name: 'dr', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
  });
  expect(gone.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
});

test('bytes that are not protobuf fail the call and the broker keeps serving', async () => {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest('/strand.broker.Broker/Produce', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]), (e) => resolve(e));
  });
  client.close();
  expect(err).not.toBeNull();
  expect(await produceCode('t', 0, good('after'))).toBe(0);
});

test('ProduceStream answers each request with its correlation id, errors per partition, and ends after the last answer', async () => {
  const before = (await brokers.readAll('t', 0)).length;
  const call = brokers.client(address).produceStream();
  const answers = new Map<number, ProduceResponse>();
  const ended = new Promise<void>((resolve, reject) => {
    call.on('data', (res: ProduceResponse) => answers.set(res.correlationId ?? -1, res));
    call.on('end', () => resolve());
    call.on('error', reject);
  });
  const badCrc = good('bad');
  badCrc[badCrc.length - 1]! ^= 1;
  const req = (correlationId: number, topic: string, records: Buffer, acks = Acks.ACKS_ALL): ProduceRequest => ({ correlationId, acks, timeoutMs: 5000, topics: [{ name: topic, partitions: [{ partition: 0, records }] }] });
  call.write(req(7, 't', good('s1')));
  call.write(req(8, 'nope', good('x')));
  call.write(req(9, 't', badCrc));
  call.write(req(10, 't', good('s2'), Acks.ACKS_LEADER));
  call.end();
  await ended;
  expect([...answers.keys()].sort((a, b) => a - b)).toEqual([7, 8, 9, 10]);
  expect(answers.get(7)!.topics[0]!.partitions[0]!.errorCode).toBe(0);
  expect(answers.get(8)!.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  expect(answers.get(9)!.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.CORRUPT_MESSAGE);
  expect(answers.get(10)!.topics[0]!.partitions[0]!.baseOffset).toBe(answers.get(7)!.topics[0]!.partitions[0]!.baseOffset + 1);
  const values = (await brokers.readAll('t', 0)).map((r) => r.value);
  expect(values.slice(before)).toEqual(['s1', 's2']);
});

test('a fetch naming a partition twice is answered at once, the duplicate refused', async () => {
  const t0 = performance.now();
  const part = { partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 };
  const res = await brokers.call<FetchRequest, FetchResponse>(address, (c, r, m, o, cb) => c.fetch(r, m, o, cb), { maxWaitMs: 20_000, minBytes: 1 << 30, maxBytes: 1 << 20, isolationLevel: 0, replicaId: -1, topics: [{ name: 't', partitions: [part, part] }] });
  expect(res.topics[0]!.partitions.map((p) => p.errorCode)).toEqual([0, ErrorCode.INVALID_REQUEST]);
  expect(performance.now() - t0).toBeLessThan(15_000); // not held for maxWaitMs
});

test('a fetch naming no partitions waits out maxWaitMs without holding up other requests', async () => {
  const order: string[] = [];
  const t0 = performance.now();
  // 3 s: far longer than the Metadata round trip below, even on a loaded machine.
  const empty = brokers
    .call<FetchRequest, FetchResponse>(address, (c, r, m, o, cb) => c.fetch(r, m, o, cb), { maxWaitMs: 3000, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, replicaId: -1, topics: [] })
    .then((res) => {
      order.push('empty fetch');
      return res;
    });
  // Served while the empty fetch waits (before the fix its loop spun and starved the event loop).
  await brokers.metadata(['t']);
  order.push('metadata');
  expect((await empty).topics).toEqual([]);
  expect(order).toEqual(['metadata', 'empty fetch']);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(2900); // held for maxWaitMs, not answered at once
});

test('hostile produce and DeleteRecords fields get Kafka errors and change nothing stored', async () => {
  const before = (await brokers.readAll('t', 0)).length;
  // A batch claiming far more offsets than records would make the leader skip 2^31 offsets per
  // batch (and roll a segment for each).
  const lying = encodeRecordBatch({ records: [{ value: Buffer.from('x') }], baseTimestamp: 1, lastOffsetDelta: 0x7fffffff });
  expect(await produceCode('t', 0, lying)).toBe(ErrorCode.INVALID_RECORD);
  // An acks value the protocol does not define.
  expect((await produce('t', 0, good('acks'), 7 as Acks)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUIRED_ACKS);
  // Clients may not append to the group coordinator's internal topic, nor delete from it.
  expect(await produceCode('__consumer_offsets', 0, good('forged'))).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
  const delInternal = await brokers.call<DeleteRecordsRequest, DeleteRecordsResponse>(address, (c, r, m, o, cb) => c.deleteRecords(r, m, o, cb), { topics: [{ name: '__consumer_offsets', partitions: [{ partition: 0, offset: -1 }] }], timeoutMs: 1000 });
  expect(delInternal.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
  // Only -1 means "up to the high watermark".
  const del = await brokers.call<DeleteRecordsRequest, DeleteRecordsResponse>(address, (c, r, m, o, cb) => c.deleteRecords(r, m, o, cb), { topics: [{ name: 't', partitions: [{ partition: 0, offset: -2 }] }], timeoutMs: 1000 });
  expect(del.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
  expect((await brokers.readAll('t', 0)).length).toBe(before);
});
