/**
 * The broker's client-facing gRPC service (addBrokerService) in one process: a real gRPC server
 * over a ReplicaManager that leads every partition of topic `t` (fresh log directories), called
 * through the generated BrokerClient. Checks the request edges Kafka defines: a fetch with
 * minBytes <= 0 answers at once; a produced batch naming a compression codec Kafka does not
 * define is refused for its partition alone and nothing of it is stored; Strand has no
 * transactions, so a transactional batch is refused as Kafka refuses one it cannot accept
 * (TRANSACTIONAL_ID_AUTHORIZATION_FAILED for the whole request without a transactional id,
 * INVALID_TXN_STATE for its partition with one) and a control batch is INVALID_RECORD. A
 * ListOffsets, Fetch or ReplicaFetch partition whose log cannot be read (a read throws a file
 * system error, the log failed) answers KAFKA_STORAGE_ERROR while the others are answered. Metadata for an illegal topic name answers
 * INVALID_TOPIC_EXCEPTION, and auto-creation never asks the controller for it. ProduceStream and
 * ReplicaFetch, driven through a scripted stream whose writes are handed to HTTP/2 only when the
 * test says so (a slow reader): ProduceStream stops reading requests while its answers back up,
 * and ReplicaFetch holds at most one answer not yet handed over. Past fetch.max.held.requests
 * held fetches, a further fetch is answered at once with what is there. No answer can outgrow
 * the gRPC message limit: fetch.max.bytes and replica.fetch.response.max.bytes are refused above
 * it, and a replica fetch's own maxBytes is capped by fetch.max.bytes (as Kafka caps followers');
 * a Fetch or ReplicaFetch naming more than FETCH_MAX_PARTITIONS is refused with INVALID_REQUEST.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Acks, BrokerClient, ERROR_CODE_METADATA_KEY, ErrorCode, crc32c, encodeRecordBatch, type FetchRequest, type FetchResponse, type ListOffsetsRequest, type ListOffsetsResponse, type MetadataRecord, type MetadataRequest, type MetadataResponse, type ProduceRequest, type ProduceResponse, type RawConfig, type ReplicaFetchRequest, type ReplicaFetchResponse } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { BROKER_CONFIG, BROKER_MESSAGE_MAX_BYTES, FETCH_MAX_PARTITIONS, FETCH_RESPONSE_MAX_BYTES } from '../../src/server/broker-config';
import { MAX_UNSENT_PRODUCE_ANSWERS, addBrokerService, type BrokerServiceContext } from '../../src/server/broker-service';
import type { ControllerChannel } from '../../src/server/controller-channel';
import { ReplicaManager } from '../../src/server/replica-manager';
import { serviceContext } from '../support/service-context';
import type { Partition, PartitionHost } from '../../src/server/partition';

const quiet = { info: () => undefined, warn: () => undefined };
const topicId = '0123456789abcdef0123456789abcdef';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  jest.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Broker 1 the leader (and the only ISR member) of each of `partitions` partitions of topic t on `replicas`. */
function image(partitions: number, replicas = [1]): MetadataImage {
  const records: MetadataRecord[] = [
    { cluster: { clusterId: 'c' } },
    ...replicas.map((id): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } })),
    { topic: { name: 't', topicId: topicIdToBytes(topicId) } },
  ];
  for (let p = 0; p < partitions; p++) {
    records.push({ partition: { topicId: topicIdToBytes(topicId), partition: p, replicas, isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } });
  }
  return MetadataImage.fromRecords(10, records);
}

interface Served {
  client: BrokerClient;
  rm: ReplicaManager;
  part(partition: number): Partition;
}

