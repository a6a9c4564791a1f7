/**
 * The group coordinator of one broker: the I/O driver around GroupStateMachine. For every
 * `__consumer_offsets` partition this broker leads it keeps one shard: the partition's groups,
 * loaded from the log when leadership arrives (COORDINATOR_LOAD_IN_PROGRESS meanwhile), dropped
 * when it leaves (parked requests answered NOT_COORDINATOR). Requests for a group go to the
 * shard of `groupPartitionFor(groupId)`; a broker not leading that partition answers
 * NOT_COORDINATOR, so the client looks the coordinator up again (FindCoordinator).
 *
 * Writes: each Ready append becomes one RecordBatch produced with acks=all through
 * `Partition.produce`, issued synchronously in Ready order, so the log order is the state
 * machine's append order; its outcome is fed back with `onAppended` (only if the shard that
 * issued it is still current: a new leadership epoch means a new shard, loaded from the log).
 *
 * Timers: one interval drives `tick` (sessions, rebalance and sync deadlines) of every shard and,
 * every offsets.retention.check.interval.ms, offsets expiry. Time is wall-clock time (commit and
 * state timestamps are persisted and compared after a failover), read monotonically (`nowMs`).
 */
import { randomUUID } from 'node:crypto';
import {
  CoordinatorType,
  StrandError,
  batchSizeAt,
  decodeRecordBatch,
  encodeRecordBatch,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DeleteGroupsRequest,
  type DeleteGroupsResponse,
  type DescribeGroupsRequest,
  type DescribeGroupsResponse,
  type ErrorName,
  type FindCoordinatorRequest,
  type FindCoordinatorResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinGroupRequest,
  type JoinGroupResponse,
  type LeaveGroupRequest,
  type LeaveGroupResponse,
  type ListGroupsRequest,
  type ListGroupsResponse,
  type OffsetCommitRequest,
  type OffsetCommitResponse,
  type OffsetDeleteRequest,
  type OffsetDeleteResponse,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type SyncGroupRequest,
  type SyncGroupResponse,
} from '@strand/protocol';
import { ErrorCode } from '@strand/protocol';
import type { MetadataImage } from '@strand/controller';
import type { PartitionLog } from '@strand/storage';
import type { BrokerConfig } from '../server/broker-config';
import type { ProduceResult } from '../server/partition';
import { groupPartitionFor } from './group-partitioner';
import { GroupStateMachine, type GroupConfig, type GroupReady, type GroupReply } from './group-state-machine';

export const OFFSETS_TOPIC = '__consumer_offsets';

/** How often shards tick (ms): the granularity of session and rebalance deadlines. */
const TICK_INTERVAL_MS = 100;
/** Wait before retrying a load that failed (e.g. a read error) while still leader (ms). */
const LOAD_RETRY_MS = 1000;
/** Bound on requests parked in the coordinator (joins, syncs, commits awaiting acks). */
const MAX_PARKED_REQUESTS = 100_000;
/** Bound on groups named in one DescribeGroups / DeleteGroups / LeaveGroup request. */
const MAX_GROUPS_PER_REQUEST = 10_000;
/** Bound on partitions named in one OffsetDelete request (their tombstones go as one record batch). */
const MAX_PARTITIONS_PER_OFFSET_DELETE = 10_000;

export interface GroupCoordinatorLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** What the coordinator uses of a hosted __consumer_offsets replica (server/Partition is one). */
export interface OffsetsPartition {
  readonly isLeader: boolean;
  readonly leaderEpoch: number;
  readonly log: Pick<PartitionLog, 'logStartOffset' | 'logEndOffset' | 'read'>;
  /** Appends as leader; resolves once acks=all is satisfied, or with the error code. */
  produce(records: Buffer, acks: -1, timeoutMs: number): Promise<ProduceResult>;
}

/** What the coordinator uses of the replica manager: the applied image and the hosted replicas. */
export interface OffsetsReplicas {
  readonly metadataImage: { topicByName(name: string): { readonly partitions: ReadonlyMap<number, unknown> } | undefined } | null;
  partitionByName(topic: string, partition: number): OffsetsPartition | undefined;
}

