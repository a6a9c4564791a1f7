/**
 * An in-memory twin of a Strand cluster's broker API, for client and CLI tests.
 *
 * Each "broker" is a real grpc-js server on a free loopback port implementing the generated
 * BrokerServer interface, so the client under test goes through the same serialization, HTTP/2
 * and error metadata as against the real broker. All brokers share one in-memory state:
 * topics of partitions, each a log of RecordBatch v2 bytes (validated with @strand/protocol,
 * stamped with offsets and the leader epoch like a real leader does), a leader and leader epoch,
 * idempotent-producer dedup (last 5 batches per producer and partition), fetch long-polling,
 * list offsets, DescribeLogDirs (one directory per broker), the forwarded admin RPCs, and a
 * classic group coordinator (join/sync/heartbeat/leave with generations, session expiry, offset
 * commit fencing, OffsetDelete refusing the topics a member subscribes to), FetchStream (in order, with injectable stream failures, or switched off to
 * answer UNIMPLEMENTED) and ProduceStream (answers tagged with the request's correlation id,
 * optionally delayed so they come back out of order; produce failures break the stream; or
 * switched off to answer UNIMPLEMENTED). The `client-id` metadata of every call is recorded per
 * RPC, and JoinGroup keeps it as the member's client id (DescribeGroups shows it), as the broker
 * does.
 *
 * Fault injection for tests: move a partition's leader (epoch bump, old leader answers
 * NOT_LEADER_OR_FOLLOWER), per-partition produce error codes for the next N requests,
 * per-partition election error codes, topic-level Metadata error codes, "append then lose the response" (the idempotent retry
 * case), and whole-call gRPC failures.
 *
 * It is deliberately simple: one replica's log (the high watermark is the log end offset), no
 * disk, no controller. It is a test double, not a second broker implementation.
 */
import * as grpc from '@grpc/grpc-js';
import {
  AlterConfigOp,
  BrokerService,
  ConfigResourceType,
  ConfigSource,
  ERROR_CODE_METADATA_KEY,
  ElectionType,
  ErrorCode,
  GrpcStatus,
  StrandError,
  TOPIC_CONFIG,
  decodeRecordBatch,
  stampBatch,
  validateBatches,
} from '@strand/protocol';
import type {
  BrokerServer,
  CreateTopicResult,
  DescribeConfigsResult,
  DescribeQuorumResponse,
  FetchRequest,
  FetchResponse,
  HeartbeatRequest,
  JoinGroupResponse,
  QuorumReplicaState,
  SyncGroupResponse,
  ProducePartitionResponse,
  ProduceRequest,
  ProduceResponse,
} from '@strand/protocol';
import { decodeSubscription } from '../../src/consumer/assignors';

export interface MemoryBrokerOptions {
  /** Number of brokers (gRPC servers), ids 1..n. Default 1. */
  brokers?: number;
  clusterId?: string;
}

interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  bytes: Buffer;
}

interface ProducerEntry {
  epoch: number;
  /** Last appended batches: [firstSeq, lastSeq, baseOffset], at most 5 (like Kafka). */
  recent: [number, number, number][];
}

export interface MemoryPartition {
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  /** The ISR Metadata reports (a test sets it); undefined: every replica. */
  isr?: number[];
  batches: StoredBatch[];
  logStartOffset: number;
  logEndOffset: number;
  producers: Map<number, ProducerEntry>;
  waiters: Set<() => void>;
  /** [epoch, start offset] of each leader epoch with records, and the current one from its election, ascending (the leader epoch cache). */
  epochStarts: [number, number][];
}

export interface MemoryTopic {
  name: string;
  topicId: Buffer;
  partitions: MemoryPartition[];
  configs: Map<string, string>;
}

interface Member {
  memberId: string;
  groupInstanceId: string | undefined;
  clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: { name: string; metadata: Buffer }[];
  assignment: Buffer;
  lastHeartbeatMs: number;
  pendingJoin: ((res: JoinGroupResponse) => void) | undefined;
  pendingSync: ((res: SyncGroupResponse) => void) | undefined;
}

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

export interface MemoryGroup {
  groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string;
  protocolName: string;
  leaderId: string;
  members: Map<string, Member>;
  offsets: Map<string, { offset: number; leaderEpoch: number; metadata: string }>;
  rebalanceDeadlineMs: number;
}

interface Node {
  id: number;
  port: number;
  server: grpc.Server;
}

function callError(code: number, message: string): grpc.ServiceError {
  const md = new grpc.Metadata();
  md.set(ERROR_CODE_METADATA_KEY, String(code));
  const e = new Error(message) as grpc.ServiceError;
  e.code = code === ErrorCode.NETWORK_EXCEPTION ? GrpcStatus.UNAVAILABLE : GrpcStatus.FAILED_PRECONDITION;
  e.details = message;
  e.metadata = md;
  return e;
}

const now = (): number => performance.now();

/** Validates a topic config like the controller does; unknown keys are INVALID_CONFIG. */
function topicConfigValue(name: string, value: string): string {
  if (!TOPIC_CONFIG.has(name)) throw new StrandError('INVALID_CONFIG', `Unknown topic config name: ${name}`);
  const v = TOPIC_CONFIG.parseValue(name as Parameters<typeof TOPIC_CONFIG.parseValue>[0], value);
  return Array.isArray(v) ? v.join(',') : String(v);
}

export class MemoryCluster {
  readonly nodes: Node[] = [];
  readonly topics = new Map<string, MemoryTopic>();
  readonly groups = new Map<string, MemoryGroup>();
  readonly clusterId: string;
  /** Produce error codes to answer per "topic-partition", consumed one per request. */
  readonly produceErrors = new Map<string, number[]>();
  /** Fetch error codes to answer per "topic-partition", one per fetch answer naming it (after the leader checks). */
  readonly fetchErrors = new Map<string, number[]>();
  /**
   * Per topic name, the topic-level error code Metadata answers for it (no partitions) until
   * removed: INVALID_TOPIC_EXCEPTION, TOPIC_AUTHORIZATION_FAILED, LEADER_NOT_AVAILABLE...
   */
  readonly metadataTopicErrors = new Map<string, number>();
  /** Per-group error codes DeleteGroups answers first (one per call), as a coordinator that moved would. */
  readonly deleteGroupErrors = new Map<string, number[]>();
  /** Per-group top-level error codes OffsetDelete answers first (one per call). */
  readonly offsetDeleteErrors = new Map<string, number[]>();
  /** Partitions whose next N appends succeed but whose responses are replaced by a network error. */
  readonly loseProduceResponses = new Map<string, number>();
  /**
   * Per "topic-partition", the error code ElectLeaders answers instead of electing (e.g.
   * PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is out of the ISR), until removed.
   */
  readonly electionErrors = new Map<string, number>();
  /** Whole-call failures per RPC name: the next N calls fail with this Kafka code. */
  readonly callFailures = new Map<string, { code: number; count: number }>();
  /** Per produce request received (unary or on a stream), in arrival order: the record bytes of each partition in it. */
  readonly produceRequestSizes: number[][] = [];
  /** RPC call counts per name (tests assert on retries and refreshes). */
  readonly calls = new Map<string, number>();
  /** Per RPC name (streams too), the `client-id` metadata values calls arrived with ('' when absent). */
  readonly clientIds = new Map<string, Set<string>>();
  /** False: FetchStream answers UNIMPLEMENTED (a broker without it; consumers use unary Fetch). */
  fetchStreamEnabled = true;
  /**
   * Awaited before each fetch (unary or on a stream) is answered: a test orders the answers of
   * different brokers with it (deterministic interleaving). Undefined: answered at once.
   */
  fetchHook: ((nodeId: number, request: FetchRequest) => Promise<void>) | undefined;
  /** Awaited before each Heartbeat is answered (a test holds one back: a late answer). */
  heartbeatHook: ((request: HeartbeatRequest) => Promise<void>) | undefined;
  /** False: ProduceStream answers UNIMPLEMENTED (a broker without it; producers use unary Produce). */
  produceStreamEnabled = true;
  /**
   * Delays for the next ProduceStream responses, in request order: a time (ms), or a promise the
   * answer waits for (a gate: deterministic reordering). Answers then come back out of order.
   */
  readonly produceStreamDelays: (number | Promise<void>)[] = [];
  private readonly delayTimers = new Set<NodeJS.Timeout>();
  /** The reason of every member that left with LeaveGroup, in order. */
  readonly leaveReasons: string[] = [];
  /** What DescribeQuorum answers (a test sets it); undefined: controller 1001 alone with every broker caught up. */
  quorum: DescribeQuorumResponse | undefined;
  private readonly callWaiters: { name: string; count: number; resolve: () => void }[] = [];
  private nextProducerId = 1000;
  private nextMemberId = 1;
  /** Member ids handed out with MEMBER_ID_REQUIRED and not used to join yet (the broker's pendingMembers). */
  private readonly pendingMemberIds = new Set<string>();
  private sweepTimer: NodeJS.Timeout | undefined;

