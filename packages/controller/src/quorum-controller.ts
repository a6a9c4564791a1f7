/**
 * The quorum controller: the metadata state machine on a RaftNode. Every controller applies the
 * committed metadata log to its image and serves the metadata stream; the Raft leader is the
 * active controller and the only one that writes.
 *
 * Writes are sequenced: one operation at a time computes its records from the applied image,
 * proposes them as one Raft entry and answers once that entry is applied here. So each operation
 * sees the effects of every earlier one, and an answer is never given for a change that is not
 * committed. After winning an election the new active controller first passes a read barrier
 * (everything committed is applied) before it decides anything, and gives every registered broker
 * a fresh session (liveness is volatile state of the active controller, as in KRaft).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  StrandError,
  decodeMetadataRecordBatch,
  encodeMetadataRecordBatch,
  type AlterPartitionRequest,
  type AlterPartitionTopicResult,
  type BrokerHeartbeatRequest,
  type CreatableTopic,
  type CreatePartitionsTopic,
  type CreateTopicResult,
  type DescribeQuorumResponse,
  type MetadataDelta,
  type QuorumReplicaState,
  type MetadataRecord,
  type RegisterBrokerRequest,
} from '@strand/protocol';
import { NotLeaderError, ProposalDroppedError, RaftNode, Role, type LogStorage, type StateMachine, type Transport } from '@strand/raft';
import type { ControllerConfig } from './controller-config';
import {
  allocateProducerIds,
  alterPartition,
  alterReassignments,
  alterBrokerConfigs,
  alterTopicConfigs,
  autoRebalance,
  brokerHeartbeat,
  createPartitions,
  createTopics,
  describeTopicConfigs,
  deleteTopics,
  electLeaders,
  fenceBrokers,
  registerBroker,
  type ConfigChange,
  type TopicConfigDescription,
  type ErrorInfo,
  type HeartbeatResult,
  type Operation,
  type PartitionResultInfo,
  type ProducerIdBlock,
  type RegisterResult,
  type TopicResultInfo,
} from './controller-logic';
import { MetadataImage, topicIdFromBytes, type TopicId } from './metadata-image';
import { encodeImageSnapshot, restoreImageSnapshot } from './metadata-snapshot';

export interface ControllerEndpoint {
  host: string;
  port: number;
}

/** What the controller reports through its optional logger. */
export interface ControllerLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface QuorumControllerOptions {
  /** This controller's node id (Kafka's node.id). */
  nodeId: number;
  /** Every voter's address (controller.quorum.voters), this node included. */
  voters: ReadonlyMap<number, ControllerEndpoint>;
  storage: LogStorage;
  transport: Transport;
  config: ControllerConfig;
  /**
   * Raft tick length (ms) and election timeout (ticks); omitted, RaftNode's defaults (10 ms, 50
   * ticks). strand server passes controller.quorum.tick.ms (10) and the election timeout in ticks (100).
   */
  tickMs?: number;
  electionTicks?: number;
  /** Overrides the config's controller.snapshot.interval.entries (tests). */
  snapshotEveryEntries?: number;
  /** How long a metadata change may take to commit before it fails REQUEST_TIMED_OUT (ms; default 10000). */
  requestTimeoutMs?: number;
  /**
   * Largest metadata batch (one Raft entry), in bytes; default 1 MiB. Larger non-atomic
   * changes are committed in several batches (see Operation.atomic), larger atomic ones fail.
   */
  maxRecordBatchBytes?: number;
  seed?: number;
  /** Topic ids (default: random UUID bytes). */
  newTopicId?: () => TopicId;
  /** The cluster id written by the first active controller (default: a random UUID). */
  clusterId?: string;
  logger?: ControllerLogger;
}

/** Kafka's QuorumController.MAX_RECORDS_PER_BATCH: the most records one metadata batch carries. */
export const MAX_RECORDS_PER_BATCH = 10_000;

const DEFAULT_MAX_RECORD_BATCH_BYTES = 1 << 20;