export interface GroupCoordinatorHost {
  brokerId: number;
  config: BrokerConfig;
  replicas: OffsetsReplicas;
  /** The listener whose endpoint FindCoordinator answers when the caller names none. */
  listenerName: string;
  image(): MetadataImage | null;
  /** Forwards a CreateTopics to the active controller. */
  createTopics(req: CreateTopicsRequest): Promise<CreateTopicsResponse>;
  logger: GroupCoordinatorLogger;
}

interface Shard {
  partition: number;
  leaderEpoch: number;
  part: OffsetsPartition;
  /** Null while loading. */
  sm: GroupStateMachine | null;
}

const code = (name: ErrorName): number => ErrorCode[name];

/** The response type of each kind of GroupReply. */
interface ResponseOf {
  join: JoinGroupResponse;
  sync: SyncGroupResponse;
  heartbeat: HeartbeatResponse;
  leave: LeaveGroupResponse;
  commit: OffsetCommitResponse;
  delete: { groupId: string; errorCode: number };
  deleteOffsets: OffsetDeleteResponse;
}

/** The GroupConfig of the pure core from the broker's keys. */
export function groupConfigOf(config: BrokerConfig): GroupConfig {
  if (config['group.min.session.timeout.ms'] > config['group.max.session.timeout.ms']) {
    throw new StrandError('INVALID_CONFIG', `group.min.session.timeout.ms (${config['group.min.session.timeout.ms']}) exceeds group.max.session.timeout.ms (${config['group.max.session.timeout.ms']})`);
  }
  return {
    minSessionTimeoutMs: config['group.min.session.timeout.ms'],
    maxSessionTimeoutMs: config['group.max.session.timeout.ms'],
    initialRebalanceDelayMs: config['group.initial.rebalance.delay.ms'],
    maxSize: config['group.max.size'],
    maxGroups: config['group.coordinator.max.groups'],
    offsetMetadataMaxBytes: config['offset.metadata.max.bytes'],
    offsetsRetentionMs: config['offsets.retention.minutes'] * 60_000,
  };
}

export class GroupCoordinator {
  private readonly groupConfig: GroupConfig;
  private readonly shards = new Map<number, Shard>();
  private readonly waiters = new Map<number, (r: GroupReply) => void>();
  private nextRequestId = 1;
  private timer: NodeJS.Timeout | null = null;
  /**
   * Wall-clock time read monotonically: anchored to Date.now() once, then advanced by
   * performance.now(). Timestamps persisted in records (commits, state changes) are comparable
   * across brokers and restarts, while a clock step (NTP) can neither expire every session at once
   * nor keep dead members alive.
   */
  private readonly epochMs = Date.now() - performance.now();
  private lastExpiryMs = this.nowMs();
  private creating: Promise<void> | null = null;
  /** Topic ids by name of the last metadata image seen (null before the first): what deletions are found against. */
  private topicIds: MetadataImage['topicIdsByName'] | null = null;
  /**
   * Topics seen deleted since this broker started and not created again: a shard that was not
   * loaded then (another broker led it, or it was loading) purges their offsets once it loads.
   */
  private readonly deletedTopics = new Set<string>();
  private closed = false;

  constructor(private readonly host: GroupCoordinatorHost) {
    this.groupConfig = groupConfigOf(host.config);
  }

