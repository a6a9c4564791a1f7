/**
 * The broker's gRPC service (proto/broker.proto). Handlers validate the request's shape and hand
 * each partition to its Partition, which owns all of that replica's state; per-partition failures
 * come back as Kafka error codes and never fail the whole call. Long-polls (consumer fetches with
 * max_wait_ms/min_bytes, follower fetches) park on the partitions' change notifications and a
 * timer: no polling loops.
 */
import * as grpc from '@grpc/grpc-js';
import {
  ATTRIBUTES_OFFSET,
  Acks,
  BATCH_LENGTH_OFFSET,
  BrokerService,
  LOG_OVERHEAD,
  RECORD_BATCH_OVERHEAD,
  ConfigResourceType,
  ConfigSource,
  DYNAMIC_BROKER_CONFIG,
  ErrorCode,
  StrandError,
  isTransactionalBatch,
  type BrokerServer,
  type BrokerTopicDefault,
  type ControllerClient,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DescribeClusterRequest,
  type DescribeClusterResponse,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
  type DescribeConfigsResult,
  type DescribeLogDirsRequest,
  type DescribeLogDirsResponse,
  type DescribeLogDirsTopicResult,
  type ErrorName,
  type FetchPartitionResponse,
  type FetchRequest,
  type FetchResponse,
  type MetadataResponse,
  type PartitionMetadata,
  type ProducePartitionResponse,
  type ProduceRequest,
  type ProduceResponse,
  type ReplicaFetchPartitionResponse,
  type ReplicaFetchRequest,
  type ReplicaFetchResponse,
  type TopicDefaultSource,
  type TopicMetadata,
} from '@strand/protocol';
import { toServiceError, topicIdFromBytes, topicIdToBytes, validateTopicName, type MetadataImage } from '@strand/controller';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP } from '@strand/storage';
import { OFFSETS_TOPIC, type GroupCoordinator } from '../group/group-coordinator';
import { BROKER_MESSAGE_MAX_BYTES, FETCH_MAX_PARTITIONS, IDLE_REPLICA_FETCH_HOLD_MS, type BrokerConfig } from './broker-config';
import type { BrokerMetricsSink } from './broker-metrics';
import type { ControllerChannel } from './controller-channel';
import type { NodeConfigEntry } from './broker-server';
import { readErrorCode, type Partition } from './partition';
import { topicDefaultsIn, type ReplicaManager } from './replica-manager';

/** The DescribeConfigs source of each kind of topic default. */
const DEFAULT_SOURCES: Readonly<Record<TopicDefaultSource, ConfigSource>> = {
  static: ConfigSource.CONFIG_SOURCE_STATIC_BROKER,
  'dynamic-default': ConfigSource.CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER,
  'dynamic-broker': ConfigSource.CONFIG_SOURCE_DYNAMIC_BROKER,
};

function dynamicDoc(name: string): string {
  return DYNAMIC_BROKER_CONFIG.has(name) ? DYNAMIC_BROKER_CONFIG.spec[name as keyof typeof DYNAMIC_BROKER_CONFIG.spec].doc : '';
}

export interface BrokerServiceContext {
  brokerId: number;
  config: BrokerConfig;
  replicas: ReplicaManager;
  controllers: ControllerChannel;
  /**
   * The listener this service instance serves (one instance per bound listener): Metadata,
   * FindCoordinator and DescribeCluster name each broker by its endpoint for this listener.
   */
  listenerName: string;
  /**
   * inter.broker.listener.name: replica fetches are served on that listener only, so a
   * deployment with a separate client listener keeps clients from posing as followers (a
   * forged fetch could count offsets toward the high watermark that no follower holds).
   */
  interBrokerListenerName: string;
  image(): MetadataImage | null;
  /** Hands out producer ids (blocks allocated by the controller). */
  nextProducerId(): Promise<number>;
  /** The consumer-group coordinator (FindCoordinator, JoinGroup ... DeleteGroups, OffsetDelete). */
  groups: GroupCoordinator;
  logger: { warn(fields: Record<string, unknown>, msg: string): void };
  metrics: BrokerMetricsSink;
  /** This node's settings, for DescribeConfigs of its broker resource. */
  nodeConfigs(): readonly NodeConfigEntry[];
  /** Topic defaults set by this node's settings (by topic key), shown by DescribeConfigs of a topic. */
  topicDefaults: ReadonlyMap<string, BrokerTopicDefault>;
  /**
   * The count of consumer fetches held, shared by the service instances of every listener so
   * fetch.max.held.requests bounds the broker; without it the instance counts its own.
   */
  heldFetches?: HeldFetches;
}

/** Consumer fetches held waiting for min bytes (long-polls), bounded by fetch.max.held.requests. */
export class HeldFetches {
  count = 0;
}

/**
 * Bound on produce requests outstanding on one ProduceStream. The producer keeps at most
 * max.in.flight.requests.per.connection (default 5) there; a stream past this bound is ended
 * with THROTTLING_QUOTA_EXCEEDED rather than allowed to queue without limit.
 */
const MAX_OUTSTANDING_PRODUCES_PER_STREAM = 1_000;

/**
 * Answers a ProduceStream may hold not yet handed to HTTP/2 before it stops reading requests
 * (a client that does not read its answers). Small answers: ~100 KB at most.
 */
export const MAX_UNSENT_PRODUCE_ANSWERS = 1_024;

/** Bound on follower fetch requests queued on one stream (a follower sends one at a time). */
const MAX_QUEUED_REPLICA_FETCHES = 16;
/** Consumer fetches queued on one FetchStream (the client keeps one in flight per broker). */
const MAX_QUEUED_FETCHES = 16;

/** Kafka's topic name rules (the controller's, which refuses the rest with INVALID_TOPIC_EXCEPTION). */
function isLegalTopicName(name: string): boolean {
  try {
    validateTopicName(name);
    return true;
  } catch {
    return false;
  }
}

/** A call's cancellation: a flag, and the waits to wake when it is set. */
interface Cancellation {
  readonly cancelled: () => boolean;
  readonly onCancel: (wake: () => void) => () => void;
  cancel(): void;
}

function cancellation(): Cancellation {
  let cancelled = false;
  const wakers = new Set<() => void>();
  return {
    cancelled: () => cancelled,
    onCancel: (wake) => {
      wakers.add(wake);
      return () => wakers.delete(wake);
    },
    cancel: () => {
      cancelled = true;
      for (const wake of [...wakers]) wake();
    },
  };
}