/** A ReplicaManager in a fresh directory leading `partitions` partitions of t. */
async function replicaManager(partitions: number, replicas = [1]): Promise<ReplicaManager> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-service-'));
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet, '', { 'flush.policy': 'page-cache' });
  cleanups.push(async () => {
    await rm.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await rm.applyImage(image(partitions, replicas));
  return rm;
}

/** The broker service on a free loopback port, with broker settings `config` (and context fields `over`). */
async function serve(config: RawConfig = {}, partitions = 2, over: Partial<BrokerServiceContext> = {}, replicas = [1]): Promise<Served> {
  const rm = await replicaManager(partitions, replicas);
  const server = new grpc.Server();
  addBrokerService(server, serviceContext(rm, config, over));
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = new BrokerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(() => {
    client.close();
    server.forceShutdown();
  });
  return {
    client,
    rm,
    part: (partition) => {
      const p = rm.partitionByName('t', partition);
      if (p === undefined) throw new Error(`no partition t-${partition}`);
      return p;
    },
  };
}

/** A unary call with a deadline, so a wrongly held call fails the test instead of hanging it. */
function call<Req, Res>(method: (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall, req: Req, deadlineMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => method(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err || res === undefined ? reject(err ?? new Error('empty answer')) : resolve(res))));
}

function fetchRequest(partitions: number[], over: Partial<FetchRequest> = {}): FetchRequest {
  return {
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    replicaId: -1,
    topics: [{ name: 't', partitions: partitions.map((partition) => ({ partition, fetchOffset: 0, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 })) }],
    ...over,
  };
}

const good = (v: string): Buffer => encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: Date.now() });

/** `batch` with its attributes (bytes 21-22) replaced and its CRC-32C (bytes 17-20, over 21..end) recomputed. */
function withAttributes(batch: Buffer, attributes: number): Buffer {
  const out = Buffer.from(batch);
  out.writeInt16BE(attributes, 21);
  out.writeUInt32BE(crc32c(out.subarray(21)), 17);
  return out;
}

/** One Produce naming `records` per partition of t (acks=all); answers each partition's error code. */
async function produceCodes(s: Served, records: ReadonlyMap<number, Buffer>, over: Partial<ProduceRequest> = {}): Promise<number[]> {
  const req: ProduceRequest = { acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ name: 't', partitions: [...records].map(([partition, r]) => ({ partition, records: r })) }], ...over };
  const res = await call<ProduceRequest, ProduceResponse>(s.client.produce.bind(s.client), req);
  return res.topics[0]?.partitions.map((p) => p.errorCode) ?? [];
}

describe('Produce', () => {
  test.each([5, 6, 7])('a batch naming compression codec %d (undefined in Kafka) is INVALID_RECORD for its partition; nothing is stored', async (codec) => {
    const s = await serve();
    const bad = withAttributes(good('x'), codec);
    expect(await produceCodes(s, new Map([[0, bad], [1, good('y')]]))).toEqual([ErrorCode.INVALID_RECORD, 0]);
    expect(s.part(0).log.logEndOffset).toBe(0);
    expect(s.part(1).log.logEndOffset).toBe(1);
  });

  const transactional = (v: string): Buffer => encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: Date.now(), producerId: 7, producerEpoch: 0, baseSequence: 0, isTransactional: true });

  test('a transactional batch without a transactional id fails the whole request with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka); nothing is stored', async () => {
    const s = await serve();
    const failed = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    // Kafka answers every partition of such a request with the error, the plain batch's too.
    expect(await produceCodes(s, new Map([[0, transactional('x')], [1, good('y')]]))).toEqual([failed, failed]);
    // A transactional batch behind a plain one counts too.
    expect(await produceCodes(s, new Map([[0, Buffer.concat([good('a'), transactional('b')])]]))).toEqual([failed]);
    expect(await produceCodes(s, new Map([[0, transactional('x')]]), { transactionalId: '' })).toEqual([failed]);
    expect([s.part(0).log.logEndOffset, s.part(1).log.logEndOffset]).toEqual([0, 0]);
  });

  test('with a transactional id, a transactional batch is INVALID_TXN_STATE for its partition (no transaction can be ongoing); nothing of it is stored', async () => {
    const s = await serve();
    expect(await produceCodes(s, new Map([[0, transactional('x')], [1, good('y')]]), { transactionalId: 'tx' })).toEqual([ErrorCode.INVALID_TXN_STATE, 0]);
    expect([s.part(0).log.logEndOffset, s.part(1).log.logEndOffset]).toEqual([0, 1]);
  });

  test('a control batch from a client is INVALID_RECORD; nothing is stored', async () => {
    const s = await serve();
    const control = encodeRecordBatch({ records: [{ key: Buffer.from([0, 0, 0, 0]), value: Buffer.from([0, 0, 0, 0, 0, 0]) }], baseTimestamp: Date.now(), isControl: true });
    expect(await produceCodes(s, new Map([[0, control]]))).toEqual([ErrorCode.INVALID_RECORD]);
    expect(s.part(0).log.logEndOffset).toBe(0);
  });
});