  private nowMs(): number {
    return Math.round(this.epochMs + performance.now());
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Follows leadership of the offsets partitions (call after every metadata image is applied). */
  reconcile(): void {
    if (this.closed) return;
    const image = this.host.replicas.metadataImage;
    const topic = image?.topicByName(OFFSETS_TOPIC);
    const seen = new Set<number>();
    if (topic !== undefined) {
      for (const p of topic.partitions.keys()) {
        const part = this.host.replicas.partitionByName(OFFSETS_TOPIC, p);
        const cur = this.shards.get(p);
        if (part !== undefined && part.isLeader) {
          seen.add(p);
          if (cur !== undefined && cur.part === part && cur.leaderEpoch === part.leaderEpoch) continue;
          if (cur !== undefined) this.unload(cur);
          const shard: Shard = { partition: p, leaderEpoch: part.leaderEpoch, part, sm: null };
          this.shards.set(p, shard);
          void this.load(shard);
        }
      }
    }
    for (const s of [...this.shards.values()]) if (!seen.has(s.partition)) this.unload(s);
  }

  /**
   * Follows topic deletions (call with every metadata image applied, in order). A topic gone
   * since the last image, or re-created under the same name (a new topic id), loses its committed
   * offsets in every loaded group, with tombstones (Kafka's onPartitionsDeleted): a re-created
   * topic must not be consumed from the old topic's positions. Shards not loaded at that moment
   * purge the offsets of topics still missing when they load (see `deletedTopics`).
   */
  onMetadataImage(image: MetadataImage): void {
    if (this.closed) return;
    const before = this.topicIds;
    this.topicIds = image.topicIdsByName;
    if (before === null || before === image.topicIdsByName) return;
    for (const name of this.deletedTopics) if (image.topicIdsByName.has(name)) this.deletedTopics.delete(name);
    const gone = new Set<string>();
    for (const [name, id] of before) if (image.topicIdsByName.get(name) !== id) gone.add(name);
    if (gone.size === 0) return;
    for (const name of gone) if (!image.topicIdsByName.has(name)) this.deletedTopics.add(name);
    for (const shard of [...this.shards.values()]) {
      const sm = shard.sm;
      if (sm === null || !this.current(shard)) continue;
      sm.deleteTopicOffsets(gone);
      this.deliver(sm.takeReady(), shard);
    }
    this.host.logger.info({ topics: [...gone] }, 'deleted the committed offsets of deleted topics');
  }

  // -------------------------------------------------------------------------------------------
  // loading

  private current(shard: Shard): boolean {
    return !this.closed && this.shards.get(shard.partition) === shard && shard.part.isLeader && shard.part.leaderEpoch === shard.leaderEpoch;
  }

  private async load(shard: Shard): Promise<void> {
    const t0 = performance.now();
    const sm = new GroupStateMachine(this.groupConfig, (clientId) => `${clientId === '' ? 'member' : clientId}-${randomUUID()}`);
    const log = shard.part.log;
    let records = 0;
    try {
      let offset = log.logStartOffset;
      // Everything this leader holds is loaded, above the HW too: as leader its log is the log.
      const end = log.logEndOffset;
      while (offset < end) {
        const res = log.read(offset, this.host.config['offsets.load.buffer.size'], { maxOffset: end });
        if (res.batchCount === 0) break;
        for (let pos = 0; pos < res.records.length; pos += batchSizeAt(res.records, pos)) {
          const batch = decodeRecordBatch(res.records, pos);
          if (batch.isControl) continue;
          for (const r of batch.records) {
            if (r.key === null) continue;
            try {
              sm.replay(r.key, r.value);
              records++;
            } catch (e: unknown) {
              // A corrupt record must not make the whole partition unloadable: skip it, loudly.
              this.host.logger.warn({ partition: shard.partition, offset: r.offset, err: e instanceof Error ? e.message : String(e) }, 'skipping an unreadable __consumer_offsets record');
            }
          }
        }
        offset = res.nextOffset;
        // Yield between chunks so a large partition does not stall the broker.
        await new Promise<void>((r) => setImmediate(r));
        if (!this.current(shard)) return;
      }
    } catch (e: unknown) {
      this.host.logger.warn({ partition: shard.partition, err: e instanceof Error ? e.message : String(e) }, 'loading __consumer_offsets failed; retrying');
      setTimeout(() => {
        if (this.current(shard) && shard.sm === null) void this.load(shard);
      }, LOAD_RETRY_MS).unref();
      return;
    }
    if (!this.current(shard)) return;
    sm.finishLoad(this.nowMs());
    shard.sm = sm;
    this.host.logger.info({ partition: shard.partition, leaderEpoch: shard.leaderEpoch, records, groups: sm.groupCount, ms: Math.round(performance.now() - t0) }, 'group coordinator loaded');
    // Deletions this shard missed while it was not loaded (only those this broker saw: its
    // image may lag the coordinator that accepted a commit, so a topic merely missing from it
    // is not taken as deleted).
    if (this.deletedTopics.size > 0) {
      sm.deleteTopicOffsets(this.deletedTopics);
      this.deliver(sm.takeReady(), shard);
    }
  }

  private unload(shard: Shard): void {
    if (this.shards.get(shard.partition) === shard) this.shards.delete(shard.partition);
    const sm = shard.sm;
    shard.sm = null;
    if (sm === null) return;
    sm.shutdown();
    this.deliver(sm.takeReady(), null);
    this.host.logger.info({ partition: shard.partition, leaderEpoch: shard.leaderEpoch }, 'group coordinator unloaded');
  }

  // -------------------------------------------------------------------------------------------
  // driving the state machine

  private deliver(ready: GroupReady, shard: Shard | null): void {
    for (const r of ready.replies) {
      const w = this.waiters.get(r.requestId);
      this.waiters.delete(r.requestId);
      w?.(r);
    }
    if (shard === null) return;
    for (const a of ready.appends) this.write(shard, a.appendId, a.records);
  }

  private write(shard: Shard, appendId: number, records: GroupReady['appends'][number]['records']): void {
    const sm = shard.sm;
    if (sm === null) return;
    const batch = encodeRecordBatch({ records: records.map((r) => ({ key: r.key, value: r.value })), baseTimestamp: this.nowMs() });
    // produce() appends synchronously before its first await: call order is log order.
    shard.part.produce(batch, -1, this.host.config['offsets.commit.timeout.ms']).then(
      (res) => this.appended(shard, sm, appendId, res.errorCode === 0 ? null : StrandError.fromCode(res.errorCode).errorName),
      (e: unknown) => {
        this.host.logger.warn({ partition: shard.partition, err: e instanceof Error ? e.message : String(e) }, 'group write failed');
        this.appended(shard, sm, appendId, 'UNKNOWN_SERVER_ERROR');
      },
    );
  }

  private appended(shard: Shard, sm: GroupStateMachine, appendId: number, error: ErrorName | null): void {
    if (shard.sm !== sm) return; // unloaded: shutdown() already answered everything
    sm.onAppended(appendId, error, this.nowMs());
    this.deliver(sm.takeReady(), shard);
  }

  private tick(): void {
    const now = this.nowMs();
    const expire = now - this.lastExpiryMs >= this.host.config['offsets.retention.check.interval.ms'];
    if (expire) this.lastExpiryMs = now;
    for (const shard of [...this.shards.values()]) {
      const sm = shard.sm;
      if (sm === null) continue;
      if (!this.current(shard)) {
        this.unload(shard);
        continue;
      }
      sm.tick(now);
      if (expire) sm.expireOffsets(now);
      this.deliver(sm.takeReady(), shard);
    }
  }

  /** The shard serving `groupId`, or why there is none. */
  private route(groupId: string): { shard: Shard; sm: GroupStateMachine } | { error: ErrorName } {
    if (this.closed) return { error: 'NOT_COORDINATOR' };
    const topic = this.host.replicas.metadataImage?.topicByName(OFFSETS_TOPIC);
    if (topic === undefined || topic.partitions.size === 0) return { error: 'NOT_COORDINATOR' };
    const p = groupPartitionFor(groupId, topic.partitions.size);
    const shard = this.shards.get(p);
    if (shard === undefined || !this.current(shard)) return { error: 'NOT_COORDINATOR' };
    if (shard.sm === null) return { error: 'COORDINATOR_LOAD_IN_PROGRESS' };
    return { shard, sm: shard.sm };
  }

  /** Runs one state-machine input and resolves with its (possibly parked) reply. */
  private request<K extends keyof ResponseOf>(groupId: string, kind: K, onError: (e: ErrorName) => ResponseOf[K], input: (sm: GroupStateMachine, requestId: number, nowMs: number) => void): Promise<ResponseOf[K]> {
    const r = this.route(groupId);
    if ('error' in r) return Promise.resolve(onError(r.error));
    if (this.waiters.size >= MAX_PARKED_REQUESTS) return Promise.resolve(onError('COORDINATOR_NOT_AVAILABLE'));
    const requestId = this.nextRequestId++;
    return new Promise((resolve) => {
      this.waiters.set(requestId, (reply) => {
        if (reply.kind !== kind) throw new Error(`group coordinator: ${kind} request ${requestId} answered with ${reply.kind}`);
        resolve(reply.response as ResponseOf[K]);
      });
      input(r.sm, requestId, this.nowMs());
      this.deliver(r.sm.takeReady(), r.shard);
    });
  }

  // -------------------------------------------------------------------------------------------
  // the RPCs

  /**
   * The coordinator's endpoint for `listenerName`, the listener the request arrived on (Kafka: a
   * coordinator without that listener is not available to this client).
   */
  async findCoordinator(req: FindCoordinatorRequest, listenerName = this.host.listenerName): Promise<FindCoordinatorResponse> {
    const fail = (e: ErrorName, message: string): FindCoordinatorResponse => ({ errorCode: code(e), errorMessage: message, nodeId: -1, host: '', port: -1 });
    if (req.keyType !== CoordinatorType.COORDINATOR_GROUP) return fail('INVALID_REQUEST', 'transaction coordinators are not supported yet');
    if (req.key === '') return fail('INVALID_GROUP_ID', 'the group id is empty');
    const image = this.host.image();
    if (image === null) return fail('COORDINATOR_NOT_AVAILABLE', 'this broker has not loaded the cluster metadata yet');
    const topic = image.topicByName(OFFSETS_TOPIC);
    if (topic === undefined) {
      // As Kafka: not created with fewer replicas than configured (a first FindCoordinator while
      // the other brokers are still starting would fix the group offsets at RF 1 for good).
      const rf = this.host.config['offsets.topic.replication.factor'];
      const live = [...image.brokers.values()].filter((b) => !b.fenced).length;
      if (live < rf) return fail('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC} needs offsets.topic.replication.factor=${rf} live brokers, ${live} are; a smaller cluster must set it lower`);
      await this.createOffsetsTopic();
      return fail('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC} is being created`);
    }
    const p = groupPartitionFor(req.key, topic.partitions.size);
    const leader = topic.partitions.get(p)?.leader ?? -1;
    const broker = image.brokers.get(leader);
    const ep = broker?.endpoints.find((e) => e.listener === listenerName);
    if (leader < 0 || broker === undefined || broker.fenced) return fail('COORDINATOR_NOT_AVAILABLE', `${OFFSETS_TOPIC}-${p} has no available leader`);
    if (ep === undefined) return fail('COORDINATOR_NOT_AVAILABLE', `the coordinator, broker ${leader}, has no ${listenerName} listener`);
    return { errorCode: 0, errorMessage: '', nodeId: leader, host: ep.host, port: ep.port };
  }

  /** Creates __consumer_offsets through the controller (once at a time; "already exists" is fine). */
  private createOffsetsTopic(): Promise<void> {
    this.creating ??= (async () => {
      const rf = this.host.config['offsets.topic.replication.factor'];
      // One replica may fail without stopping commits; RF 1-2 cannot afford more than 1.
      const minIsr = rf >= 3 ? 2 : 1;
      const res = await this.host.createTopics({
        topics: [
          {
            name: OFFSETS_TOPIC,
            numPartitions: this.host.config['offsets.topic.num.partitions'],
            replicationFactor: rf,
            assignments: [],
            configs: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'min.insync.replicas', value: String(minIsr) },
              { name: 'segment.bytes', value: String(this.host.config['offsets.topic.segment.bytes']) },
            ],
          },
        ],
        validateOnly: false,
      });
      const r = res.topics[0];
      if (r !== undefined && r.errorCode !== 0 && r.errorCode !== code('TOPIC_ALREADY_EXISTS')) {
        this.host.logger.warn({ error: r.errorCode, message: r.errorMessage }, `creating ${OFFSETS_TOPIC} failed`);
      } else {
        this.host.logger.info({ partitions: this.host.config['offsets.topic.num.partitions'], replicationFactor: rf, minIsr }, `created ${OFFSETS_TOPIC}`);
      }
    })()
      .catch((e: unknown) => this.host.logger.warn({ err: e instanceof Error ? e.message : String(e) }, `creating ${OFFSETS_TOPIC} failed`))
      .finally(() => {
        this.creating = null;
      });
    return this.creating;
  }

  joinGroup(req: JoinGroupRequest, client: { clientId: string; clientHost: string }): Promise<JoinGroupResponse> {
    const fail = (e: ErrorName): JoinGroupResponse => ({ errorCode: code(e), errorMessage: '', generationId: -1, protocolType: '', protocolName: '', leader: '', memberId: req.memberId, members: [] });
    return this.request(req.groupId, 'join', fail, (sm, id, now) =>
      sm.join(
        id,
        {
          groupId: req.groupId,
          memberId: req.memberId,
          ...(req.groupInstanceId === undefined || req.groupInstanceId === '' ? {} : { groupInstanceId: req.groupInstanceId }),
          sessionTimeoutMs: req.sessionTimeoutMs,
          rebalanceTimeoutMs: req.rebalanceTimeoutMs,
          protocolType: req.protocolType,
          protocols: req.protocols,
          // Transport-supplied: cut to a sane length rather than refuse the member.
          clientId: client.clientId.slice(0, 255),
          clientHost: client.clientHost.slice(0, 255),
        },
        now,
      ),
    );
  }

  syncGroup(req: SyncGroupRequest): Promise<SyncGroupResponse> {
    const fail = (e: ErrorName): SyncGroupResponse => ({ errorCode: code(e), errorMessage: '', protocolType: '', protocolName: '', assignment: Buffer.alloc(0) });
    return this.request(req.groupId, 'sync', fail, (sm, id, now) =>
      sm.sync(id, { groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, ...instance(req.groupInstanceId), protocolType: req.protocolType, protocolName: req.protocolName, assignments: req.assignments }, now),
    );
  }

  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.request(req.groupId, 'heartbeat', (e) => ({ errorCode: code(e), errorMessage: '' }), (sm, id, now) =>
      sm.heartbeat(id, { groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, ...instance(req.groupInstanceId) }, now),
    );
  }