/** The Kafka acks value of the wire enum; null for a value the enum does not define. */
function acksOf(a: Acks): 0 | 1 | -1 | null {
  switch (a) {
    case Acks.ACKS_NONE:
      return 0;
    case Acks.ACKS_ALL:
      return -1;
    case Acks.ACKS_LEADER:
      return 1;
    default:
      return null;
  }
}

function code(name: ErrorName): number {
  return ErrorCode[name];
}

/**
 * Whether any batch of a produced partition's `records` has the transactional attribute bit
 * (Kafka's ProduceRequest.hasTransactionalRecords). Reads only batch lengths and attributes; a
 * malformed tail ends the walk (the partition's validation then reports it).
 */
function hasTransactionalBatch(records: Buffer): boolean {
  for (let pos = 0; pos + RECORD_BATCH_OVERHEAD <= records.length; ) {
    if (isTransactionalBatch(records.readInt16BE(pos + ATTRIBUTES_OFFSET))) return true;
    const size = records.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
    if (size < RECORD_BATCH_OVERHEAD) return false;
    pos += size;
  }
  return false;
}

/**
 * Upper bounds of the encoded bytes of a fetch answer other than record data: per partition its
 * fields (a negative int32 or int64 takes 11 bytes with its tag; a FetchPartitionResponse is at
 * most ~80, a ReplicaFetchPartitionResponse ~91, the records' length prefix included), per topic
 * its entry's framing beside the name or id it echoes.
 */
const ANSWER_PARTITION_FIELDS_MAX_BYTES = 96;
const ANSWER_TOPIC_FIELDS_MAX_BYTES = 16;
/** Room for the answer's own top-level fields and gRPC framing. */
const ANSWER_SLACK_BYTES = 64 * 1024;

/**
 * What a fetch naming these topics may answer: null if it names more than FETCH_MAX_PARTITIONS
 * partitions (INVALID_REQUEST), else the most record bytes its answer may carry so that, with
 * the fields of every partition and topic it names, it stays within BROKER_MESSAGE_MAX_BYTES.
 */
function fetchRecordBytesMax(topics: readonly { partitions: readonly unknown[] }[], echoedBytes: (i: number) => number): number | null {
  let partitions = 0;
  let fields = ANSWER_SLACK_BYTES;
  for (let i = 0; i < topics.length; i++) {
    const n = (topics[i] as { partitions: readonly unknown[] }).partitions.length;
    partitions += Math.max(1, n);
    if (partitions > FETCH_MAX_PARTITIONS) return null;
    fields += ANSWER_TOPIC_FIELDS_MAX_BYTES + echoedBytes(i) + n * ANSWER_PARTITION_FIELDS_MAX_BYTES;
  }
  // Within the partition bound the fields are at most ~10 MiB plus the echoed names, which the
  // request itself carried (so below the message limit). A request whose fields leave no room
  // for records at all is refused too.
  const max = BROKER_MESSAGE_MAX_BYTES - fields;
  return max <= 0 ? null : max;
}

/**
 * Waits until any of `parts` changes, `ms` passes or the caller's call is cancelled; resolves
 * either way. With no partitions it is a plain timer: resolving at once would let a request
 * naming none spin the caller's loop without yielding to the event loop.
 */
function waitForChange(parts: readonly Partition[], ms: number, cancel: Cancellation): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || cancel.cancelled()) return resolve();
    const offs: (() => void)[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const off of offs) off();
      resolve();
    };
    const timer = setTimeout(finish, ms);
    for (const p of parts) offs.push(p.onNextChange(finish));
    offs.push(cancel.onCancel(finish));
  });
}

/** What one replica-fetch stream was last told per partition (high watermark, log start). */
class ToldOffsets {
  private readonly told = new Map<string, { hw: number; lso: number }>();

  /** Whether answering now would tell the follower a high watermark or log start it lacks. */
  hasNews(res: ReplicaFetchResponse): boolean {
    for (const t of res.topics) {
      const topic = topicIdFromBytes(t.topicId);
      for (const p of t.partitions) {
        const last = this.told.get(`${topic}:${p.partition}`);
        if (last === undefined || last.hw !== p.highWatermark || last.lso !== p.logStartOffset) return true;
      }
    }
    return false;
  }

  note(res: ReplicaFetchResponse): void {
    for (const t of res.topics) {
      const topic = topicIdFromBytes(t.topicId);
      for (const p of t.partitions) this.told.set(`${topic}:${p.partition}`, { hw: p.highWatermark, lso: p.logStartOffset });
    }
  }
}