describe('Metadata', () => {
  const illegal = ['', '.', '..', 'a b', 'bad/name', 'ü', 'x'.repeat(250)];

  test.each([false, true])('an illegal topic name answers INVALID_TOPIC_EXCEPTION and is never auto-created (allowAutoTopicCreation %s)', async (allowAutoTopicCreation) => {
    // The controller would be asked to create the topic: none may be asked for an illegal name.
    const asked: unknown[] = [];
    const controllers = { call: (_method: unknown, req: unknown) => (asked.push(req), Promise.resolve({ topics: [] })) } as unknown as ControllerChannel;
    const s = await serve({ 'auto.create.topics.enable': true }, 2, { controllers });
    const req: MetadataRequest = { topics: [...illegal, 'x'.repeat(249)], allowAutoTopicCreation };
    const res = await call<MetadataRequest, MetadataResponse>(s.client.metadata.bind(s.client), req);
    expect(res.topics.map((t) => [t.name, t.errorCode])).toEqual([
      ...illegal.map((name) => [name, ErrorCode.INVALID_TOPIC_EXCEPTION]),
      // The longest legal name: unknown, or being created.
      ['x'.repeat(249), allowAutoTopicCreation ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    expect(asked).toHaveLength(allowAutoTopicCreation ? 1 : 0);
  });
});

describe('ListOffsets', () => {
  async function listOffsets(s: Served, timestamp: number): Promise<[number, number, number][]> {
    const req: ListOffsetsRequest = { isolationLevel: 0, topics: [{ name: 't', partitions: [0, 1].map((partition) => ({ partition, timestamp, currentLeaderEpoch: -1 })) }] };
    const res = await call<ListOffsetsRequest, ListOffsetsResponse>(s.client.listOffsets.bind(s.client), req);
    return res.topics[0]?.partitions.map((p) => [p.partition, p.errorCode, p.offset]) ?? [];
  }

  test('a partition whose log read fails answers KAFKA_STORAGE_ERROR; the others are answered', async () => {
    const s = await serve();
    expect(await produceCodes(s, new Map([[0, good('a')], [1, good('b')]]))).toEqual([0, 0]);
    // The read of an offline disk: fs throws a system error (EIO), not a StrandError.
    jest.spyOn(s.part(0).log, 'offsetForTimestamp').mockImplementation(() => {
      throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
    });
    expect(await listOffsets(s, 0)).toEqual([[0, ErrorCode.KAFKA_STORAGE_ERROR, -1], [1, 0, 0]]);
  });

  test('a partition whose log has failed answers KAFKA_STORAGE_ERROR, even for the latest offset', async () => {
    const s = await serve();
    expect(await produceCodes(s, new Map([[0, good('a')], [1, good('b')]]))).toEqual([0, 0]);
    jest.spyOn(s.part(0).log, 'isOpen', 'get').mockReturnValue(false);
    expect(await listOffsets(s, -1)).toEqual([[0, ErrorCode.KAFKA_STORAGE_ERROR, -1], [1, 0, 1]]);
  });
});

/** The service's handlers, as grpc-js would be given them. */
async function handlers(config: RawConfig = {}): Promise<grpc.UntypedServiceImplementation> {
  const rm = await replicaManager(2);
  let impl: grpc.UntypedServiceImplementation | undefined;
  addBrokerService({ addService: (_def: grpc.ServiceDefinition, i: grpc.UntypedServiceImplementation) => (impl = i) } as unknown as grpc.Server, serviceContext(rm, config));
  if (impl === undefined) throw new Error('no service added');
  return impl;
}

/**
 * A server stream scripted by the test: requests arrive by `request()`; each write is held
 * (not handed to HTTP/2) until `flush()`, and write() returns false once `highWaterMark`
 * writes are held, as a Node stream's does. Tracks whether the handler paused reading.
 */
class ScriptedStream<Req, Res> extends EventEmitter {
  readonly held: { res: Res; done: () => void }[] = [];
  readonly written: Res[] = [];
  paused = false;
  ended = false;
  constructor(private readonly highWaterMark: number) {
    super();
  }
  request(req: Req): void {
    this.emit('data', req);
  }
  write(res: Res, done?: () => void): boolean {
    this.written.push(res);
    this.held.push({ res, done: done ?? (() => undefined) });
    this.emit('written');
    return this.held.length < this.highWaterMark;
  }
  /** Hands every held write to HTTP/2: their callbacks run, then 'drain' if the buffer was full. */
  flush(): void {
    const full = this.held.length >= this.highWaterMark;
    for (const w of this.held.splice(0)) w.done();
    if (full) this.emit('drain');
  }
  nextWrite(): Promise<void> {
    return new Promise((resolve) => this.once('written', () => resolve()));
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  isPaused(): boolean {
    return this.paused;
  }
  /** Writes not yet handed to HTTP/2 (a Writable's count of buffered objects). */
  get writableLength(): number {
    return this.held.length;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  destroy(): this {
    return this;
  }
  getPeer(): string {
    return 'test';
  }
}

/** Lets every pending promise continuation run (one macrotask turn; not a timed wait). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('stream back-pressure', () => {
  test('ProduceStream stops reading requests while its answers wait to be handed to HTTP/2, and reads again once they drain', async () => {
    const impl = await handlers();
    const stream = new ScriptedStream<ProduceRequest, ProduceResponse>(16);
    (impl['produceStream'] as grpc.handleBidiStreamingCall<ProduceRequest, ProduceResponse>)(stream as unknown as grpc.ServerDuplexStream<ProduceRequest, ProduceResponse>);
    // Answered at once (an unknown topic): the produce itself never waits.
    const req = (correlationId: number): ProduceRequest => ({ correlationId, acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ name: 'nope', partitions: [{ partition: 0, records: good('x') }] }] });
    const answer = async (correlationId: number): Promise<void> => {
      const next = stream.nextWrite();
      stream.request(req(correlationId));
      await next;
    };
    // Past the stream's own high-water mark (16) it goes on: a busy producer is not slowed...
    for (let id = 1; id < MAX_UNSENT_PRODUCE_ANSWERS; id++) await answer(id);
    expect(stream.paused).toBe(false);
    // ...until MAX_UNSENT_PRODUCE_ANSWERS answers are held: no more requests are taken from it.
    await answer(MAX_UNSENT_PRODUCE_ANSWERS);
    expect(stream.paused).toBe(true);
    stream.flush();
    expect(stream.paused).toBe(false);
    expect(stream.written.map((r) => r.correlationId)).toEqual(Array.from({ length: MAX_UNSENT_PRODUCE_ANSWERS }, (_, i) => i + 1));
  });

  test('ReplicaFetch answers the next fetch only once the previous answer was handed to HTTP/2', async () => {
    const impl = await handlers();
    const stream = new ScriptedStream<ReplicaFetchRequest, ReplicaFetchResponse>(16);
    (impl['replicaFetch'] as grpc.handleBidiStreamingCall<ReplicaFetchRequest, ReplicaFetchResponse>)(stream as unknown as grpc.ServerDuplexStream<ReplicaFetchRequest, ReplicaFetchResponse>);
    // Fetches of a partition this broker does not host: each is answered at once.
    const req = (correlationId: number): ReplicaFetchRequest => ({
      correlationId, replicaId: 2, brokerEpoch: 1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20,
      topics: [{ topicId: topicIdToBytes('ffffffffffffffffffffffffffffffff'), partitions: [{ partition: 0, currentLeaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: -1, countableEndOffset: 0, partitionMaxBytes: 1 << 20, logStartOffset: 0 }] }],
    });
    const first = stream.nextWrite();
    stream.request(req(1));
    stream.request(req(2));
    await first;
    await settle();
    // The follower has not taken the first answer: the second waits, not buffered behind it.
    expect(stream.written.map((r) => r.correlationId)).toEqual([1]);
    const second = stream.nextWrite();
    stream.flush();
    await second;
    expect(stream.written.map((r) => r.correlationId)).toEqual([1, 2]);
  });
});

describe('ReplicaFetch refusals', () => {
  test('a follower with more fetches queued than the stream takes gets a status naming THROTTLING_QUOTA_EXCEEDED, not a silently dropped stream', async () => {
    const s = await serve({ 'replica.fetch.wait.max.ms': '5000' }, 1, {}, [1, 2]);
    const stream = s.client.replicaFetch(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    cleanups.push(() => void stream.cancel());
    stream.on('data', () => undefined);
    const ended = new Promise<grpc.ServiceError>((resolve) => stream.once('error', resolve));
    // Nothing to fetch, so each fetch is held up to replica.fetch.wait.max.ms and the rest queue.
    for (let correlationId = 1; correlationId <= 20; correlationId++) {
      stream.write({
        correlationId, replicaId: 2, brokerEpoch: 1, maxWaitMs: 5000, minBytes: 1, maxBytes: 1 << 20,
        topics: [{ topicId: topicIdToBytes(topicId), partitions: [{ partition: 0, currentLeaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: -1, countableEndOffset: 0, partitionMaxBytes: 1 << 20, logStartOffset: 0 }] }],
      } satisfies ReplicaFetchRequest);
    }
    const err = await ended;
    expect(err.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual([String(ErrorCode.THROTTLING_QUOTA_EXCEEDED)]);
  });
});

describe('Fetch', () => {
  test('beyond fetch.max.held.requests held fetches, a fetch is answered at once with what is there', async () => {
    const s = await serve({ 'fetch.max.held.requests': 1 });
    const fetch = (partition: number): Promise<FetchResponse> => call<FetchRequest, FetchResponse>(s.client.fetch.bind(s.client), fetchRequest([partition], { maxWaitMs: 600_000 }));
    // The first fetch parks on partition 0 (nothing there yet): the one hold allowed.
    const parked = new Promise<void>((resolve) => {
      const real = s.part(0).onNextChange.bind(s.part(0));
      jest.spyOn(s.part(0), 'onNextChange').mockImplementation((w) => {
        resolve();
        return real(w);
      });
    });
    const held = fetch(0);
    await parked;
    // The second finds the bound reached: answered now, empty, without parking.
    const parkedOn1 = jest.spyOn(s.part(1), 'onNextChange');
    const res = await fetch(1);
    expect(res.topics[0]?.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 0 });
    expect(res.topics[0]?.partitions[0]?.records.length).toBe(0);
    expect(parkedOn1).not.toHaveBeenCalled();
    // The held one still answers when data comes.
    expect(await produceCodes(s, new Map([[0, good('a')]]))).toEqual([0]);
    expect((await held).topics[0]?.partitions[0]?.records.length).toBeGreaterThan(0);
  });

  test.each([0, -1])('minBytes %d answers at once though nothing is there and maxWaitMs is long (Kafka)', async (minBytes) => {
    const s = await serve();
    // A fetch that parks waits on its partitions' next change: this one must never park.
    const parked = jest.spyOn(s.part(0), 'onNextChange');
    const res = await call<FetchRequest, FetchResponse>(s.client.fetch.bind(s.client), fetchRequest([0], { minBytes, maxWaitMs: 600_000 }));
    expect(res.topics[0]?.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 0 });
    expect(res.topics[0]?.partitions[0]?.records.length).toBe(0);
    expect(parked).not.toHaveBeenCalled();
  });
});

describe('storage errors', () => {
  /** The read of an offline disk: fs throws a system error (EIO), not a StrandError. */
  const eio = (): never => {
    throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
  };

  async function fetchCodes(s: Served): Promise<[number, number, number][]> {
    const res = await call<FetchRequest, FetchResponse>(s.client.fetch.bind(s.client), fetchRequest([0, 1]));
    return res.topics[0]?.partitions.map((p) => [p.partition, p.errorCode, p.records.length]) ?? [];
  }

  /** One replica fetch by broker 2 of partitions 0 and 1 from offset 0; answers [partition, error, record bytes]. */
  async function replicaFetchCodes(s: Served): Promise<[number, number, number][]> {
    // A deadline, so a stream the broker ends without a status fails the test instead of hanging it.
    const stream = s.client.replicaFetch(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    cleanups.push(() => void stream.cancel());
    const answer = new Promise<ReplicaFetchResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    stream.write({
      correlationId: 1, replicaId: 2, brokerEpoch: 1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20,
      topics: [{ topicId: topicIdToBytes(topicId), partitions: [0, 1].map((partition) => ({ partition, currentLeaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: -1, countableEndOffset: 0, partitionMaxBytes: 1 << 20, logStartOffset: 0 })) }],
    } satisfies ReplicaFetchRequest);
    return (await answer).topics[0]?.partitions.map((p) => [p.partition, p.errorCode, p.records.length]) ?? [];
  }

  test('a consumer fetch partition whose log read fails answers KAFKA_STORAGE_ERROR; the others are answered', async () => {
    const s = await serve();
    expect(await produceCodes(s, new Map([[0, good('a')], [1, good('b')]]))).toEqual([0, 0]);
    jest.spyOn(s.part(0).log, 'read').mockImplementation(eio);
    expect(await fetchCodes(s)).toEqual([[0, ErrorCode.KAFKA_STORAGE_ERROR, 0], [1, 0, good('b').length]]);
  });

  test('a consumer fetch partition whose log has failed answers KAFKA_STORAGE_ERROR without reading it', async () => {
    const s = await serve();
    expect(await produceCodes(s, new Map([[0, good('a')], [1, good('b')]]))).toEqual([0, 0]);
    jest.spyOn(s.part(0).log, 'isOpen', 'get').mockReturnValue(false);
    const read = jest.spyOn(s.part(0).log, 'read');
    expect(await fetchCodes(s)).toEqual([[0, ErrorCode.KAFKA_STORAGE_ERROR, 0], [1, 0, good('b').length]]);
    expect(read).not.toHaveBeenCalled();
  });

  test('a replica fetch partition whose log read fails answers KAFKA_STORAGE_ERROR; the others are answered and the stream stays', async () => {
    const s = await serve({}, 2, {}, [1, 2]);
    expect(await produceCodes(s, new Map([[0, good('a')], [1, good('b')]]), { acks: Acks.ACKS_LEADER })).toEqual([0, 0]);
    jest.spyOn(s.part(0).log, 'read').mockImplementation(eio);
    expect(await replicaFetchCodes(s)).toEqual([[0, ErrorCode.KAFKA_STORAGE_ERROR, 0], [1, 0, good('b').length]]);
  });

  test('a replica fetch partition whose log has failed answers KAFKA_STORAGE_ERROR without reading it', async () => {
    const s = await serve({}, 2, {}, [1, 2]);
    expect(await produceCodes(s, new Map([[0, good('a')], [1, good('b')]]), { acks: Acks.ACKS_LEADER })).toEqual([0, 0]);
    jest.spyOn(s.part(0).log, 'isOpen', 'get').mockReturnValue(false);
    const read = jest.spyOn(s.part(0).log, 'read');
    expect(await replicaFetchCodes(s)).toEqual([[0, ErrorCode.KAFKA_STORAGE_ERROR, 0], [1, 0, good('b').length]]);
    expect(read).not.toHaveBeenCalled();
  });
});

describe('answer size', () => {
  test.each(['fetch.max.bytes', 'replica.fetch.response.max.bytes'])('%s above what a gRPC message may carry is refused at start-up', (key) => {
    expect(FETCH_RESPONSE_MAX_BYTES).toBeLessThan(BROKER_MESSAGE_MAX_BYTES);
    expect(BROKER_CONFIG.parse({ [key]: FETCH_RESPONSE_MAX_BYTES })[key as 'fetch.max.bytes']).toBe(FETCH_RESPONSE_MAX_BYTES);
    expect(() => BROKER_CONFIG.parse({ [key]: FETCH_RESPONSE_MAX_BYTES + 1 })).toThrow(/fetch/);
    expect(() => BROKER_CONFIG.parse({ [key]: 1024 * 1024 * 1024 })).toThrow(/fetch/);
  });

  // The per-partition fields of an answer naming that many partitions could alone outgrow the
  // message limit. The partitions are named with the fewest request bytes (unknown partitions of
  // t, every field but the partition number 0), so the request stays small.
  test('a consumer fetch naming more than FETCH_MAX_PARTITIONS partitions is refused whole with INVALID_REQUEST', async () => {
    const s = await serve();
    const partitions = Array.from({ length: FETCH_MAX_PARTITIONS + 1 }, (_, partition) => ({ partition, fetchOffset: 0, partitionMaxBytes: 0, currentLeaderEpoch: 0, lastFetchedEpoch: 0 }));
    const res = await call<FetchRequest, FetchResponse>(s.client.fetch.bind(s.client), fetchRequest([], { topics: [{ name: 't', partitions }] }));
    expect(res.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect(res.topics).toEqual([]);
  });

  test('a replica fetch naming more than FETCH_MAX_PARTITIONS partitions is refused whole with INVALID_REQUEST', async () => {
    const s = await serve({}, 2, {}, [1, 2]);
    const stream = s.client.replicaFetch(new grpc.Metadata(), { deadline: Date.now() + 30_000 });
    cleanups.push(() => void stream.cancel());
    const answer = new Promise<ReplicaFetchResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    const partitions = Array.from({ length: FETCH_MAX_PARTITIONS + 1 }, (_, partition) => ({ partition, currentLeaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: 0, countableEndOffset: 0, partitionMaxBytes: 0, logStartOffset: 0 }));
    stream.write({ correlationId: 7, replicaId: 2, brokerEpoch: 1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [{ topicId: topicIdToBytes(topicId), partitions }] } satisfies ReplicaFetchRequest);
    const res = await answer;
    expect([res.correlationId, res.errorCode, res.topics.length]).toEqual([7, ErrorCode.INVALID_REQUEST, 0]);
  });

  test('a replica fetch asking for more than fetch.max.bytes gets at most fetch.max.bytes (one batch beyond at most)', async () => {
    const maxBytes = 16 * 1024;
    const s = await serve({ 'fetch.max.bytes': maxBytes }, 1, {}, [1, 2]);
    // 8 batches of ~4 KiB: twice what one answer may hold.
    for (let i = 0; i < 8; i++) expect(await produceCodes(s, new Map([[0, good(String(i).repeat(4000))]]), { acks: Acks.ACKS_LEADER })).toEqual([0]);
    const batchBytes = good('0'.repeat(4000)).length;
    const stream = s.client.replicaFetch();
    cleanups.push(() => void stream.cancel());
    const answer = new Promise<ReplicaFetchResponse>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    const huge = 1024 * 1024 * 1024;
    stream.write({
      correlationId: 1, replicaId: 2, brokerEpoch: 1, maxWaitMs: 0, minBytes: 1, maxBytes: huge,
      topics: [{ topicId: topicIdToBytes(topicId), partitions: [{ partition: 0, currentLeaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: -1, countableEndOffset: 0, partitionMaxBytes: huge, logStartOffset: 0 }] }],
    } satisfies ReplicaFetchRequest);
    const p = (await answer).topics[0]?.partitions[0];
    expect(p?.errorCode).toBe(0);
    expect(p?.records.length).toBeGreaterThan(0);
    expect(p?.records.length).toBeLessThanOrEqual(maxBytes + batchBytes);
  });
});