  leaveGroup(req: LeaveGroupRequest): Promise<LeaveGroupResponse> {
    if (req.members.length > MAX_GROUPS_PER_REQUEST) return Promise.resolve({ errorCode: code('INVALID_REQUEST'), errorMessage: `more than ${MAX_GROUPS_PER_REQUEST} members in one LeaveGroup`, members: [] });
    return this.request(req.groupId, 'leave', (e) => ({ errorCode: code(e), errorMessage: '', members: [] }), (sm, id, now) => {
      // As Kafka's coordinator, each leaving member's reason is logged (KIP-800): an admin's removal
      // of a live member is otherwise invisible in the broker's log.
      for (const m of req.members) this.host.logger.info({ groupId: req.groupId, memberId: m.memberId, groupInstanceId: m.groupInstanceId, reason: m.reason }, 'member leaving group (LeaveGroup)');
      sm.leave(id, { groupId: req.groupId, members: req.members.map((m) => ({ memberId: m.memberId, ...instance(m.groupInstanceId) })) }, now);
    });
  }

  async offsetCommit(req: OffsetCommitRequest): Promise<OffsetCommitResponse> {
    // As Kafka's KafkaApis: a partition the metadata does not have is UNKNOWN_TOPIC_OR_PARTITION
    // (retriable: a topic just created may not be here yet) and is never written, so a consumer
    // still running after its topic was deleted cannot leave offsets for a re-created topic.
    const image = this.host.replicas.metadataImage;
    const exists = (topic: string, partition: number): boolean => image?.topicByName(topic)?.partitions.has(partition) === true;
    const known = req.topics.map((t) => ({ ...t, partitions: t.partitions.filter((p) => exists(t.name, p.partition)) })).filter((t) => t.partitions.length > 0);
    const fail = (e: ErrorName): OffsetCommitResponse => ({ errorCode: 0, topics: known.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: code(e) })) })) });
    const res =
      known.length === 0
        ? { errorCode: 0, topics: [] }
        : await this.request(req.groupId, 'commit', fail, (sm, id, now) =>
            sm.commit(id, { groupId: req.groupId, generationId: req.generationId, memberId: req.memberId, ...instance(req.groupInstanceId), topics: known }, now),
          );
    // Every partition asked about is answered, in the request's order.
    const answered = new Map<string, number>();
    for (const t of res.topics) for (const p of t.partitions) answered.set(`${t.name}\u0000${p.partition}`, p.errorCode);
    return {
      errorCode: res.errorCode,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: answered.get(`${t.name}\u0000${p.partition}`) ?? code('UNKNOWN_TOPIC_OR_PARTITION') })) })),
    };
  }

  offsetFetch(req: OffsetFetchRequest): OffsetFetchResponse {
    const r = this.route(req.groupId);
    if ('error' in r) return { errorCode: code(r.error), topics: [] };
    return r.sm.fetchOffsets({ groupId: req.groupId, topics: req.topics });
  }

  listGroups(req: ListGroupsRequest): ListGroupsResponse {
    let errorCode = 0;
    const groups: ListGroupsResponse['groups'] = [];
    for (const shard of this.shards.values()) {
      // A shard whose leadership went, not yet unloaded (reconcile, tick), coordinates nothing.
      if (!this.current(shard)) continue;
      if (shard.sm === null) errorCode = code('COORDINATOR_LOAD_IN_PROGRESS');
      else groups.push(...shard.sm.listGroups(req.statesFilter));
    }
    groups.sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
    return { errorCode, groups };
  }

  describeGroups(req: DescribeGroupsRequest): DescribeGroupsResponse {
    return {
      // Every group named gets an answer; past the per-request bound, INVALID_REQUEST.
      groups: req.groups.map((groupId, i) => {
        if (i >= MAX_GROUPS_PER_REQUEST) return { errorCode: code('INVALID_REQUEST'), groupId, groupState: '', protocolType: '', protocolData: '', members: [], generationId: -1 };
        const r = this.route(groupId);
        if ('error' in r) return { errorCode: code(r.error), groupId, groupState: '', protocolType: '', protocolData: '', members: [], generationId: -1 };
        return r.sm.describeGroup(groupId);
      }),
    };
  }

  async deleteGroups(req: DeleteGroupsRequest): Promise<DeleteGroupsResponse> {
    const results = await Promise.all(
      req.groups.map((groupId, i) =>
        i >= MAX_GROUPS_PER_REQUEST
          ? Promise.resolve({ groupId, errorCode: code('INVALID_REQUEST') })
          : this.request(groupId, 'delete', (e) => ({ groupId, errorCode: code(e) }), (sm, id) => sm.deleteGroup(id, groupId)),
      ),
    );
    return { results };
  }

  /**
   * OffsetDelete (KIP-496). As Kafka's KafkaApis, a partition the metadata does not have is
   * answered UNKNOWN_TOPIC_OR_PARTITION and not passed on; the group's coordinator decides the
   * rest (GroupStateMachine.deleteOffsets), answering once the tombstones are acknowledged. Every
   * partition asked about is answered, in the request's order, unless the group is (a group-level
   * error, and no partitions).
   */
  async offsetDelete(req: OffsetDeleteRequest): Promise<OffsetDeleteResponse> {
    const named = req.topics.reduce((n, t) => n + t.partitions.length, 0);
    if (named > MAX_PARTITIONS_PER_OFFSET_DELETE) return { errorCode: code('INVALID_REQUEST'), topics: [] };
    const image = this.host.replicas.metadataImage;
    const exists = (topic: string, partition: number): boolean => image?.topicByName(topic)?.partitions.has(partition) === true;
    const known = req.topics.map((t) => ({ name: t.name, partitions: t.partitions.filter((p) => exists(t.name, p)) })).filter((t) => t.partitions.length > 0);
    // Routed even with no known partition, so that the group's own errors are reported (Kafka).
    const res = await this.request(req.groupId, 'deleteOffsets', (e) => ({ errorCode: code(e), topics: [] }), (sm, id) => sm.deleteOffsets(id, { groupId: req.groupId, topics: known }));
    if (res.errorCode !== 0) return res;
    const answered = new Map<string, number>();
    for (const t of res.topics) for (const p of t.partitions) answered.set(`${t.name}\u0000${p.partition}`, p.errorCode);
    return {
      errorCode: 0,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p, errorCode: answered.get(`${t.name}\u0000${p}`) ?? code('UNKNOWN_TOPIC_OR_PARTITION') })) })),
    };
  }

  /**
   * The committed offsets of the groups this broker coordinates (loaded shards it still leads),
   * read on demand by the lag metric.
   */
  committedOffsets(): { groupId: string; topic: string; partition: number; offset: number }[] {
    const out: { groupId: string; topic: string; partition: number; offset: number }[] = [];
    for (const shard of this.shards.values()) {
      if (shard.sm === null || !this.current(shard)) continue;
      for (const o of shard.sm.committedOffsets()) out.push(o);
    }
    return out;
  }

  /** Stops: every shard is unloaded (parked requests answered NOT_COORDINATOR). */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const s of [...this.shards.values()]) this.unload(s);
    this.closed = true;
  }
}

function instance(id: string | undefined): { groupInstanceId?: string } {
  return id === undefined || id === '' ? {} : { groupInstanceId: id };
}