/**
 * `records`, in order, encoded as metadata batches of at most MAX_RECORDS_PER_BATCH records and
 * `maxBytes` bytes each (halving a batch until it fits). A single record over `maxBytes` stays a
 * batch of its own, which Raft then refuses.
 */
export function splitRecordBatches(records: readonly MetadataRecord[], maxBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const split = (from: number, to: number): void => {
    const batch = encodeMetadataRecordBatch({ records: records.slice(from, to) });
    if (batch.byteLength <= maxBytes || to - from === 1) {
      out.push(batch);
      return;
    }
    const mid = from + Math.ceil((to - from) / 2);
    split(from, mid);
    split(mid, to);
  };
  for (let i = 0; i < records.length; i += MAX_RECORDS_PER_BATCH) split(i, Math.min(records.length, i + MAX_RECORDS_PER_BATCH));
  return out;
}

/** Thrown (and sent to clients) when this controller is not the active one. */
export class NotControllerError extends StrandError {
  constructor(
    readonly activeControllerId: number,
    readonly activeController: ControllerEndpoint | undefined,
  ) {
    super('NOT_CONTROLLER', activeControllerId < 0 ? 'no active controller is known yet' : `the active controller is ${activeControllerId}${activeController ? ` at ${activeController.host}:${activeController.port}` : ''}`);
    this.name = 'NotControllerError';
  }
}

interface RetainedBatch {
  offset: number;
  records: MetadataRecord[];
}

export type DeltaListener = (delta: MetadataDelta) => void;

export class QuorumController {
  private readonly raft: RaftNode;
  private readonly opts: QuorumControllerOptions;
  private readonly maxBatchBytes: number;
  private image: MetadataImage = MetadataImage.EMPTY;
  private readonly retained: RetainedBatch[] = [];
  /** The retained batches cover every offset after this one. */
  private retainedFrom = -1;
  private readonly listeners = new Set<DeltaListener>();
  private writeChain: Promise<unknown> = Promise.resolve();
  /** Raft term in which this node last passed its read barrier as leader (-1: not active). */
  private activeTerm = -1;
  /** Monotonic ms of each broker's last heartbeat, as seen by this (active) controller. */
  private readonly lastContact = new Map<number, number>();
  /**
   * Each broker's metadata progress from its heartbeats to this active controller, for
   * DescribeQuorum's observers: the offset it last reported applied, when (wall clock), and when
   * that offset last reached ours; only entries of the current Raft term are reported.
   */
  private readonly observed = new Map<number, { term: number; offset: number; lastMs: number; caughtUpMs: number }>();
  private timers: NodeJS.Timeout[] = [];
  /** Monotonic ms of the last session check (-1: none yet). */
  private lastSessionCheck = -1;
  /** A fencing write is queued or running. */
  private fencing = false;
  private stopped = false;
  private readonly newTopicId: () => TopicId;
  /** The last snapshot delta made and its image (see snapshotDelta). */
  private snapshotMemo: { readonly image: MetadataImage; readonly delta: MetadataDelta } | null = null;

  constructor(opts: QuorumControllerOptions) {
    this.opts = opts;
    this.newTopicId = opts.newTopicId ?? ((): TopicId => randomBytes(16).toString('hex'));
    const sm: StateMachine = {
      apply: (index, data) => this.applyBatch(index, data),
      // Both over several event-loop turns (metadata-snapshot.ts): the image is immutable, so the
      // one current at the call is the snapshot at RaftNode's captured index, while later
      // batches are applied; a restore holds RaftNode's loop (nothing applied after it) until done.
      snapshot: () => {
        const image = this.image;
        const memo = this.snapshotMemo?.image === image ? this.snapshotMemo.delta.records : undefined;
        return encodeImageSnapshot(image, memo === undefined ? {} : { records: memo });
      },
      restore: async (data) => {
        const { image, records } = await restoreImageSnapshot(data);
        this.image = image;
        this.retained.length = 0;
        this.retainedFrom = image.offset;
        // Streams that need a snapshot of this image share these records (snapshotDelta).
        const delta: MetadataDelta = { snapshot: true, offset: image.offset, records };
        this.snapshotMemo = { image, delta };
        this.publish(delta);
      },
    };
    this.maxBatchBytes = opts.maxRecordBatchBytes ?? DEFAULT_MAX_RECORD_BATCH_BYTES;
    this.raft = new RaftNode({
      maxProposalBytes: this.maxBatchBytes,
      id: String(opts.nodeId),
      storage: opts.storage,
      transport: opts.transport,
      stateMachine: sm,
      bootstrapVoters: [...opts.voters.keys()].map(String),
      ...(opts.tickMs === undefined ? {} : { tickMs: opts.tickMs }),
      ...(opts.electionTicks === undefined ? {} : { electionTicks: opts.electionTicks }),
      snapshotEveryEntries: opts.snapshotEveryEntries ?? opts.config['controller.snapshot.interval.entries'],
      ...(opts.seed === undefined ? {} : { seed: opts.seed }),
      ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    });
  }