export function addBrokerService(server: grpc.Server, ctx: BrokerServiceContext): void {
  const unary =
    <Req, Res>(f: (req: Req) => Promise<Res> | Res, api = 'other'): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      const t0 = performance.now();
      Promise.resolve()
        .then(() => f(call.request))
        .then(
          (res) => {
            ctx.metrics.request(api, (performance.now() - t0) / 1000, false);
            callback(null, res);
          },
          (e: unknown) => {
            ctx.metrics.request(api, (performance.now() - t0) / 1000, true);
            callback(toServiceError(e));
          },
        );
    };

  const forward =
    <Req, Res>(method: (c: ControllerClient, req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall): grpc.handleUnaryCall<Req, Res> =>
    unary((req: Req) => ctx.controllers.call(method, req, 30_000));

  const leaderOf = (topic: string, partition: number): { part?: Partition; errorCode: number; leaderId: number; leaderEpoch: number } => {
    const image = ctx.image();
    const t = image?.topicByName(topic);
    const meta = t?.partitions.get(partition);
    if (t === undefined || meta === undefined) return { errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), leaderId: -1, leaderEpoch: -1 };
    const part = ctx.replicas.partitionByName(topic, partition);
    if (part === undefined || !part.isLeader) return { errorCode: code('NOT_LEADER_OR_FOLLOWER'), leaderId: meta.leader, leaderEpoch: meta.leaderEpoch };
    return { part, errorCode: 0, leaderId: meta.leader, leaderEpoch: meta.leaderEpoch };
  };

  const autoCreating = new Set<string>();
  const autoCreate = (name: string): void => {
    if (autoCreating.has(name)) return;
    autoCreating.add(name);
    ctx.controllers
      .call<CreateTopicsRequest, CreateTopicsResponse>((c, r, m, o, cb) => c.createTopics(r, m, o, cb), { topics: [{ name, numPartitions: -1, replicationFactor: -1, assignments: [], configs: [] }], validateOnly: false }, 30_000)
      .then(
        (res) => {
          const r = res.topics[0];
          if (r !== undefined && r.errorCode !== 0 && r.errorCode !== code('TOPIC_ALREADY_EXISTS')) ctx.logger.warn({ topic: name, error: r.errorCode, message: r.errorMessage }, 'auto-creating a topic failed');
        },
        (e: unknown) => ctx.logger.warn({ topic: name, err: e instanceof Error ? e.message : String(e) }, 'auto-creating a topic failed'),
      )
      .finally(() => autoCreating.delete(name));
  };

  const metadata = (req: { topics: string[]; allowAutoTopicCreation?: boolean }): MetadataResponse => {
    const image = ctx.image();
    if (image === null) throw new StrandError('LEADER_NOT_AVAILABLE', 'this broker has not loaded the cluster metadata yet');
    const brokers = [...image.brokers.values()]
      .filter((b) => !b.fenced)
      .flatMap((b) => {
        // Kafka: a broker without the listener this request arrived on is left out.
        const ep = b.endpoints.find((e) => e.listener === ctx.listenerName);
        return ep === undefined ? [] : [{ nodeId: b.id, host: ep.host, port: ep.port, ...(b.rack === undefined ? {} : { rack: b.rack }) }];
      });
    const names = req.topics.length > 0 ? req.topics : [...image.topicIdsByName.keys()].filter((n) => !n.startsWith('__')).sort();
    const topics: TopicMetadata[] = names.map((name) => {
      const t = image.topicByName(name);
      if (t === undefined) {
        // Kafka (KafkaApis.getTopicMetadata): a name no topic may have is INVALID_TOPIC_EXCEPTION,
        // neither unknown nor created.
        if (!isLegalTopicName(name)) return { errorCode: code('INVALID_TOPIC_EXCEPTION'), name, topicId: Buffer.alloc(0), partitions: [] };
        if (ctx.config['auto.create.topics.enable'] && req.allowAutoTopicCreation === true && !name.startsWith('__')) {
          // Kafka's auto-creation: with the cluster's num.partitions and default.replication.factor;
          // the client retries LEADER_NOT_AVAILABLE until the topic has leaders.
          autoCreate(name);
          return { errorCode: code('LEADER_NOT_AVAILABLE'), name, topicId: Buffer.alloc(0), partitions: [] };
        }
        return { errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), name, topicId: Buffer.alloc(0), partitions: [] };
      }
      const partitions: PartitionMetadata[] = [...t.partitions.values()]
        .sort((a, b) => a.partition - b.partition)
        .map((p) => ({
          errorCode: p.leader < 0 ? code('LEADER_NOT_AVAILABLE') : 0,
          partition: p.partition,
          leaderId: p.leader,
          leaderEpoch: p.leaderEpoch,
          replicas: [...p.replicas],
          isr: [...p.isr],
          offlineReplicas: p.replicas.filter((r) => image.brokers.get(r)?.fenced !== false),
        }));
      return { errorCode: 0, name, topicId: topicIdToBytes(t.id), partitions };
    });
    return { clusterId: image.clusterId, controllerId: -1, brokers, topics };
  };

  const produce = async (req: ProduceRequest): Promise<ProduceResponse> => {
    const acks = acksOf(req.acks);
    const timeoutMs = req.timeoutMs > 0 ? req.timeoutMs : ctx.config['request.timeout.ms'];
    // Strand has no transactions. Kafka answers a request holding transactional batches but no
    // transactional id with TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition, before
    // looking at them (KafkaApis.handleProduceRequest); with an id, see INVALID_TXN_STATE below.
    const transactionalId = req.transactionalId ?? '';
    const withTransactional = (p: { records: Uint8Array }): boolean => hasTransactionalBatch(Buffer.from(p.records.buffer, p.records.byteOffset, p.records.byteLength));
    if (transactionalId === '' && req.topics.some((t) => t.partitions.some(withTransactional))) {
      const errorCode = code('TRANSACTIONAL_ID_AUTHORIZATION_FAILED');
      const errorMessage = 'a produce request with transactional batches must name its transactional id (and Strand has no transactions)';
      return {
        topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode, errorMessage, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 })) })),
        throttleTimeMs: 0,
        correlationId: req.correlationId,
      };
    }
    const topics = await Promise.all(
      req.topics.map(async (t) => ({
        name: t.name,
        partitions: await Promise.all(
          t.partitions.map(async (p): Promise<ProducePartitionResponse> => {
            const base = { partition: p.partition, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 };
            if (acks === null) return { ...base, errorCode: code('INVALID_REQUIRED_ACKS'), errorMessage: `acks ${String(req.acks)} is not 0, 1 or all` };
            // The group coordinator writes its own records in-process; clients may not append to
            // internal topics (Kafka: INVALID_TOPIC_EXCEPTION).
            if (t.name === OFFSETS_TOPIC) return { ...base, errorCode: code('INVALID_TOPIC_EXCEPTION'), errorMessage: `cannot append to internal topic ${t.name}` };
            const l = leaderOf(t.name, p.partition);
            if (l.part === undefined) {
              return { ...base, errorCode: l.errorCode, errorMessage: l.errorCode === code('NOT_LEADER_OR_FOLLOWER') ? `broker ${ctx.brokerId} is not the leader of ${t.name}-${p.partition} (leader ${l.leaderId})` : `unknown topic or partition ${t.name}-${p.partition}`, ...(l.leaderId >= 0 ? { currentLeaderId: l.leaderId, currentLeaderEpoch: l.leaderEpoch } : {}) };
            }
            // No transaction can be ongoing (InitProducerId refuses transactional ids): Kafka's
            // answer to a transactional write to a partition outside an ongoing transaction
            // (KIP-890 verification) is INVALID_TXN_STATE.
            if (withTransactional(p)) return { ...base, errorCode: code('INVALID_TXN_STATE'), errorMessage: `transactional batches for ${t.name}-${p.partition}: transactions are not supported, so no transaction of '${transactionalId}' is ongoing` };
            const records = Buffer.from(p.records.buffer, p.records.byteOffset, p.records.byteLength);
            const r = await l.part.produce(records, acks, timeoutMs);
            ctx.metrics.produced(t.name, records.length, r.records ?? 0, r.errorCode);
            return { ...base, errorCode: r.errorCode, errorMessage: r.errorMessage, baseOffset: r.baseOffset, logAppendTimeMs: r.logAppendTimeMs, logStartOffset: r.logStartOffset };
          }),
        ),
      })),
    );
    return { topics, throttleTimeMs: 0, correlationId: req.correlationId };
  };

  /** One pass over a consumer fetch; `parts` collects the partitions to wait on. */
  const fetchOnce = (req: FetchRequest, parts: Partition[], recordBytesMax: number): { res: FetchResponse; bytes: number } => {
    let budget = Math.min(req.maxBytes > 0 ? req.maxBytes : ctx.config['fetch.max.bytes'], ctx.config['fetch.max.bytes'], recordBytesMax);
    let bytes = 0;
    const named = new Set<string>();
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p): FetchPartitionResponse => {
        const base: FetchPartitionResponse = { partition: p.partition, errorCode: 0, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, divergingEpoch: null, records: Buffer.alloc(0) };
        // A partition named twice would be read twice on every wake-up of a held fetch (a
        // cheap multiplier for a hostile client); Kafka's fetch map holds it once. The
        // duplicate is refused, which also answers the fetch at once.
        const key = `${t.name}\u0000${p.partition}`;
        if (named.has(key)) return { ...base, errorCode: code('INVALID_REQUEST') };
        named.add(key);
        const l = leaderOf(t.name, p.partition);
        if (l.part === undefined) return { ...base, errorCode: l.errorCode };
        const part = l.part;
        parts.push(part);
        // A failed log is offline (Kafka: its log directory is): nothing of it is served.
        if (!part.log.isOpen) return { ...base, errorCode: code('KAFKA_STORAGE_ERROR') };
        if (p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch < part.leaderEpoch) return { ...base, errorCode: code('FENCED_LEADER_EPOCH') };
        if (p.currentLeaderEpoch > part.leaderEpoch) return { ...base, errorCode: code('UNKNOWN_LEADER_EPOCH') };
        const hw = part.highWatermark;
        const out = { ...base, highWatermark: hw, lastStableOffset: hw, logStartOffset: part.log.logStartOffset };
        if (p.lastFetchedEpoch >= 0 && p.fetchOffset > 0) {
          // KIP-320: a consumer whose last fetched epoch ends before its position saw a truncated history.
          const end = part.log.endOffsetForEpoch(p.lastFetchedEpoch);
          if (end.epoch < p.lastFetchedEpoch || end.endOffset < p.fetchOffset) {
            return { ...out, divergingEpoch: { epoch: end.epoch, endOffset: end.endOffset } };
          }
        }
        if (p.fetchOffset < part.log.logStartOffset || p.fetchOffset > part.log.logEndOffset) return { ...out, errorCode: code('OFFSET_OUT_OF_RANGE') };
        if (budget <= 0) return out;
        try {
          // Only the first partition with data may exceed the budget with one batch (KIP-74), so
          // an answer stays within max(fetch.max.bytes, one batch).
          const res = part.log.read(p.fetchOffset, Math.min(p.partitionMaxBytes > 0 ? p.partitionMaxBytes : 1024 * 1024, bytes === 0 ? Math.max(budget, 1) : budget), { maxOffset: hw, minOneBatch: bytes === 0 });
          budget -= res.records.length;
          bytes += res.records.length;
          if (res.records.length > 0) ctx.metrics.fetched(t.name, res.records.length, false);
          return { ...out, records: res.records };
        } catch (e: unknown) {
          // A read that fails (corrupt data, a file system error such as EIO) answers this
          // partition with the error, as Kafka's per-partition KAFKA_STORAGE_ERROR; the others of
          // the request are still answered. Anything else is a bug and fails the call.
          const errorCode = readErrorCode(e);
          if (errorCode === null) throw e;
          ctx.logger.warn({ topicPartition: part.topicPartition, err: e instanceof Error ? e.message : String(e) }, 'Fetch: reading the log failed');
          return { ...out, errorCode };
        }
      }),
    }));
    return { res: { errorCode: 0, throttleTimeMs: 0, topics }, bytes };
  };

  const heldFetches = ctx.heldFetches ?? new HeldFetches();

  const fetch = async (req: FetchRequest, cancel: Cancellation): Promise<FetchResponse> => {
    // Too many partitions for one answer: refused as a whole, as Kafka answers a request it
    // refuses (FetchRequest.getErrorResponse: the top-level error, no partitions).
    const recordBytesMax = fetchRecordBytesMax(req.topics, (i) => Buffer.byteLength(req.topics[i]?.name ?? ''));
    if (recordBytesMax === null) return { errorCode: code('INVALID_REQUEST'), throttleTimeMs: 0, topics: [] };
    const deadline = performance.now() + Math.max(0, req.maxWaitMs);
    // minBytes never above what one answer may hold (Kafka: min(minBytes, fetch max bytes)), or
    // every change would re-read the whole budget until maxWaitMs. minBytes <= 0 answers at once
    // whatever maxWaitMs says, as in Kafka (every answer holds at least that many bytes).
    const minBytes = Math.min(req.minBytes, req.maxBytes > 0 ? Math.min(req.maxBytes, ctx.config['fetch.max.bytes']) : ctx.config['fetch.max.bytes']);
    let holding = false;
    try {
      for (;;) {
        const parts: Partition[] = [];
        const { res, bytes } = fetchOnce(req, parts, recordBytesMax);
        const anyError = res.topics.some((t) => t.partitions.some((p) => p.errorCode !== 0 || p.divergingEpoch !== null));
        const remaining = deadline - performance.now();
        if (bytes >= minBytes || anyError || remaining <= 0 || cancel.cancelled()) return res;
        if (!holding) {
          // Each held fetch costs its request, a waiter per partition, a timer and a re-read on
          // every change: past the bound a fetch is answered at once with what is there (the
          // client fetches again; Kafka gets its bound from one request per connection).
          if (heldFetches.count >= ctx.config['fetch.max.held.requests']) return res;
          heldFetches.count++;
          holding = true;
        }
        await waitForChange(parts, remaining, cancel);
      }
    } finally {
      if (holding) heldFetches.count--;
    }
  };

  const replicaFetchOnce = (req: ReplicaFetchRequest, parts: Partition[], recordBytesMax: number, fetchTimeMs?: number): { res: ReplicaFetchResponse; bytes: number; urgent: boolean } => {
    // Kafka caps a follower's maxBytes by fetch.max.bytes too (handleFetchRequest), which also
    // keeps the answer within the gRPC message limit (see FETCH_RESPONSE_MAX_BYTES).
    let budget = Math.min(req.maxBytes > 0 ? req.maxBytes : ctx.config['replica.fetch.response.max.bytes'], ctx.config['fetch.max.bytes'], recordBytesMax);
    let bytes = 0;
    let urgent = false;
    const topics = req.topics.map((t) => {
      const topicId = topicIdFromBytes(t.topicId);
      return {
        topicId: t.topicId,
        partitions: t.partitions.map((p): ReplicaFetchPartitionResponse => {
          const part = ctx.replicas.partition(topicId, p.partition);
          if (part === undefined) {
            urgent = true;
            return { partition: p.partition, errorCode: code('NOT_LEADER_OR_FOLLOWER'), highWatermark: -1, logStartOffset: -1, leaderEpoch: -1, divergingEpoch: null, records: Buffer.alloc(0) };
          }
          parts.push(part);
          // Each partition gets at least one whole batch while the response's budget lasts; once
          // it is spent the rest are answered without records (their fetch state still counts),
          // so an answer exceeds replica.fetch.response.max.bytes by one batch at most. The
          // follower rotates the order of its partitions, so none waits behind the others for long.
          const r = part.answerFollowerFetch(
            { replicaId: req.replicaId, brokerEpoch: req.brokerEpoch, currentLeaderEpoch: p.currentLeaderEpoch, fetchOffset: p.fetchOffset, lastFetchedEpoch: p.lastFetchedEpoch, countableEndOffset: p.countableEndOffset, logStartOffset: p.logStartOffset },
            budget > 0 ? Math.max(1, Math.min(p.partitionMaxBytes, budget)) : 0,
            fetchTimeMs,
          );
          budget -= r.records.length;
          bytes += r.records.length;
          if (r.records.length > 0) ctx.metrics.fetched(part.key.topic, r.records.length, true);
          // A follower whose log start is behind ours (DeleteRecords or retention moved it) is
          // told at once, not after replica.fetch.wait.max.ms: a DeleteRecords is answered only
          // once every live follower's next fetch reports the new log start.
          if (r.errorCode !== 0 || r.divergingEpoch !== null || r.logStartOffset > p.logStartOffset) urgent = true;
          return r;
        }),
      };
    });
    return { res: { correlationId: req.correlationId, errorCode: 0, topics }, bytes, urgent };
  };

  const impl: Pick<
    BrokerServer,
    | 'metadata'
    | 'produce'
    | 'fetch'
    | 'produceStream'
    | 'fetchStream'
    | 'listOffsets'
    | 'offsetForLeaderEpoch'
    | 'initProducerId'
    | 'deleteRecords'
    | 'describeLogDirs'
    | 'createTopics'
    | 'deleteTopics'
    | 'createPartitions'
    | 'describeConfigs'
    | 'incrementalAlterConfigs'
    | 'electLeaders'
    | 'alterPartitionReassignments'
    | 'listPartitionReassignments'
    | 'describeCluster'
    | 'describeQuorum'
    | 'replicaFetch'
    | 'findCoordinator'
    | 'joinGroup'
    | 'syncGroup'
    | 'heartbeat'
    | 'leaveGroup'
    | 'offsetCommit'
    | 'offsetFetch'
    | 'listGroups'
    | 'describeGroups'
    | 'deleteGroups'
    | 'offsetDelete'
  > = {
    metadata: unary(metadata, 'Metadata'),
    produce: unary(produce, 'Produce'),
    fetch: (call, callback) => {
      const cancel = cancellation();
      const t0 = performance.now();
      call.on('cancelled', () => cancel.cancel());
      fetch(call.request, cancel).then(
        (res) => {
          ctx.metrics.request('Fetch', (performance.now() - t0) / 1000, false);
          callback(null, res);
        },
        (e: unknown) => {
          ctx.metrics.request('Fetch', (performance.now() - t0) / 1000, true);
          callback(toServiceError(e));
        },
      );
    },
    produceStream: (call) => {
      // Each request starts at once, in arrival order (appends keep the order a producer sent
      // them in, as on one Kafka connection), and is answered as soon as it completes: an
      // acks=all request waiting on replication does not hold up the ones behind it.
      let outstanding = 0;
      let ended = false;
      let failed = false;
      const maybeEnd = (): void => {
        if (ended && outstanding === 0 && !failed) call.end();
      };
      // Back-pressure toward a client that does not read its answers: once the stream holds
      // MAX_UNSENT_PRODUCE_ANSWERS answers not yet handed to HTTP/2, no further request is taken
      // from it until they drain. Paused, grpc-js stops reading the HTTP/2 stream, whose flow
      // control then stops the client (Kafka mutes such a channel). Answers of produces already
      // in flight still queue: at most MAX_OUTSTANDING_PRODUCES_PER_STREAM more. (Pausing at the
      // stream's own high-water mark, 16 answers, which a busy pipelining producer reaches all
      // the time, cost acks=1 throughput: 721-811k against 747-937k records/s in three pairs.)
      let paused = false;
      const send = (res: ProduceResponse): void => {
        call.write(res);
        if (!paused && call.writableLength >= MAX_UNSENT_PRODUCE_ANSWERS) {
          paused = true;
          call.pause();
        }
      };
      call.on('drain', () => {
        if (!paused) return;
        paused = false;
        call.resume();
      });
      call.on('cancelled', () => (failed = true));
      call.on('data', (req: ProduceRequest) => {
        if (failed) return;
        if (++outstanding > MAX_OUTSTANDING_PRODUCES_PER_STREAM) {
          failed = true;
          call.emit('error', toServiceError(new StrandError('THROTTLING_QUOTA_EXCEEDED', `more than ${MAX_OUTSTANDING_PRODUCES_PER_STREAM} produce requests outstanding on one ProduceStream`)));
          return;
        }
        const t0 = performance.now();
        produce(req).then(
          (res) => {
            ctx.metrics.request('Produce', (performance.now() - t0) / 1000, false);
            outstanding--;
            if (failed) return;
            send(res);
            maybeEnd();
          },
          (e: unknown) => {
            ctx.metrics.request('Produce', (performance.now() - t0) / 1000, true);
            outstanding--;
            if (failed) return;
            // emit('error') ends the call with this status; the client fails what is outstanding.
            failed = true;
            call.emit('error', toServiceError(e));
          },
        );
      });
      call.on('end', () => {
        ended = true;
        maybeEnd();
      });
    },
    fetchStream: (call) => {
      const cancel = cancellation();
      let queued = 0;
      let chain: Promise<void> = Promise.resolve();
      call.on('cancelled', () => cancel.cancel());
      // grpc-js drops a message without calling its write callback when the call already ended
      // (cancelled, an answer above the send limit): the chain must not wait on it for ever.
      call.on('close', () => cancel.cancel());
      call.on('data', (req: FetchRequest) => {
        if (cancel.cancelled()) return;
        if (++queued > MAX_QUEUED_FETCHES) {
          // A client that sends fetches without reading the answers would make the broker
          // buffer up to fetch.max.bytes for each.
          call.emit('error', toServiceError(new StrandError('THROTTLING_QUOTA_EXCEEDED', 'too many fetches queued on one stream')));
          cancel.cancel();
          return;
        }
        chain = chain.then(async () => {
          try {
            if (cancel.cancelled()) return;
            const res = await fetch(req, cancel);
            // The next fetch waits until this answer is handed to HTTP/2: a client that stops
            // reading holds at most one answer here (Kafka mutes such a channel), instead of
            // every answer piling up in the stream's buffer.
            await new Promise<void>((resolve) => {
              const stop = cancel.onCancel(() => resolve());
              call.write(res, () => {
                stop();
                resolve();
              });
            });
          } catch (e: unknown) {
            // emit('error') ends the call with this status; destroy() would end it without one
            // (grpc-js), leaving the client waiting for an answer until its own timeout.
            call.emit('error', toServiceError(e));
            cancel.cancel();
          } finally {
            queued--;
          }
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
    },
    listOffsets: unary((req) => ({
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          const base = { partition: p.partition, timestamp: -1, offset: -1, leaderEpoch: -1 };
          const l = leaderOf(t.name, p.partition);
          if (l.part === undefined) return { ...base, errorCode: l.errorCode };
          const part = l.part;
          // A failed log is offline (Kafka: its log directory is), whatever the memory still knows.
          if (!part.log.isOpen) return { ...base, errorCode: code('KAFKA_STORAGE_ERROR') };
          if (p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch !== part.leaderEpoch) return { ...base, errorCode: code(p.currentLeaderEpoch < part.leaderEpoch ? 'FENCED_LEADER_EPOCH' : 'UNKNOWN_LEADER_EPOCH') };
          if (!part.offsetsAvailable) return { ...base, errorCode: code('OFFSET_NOT_AVAILABLE') };
          const hw = part.highWatermark;
          if (p.timestamp === LATEST_TIMESTAMP) return { ...base, errorCode: 0, offset: hw, leaderEpoch: part.leaderEpoch };
          if (p.timestamp === EARLIEST_TIMESTAMP) return { ...base, errorCode: 0, offset: part.log.logStartOffset, leaderEpoch: part.leaderEpoch };
          // Timestamp lookups read the segments: a read that fails answers this partition with
          // the error (Kafka's per-partition KAFKA_STORAGE_ERROR), never the whole request.
          try {
            // KIP-734: the committed record with the largest timestamp (offset -1 for none).
            if (p.timestamp === MAX_TIMESTAMP) {
              const max = part.log.offsetOfMaxTimestamp(hw);
              return max === null ? { ...base, errorCode: 0 } : { ...base, errorCode: 0, offset: max.offset, timestamp: max.timestamp, leaderEpoch: max.leaderEpoch };
            }
            const found = part.log.offsetForTimestamp(p.timestamp);
            if (found === null || found.offset >= hw) return { ...base, errorCode: 0 };
            return { ...base, errorCode: 0, offset: found.offset, timestamp: found.timestamp, leaderEpoch: found.leaderEpoch };
          } catch (e: unknown) {
            const errorCode = readErrorCode(e);
            if (errorCode === null) throw e;
            ctx.logger.warn({ topicPartition: part.topicPartition, err: e instanceof Error ? e.message : String(e) }, 'ListOffsets: reading the log failed');
            return { ...base, errorCode };
          }
        }),
      })),
    })),
    offsetForLeaderEpoch: unary((req) => ({
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          const l = leaderOf(t.name, p.partition);
          if (l.part === undefined) return { partition: p.partition, errorCode: l.errorCode, leaderEpoch: -1, endOffset: -1 };
          if (p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch !== l.part.leaderEpoch) {
            return { partition: p.partition, errorCode: code(p.currentLeaderEpoch < l.part.leaderEpoch ? 'FENCED_LEADER_EPOCH' : 'UNKNOWN_LEADER_EPOCH'), leaderEpoch: -1, endOffset: -1 };
          }
          const end = l.part.log.endOffsetForEpoch(p.leaderEpoch);
          return { partition: p.partition, errorCode: 0, leaderEpoch: end.epoch, endOffset: end.endOffset };
        }),
      })),
    })),
    initProducerId: unary(async (req) => {
      if (req.transactionalId !== undefined && req.transactionalId !== '') {
        return { ...{ errorCode: code('UNSUPPORTED_VERSION'), errorMessage: 'transactions are not supported yet' }, producerId: -1, producerEpoch: -1 };
      }
      if (req.producerId >= 0) {
        // KIP-360 epoch bump for a known id: same id, next epoch (sequence state restarts).
        if (req.producerEpoch >= 32767) return { errorCode: 0, errorMessage: '', producerId: await ctx.nextProducerId(), producerEpoch: 0 };
        return { errorCode: 0, errorMessage: '', producerId: req.producerId, producerEpoch: req.producerEpoch + 1 };
      }
      return { errorCode: 0, errorMessage: '', producerId: await ctx.nextProducerId(), producerEpoch: 0 };
    }),
    // Each partition's log start moves at once (in this turn, in request order); its answer waits
    // until every live replica's log start has followed, up to the request's timeout (Kafka's
    // DelayedDeleteRecords, see Partition.deleteRecords). The partitions wait together.
    deleteRecords: unary(async (req) => ({
      topics: await Promise.all(
        req.topics.map(async (t) => ({
          name: t.name,
          partitions: await Promise.all(
            t.partitions.map(async (p) => {
              if (t.name === OFFSETS_TOPIC) return { partition: p.partition, errorCode: code('INVALID_TOPIC_EXCEPTION'), lowWatermark: -1 };
              const l = leaderOf(t.name, p.partition);
              if (l.part === undefined) return { partition: p.partition, errorCode: l.errorCode, lowWatermark: -1 };
              const hw = l.part.highWatermark;
              // Only -1 means "up to the high watermark" (Kafka); any other negative offset is out of range.
              if (p.offset < -1) return { partition: p.partition, errorCode: code('OFFSET_OUT_OF_RANGE'), lowWatermark: l.part.log.logStartOffset };
              const target = p.offset === -1 ? hw : p.offset;
              if (target > hw) return { partition: p.partition, errorCode: code('OFFSET_OUT_OF_RANGE'), lowWatermark: l.part.log.logStartOffset };
              const r = await l.part.deleteRecords(target, Math.max(0, req.timeoutMs));
              return { partition: p.partition, errorCode: r.error === null ? 0 : code(r.error), lowWatermark: r.lowWatermark };
            }),
          ),
        })),
      ),
    })),
    describeLogDirs: unary(async (req: DescribeLogDirsRequest): Promise<DescribeLogDirsResponse> => {
      // Topic -> the partitions asked for (null: all of them). Bad names are refused, not matched
      // against nothing: a typo should not read as "no replicas here".
      const asked = new Map<string, Set<number> | null>();
      for (const t of req.topics) {
        if (!isLegalTopicName(t.topic)) throw new StrandError('INVALID_TOPIC_EXCEPTION', `DescribeLogDirs: '${t.topic}' is not a legal topic name`);
        const bad = t.partitions.find((p) => p < 0);
        if (bad !== undefined) throw new StrandError('INVALID_REQUEST', `DescribeLogDirs: partition ${bad} of ${t.topic} is negative`);
        const before = asked.get(t.topic);
        if (t.partitions.length === 0 || before === null) asked.set(t.topic, null);
        else asked.set(t.topic, new Set([...(before ?? []), ...t.partitions]));
      }
      const d = await ctx.replicas.describeLogDir(
        req.topics.length === 0
          ? undefined
          : (topic, partition) => {
              const parts = asked.get(topic);
              return parts === null || (parts !== undefined && parts.has(partition));
            },
      );
      const topics: DescribeLogDirsTopicResult[] = [];
      for (const r of d.replicas) {
        let t = topics.at(-1);
        if (t === undefined || t.name !== r.topic) topics.push((t = { name: r.topic, partitions: [] }));
        t.partitions.push({ partition: r.partition, sizeBytes: r.sizeBytes, offsetLag: r.offsetLag, isFuture: false });
      }
      return { results: [{ errorCode: d.error?.code ?? 0, errorMessage: d.error?.message ?? '', logDir: d.path, topics, totalBytes: d.totalBytes, usableBytes: d.usableBytes }] };
    }, 'DescribeLogDirs'),
    createTopics: forward((c, r, m, o, cb) => c.createTopics(r, m, o, cb)),
    deleteTopics: forward((c, r, m, o, cb) => c.deleteTopics(r, m, o, cb)),
    createPartitions: forward((c, r, m, o, cb) => c.createPartitions(r, m, o, cb)),
    describeConfigs: unary(async (req: DescribeConfigsRequest): Promise<DescribeConfigsResponse> => {
      // Broker resources are this node's own settings, answered here (Kafka: a broker's static
      // configs are described by that broker); topic configs live in the controller's metadata.
      const isBroker = (r: DescribeConfigsRequest['resources'][number]): boolean => r.type === ConfigResourceType.CONFIG_RESOURCE_BROKER;
      const topics = req.resources.filter((r) => !isBroker(r));
      const image = ctx.image();
      const none: ReadonlyMap<string, string> = new Map();
      const dynamic = (name: string): ReadonlyMap<string, string> => image?.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, name) ?? none;
      const defaults = topicDefaultsIn(image, ctx.brokerId, ctx.topicDefaults);
      const fromController = topics.length === 0 ? [] : (await ctx.controllers.call<DescribeConfigsRequest, DescribeConfigsResponse>((c, r, m, o, cb) => c.describeConfigs(r, m, o, cb), { resources: topics }, 30_000)).results;
      let next = 0;
      const results = req.resources.map((r): DescribeConfigsResult => {
        if (!isBroker(r)) {
          const t = fromController[next++];
          if (t === undefined) return { type: r.type, name: r.name, errorCode: code('UNKNOWN_SERVER_ERROR'), errorMessage: 'the controller answered fewer resources than asked', configs: [] };
          // A key the topic does not set takes this broker's default where its settings or the
          // dynamic broker configs give one (Kafka: the answering broker's, with its source).
          return { ...t, configs: t.configs.map((c) => { const d = c.isDefault ? defaults.get(c.name) : undefined; return d === undefined ? c : { ...c, value: d.value, source: DEFAULT_SOURCES[d.source], isDefault: false }; }) };
        }
        const keys = new Set(r.keys);
        const wanted = (name: string): boolean => keys.size === 0 || keys.has(name);
        const clusterDefault = dynamic('');
        // The cluster-wide default resource holds only what was set there (kafka-configs
        // --entity-default --describe).
        if (r.name === '') {
          const configs = [...clusterDefault].filter(([name]) => wanted(name)).map(([name, value]) => ({ name, value, source: ConfigSource.CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER, isDefault: false, documentation: dynamicDoc(name) }));
          return { type: r.type, name: r.name, errorCode: 0, errorMessage: '', configs };
        }
        if (r.name !== String(ctx.brokerId)) {
          return { type: r.type, name: r.name, errorCode: code('INVALID_REQUEST'), errorMessage: `broker ${ctx.brokerId} describes its own configs only (asked for broker '${r.name}'); send the request to that broker`, configs: [] };
        }
        // This broker's settings, a dynamic value over the static one (its own over the cluster's).
        const own = dynamic(r.name);
        const node = ctx.nodeConfigs();
        const onlyDynamic = [...new Set([...clusterDefault.keys(), ...own.keys()])].filter((name) => !node.some((c) => c.name === name)).map((name) => ({ name, value: '', isDefault: true, doc: dynamicDoc(name) }));
        const configs = [...node, ...onlyDynamic]
          .filter((c) => wanted(c.name))
          .map((c) => {
            const value = own.get(c.name) ?? clusterDefault.get(c.name);
            if (value !== undefined) return { name: c.name, value, source: own.has(c.name) ? ConfigSource.CONFIG_SOURCE_DYNAMIC_BROKER : ConfigSource.CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER, isDefault: false, documentation: c.doc };
            return { name: c.name, value: c.value, source: c.isDefault ? ConfigSource.CONFIG_SOURCE_DEFAULT : ConfigSource.CONFIG_SOURCE_STATIC_BROKER, isDefault: c.isDefault, documentation: c.doc };
          });
        return { type: r.type, name: r.name, errorCode: 0, errorMessage: '', configs };
      });
      return { results };
    }),
    incrementalAlterConfigs: forward((c, r, m, o, cb) => c.incrementalAlterConfigs(r, m, o, cb)),
    electLeaders: forward((c, r, m, o, cb) => c.electLeaders(r, m, o, cb)),
    alterPartitionReassignments: forward((c, r, m, o, cb) => c.alterPartitionReassignments(r, m, o, cb)),
    listPartitionReassignments: forward((c, r, m, o, cb) => c.listPartitionReassignments(r, m, o, cb)),
    // The controller describes every endpoint; a client is told only those of its listener.
    describeCluster: unary(async (req: DescribeClusterRequest) => {
      const res = await ctx.controllers.call<DescribeClusterRequest, DescribeClusterResponse>((c, r, m, o, cb) => c.describeCluster(r, m, o, cb), req, 30_000);
      return { ...res, brokers: res.brokers.flatMap((b) => { const endpoints = b.endpoints.filter((e) => e.listener === ctx.listenerName); return endpoints.length === 0 ? [] : [{ ...b, endpoints }]; }) };
    }),
    describeQuorum: forward((c, r, m, o, cb) => c.describeQuorum(r, m, o, cb)),
    // Consumer groups: the coordinator owns all group state; handlers only adapt.
    findCoordinator: unary((req) => ctx.groups.findCoordinator(req, ctx.listenerName)),
    joinGroup: (call, callback) => {
      const clientId = call.metadata.get('client-id')[0];
      const client = { clientId: typeof clientId === 'string' ? clientId : '', clientHost: call.getPeer() };
      ctx.groups.joinGroup(call.request, client).then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(e)),
      );
    },
    syncGroup: unary((req) => ctx.groups.syncGroup(req)),
    heartbeat: unary((req) => ctx.groups.heartbeat(req)),
    leaveGroup: unary((req) => ctx.groups.leaveGroup(req)),
    offsetCommit: unary((req) => ctx.groups.offsetCommit(req)),
    offsetFetch: unary((req) => ctx.groups.offsetFetch(req)),
    listGroups: unary((req) => ctx.groups.listGroups(req)),
    describeGroups: unary((req) => ctx.groups.describeGroups(req)),
    deleteGroups: unary((req) => ctx.groups.deleteGroups(req)),
    offsetDelete: unary((req) => ctx.groups.offsetDelete(req)),
    replicaFetch: (call) => {
      if (ctx.listenerName !== ctx.interBrokerListenerName) {
        // emit('error') ends the call with this status (destroy() would end it without one).
        call.emit('error', toServiceError(new StrandError('CLUSTER_AUTHORIZATION_FAILED', `replica fetches are served on the inter-broker listener ${ctx.interBrokerListenerName} only, not ${ctx.listenerName}`)));
        return;
      }
      const told = new ToldOffsets();
      // A held fetch of a stream that went away stops waiting at once (and drops its listeners).
      const cancel = cancellation();
      let queued = 0;
      let chain: Promise<void> = Promise.resolve();
      const stop = (): void => cancel.cancel();
      call.on('cancelled', stop);
      call.on('error', stop);
      // grpc-js drops a message without calling its write callback once the call has ended.
      call.on('close', stop);
      // The next fetch waits until this answer is handed to HTTP/2: a follower that stops
      // reading holds at most one answer here (as FetchStream), not one per fetch it sends.
      const send = (res: ReplicaFetchResponse): Promise<void> =>
        new Promise<void>((resolve) => {
          told.note(res);
          const off = cancel.onCancel(() => resolve());
          call.write(res, () => {
            off();
            resolve();
          });
        });
      call.on('data', (req: ReplicaFetchRequest) => {
        if (++queued > MAX_QUEUED_REPLICA_FETCHES) {
          cancel.cancel();
          call.emit('error', toServiceError(new StrandError('THROTTLING_QUOTA_EXCEEDED', 'too many replica fetches queued on one stream')));
          return;
        }
        chain = chain.then(async () => {
          const wait = Math.max(0, Math.min(req.maxWaitMs, ctx.config['replica.fetch.wait.max.ms']));
          // A held fetch counts as of its arrival, so the whole hold stays within half of
          // replica.lag.time.max.ms: a live idle follower fetches again well before it would
          // count as lagging.
          const idleHoldMs = Math.min(IDLE_REPLICA_FETCH_HOLD_MS, Math.max(0, ctx.config['replica.lag.time.max.ms'] / 2 - wait));
          const start = performance.now();
          const waitEnd = start + wait;
          const holdEnd = waitEnd + idleHoldMs;
          // Rounds after the first re-examine the same fetch: they count as of its arrival.
          let fetchTimeMs: number | undefined;
          try {
            if (cancel.cancelled()) return; // refused or ended: nothing more goes out on it
            const recordBytesMax = fetchRecordBytesMax(req.topics, (i) => req.topics[i]?.topicId.length ?? 0);
            if (recordBytesMax === null) {
              // The follower sends at most FETCH_MAX_PARTITIONS (ReplicaFetcherManager).
              await send({ correlationId: req.correlationId, errorCode: code('INVALID_REQUEST'), topics: [] });
              return;
            }
            for (;;) {
              if (cancel.cancelled()) return;
              const parts: Partition[] = [];
              const { res, bytes, urgent } = replicaFetchOnce(req, parts, recordBytesMax, fetchTimeMs);
              fetchTimeMs ??= parts[0]?.nowMs();
              const now = performance.now();
              if (bytes > 0 || urgent) {
                await send(res);
                return;
              }
              // Nothing to send. After replica.fetch.wait.max.ms, answer only if the follower
              // would learn something (a high watermark or log start it was not told on this
              // stream), else hold the fetch until holdEnd. Idle partitions then cost no encode,
              // send, decode and refetch of every partition twice a second. The follower counts
              // as caught up as of this fetch's arrival (fetchTimeMs), as if it had fetched
              // then, so holding does not keep a dead follower in the ISR.
              if (now >= waitEnd && (now >= holdEnd || told.hasNews(res))) {
                await send(res);
                return;
              }
              // Every change that can matter here (an append, a high watermark or log start
              // move, a role change, a closed partition) wakes this wait, so the fetch is
              // re-examined on changes and at the two deadlines only, not every
              // replica.fetch.wait.max.ms: with 1,000 partitions each round walks all of them.
              await waitForChange(parts, (now < waitEnd ? waitEnd : holdEnd) - now, cancel);
            }
          } catch (e: unknown) {
            ctx.logger.warn({ replica: req.replicaId, err: e instanceof Error ? e.message : String(e) }, 'replica fetch failed');
            cancel.cancel();
            // emit('error') ends the call with this status; destroy() would end it without one and
            // leave the follower waiting for replica.socket.timeout.ms.
            call.emit('error', toServiceError(e));
          } finally {
            queued--;
          }
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
    },
  };
  server.addService(BrokerService, impl as BrokerServer);
}