  private constructor(options: MemoryBrokerOptions) {
    this.clusterId = options.clusterId ?? 'memory-cluster';
  }

  /** Starts `brokers` gRPC servers on free loopback ports. */
  static async start(options: MemoryBrokerOptions = {}): Promise<MemoryCluster> {
    const c = new MemoryCluster(options);
    const n = options.brokers ?? 1;
    for (let id = 1; id <= n; id++) {
      const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
      server.addService(BrokerService, c.recordingClientIds(c.handlers(id)));
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
      c.nodes.push({ id, port, server });
    }
    c.sweepTimer = setInterval(() => c.sweepSessions(), 20);
    c.sweepTimer.unref();
    return c;
  }

  /** `host:port,...` of every broker. */
  get bootstrap(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  async stop(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    for (const t of this.delayTimers) clearTimeout(t);
    this.delayTimers.clear();
    for (const t of this.topics.values()) for (const p of t.partitions) for (const w of [...p.waiters]) w();
    await Promise.all(this.nodes.map((n) => new Promise<void>((resolve) => n.server.tryShutdown(() => resolve()))));
    for (const n of this.nodes) n.server.forceShutdown();
  }

  /** Stops one broker's gRPC server abruptly (a crash): its connections reset, calls fail. */
  killNode(id: number): void {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no broker ${id}`);
    n.server.forceShutdown();
  }

  createTopic(name: string, partitions: number, replicationFactor = 1, configs: Record<string, string> = {}): MemoryTopic {
    const t: MemoryTopic = { name, topicId: Buffer.from(name.padEnd(16, '_').slice(0, 16)), partitions: [], configs: new Map(Object.entries(configs)) };
    for (let p = 0; p < partitions; p++) t.partitions.push(this.newPartition(p, replicationFactor));
    this.topics.set(name, t);
    return t;
  }

  private newPartition(p: number, rf: number): MemoryPartition {
    const replicas: number[] = [];
    for (let i = 0; i < Math.min(rf, this.nodes.length); i++) replicas.push((this.nodes[(p + i) % this.nodes.length] as Node).id);
    return { partition: p, leaderId: replicas[0] as number, leaderEpoch: 0, replicas, batches: [], logStartOffset: 0, logEndOffset: 0, producers: new Map(), waiters: new Set(), epochStarts: [[0, 0]] };
  }

  partition(topic: string, partition: number): MemoryPartition {
    const p = this.topics.get(topic)?.partitions[partition];
    if (p === undefined) throw new Error(`no partition ${topic}-${partition}`);
    return p;
  }

  /** Moves leadership (as an election would), bumping the leader epoch. */
  moveLeader(topic: string, partition: number, leaderId: number): void {
    const p = this.partition(topic, partition);
    p.leaderId = leaderId;
    p.leaderEpoch++;
    recordLeaderEpoch(p);
  }

  /**
   * An unclean election: the log is cut back to `offset` (at batch granularity: batches ending at
   * or after it go) and a new leader epoch starts there,
   * so records a consumer may already have read vanish (what KIP-320 detects).
   */
  truncateUnclean(topic: string, partition: number, offset: number): void {
    const p = this.partition(topic, partition);
    p.batches = p.batches.filter((b) => b.lastOffset < offset);
    p.logEndOffset = p.batches.length === 0 ? p.logStartOffset : (p.batches[p.batches.length - 1] as StoredBatch).lastOffset + 1;
    p.epochStarts = p.epochStarts.filter(([, start]) => start < p.logEndOffset);
    p.producers.clear();
    p.leaderEpoch++;
    recordLeaderEpoch(p);
  }

  /** Every record of a partition, decoded (for assertions). */
  records(topic: string, partition: number): { offset: number; key: string | null; value: string | null; headers: { key: string; value: string | null }[]; timestamp: number; producerId: number; producerEpoch: number; baseSequence: number }[] {
    const out = [];
    for (const b of this.partition(topic, partition).batches) {
      const d = decodeRecordBatch(b.bytes);
      for (const r of d.records) out.push({ offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, headers: r.headers.map((h) => ({ key: h.key, value: h.value?.toString() ?? null })), timestamp: r.timestamp, producerId: d.producerId, producerEpoch: d.producerEpoch, baseSequence: d.baseSequence });
    }
    return out;
  }

  /** Appends records directly (as another producer would), returning the base offset. */
  append(topic: string, partition: number, batch: Buffer): number {
    const res = this.appendToPartition(this.partition(topic, partition), batch);
    if (res.errorCode !== 0) throw StrandError.fromCode(res.errorCode);
    return res.baseOffset;
  }

  /** Resolves once `name` has been called at least `count` times in total. */
  waitForCalls(name: string, count: number): Promise<void> {
    if ((this.calls.get(name) ?? 0) >= count) return Promise.resolve();
    return new Promise<void>((resolve) => this.callWaiters.push({ name, count, resolve }));
  }

  /** One produce request, unary or on a stream: its response, or the call error it fails with. */
  private produce(nodeId: number, request: ProduceRequest): { error: grpc.ServiceError; response?: undefined } | { error?: undefined; response: ProduceResponse } {
    if (this.count('produce')) return { error: this.failure('produce') };
    this.produceRequestSizes.push(request.topics.flatMap((t) => t.partitions.map((pp) => pp.records.length)));
    let lose = false;
    const topics = request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((pp): ProducePartitionResponse => {
        const res: ProducePartitionResponse = { partition: pp.partition, errorCode: 0, errorMessage: '', baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1 };
        const p = this.topics.get(t.name)?.partitions[pp.partition];
        if (p === undefined) return { ...res, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        if (p.leaderId !== nodeId) return { ...res, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, currentLeaderId: p.leaderId, currentLeaderEpoch: p.leaderEpoch };
        const key = `${t.name}-${pp.partition}`;
        const injected = this.produceErrors.get(key);
        if (injected !== undefined && injected.length > 0) return { ...res, errorCode: injected.shift() as number };
        const maxBytes = this.topics.get(t.name)?.configs.get('max.message.bytes');
        const r = this.appendToPartition(p, Buffer.from(pp.records), maxBytes === undefined ? undefined : Number(maxBytes));
        const toLose = this.loseProduceResponses.get(key) ?? 0;
        if (r.errorCode === 0 && toLose > 0) {
          this.loseProduceResponses.set(key, toLose - 1);
          lose = true;
        }
        return { ...res, errorCode: r.errorCode, errorMessage: r.message, baseOffset: r.baseOffset, logStartOffset: p.logStartOffset };
      }),
    }));
    if (lose) return { error: callError(ErrorCode.NETWORK_EXCEPTION, 'injected: response lost after append') };
    return { response: { topics, throttleTimeMs: 0, correlationId: request.correlationId } };
  }

  private count(name: string): boolean {
    const n = (this.calls.get(name) ?? 0) + 1;
    this.calls.set(name, n);
    for (const w of [...this.callWaiters]) {
      if (w.name === name && n >= w.count) {
        this.callWaiters.splice(this.callWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
    const f = this.callFailures.get(name);
    if (f !== undefined && f.count > 0) {
      f.count--;
      return true;
    }
    return false;
  }

  private failure(name: string): grpc.ServiceError {
    const f = this.callFailures.get(name) as { code: number };
    return callError(f.code, `injected ${name} failure`);
  }

  private appendToPartition(p: MemoryPartition, records: Buffer, maxBatchBytes?: number): { errorCode: number; baseOffset: number; message: string } {
    let views;
    try {
      views = validateBatches(records, maxBatchBytes === undefined ? {} : { maxBatchBytes });
    } catch (e: unknown) {
      return { errorCode: e instanceof StrandError ? e.code : ErrorCode.CORRUPT_MESSAGE, baseOffset: -1, message: String(e) };
    }
    if (views.length === 0) return { errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1, message: 'no batches' };
    let firstOffset = -1;
    for (const v of views) {
      const h = v.header;
      if (h.producerId >= 0) {
        let entry = p.producers.get(h.producerId);
        if (entry !== undefined && h.producerEpoch < entry.epoch) return { errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1, message: `epoch ${h.producerEpoch} < ${entry.epoch}` };
        // As Kafka: a producer with no state here must start at sequence 0.
        if (entry === undefined && h.baseSequence !== 0) return { errorCode: ErrorCode.UNKNOWN_PRODUCER_ID, baseOffset: -1, message: `producer ${h.producerId} epoch ${h.producerEpoch} sequence ${h.baseSequence}: UNKNOWN_PRODUCER_ID` };
        if (entry === undefined || h.producerEpoch > entry.epoch) {
          entry = { epoch: h.producerEpoch, recent: [] };
          p.producers.set(h.producerId, entry);
        }
        const lastSeq = h.baseSequence + h.lastOffsetDelta;
        const dup = entry.recent.find((r) => r[0] === h.baseSequence && r[1] === lastSeq);
        if (dup !== undefined) {
          if (firstOffset < 0) firstOffset = dup[2];
          continue;
        }
        const expected = entry.recent.length === 0 ? 0 : (entry.recent[entry.recent.length - 1] as [number, number, number])[1] + 1;
        if (h.baseSequence !== expected) return { errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, baseOffset: -1, message: `expected sequence ${expected}, got ${h.baseSequence}` };
        entry.recent.push([h.baseSequence, lastSeq, p.logEndOffset]);
        if (entry.recent.length > 5) entry.recent.shift();
      }
      const bytes = Buffer.from(records.subarray(v.position, v.position + v.size));
      stampBatch(bytes, 0, p.logEndOffset, p.leaderEpoch);
      const lastEpoch = p.epochStarts[p.epochStarts.length - 1];
      if (lastEpoch === undefined || lastEpoch[0] < p.leaderEpoch) p.epochStarts.push([p.leaderEpoch, p.logEndOffset]);
      if (firstOffset < 0) firstOffset = p.logEndOffset;
      p.batches.push({ baseOffset: p.logEndOffset, lastOffset: p.logEndOffset + h.lastOffsetDelta, maxTimestamp: h.maxTimestamp, bytes });
      p.logEndOffset += h.lastOffsetDelta + 1;
    }
    for (const w of [...p.waiters]) w();
    return { errorCode: 0, baseOffset: firstOffset, message: '' };
  }

  /**
   * One partition of a fetch. `answer` is the whole answer so far: its bytes left (fetch.max.bytes)
   * and whether a partition already returned data. As the broker (KIP-74): only the first
   * partition with data may exceed max.partition.fetch.bytes and the answer's budget, by its
   * first batch; a later partition whose next batch does not fit gets nothing.
   */
  private fetchPartition(nodeId: number, topic: string, fp: FetchRequest['topics'][number]['partitions'][number], answer: { budget: number; bytes: number }): FetchResponse['topics'][number]['partitions'][number] {
    const base = { partition: fp.partition, highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, divergingEpoch: null as unknown as { epoch: number; endOffset: number }, records: Buffer.alloc(0) };
    const p = this.topics.get(topic)?.partitions[fp.partition];
    if (p === undefined) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
    if (p.leaderId !== nodeId) return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    if (fp.currentLeaderEpoch >= 0 && fp.currentLeaderEpoch < p.leaderEpoch) return { ...base, errorCode: ErrorCode.FENCED_LEADER_EPOCH };
    if (fp.currentLeaderEpoch > p.leaderEpoch) return { ...base, errorCode: ErrorCode.UNKNOWN_LEADER_EPOCH };
    const injected = this.fetchErrors.get(`${topic}-${fp.partition}`);
    if (injected !== undefined && injected.length > 0) return { ...base, errorCode: injected.shift() as number };
    const marks = { highWatermark: p.logEndOffset, lastStableOffset: p.logEndOffset, logStartOffset: p.logStartOffset };
    if (fp.lastFetchedEpoch >= 0 && fp.fetchOffset > 0) {
      // Where the fetcher's last epoch ends in this log (KIP-320), as the broker's leader epoch
      // cache answers (LeaderEpochCache.endOffsetFor): the largest epoch at or below it and the
      // start of the next epoch (the log end for the latest); the requested epoch and the first
      // start when it is older than all; (-1, -1) for an empty cache. Diverging when that epoch
      // is older than the fetcher's or ends before its offset.
      const next = p.epochStarts.find(([e]) => e > fp.lastFetchedEpoch);
      const known = [...p.epochStarts].reverse().find(([e]) => e <= fp.lastFetchedEpoch);
      const latest = p.epochStarts[p.epochStarts.length - 1];
      let end: { epoch: number; endOffset: number };
      if (latest === undefined) end = { epoch: -1, endOffset: -1 };
      else if (next === undefined) end = { epoch: (known as [number, number])[0], endOffset: p.logEndOffset };
      else end = { epoch: known?.[0] ?? fp.lastFetchedEpoch, endOffset: next[1] };
      if (end.epoch < fp.lastFetchedEpoch || end.endOffset < fp.fetchOffset) return { ...base, ...marks, errorCode: 0, divergingEpoch: end };
    }
    if (fp.fetchOffset < p.logStartOffset || fp.fetchOffset > p.logEndOffset) return { ...base, ...marks, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
    if (answer.budget <= 0) return { ...base, ...marks, errorCode: 0 };
    const first = answer.bytes === 0;
    const limit = Math.min(fp.partitionMaxBytes > 0 ? fp.partitionMaxBytes : 1024 * 1024, first ? Math.max(answer.budget, 1) : answer.budget);
    const parts: Buffer[] = [];
    let bytes = 0;
    for (const b of p.batches) {
      if (b.lastOffset < fp.fetchOffset) continue;
      if ((parts.length > 0 || !first) && bytes + b.bytes.length > limit) break;
      parts.push(b.bytes);
      bytes += b.bytes.length;
    }
    answer.budget -= bytes;
    answer.bytes += bytes;
    return { ...base, ...marks, errorCode: 0, records: Buffer.concat(parts) };
  }

  private fetch(nodeId: number, req: FetchRequest, done: (res: FetchResponse) => void): void {
    const deadline = now() + req.maxWaitMs;
    const attempt = (final: boolean): void => {
      const answer = { budget: req.maxBytes > 0 ? req.maxBytes : 50 * 1024 * 1024, bytes: 0 };
      const topics = req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((fp) => this.fetchPartition(nodeId, t.name, fp, answer)) }));
      let total = 0;
      let errors = false;
      for (const t of topics) for (const p of t.partitions) {
        total += p.records.length;
        if (p.errorCode !== 0) errors = true;
      }
      if (final || errors || total >= Math.max(1, req.minBytes) || now() >= deadline) {
        done({ errorCode: 0, throttleTimeMs: 0, topics });
        return;
      }
      // Long-poll: wake on any append to a requested partition, or at the deadline.
      const parts: MemoryPartition[] = [];
      for (const t of req.topics) for (const fp of t.partitions) {
        const p = this.topics.get(t.name)?.partitions[fp.partition];
        if (p !== undefined) parts.push(p);
      }
      let fired = false;
      const wake = (): void => {
        if (fired) return;
        fired = true;
        clearTimeout(timer);
        for (const p of parts) p.waiters.delete(wake);
        attempt(true);
      };
      const timer = setTimeout(wake, Math.max(0, deadline - now()));
      for (const p of parts) p.waiters.add(wake);
    };
    attempt(false);
  }

  // ---- groups ------------------------------------------------------------------------------

  private group(id: string): MemoryGroup {
    let g = this.groups.get(id);
    if (g === undefined) {
      g = { groupId: id, state: 'Empty', generationId: 0, protocolType: '', protocolName: '', leaderId: '', members: new Map(), offsets: new Map(), rebalanceDeadlineMs: 0 };
      this.groups.set(id, g);
    }
    return g;
  }

  private prepareRebalance(g: MemoryGroup): void {
    if (g.state === 'PreparingRebalance') return;
    g.state = 'PreparingRebalance';
    let timeout = 0;
    for (const m of g.members.values()) {
      timeout = Math.max(timeout, m.rebalanceTimeoutMs);
      if (m.pendingSync !== undefined) {
        m.pendingSync({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, errorMessage: '', protocolType: g.protocolType, protocolName: g.protocolName, assignment: Buffer.alloc(0) });
        m.pendingSync = undefined;
      }
    }
    g.rebalanceDeadlineMs = now() + timeout;
  }

  /** Completes the join phase when every member has rejoined (or the rebalance timed out). */
  private maybeCompleteJoin(g: MemoryGroup, timedOut: boolean): void {
    if (g.state !== 'PreparingRebalance') return;
    const members = [...g.members.values()];
    if (!timedOut && members.some((m) => m.pendingJoin === undefined)) return;
    for (const m of members) if (m.pendingJoin === undefined) g.members.delete(m.memberId);
    if (g.members.size === 0) {
      g.state = 'Empty';
      g.generationId++;
      return;
    }
    g.generationId++;
    const all = [...g.members.values()];
    const first = all[0] as Member;
    const common = first.protocols.map((p) => p.name).find((name) => all.every((m) => m.protocols.some((p) => p.name === name)));
    g.protocolName = common ?? '';
    if (!g.members.has(g.leaderId)) g.leaderId = first.memberId;
    g.state = 'CompletingRebalance';
    for (const m of all) {
      const reply = m.pendingJoin as (res: JoinGroupResponse) => void;
      m.pendingJoin = undefined;
      m.lastHeartbeatMs = now();
      reply({
        errorCode: 0,
        errorMessage: '',
        generationId: g.generationId,
        protocolType: g.protocolType,
        protocolName: g.protocolName,
        leader: g.leaderId,
        memberId: m.memberId,
        members: m.memberId === g.leaderId ? all.map((x) => ({ memberId: x.memberId, groupInstanceId: x.groupInstanceId, metadata: x.protocols.find((p) => p.name === g.protocolName)?.metadata ?? Buffer.alloc(0) })) : [],
      });
    }
  }

  private sweepSessions(): void {
    const t = now();
    for (const g of this.groups.values()) {
      if (g.state === 'PreparingRebalance' && t >= g.rebalanceDeadlineMs) this.maybeCompleteJoin(g, true);
      for (const m of [...g.members.values()]) {
        if (m.pendingJoin === undefined && t - m.lastHeartbeatMs > m.sessionTimeoutMs) {
          g.members.delete(m.memberId);
          if (g.members.size === 0) {
            g.state = 'Empty';
          } else {
            this.prepareRebalance(g);
            this.maybeCompleteJoin(g, false);
          }
        }
      }
    }
  }

  private checkMember(g: MemoryGroup | undefined, memberId: string, generationId: number): number {
    if (g === undefined || !g.members.has(memberId)) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== g.generationId) return ErrorCode.ILLEGAL_GENERATION;
    return 0;
  }

  private coordinatorOf(groupId: string): Node {
    let h = 0;
    for (let i = 0; i < groupId.length; i++) h = (h * 31 + groupId.charCodeAt(i)) | 0;
    return this.nodes[Math.abs(h) % this.nodes.length] as Node;
  }

  // ---- the service -------------------------------------------------------------------------

  /** Every handler, first noting the call's `client-id` metadata in `clientIds`. */
  private recordingClientIds(handlers: BrokerServer): BrokerServer {
    const out: Record<string, unknown> = {};
    for (const [name, handler] of Object.entries(handlers) as [string, (call: { metadata: grpc.Metadata }, ...rest: unknown[]) => void][]) {
      out[name] = (call: { metadata: grpc.Metadata }, ...rest: unknown[]): void => {
        const ids = this.clientIds.get(name) ?? new Set<string>();
        ids.add(clientIdOf(call.metadata));
        this.clientIds.set(name, ids);
        handler(call, ...rest);
      };
    }
    return out as unknown as BrokerServer;
  }

  private handlers(nodeId: number): BrokerServer {
    const guard = <Req, Res>(name: string, fn: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> => (call, cb) => {
      if (this.count(name)) return cb(this.failure(name));
      try {
        cb(null, fn(call.request));
      } catch (e: unknown) {
        cb(e instanceof StrandError ? callError(e.code, e.message) : callError(-1, String(e)));
      }
    };
    const notCoordinator = (groupId: string): boolean => this.coordinatorOf(groupId).id !== nodeId;
    // Answered from the group's state when the hook (if any) lets it through, not when it arrived.
    const heartbeat = guard('heartbeat', (req: HeartbeatRequest) => {
      if (notCoordinator(req.groupId)) return { errorCode: ErrorCode.NOT_COORDINATOR, errorMessage: '' };
      const g = this.groups.get(req.groupId);
      const check = this.checkMember(g, req.memberId, req.generationId);
      if (check !== 0 || g === undefined) return { errorCode: check, errorMessage: '' };
      (g.members.get(req.memberId) as Member).lastHeartbeatMs = now();
      if (g.state === 'PreparingRebalance') return { errorCode: ErrorCode.REBALANCE_IN_PROGRESS, errorMessage: '' };
      return { errorCode: 0, errorMessage: '' };
    });
    return {
      // The memory broker has no replicas to move: reassignments are accepted as no-ops.
      alterPartitionReassignments: guard('alterPartitionReassignments', () => ({ results: [] })),
      listPartitionReassignments: guard('listPartitionReassignments', () => ({ reassignments: [] })),
      metadata: guard('metadata', (req) => {
        const names = req.topics.length === 0 ? [...this.topics.keys()] : req.topics;
        return {
          clusterId: this.clusterId,
          controllerId: 1,
          brokers: this.nodes.map((n) => ({ nodeId: n.id, host: '127.0.0.1', port: n.port })),
          topics: names.map((name) => {
            const injected = this.metadataTopicErrors.get(name);
            if (injected !== undefined) return { errorCode: injected, name, topicId: Buffer.alloc(0), partitions: [] };
            const t = this.topics.get(name);
            if (t === undefined) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, topicId: Buffer.alloc(0), partitions: [] };
            return { errorCode: 0, name, topicId: t.topicId, partitions: t.partitions.map((p) => ({ errorCode: 0, partition: p.partition, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr ?? p.replicas, offlineReplicas: [] })) };
          }),
        };
      }),
      produce: (call, cb) => {
        const r = this.produce(nodeId, call.request);
        if (r.error !== undefined) cb(r.error);
        else cb(null, r.response);
      },
      produceStream: (call) => {
        if (!this.produceStreamEnabled) {
          call.emit('error', Object.assign(new Error('this twin plays a broker without ProduceStream'), { code: grpc.status.UNIMPLEMENTED, details: 'this twin plays a broker without ProduceStream (produceStreamEnabled = false)' }));
          return;
        }
        this.count('produceStreamOpen');
        let failed = false;
        call.on('data', (req: ProduceRequest) => {
          if (failed) return;
          // Requests count and fail as unary 'produce' calls do; a failure (injected, or a lost
          // response) breaks the whole stream, as a transport error would.
          const r = this.produce(nodeId, req);
          if (r.error !== undefined) {
            failed = true;
            call.emit('error', r.error);
            return;
          }
          const delay = this.produceStreamDelays.shift();
          if (delay === undefined) {
            call.write(r.response);
            return;
          }
          if (typeof delay !== 'number') {
            void delay.then(() => {
              if (!failed && !call.destroyed) call.write(r.response);
            });
            return;
          }
          const timer = setTimeout(() => {
            this.delayTimers.delete(timer);
            if (!failed && !call.destroyed) call.write(r.response);
          }, delay);
          this.delayTimers.add(timer);
        });
        call.on('end', () => call.end());
      },
      fetch: (call, cb) => {
        if (this.count('fetch')) return cb(this.failure('fetch'));
        void (this.fetchHook?.(nodeId, call.request) ?? Promise.resolve()).then(() => this.fetch(nodeId, call.request, (res) => cb(null, res)));
      },
      fetchStream: (call) => {
        if (!this.fetchStreamEnabled) {
          // emit('error') ends the call with this status; destroy() would end it without any.
          call.emit('error', Object.assign(new Error('this twin plays a broker without FetchStream'), { code: grpc.status.UNIMPLEMENTED, details: 'this twin plays a broker without FetchStream (fetchStreamEnabled = false)' }));
          return;
        }
        this.count('fetchStreamOpen');
        // Like the broker: requests are answered one after another, in order.
        let chain = Promise.resolve();
        let failed = false;
        call.on('data', (req: FetchRequest) => {
          // An injected failure breaks the whole stream, as a transport error would.
          if (this.count('fetchStream')) {
            failed = true;
            call.emit('error', this.failure('fetchStream'));
            return;
          }
          chain = chain.then(() => this.fetchHook?.(nodeId, req)).then(() => new Promise<void>((resolve) => this.fetch(nodeId, req, (res) => {
            if (!failed && !call.destroyed) call.write(res);
            resolve();
          })));
        });
        call.on('end', () => void chain.then(() => call.end()));
      },
      listOffsets: guard('listOffsets', (req) => ({
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((lp) => {
            const p = this.topics.get(t.name)?.partitions[lp.partition];
            const none = { partition: lp.partition, timestamp: -1, offset: -1, leaderEpoch: -1 };
            if (p === undefined) return { ...none, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
            if (p.leaderId !== nodeId) return { ...none, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
            if (lp.timestamp === -1) return { ...none, errorCode: 0, offset: p.logEndOffset, leaderEpoch: p.leaderEpoch };
            if (lp.timestamp === -2) return { ...none, errorCode: 0, offset: p.logStartOffset, leaderEpoch: p.leaderEpoch };
            if (lp.timestamp === -3) {
              // KIP-734: the first record with the largest timestamp (-1 in an empty partition).
              let max: { offset: number; timestamp: number } | undefined;
              for (const b of p.batches) {
                for (const r of decodeRecordBatch(b.bytes).records) if (r.offset >= p.logStartOffset && (max === undefined || r.timestamp > max.timestamp)) max = { offset: r.offset, timestamp: r.timestamp };
              }
              return max === undefined ? { ...none, errorCode: 0 } : { ...none, errorCode: 0, ...max, leaderEpoch: p.leaderEpoch };
            }
            for (const b of p.batches) {
              if (b.maxTimestamp < lp.timestamp || b.lastOffset < p.logStartOffset) continue;
              for (const r of decodeRecordBatch(b.bytes).records) {
                if (r.timestamp >= lp.timestamp && r.offset >= p.logStartOffset) return { ...none, errorCode: 0, offset: r.offset, timestamp: r.timestamp, leaderEpoch: p.leaderEpoch };
              }
            }
            // No record at or after the timestamp: offset -1, as the broker (and Kafka) answers.
            return { ...none, errorCode: 0 };
          }),
        })),
      })),
      offsetForLeaderEpoch: guard('offsetForLeaderEpoch', (req) => ({
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((op) => {
            const p = this.topics.get(t.name)?.partitions[op.partition];
            if (p === undefined) return { partition: op.partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, leaderEpoch: -1, endOffset: -1 };
            return { partition: op.partition, errorCode: 0, leaderEpoch: p.leaderEpoch, endOffset: p.logEndOffset };
          }),
        })),
      })),
      initProducerId: guard('initProducerId', (req) => {
        if (req.producerId >= 0) return { errorCode: 0, errorMessage: '', producerId: req.producerId, producerEpoch: req.producerEpoch + 1 };
        return { errorCode: 0, errorMessage: '', producerId: this.nextProducerId++, producerEpoch: 0 };
      }),
      deleteRecords: guard('deleteRecords', (req) => ({
        topics: req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((dp) => {
            const p = this.topics.get(t.name)?.partitions[dp.partition];
            if (p === undefined) return { partition: dp.partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, lowWatermark: -1 };
            const target = dp.offset === -1 ? p.logEndOffset : dp.offset;
            if (target > p.logEndOffset) return { partition: dp.partition, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, lowWatermark: p.logStartOffset };
            p.logStartOffset = Math.max(p.logStartOffset, target);
            return { partition: dp.partition, errorCode: 0, lowWatermark: p.logStartOffset };
          }),
        })),
      })),
      // One log directory per broker, holding every partition this broker is a replica of: size is
      // the bytes of its batches, the lag 0 (the twin keeps one log per partition), the volume a
      // fixed 1 TiB with 400 GiB usable. Bad topic names and negative partitions are refused as
      // the broker refuses them.
      describeLogDirs: guard('describeLogDirs', (req) => {
        for (const t of req.topics) {
          if (!/^[a-zA-Z0-9._-]{1,249}$/.test(t.topic) || t.topic === '.' || t.topic === '..') throw new StrandError('INVALID_TOPIC_EXCEPTION', `DescribeLogDirs: '${t.topic}' is not a legal topic name`);
          if (t.partitions.some((p) => p < 0)) throw new StrandError('INVALID_REQUEST', `DescribeLogDirs: a partition of ${t.topic} is negative`);
        }
        const asked = (topic: string, partition: number): boolean => req.topics.length === 0 || req.topics.some((t) => t.topic === topic && (t.partitions.length === 0 || t.partitions.includes(partition)));
        const topics = [...this.topics.values()]
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((t) => ({ name: t.name, partitions: t.partitions.filter((p) => p.replicas.includes(nodeId) && asked(t.name, p.partition)).map((p) => ({ partition: p.partition, sizeBytes: p.batches.reduce((n, b) => n + b.bytes.length, 0), offsetLag: 0, isFuture: false })) }))
          .filter((t) => t.partitions.length > 0);
        return { results: [{ errorCode: 0, errorMessage: '', logDir: `/memory/broker-${nodeId}/logs`, topics, totalBytes: 2 ** 40, usableBytes: 400 * 2 ** 30 }] };
      }),
      createTopics: guard('createTopics', (req) => ({
        topics: req.topics.map((requested): CreateTopicResult => {
          // -1: the cluster defaults (num.partitions, default.replication.factor), 1 here.
          const ct = { ...requested, numPartitions: requested.numPartitions === -1 ? 1 : requested.numPartitions, replicationFactor: requested.replicationFactor === -1 ? 1 : requested.replicationFactor };
          const res = { name: ct.name, topicId: Buffer.alloc(0), errorMessage: '', numPartitions: ct.numPartitions, replicationFactor: ct.replicationFactor };
          if (!/^[a-zA-Z0-9._-]{1,249}$/.test(ct.name)) return { ...res, errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: `invalid topic name '${ct.name}'` };
          if (this.topics.has(ct.name)) return { ...res, errorCode: ErrorCode.TOPIC_ALREADY_EXISTS, errorMessage: `Topic '${ct.name}' already exists.` };
          if (ct.numPartitions < 1) return { ...res, errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: 'Number of partitions must be at least 1' };
          if (ct.replicationFactor < 1 || ct.replicationFactor > this.nodes.length) return { ...res, errorCode: ErrorCode.INVALID_REPLICATION_FACTOR, errorMessage: `Replication factor ${ct.replicationFactor} larger than available brokers ${this.nodes.length}` };
          const configs: Record<string, string> = {};
          try {
            for (const c of ct.configs) configs[c.name] = topicConfigValue(c.name, c.value);
          } catch (e: unknown) {
            return { ...res, errorCode: ErrorCode.INVALID_CONFIG, errorMessage: e instanceof Error ? e.message : String(e) };
          }
          if (ct.assignments.length > 0) {
            // A replica assignment names each partition's replicas (counts are -1 then).
            const known = new Set(this.nodes.map((n) => n.id));
            const bad = ct.assignments.find((a, i) => a.partition !== i || a.brokerIds.length === 0 || a.brokerIds.some((b) => !known.has(b)));
            if (bad !== undefined) return { ...res, errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: `invalid replica assignment of partition ${bad.partition}` };
            if (!req.validateOnly) {
              const t = this.createTopic(ct.name, ct.assignments.length, 1, configs);
              for (const [i, a] of ct.assignments.entries()) Object.assign(t.partitions[i] as MemoryPartition, { replicas: [...a.brokerIds], leaderId: a.brokerIds[0] });
            }
            return { ...res, errorCode: 0, numPartitions: ct.assignments.length, replicationFactor: ct.assignments[0]?.brokerIds.length ?? 0, topicId: this.topics.get(ct.name)?.topicId ?? Buffer.alloc(0) };
          }
          if (!req.validateOnly) this.createTopic(ct.name, ct.numPartitions, ct.replicationFactor, configs);
          return { ...res, errorCode: 0, topicId: this.topics.get(ct.name)?.topicId ?? Buffer.alloc(0) };
        }),
      })),
      deleteTopics: guard('deleteTopics', (req) => ({
        topics: req.names.map((name) => {
          if (!this.topics.delete(name)) return { name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `Topic '${name}' does not exist` };
          return { name, errorCode: 0, errorMessage: '' };
        }),
      })),
      createPartitions: guard('createPartitions', (req) => ({
        topics: req.topics.map((cp) => {
          const t = this.topics.get(cp.name);
          if (t === undefined) return { name: cp.name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'no such topic' };
          if (cp.count <= t.partitions.length) return { name: cp.name, errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: `Topic currently has ${t.partitions.length} partitions, ${cp.count} would not be an increase.` };
          const rf = t.partitions[0]?.replicas.length ?? 1;
          if (cp.assignments.length > 0) {
            // As the controller: one list per new partition, numbered on from the current count, of the topic's replication factor.
            const known = new Set(this.nodes.map((n) => n.id));
            const ok = cp.assignments.length === cp.count - t.partitions.length && cp.assignments.every((a, i) => a.partition === t.partitions.length + i && a.brokerIds.length === rf && new Set(a.brokerIds).size === rf && a.brokerIds.every((b) => known.has(b)));
            if (!ok) return { name: cp.name, errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: 'invalid replica assignment of the new partitions' };
          }
          if (!req.validateOnly) {
            for (let p = t.partitions.length; p < cp.count; p++) {
              const part = this.newPartition(p, rf);
              const assigned = cp.assignments.find((a) => a.partition === p)?.brokerIds;
              if (assigned !== undefined) Object.assign(part, { replicas: [...assigned], leaderId: assigned[0] });
              t.partitions.push(part);
            }
          }
          return { name: cp.name, errorCode: 0, errorMessage: '' };
        }),
      })),
      describeConfigs: guard('describeConfigs', (req) => ({
        results: req.resources.map((r): DescribeConfigsResult => {
          const base = { type: r.type, name: r.name, errorMessage: '' };
          if (r.type !== ConfigResourceType.CONFIG_RESOURCE_TOPIC) return { ...base, errorCode: 0, configs: [] };
          const t = this.topics.get(r.name);
          if (t === undefined) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, configs: [] };
          const defaults = TOPIC_CONFIG.defaults() as Record<string, unknown>;
          const names = r.keys.length > 0 ? r.keys : TOPIC_CONFIG.names();
          return {
            ...base,
            errorCode: 0,
            configs: names.map((name) => {
              const set = t.configs.get(name);
              const dflt = defaults[name];
              return { name, value: set ?? (Array.isArray(dflt) ? dflt.join(',') : String(dflt)), source: set !== undefined ? ConfigSource.CONFIG_SOURCE_DYNAMIC : ConfigSource.CONFIG_SOURCE_DEFAULT, isDefault: set === undefined, documentation: '' };
            }),
          };
        }),
      })),
      incrementalAlterConfigs: guard('incrementalAlterConfigs', (req) => ({
        results: req.resources.map((r) => {
          const base = { type: r.type, name: r.name };
          const t = this.topics.get(r.name);
          if (t === undefined) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: 'no such topic' };
          try {
            const next = new Map(t.configs);
            for (const c of r.configs) {
              if (c.op === AlterConfigOp.ALTER_CONFIG_DELETE) next.delete(c.name);
              else if (c.op === AlterConfigOp.ALTER_CONFIG_APPEND || c.op === AlterConfigOp.ALTER_CONFIG_SUBTRACT) {
                // As the controller: list keys only, from the current value or the key's default.
                const def = TOPIC_CONFIG.has(c.name) ? TOPIC_CONFIG.spec[c.name as keyof typeof TOPIC_CONFIG.spec] : undefined;
                if (def?.type !== 'list') throw new StrandError('INVALID_CONFIG', `Can't ${c.op === AlterConfigOp.ALTER_CONFIG_APPEND ? 'APPEND' : 'SUBTRACT'} to key ${c.name} because its type is not LIST.`);
                const items = (v: string): string[] => v.split(',').map((x) => x.trim()).filter((x) => x !== '');
                const list = items(next.get(c.name) ?? def.default.join(','));
                const given = items(c.value);
                const result = c.op === AlterConfigOp.ALTER_CONFIG_APPEND ? [...list, ...given.filter((x) => !list.includes(x))] : list.filter((x) => !given.includes(x));
                next.set(c.name, topicConfigValue(c.name, result.join(',')));
              } else next.set(c.name, topicConfigValue(c.name, c.value));
            }
            if (!req.validateOnly) t.configs = next;
          } catch (e: unknown) {
            return { ...base, errorCode: ErrorCode.INVALID_CONFIG, errorMessage: e instanceof Error ? e.message : String(e) };
          }
          return { ...base, errorCode: 0, errorMessage: '' };
        }),
      })),
      electLeaders: guard('electLeaders', (req) => {
        const targets = req.topics.length > 0 ? req.topics : [...this.topics.values()].map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partition) }));
        const results = [];
        for (const tp of targets) {
          for (const partition of tp.partitions) {
            const p = this.topics.get(tp.topic)?.partitions[partition];
            const injected = this.electionErrors.get(`${tp.topic}-${partition}`);
            if (p === undefined) results.push({ topic: tp.topic, partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: '' });
            else if (injected !== undefined) results.push({ topic: tp.topic, partition, errorCode: injected, errorMessage: 'injected' });
            // Every leader here is live: an unclean election is never needed.
            else if (p.leaderId === p.replicas[0] || req.type === ElectionType.ELECTION_UNCLEAN) results.push({ topic: tp.topic, partition, errorCode: ErrorCode.ELECTION_NOT_NEEDED, errorMessage: '' });
            else {
              this.moveLeader(tp.topic, partition, p.replicas[0] as number);
              results.push({ topic: tp.topic, partition, errorCode: 0, errorMessage: '' });
            }
          }
        }
        return { results };
      }),
      describeCluster: guard('describeCluster', () => ({
        clusterId: this.clusterId,
        activeControllerId: 1001,
        metadataOffset: 42,
        raftTerm: 1,
        brokers: this.nodes.map((n) => ({ brokerId: n.id, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: n.port }], fenced: false, inControlledShutdown: false, lastHeartbeatAgeMs: 5 })),
        controllers: [{ nodeId: 1001, host: '127.0.0.1', port: 9193, role: 'leader', lag: 0 }],
      })),
      // The twin's quorum: controller 1001 alone, the brokers observing, all at offset 42 (as
      // describeCluster says), unless a test sets `quorum`.
      describeQuorum: guard('describeQuorum', () => {
        if (this.quorum !== undefined) return this.quorum;
        const at = (replicaId: number): QuorumReplicaState => ({ replicaId, logEndOffset: 42, lastFetchTimestamp: Date.now(), lastCaughtUpTimestamp: Date.now() });
        return { errorCode: 0, errorMessage: '', leaderId: 1001, leaderEpoch: 1, highWatermark: 42, currentVoters: [at(1001)], observers: this.nodes.map((n) => at(n.id)) };
      }),
      findCoordinator: guard('findCoordinator', (req) => {
        const n = this.coordinatorOf(req.key);
        return { errorCode: 0, errorMessage: '', nodeId: n.id, host: '127.0.0.1', port: n.port };
      }),
      joinGroup: (call, cb) => {
        if (this.count('joinGroup')) return cb(this.failure('joinGroup'));
        const req = call.request;
        const fail = (errorCode: number, memberId = ''): void => cb(null, { errorCode, errorMessage: '', generationId: -1, protocolType: '', protocolName: '', leader: '', memberId, members: [] });
        if (notCoordinator(req.groupId)) return fail(ErrorCode.NOT_COORDINATOR);
        if (req.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
        const g = this.group(req.groupId);
        if (g.members.size > 0 && g.protocolType !== req.protocolType) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
        let memberId = req.memberId;
        if (memberId === '') {
          // KIP-394: hand out an id; the member joins again with it.
          const id = `member-${this.nextMemberId++}`;
          this.pendingMemberIds.add(id);
          return fail(ErrorCode.MEMBER_ID_REQUIRED, id);
        }
        let m = g.members.get(memberId);
        // As the broker: an id that is neither a member's nor just handed out belongs to a member
        // the group removed (session expiry, LeaveGroup); it must join again without one.
        if (m === undefined && !this.pendingMemberIds.delete(memberId)) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
        if (m === undefined) {
          m = { memberId, groupInstanceId: req.groupInstanceId, clientId: clientIdOf(call.metadata), sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: req.rebalanceTimeoutMs, protocols: [], assignment: Buffer.alloc(0), lastHeartbeatMs: now(), pendingJoin: undefined, pendingSync: undefined };
          g.members.set(memberId, m);
        }
        m.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
        m.sessionTimeoutMs = req.sessionTimeoutMs;
        m.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
        g.protocolType = req.protocolType;
        m.pendingJoin = (res) => cb(null, res);
        this.prepareRebalance(g);
        this.maybeCompleteJoin(g, false);
      },
      syncGroup: (call, cb) => {
        if (this.count('syncGroup')) return cb(this.failure('syncGroup'));
        const req = call.request;
        const reply = (errorCode: number, assignment: Buffer = Buffer.alloc(0)): void => cb(null, { errorCode, errorMessage: '', protocolType: g?.protocolType ?? '', protocolName: g?.protocolName ?? '', assignment });
        const g = this.groups.get(req.groupId);
        if (notCoordinator(req.groupId)) return reply(ErrorCode.NOT_COORDINATOR);
        const check = this.checkMember(g, req.memberId, req.generationId);
        if (check !== 0 || g === undefined) return reply(check);
        if (g.state === 'PreparingRebalance') return reply(ErrorCode.REBALANCE_IN_PROGRESS);
        const m = g.members.get(req.memberId) as Member;
        if (g.state === 'Stable') return reply(0, m.assignment);
        if (req.memberId === g.leaderId) {
          for (const a of req.assignments) {
            const target = g.members.get(a.memberId);
            if (target !== undefined) target.assignment = Buffer.from(a.assignment);
          }
          g.state = 'Stable';
          for (const other of g.members.values()) {
            if (other.pendingSync !== undefined) {
              const s = other.pendingSync;
              other.pendingSync = undefined;
              s({ errorCode: 0, errorMessage: '', protocolType: g.protocolType, protocolName: g.protocolName, assignment: other.assignment });
            }
          }
          return reply(0, m.assignment);
        }
        m.pendingSync = (res) => cb(null, res);
      },
      heartbeat: (call, cb) => void (this.heartbeatHook?.(call.request) ?? Promise.resolve()).then(() => heartbeat(call, cb)),
      leaveGroup: guard('leaveGroup', (req) => {
        if (notCoordinator(req.groupId)) return { errorCode: ErrorCode.NOT_COORDINATOR, errorMessage: '', members: [] };
        const g = this.groups.get(req.groupId);
        // Each member answered on its own (LeaveGroup v3+): an instance id names the static member
        // holding it, and must match a member id given with it.
        const members = req.members.map((lm) => {
          const result = (errorCode: number): { memberId: string; groupInstanceId?: string; errorCode: number } => ({ memberId: lm.memberId, ...(lm.groupInstanceId === undefined ? {} : { groupInstanceId: lm.groupInstanceId }), errorCode });
          const id = lm.groupInstanceId === undefined ? lm.memberId : [...(g?.members.values() ?? [])].find((x) => x.groupInstanceId === lm.groupInstanceId)?.memberId;
          if (g === undefined || id === undefined) return result(ErrorCode.UNKNOWN_MEMBER_ID);
          if (lm.memberId !== '' && lm.memberId !== id) return result(ErrorCode.FENCED_INSTANCE_ID);
          const m = g.members.get(id);
          if (m === undefined) return result(ErrorCode.UNKNOWN_MEMBER_ID);
          this.leaveReasons.push(lm.reason);
          g.members.delete(id);
          m.pendingJoin?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, errorMessage: '', generationId: -1, protocolType: '', protocolName: '', leader: '', memberId: '', members: [] });
          m.pendingSync?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, errorMessage: '', protocolType: '', protocolName: '', assignment: Buffer.alloc(0) });
          return result(0);
        });
        if (g !== undefined) {
          if (g.members.size === 0) g.state = 'Empty';
          else {
            this.prepareRebalance(g);
            this.maybeCompleteJoin(g, false);
          }
        }
        return { errorCode: 0, errorMessage: '', members };
      }),
      offsetCommit: guard('offsetCommit', (req) => {
        const all = (errorCode: number): { errorCode: number; topics: { name: string; partitions: { partition: number; errorCode: number }[] }[] } => ({ errorCode: 0, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode })) })) });
        if (notCoordinator(req.groupId)) return all(ErrorCode.NOT_COORDINATOR);
        const g = this.group(req.groupId);
        if (req.generationId >= 0 || req.memberId !== '') {
          const check = this.checkMember(g, req.memberId, req.generationId);
          if (check !== 0) return all(check);
          // As Kafka: members of the current generation may commit while the group prepares a
          // rebalance (commit on revoke), not while it waits for the leader's assignment.
          if (g.state === 'CompletingRebalance') return all(ErrorCode.REBALANCE_IN_PROGRESS);
        } else if (g.members.size > 0) return all(ErrorCode.UNKNOWN_MEMBER_ID);
        for (const t of req.topics) for (const p of t.partitions) g.offsets.set(`${t.name}\u0000${p.partition}`, { offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.metadata });
        return all(0);
      }),
      offsetFetch: guard('offsetFetch', (req) => {
        if (notCoordinator(req.groupId)) return { errorCode: ErrorCode.NOT_COORDINATOR, topics: [] };
        const g = this.groups.get(req.groupId);
        const byTopic = new Map<string, { partition: number; committedOffset: number; committedLeaderEpoch: number; metadata: string; errorCode: number }[]>();
        const add = (topic: string, partition: number): void => {
          const o = g?.offsets.get(`${topic}\u0000${partition}`);
          let list = byTopic.get(topic);
          if (list === undefined) {
            list = [];
            byTopic.set(topic, list);
          }
          list.push({ partition, committedOffset: o?.offset ?? -1, committedLeaderEpoch: o?.leaderEpoch ?? -1, metadata: o?.metadata ?? '', errorCode: 0 });
        };
        if (req.topics.length > 0) for (const t of req.topics) for (const p of t.partitions) add(t.name, p);
        else if (g !== undefined)
          for (const k of g.offsets.keys()) {
            const [topic, partition] = k.split('\u0000') as [string, string];
            add(topic, Number(partition));
          }
        return { errorCode: 0, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) };
      }),
      listGroups: guard('listGroups', (req) => ({
        errorCode: 0,
        groups: [...this.groups.values()].filter((g) => req.statesFilter.length === 0 || req.statesFilter.includes(g.state)).map((g) => ({ groupId: g.groupId, protocolType: g.protocolType || 'consumer', groupState: g.state })),
      })),
      describeGroups: guard('describeGroups', (req) => ({
        groups: req.groups.map((id) => {
          const g = this.groups.get(id);
          if (g === undefined) return { errorCode: 0, groupId: id, groupState: 'Dead', protocolType: '', protocolData: '', members: [], generationId: -1 };
          return {
            errorCode: 0,
            groupId: id,
            groupState: g.state,
            protocolType: g.protocolType,
            protocolData: g.protocolName,
            generationId: g.generationId,
            members: [...g.members.values()].map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: '/127.0.0.1', memberMetadata: m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? Buffer.alloc(0), memberAssignment: m.assignment })),
          };
        }),
      })),
      deleteGroups: guard('deleteGroups', (req) => ({
        results: req.groups.map((id) => {
          const injected = this.deleteGroupErrors.get(id)?.shift();
          if (injected !== undefined) return { groupId: id, errorCode: injected };
          const g = this.groups.get(id);
          if (g === undefined) return { groupId: id, errorCode: ErrorCode.GROUP_ID_NOT_FOUND };
          if (g.members.size > 0) return { groupId: id, errorCode: ErrorCode.NON_EMPTY_GROUP };
          this.groups.delete(id);
          return { groupId: id, errorCode: 0 };
        }),
      })),
      // The broker's rules (GroupStateMachine.deleteOffsets), simplified: a group with members
      // keeps the offsets of the topics its members subscribe to (decoded from their metadata).
      offsetDelete: guard('offsetDelete', (req) => {
        if (notCoordinator(req.groupId)) return { errorCode: ErrorCode.NOT_COORDINATOR, topics: [] };
        const injected = this.offsetDeleteErrors.get(req.groupId)?.shift();
        if (injected !== undefined) return { errorCode: injected, topics: [] };
        const g = this.groups.get(req.groupId);
        if (g === undefined) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] };
        if (g.members.size > 0 && g.protocolType !== 'consumer') return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] };
        const subscribed = new Set<string>();
        for (const m of g.members.values()) for (const p of m.protocols) for (const t of decodeSubscription(p.metadata).topics) subscribed.add(t);
        return {
          errorCode: 0,
          topics: req.topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((partition) => {
              if (this.topics.get(t.name)?.partitions[partition] === undefined) return { partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
              if (subscribed.has(t.name)) return { partition, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC };
              g.offsets.delete(`${t.name}\u0000${partition}`);
              return { partition, errorCode: 0 };
            }),
          })),
        };
      }),
      replicaFetch: (call) => {
        call.destroy(new Error('replication is not part of the memory broker'));
      },
    };
  }
}

/** The `client-id` metadata entry as the broker reads it (broker-service.ts joinGroup): '' when absent. */
function clientIdOf(metadata: grpc.Metadata): string {
  const v = metadata.get('client-id')[0];
  return typeof v === 'string' ? v : '';
}

/**
 * A new leader records its epoch at the log end before writing in it, as the broker does
 * (PartitionLog.assignLeaderEpoch): entries from that offset on go (one led but never written in).
 */
function recordLeaderEpoch(p: MemoryPartition): void {
  p.epochStarts = p.epochStarts.filter(([e, start]) => e < p.leaderEpoch && start < p.logEndOffset);
  p.epochStarts.push([p.leaderEpoch, p.logEndOffset]);
}