  async start(): Promise<void> {
    await this.raft.start();
    this.raft.onLeaderChange((s) => {
      if (s.role !== Role.Leader && this.activeTerm !== -1) {
        this.activeTerm = -1;
        for (const l of [...this.deactivationListeners]) l();
      }
      this.opts.logger?.info({ quorumRole: s.role, quorumLeader: s.leader, term: s.term }, 'controller quorum role changed');
      // A new leader activates at once (barrier, cluster id, fresh sessions) so brokers are not fenced by a gap.
      if (s.role === Role.Leader) void this.write(() => ({ records: [], finish: () => undefined })).catch(() => undefined);
    });
    const fenceEvery = this.opts.config['controller.fence.check.interval.ms'];
    this.timers.push(setInterval(() => this.checkSessions(), fenceEvery));
    if (this.opts.config['auto.leader.rebalance.enable']) {
      this.timers.push(setInterval(() => void this.write((image) => ({ records: autoRebalance(image, this.opts.config['leader.imbalance.per.broker.percentage']), finish: () => undefined, atomic: false })).catch(() => undefined), this.opts.config['leader.imbalance.check.interval.seconds'] * 1000));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.raft.stop();
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------------
  // state machine

  private applyBatch(index: number, data: Uint8Array): void {
    const batch = decodeMetadataRecordBatch(data);
    this.image = this.image.apply(index, batch.records);
    this.retained.push({ offset: index, records: batch.records });
    const max = this.opts.config['controller.metadata.retained.batches'];
    if (this.retained.length > max) {
      const dropped = this.retained.splice(0, this.retained.length - max);
      this.retainedFrom = (dropped[dropped.length - 1] as RetainedBatch).offset;
    }
    this.publish({ snapshot: false, offset: index, records: batch.records });
  }

  /**
   * The snapshot delta of the current image, made once per image: every broker that reconnects
   * before the next batch (all of them after a failover) gets the same object, so the image is
   * turned into records once (and encoded once: controller-service memoizes by delta), not once
   * per broker, each 20-35 ms of this loop at 10,000 partitions. Shared: must not be modified.
   */
  private snapshotDelta(): MetadataDelta {
    const image = this.image;
    if (this.snapshotMemo?.image !== image) this.snapshotMemo = { image, delta: { snapshot: true, offset: image.offset, records: image.toRecords() } };
    return this.snapshotMemo.delta;
  }

  /**
   * Hands `delta` to every subscriber. It runs inside the Raft node's apply: a subscriber that
   * throws would fail-stop this controller's Raft node, so it is dropped (a stream reconnects).
   */
  private publish(delta: MetadataDelta): void {
    for (const l of this.listeners) {
      try {
        l(delta);
      } catch (e: unknown) {
        this.listeners.delete(l);
        this.opts.logger?.warn({ err: e instanceof Error ? e.message : String(e), offset: delta.offset }, 'metadata subscriber failed; dropped');
      }
    }
  }

  /** The applied metadata image (committed state as of `image.offset`). */
  get metadata(): MetadataImage {
    return this.image;
  }

  /**
   * Streams the metadata log after `afterOffset`: a snapshot first if that offset is older than
   * what is retained (or -1), then retained batches, then every batch as it is applied.
   */
  subscribe(afterOffset: number, listener: DeltaListener): () => void {
    if (afterOffset < this.retainedFrom || afterOffset < 0 || afterOffset > this.image.offset) {
      if (this.image.offset >= 0) listener(this.snapshotDelta());
    } else {
      for (const b of this.retained) if (b.offset > afterOffset) listener({ snapshot: false, offset: b.offset, records: b.records });
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // -------------------------------------------------------------------------------------------
  // activity

  get nodeId(): number {
    return this.opts.nodeId;
  }

  /** The active controller's id as this node knows it (-1 unknown). */
  get activeControllerId(): number {
    const leader = this.raft.status().leader;
    return leader === '' ? -1 : Number(leader);
  }

  /** Log index of a change of ours that timed out with an unknown outcome (-1: none); see settle(). */
  private unsettledIndex = -1;
  /** The term in which that change was proposed. */
  private unsettledTerm = -1;

  /**
   * Calls `listener` each time this controller stops being the active one (it was deposed, or
   * stepped down without a quorum). Returns a function that removes it.
   */
  onDeactivate(listener: () => void): () => void {
    this.deactivationListeners.add(listener);
    return () => this.deactivationListeners.delete(listener);
  }

  private readonly deactivationListeners = new Set<() => void>();

  get isActive(): boolean {
    return this.raft.isLeader && this.activeTerm === this.raft.status().term;
  }

  raftStatus(): ReturnType<RaftNode['status']> {
    return this.raft.status();
  }

  /** NOT_CONTROLLER, naming the active controller as far as this one knows it. */
  notControllerError(): NotControllerError {
    return this.notController();
  }

  private notController(): NotControllerError {
    const id = this.activeControllerId;
    return new NotControllerError(id === this.opts.nodeId ? -1 : id, this.opts.voters.get(id));
  }

  /**
   * Makes this node ready to decide: leader, everything committed applied, no change of its own
   * with an unknown outcome pending, cluster id written.
   */
  private async ensureActive(): Promise<boolean> {
    if (this.stopped || !this.raft.isLeader) throw this.notController();
    const term = this.raft.status().term;
    // Only a change of this term can still be pending: one from an earlier term is either in this
    // leader's log (committed by the read barrier below) or overwritten for good.
    if (this.unsettledIndex >= 0 && this.unsettledTerm === term) await this.settle(term);
    if (this.activeTerm === term) return false;
    // One activation per term. A read (or a second write path) arriving while the first one
    // activates waits for it instead of activating again: two activations each wrote a cluster
    // record when there was none, each with its own random id, so a broker registered between
    // the two kept the first id and was refused (INCONSISTENT_CLUSTER_ID) ever after. The waiter
    // then passes its own barrier: the activation's was taken before its call.
    const pending = this.activation;
    if (pending !== null && pending.term === term) {
      await pending.done;
      return false;
    }
    const done = this.activate(term);
    this.activation = { term, done };
    try {
      await done;
    } finally {
      if (this.activation?.done === done) this.activation = null;
    }
    return true;
  }

  /** The activation in progress, if any (see ensureActive). */
  private activation: { term: number; done: Promise<void> } | null = null;

  /** Activates this leader in `term`: barrier, fresh broker sessions, the cluster id if none. */
  private async activate(term: number): Promise<void> {
    await this.confirmLeadership(term);
    this.unsettledIndex = -1;
    this.activeTerm = term;
    // Liveness is not replicated: every broker gets a full session from now.
    const now = performance.now();
    this.lastContact.clear();
    for (const id of this.image.brokers.keys()) this.lastContact.set(id, now);
    this.opts.logger?.info({ term, metadataOffset: this.image.offset }, 'active controller');
    if (this.image.clusterId === '') await this.commit(encodeMetadataRecordBatch({ records: [{ cluster: { clusterId: this.opts.clusterId ?? randomUUID() } }] }));
  }

  /**
   * Passes a read barrier (ReadIndex: a majority still follows this leader, and everything
   * committed is applied) and checks the term did not change meanwhile. An answer that commits
   * nothing needs it: a leader deposed without knowing it (cut off, or paused) would otherwise
   * answer from a stale image.
   */
  private async confirmLeadership(term: number): Promise<void> {
    if (this.stopped || !this.raft.isLeader || this.raft.status().term !== term) throw this.notController();
    try {
      await this.raft.readBarrier();
    } catch (e: unknown) {
      throw this.mapRaftError(e);
    }
    if (this.stopped || !this.raft.isLeader || this.raft.status().term !== term) throw this.notController();
  }

  /**
   * Waits until the proposal that timed out at `unsettledIndex` is applied (or overwritten): a
   * decision taken from an image without it could contradict it once it commits (a second
   * record for a topic the retry of a timed-out CreateTopics already created would crash every
   * controller applying it). Kafka's controller resigns on such a failure; waiting here keeps
   * the same guarantee without an election.
   */
  private async settle(term: number): Promise<void> {
    const deadline = performance.now() + (this.opts.requestTimeoutMs ?? 10_000);
    while (this.raft.status().applied < this.unsettledIndex) {
      if (this.stopped || !this.raft.isLeader || this.raft.status().term !== term) throw this.notController();
      if (performance.now() > deadline) throw new StrandError('REQUEST_TIMED_OUT', `an earlier metadata change (log index ${this.unsettledIndex}) is still not settled; retry later`);
      try {
        await this.raft.readBarrier();
      } catch (e: unknown) {
        throw this.mapRaftError(e);
      }
      if (this.raft.status().applied < this.unsettledIndex) await new Promise((r) => setTimeout(r, this.opts.tickMs ?? 10));
    }
    this.unsettledIndex = -1;
  }

  private mapRaftError(e: unknown): Error {
    if (e instanceof NotLeaderError) return this.notController();
    if (e instanceof ProposalDroppedError) return new StrandError('REQUEST_TIMED_OUT', `the metadata change may or may not have been committed: ${e.message}`, { cause: e });
    if (e instanceof StrandError) return e;
    return new StrandError('UNKNOWN_SERVER_ERROR', e instanceof Error ? e.message : String(e), { cause: e });
  }

  private async commit(batch: Uint8Array): Promise<void> {
    try {
      await this.raft.propose(batch);
    } catch (e: unknown) {
      if (e instanceof ProposalDroppedError && e.index >= 0) {
        this.unsettledIndex = Math.max(this.unsettledIndex, e.index);
        this.unsettledTerm = this.activeTerm;
      }
      throw this.mapRaftError(e);
    }
  }

  /** Runs one write operation after every earlier one; see the file comment. */
  write<T>(build: (image: MetadataImage) => Operation<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const confirmed = await this.ensureActive();
      // The term this controller activated in (-1 if it lost leadership since): a later term it
      // may lead by now has not passed its activation.
      const term = this.activeTerm;
      const op = build(this.image);
      if (op.records.length > 0) {
        // In order; a failure leaves the earlier entries committed (op.atomic === false only).
        for (const batch of op.atomic === false ? splitRecordBatches(op.records, this.maxBatchBytes) : [encodeMetadataRecordBatch({ records: op.records })]) await this.commit(batch);
      } else if (!confirmed) await this.confirmLeadership(term);
      return op.finish(this.image);
    };
    const result = this.writeChain.then(run, run);
    this.writeChain = result.catch(() => undefined);
    return result;
  }

  /** A linearizable read of the image (fails with NOT_CONTROLLER off the active controller). */
  async read<T>(f: (image: MetadataImage) => T): Promise<T> {
    if (!(await this.ensureActive())) await this.confirmLeadership(this.activeTerm);
    return f(this.image);
  }

  // -------------------------------------------------------------------------------------------
  // broker lifecycle

  private sessionAlive(brokerId: number): boolean {
    const t = this.lastContact.get(brokerId);
    return t !== undefined && performance.now() - t < this.opts.config['broker.session.timeout.ms'];
  }

  registerBroker(req: RegisterBrokerRequest): Promise<RegisterResult> {
    return this.write((image) => {
      const op = registerBroker(image, req, (id) => this.sessionAlive(id));
      return {
        ...op, // atomic: false, so a registration moving many partitions is committed in several batches
        finish: (after) => {
          const res = op.finish(after);
          if (res.errorCode === 0) this.lastContact.set(req.brokerId, performance.now());
          return res;
        },
      };
    });
  }

  brokerHeartbeat(req: BrokerHeartbeatRequest): Promise<HeartbeatResult> {
    return this.write((image) => {
      const b = image.brokers.get(req.brokerId);
      if (b !== undefined && b.epoch === req.brokerEpoch) {
        this.lastContact.set(req.brokerId, performance.now());
        this.observe(req.brokerId, req.currentMetadataOffset, image.offset);
      }
      return brokerHeartbeat(image, req.brokerId, req.brokerEpoch, req.currentMetadataOffset, req.wantShutDown);
    });
  }

  /** Fences brokers whose sessions expired (runs on a timer while active). */
  private checkSessions(): void {
    // One fencing write at a time: while commits are slow (no quorum, a deposed leader) a write
    // queued every check would pile up ahead of the heartbeats that keep sessions alive.
    const now = performance.now();
    // A stalled process (SIGSTOP, a long pause) heard no heartbeat meanwhile, and the ones that
    // arrived are still unread: the stall does not count against any session.
    const interval = this.opts.config['controller.fence.check.interval.ms'];
    const stall = this.lastSessionCheck < 0 ? 0 : now - this.lastSessionCheck - interval;
    this.lastSessionCheck = now;
    if (stall > interval) for (const [id, t] of this.lastContact) this.lastContact.set(id, t + stall);
    if (!this.isActive || this.fencing) return;
    const timeout = this.opts.config['broker.session.timeout.ms'];
    const expired: number[] = [];
    for (const b of this.image.brokers.values()) {
      if (b.fenced) continue;
      const t = this.lastContact.get(b.id);
      if (t === undefined || now - t >= timeout) expired.push(b.id);
    }
    if (expired.length === 0) return;
    this.opts.logger?.warn({ brokers: expired, sessionTimeoutMs: timeout }, 'fencing brokers whose sessions expired');
    this.fencing = true;
    void this.write((image) => fenceBrokers(image, expired.filter((id) => {
      const t = this.lastContact.get(id);
      return t === undefined || performance.now() - t >= timeout;
    })))
      .catch(() => undefined)
      .finally(() => {
        this.fencing = false;
      });
  }

  alterPartition(req: AlterPartitionRequest): Promise<AlterPartitionTopicResult[]> {
    return this.write((image) => {
      const ops = req.topics.map((t) => ({ topicId: t.topicId, op: alterPartition(image, req.brokerId, req.brokerEpoch, topicIdFromBytes(t.topicId), t.partitions) }));
      return {
        records: ops.flatMap((o) => o.op.records),
        finish: (after) => ops.map((o) => ({ topicId: o.topicId, partitions: o.op.finish(after) })),
      };
    });
  }

  allocateProducerIds(brokerId: number, brokerEpoch: number): Promise<ProducerIdBlock> {
    return this.write((image) => allocateProducerIds(image, brokerId, brokerEpoch, this.opts.config['producer.id.block.size']));
  }

  // -------------------------------------------------------------------------------------------
  // administration

  createTopics(topics: readonly CreatableTopic[], validateOnly: boolean): Promise<CreateTopicResult[]> {
    return this.write((image) => createTopics(image, topics, validateOnly, this.opts.config, this.newTopicId));
  }

  deleteTopics(names: readonly string[]): Promise<TopicResultInfo[]> {
    return this.write((image) => deleteTopics(image, names, this.opts.config));
  }

  createPartitions(topics: readonly CreatePartitionsTopic[], validateOnly: boolean): Promise<TopicResultInfo[]> {
    return this.write((image) => createPartitions(image, topics, validateOnly));
  }

  alterTopicConfigs(topic: string, changes: readonly ConfigChange[], validateOnly: boolean): Promise<ErrorInfo> {
    return this.write((image) => alterTopicConfigs(image, topic, changes, validateOnly));
  }

  /** Dynamic broker configs: `broker` '' is the cluster-wide default, else a broker id. */
  alterBrokerConfigs(broker: string, changes: readonly ConfigChange[], validateOnly: boolean): Promise<ErrorInfo> {
    return this.write((image) => alterBrokerConfigs(image, broker, changes, validateOnly));
  }

  alterReassignments(targets: readonly { topic: string; partition: number; replicas: readonly number[] | null }[]): Promise<PartitionResultInfo[]> {
    return this.write((image) => alterReassignments(image, targets));
  }

  electLeaders(type: 'preferred' | 'unclean', targets: readonly { topic: string; partition: number }[] | 'all'): Promise<PartitionResultInfo[]> {
    return this.write((image) => electLeaders(image, type, targets));
  }

  /** Topic configs with defaults filled in; `keys` empty means all (see describeTopicConfigs). */
  describeTopicConfigs(image: MetadataImage, topic: string, keys: readonly string[]): TopicConfigDescription[] {
    return describeTopicConfigs(image, topic, keys);
  }

  private observe(brokerId: number, offset: number, ours: number): void {
    const term = this.raft.status().term;
    const now = Date.now();
    const prev = this.observed.get(brokerId);
    const caughtUpMs = offset >= ours ? now : prev !== undefined && prev.term === term ? prev.caughtUpMs : -1;
    this.observed.set(brokerId, { term, offset, lastMs: now, caughtUpMs });
  }

  /**
   * The metadata quorum as this leader sees it (Kafka's DescribeQuorum): voters with their log
   * end offsets and last contact (the leader itself: its own log end, now), and observers: Raft
   * learners, and brokers with the metadata offset they last reported in a heartbeat (a broker
   * follows the metadata log on its own stream even when it shares a process with a voter).
   * Active controller only.
   */
  describeQuorum(): DescribeQuorumResponse {
    if (!this.isActive) throw this.notController();
    const status = this.raft.status();
    const contact = this.raft.peerContact();
    const now = Date.now();
    const replica = (id: string): QuorumReplicaState => {
      if (id === status.id) return { replicaId: Number(id), logEndOffset: status.lastIndex, lastFetchTimestamp: now, lastCaughtUpTimestamp: now };
      const c = contact.get(id);
      return { replicaId: Number(id), logEndOffset: status.progress[id]?.match ?? -1, lastFetchTimestamp: c?.lastResponseMs ?? -1, lastCaughtUpTimestamp: c?.lastCaughtUpMs ?? -1 };
    };
    const brokers = [...this.image.brokers.keys()].sort((a, b) => a - b).map((id): QuorumReplicaState => {
      const o = this.observed.get(id);
      return o === undefined || o.term !== status.term ? { replicaId: id, logEndOffset: -1, lastFetchTimestamp: -1, lastCaughtUpTimestamp: -1 } : { replicaId: id, logEndOffset: o.offset, lastFetchTimestamp: o.lastMs, lastCaughtUpTimestamp: o.caughtUpMs };
    });
    return {
      errorCode: 0,
      errorMessage: '',
      leaderId: Number(status.id),
      leaderEpoch: status.term,
      highWatermark: status.commit,
      currentVoters: [...status.voters].sort((a, b) => Number(a) - Number(b)).map(replica),
      observers: [...[...status.learners].sort((a, b) => Number(a) - Number(b)).map(replica), ...brokers],
    };
  }

  /** Seconds since each broker's last heartbeat, as seen here (active controller only). */
  lastHeartbeatAgeMs(brokerId: number): number {
    const t = this.lastContact.get(brokerId);
    return this.isActive && t !== undefined ? Math.round(performance.now() - t) : -1;
  }
}
