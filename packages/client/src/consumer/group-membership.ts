/**
 * A consumer's membership in a group under the classic protocol: find the coordinator, join
 * (JoinGroup, with the KIP-394 member-id round trip), let the leader assign, sync (SyncGroup),
 * heartbeat, commit and fetch offsets, leave.
 *
 * Fencing: every commit carries the generation and member id it was made under; the coordinator
 * refuses commits from an old generation (ILLEGAL_GENERATION) or an unknown member
 * (UNKNOWN_MEMBER_ID), so a member that lost its partitions in a rebalance cannot overwrite the
 * offsets of their new owner. Errors flagged `needsRejoin` make the member rejoin; a lost member
 * id (UNKNOWN_MEMBER_ID, session expiry) means its partitions were lost, not revoked.
 *
 * The heartbeat runs on a timer while the member is stable; it only records what it learnt
 * (rejoin needed, coordinator moved) and wakes the consumer, which drives the rebalance from
 * poll() like the Java client does.
 */
import { CoordinatorType, StrandError } from '@strand/protocol';
import type {
  FindCoordinatorRequest,
  FindCoordinatorResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from '@strand/protocol';
import type { Cluster } from '../cluster/cluster';
import type { BrokerConnection, UnaryMethod } from '../cluster/connection';
import type { ConsumerConfig } from '../config';
import { toStrandError } from '../errors';
import { backoffMs, monotonicMs, sleep } from '../retry';
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription } from './assignors';
import type { Assignor, MemberSubscription, TopicPartition } from './assignors';

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
}

export interface OffsetToCommit extends TopicPartition {
  offset: number;
  leaderEpoch?: number;
  metadata?: string;
}

export interface JoinResult {
  generationId: number;
  memberId: string;
  isLeader: boolean;
  assignment: TopicPartition[];
}

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** Most join attempts in one ensureActive() (each bounded by the rebalance timeout). */
const MAX_JOIN_ATTEMPTS = 100;

export class GroupMembership {
  memberId = '';
  generationId = -1;
  protocolName = '';
  rejoinNeeded = true;
  /** Set when the member id was lost: partitions are lost, not revoked. */
  memberLost = false;
  /**
   * A fatal error (FENCED_INSTANCE_ID: another process took this `group.instance.id`): the member
   * must stop consuming; poll() throws it from then on, as the Java client does.
   */
  fatal: StrandError | undefined;
  /**
   * When this member led the last rebalance: the partition count of every topic the group
   * subscribes to, as the assignment saw it (0 for a topic without metadata). Kafka's leader
   * rebalances when the metadata stops matching it (partitions added, a topic created or
   * deleted); the consumer checks it at each poll(). Undefined when another member leads.
   */
  assignmentSnapshot: Map<string, number> | undefined;
  /** Bumped by cancelJoin(): a join started under an older value stops. */
  private joinEpoch = 0;
  /** join() calls running (a commit meanwhile without a generation is REBALANCE_IN_PROGRESS). */
  private joinsInProgress = 0;
  /** The last commit: commits are sent one at a time, in call order (see commit()). */
  private commitTail: Promise<unknown> = Promise.resolve();

  /**
   * Whether this member rebalances cooperatively (KIP-429): only when every assignor it offers
   * is cooperative, since the group may pick any of them (Kafka's rule).
   */
  get cooperative(): boolean {
    return this.assignors.length > 0 && this.assignors.every((a) => a.rebalanceProtocol === 'cooperative');
  }
  private coordinator: BrokerConnection | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatInFlight = false;
  private closed = false;

  constructor(
    readonly groupId: string,
    private readonly cluster: Cluster,
    private readonly config: ConsumerConfig,
    private readonly assignors: readonly Assignor[],
    /** Called when the heartbeat learns something poll() must act on. */
    private readonly wake: () => void,
  ) {}

  get isStable(): boolean {
    return !this.rejoinNeeded && this.generationId >= 0;
  }

  private timeoutMs(): number {
    return this.config['request.timeout.ms'];
  }

  private backoff(attempt: number): number {
    return backoffMs(attempt, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] });
  }

  /** The coordinator's connection, looked up with FindCoordinator when unknown. */
  async coordinatorConnection(signal?: AbortSignal): Promise<BrokerConnection> {
    if (this.coordinator !== undefined) return this.coordinator;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.cluster.refreshIfNeeded();
        const conn = this.cluster.anyConnection();
        const r = await conn.unary(conn.client.findCoordinator as UnaryMethod<FindCoordinatorRequest, FindCoordinatorResponse>, { key: this.groupId, keyType: CoordinatorType.COORDINATOR_GROUP }, this.timeoutMs(), 'FindCoordinator', signal ?? this.cluster.closeSignal);
        if (r.errorCode !== 0) throw StrandError.fromCode(r.errorCode, `FindCoordinator(${this.groupId}): ${r.errorMessage}`);
        this.coordinator = this.cluster.connectionTo(r.nodeId, r.host, r.port);
        return this.coordinator;
      } catch (e: unknown) {
        const err = toStrandError(e, 'FindCoordinator');
        if (!err.retriable || attempt >= this.config['request.timeout.ms'] / Math.max(1, this.config['retry.backoff.ms']) || this.closed) throw err;
        this.cluster.requestRefresh();
        await sleep(this.backoff(attempt), signal ?? this.cluster.closeSignal);
      }
    }
  }

  /** Forgets the coordinator after NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE or a network error. */
  private coordinatorLost(err: StrandError): void {
    if (err.errorName === 'NOT_COORDINATOR' || err.errorName === 'COORDINATOR_NOT_AVAILABLE' || err.errorName === 'NETWORK_EXCEPTION' || err.errorName === 'REQUEST_TIMED_OUT') this.coordinator = undefined;
  }

  /**
   * Joins (or rejoins) the group and returns this member's assignment. `topics` is the
   * subscription; `partitionsPerTopic` is asked for only when this member leads.
   */
  async join(topics: readonly string[], partitionsPerTopic: (topics: string[]) => Promise<Map<string, number>>, owned: readonly TopicPartition[] = [], signal?: AbortSignal): Promise<JoinResult> {
    this.joinsInProgress++;
    try {
      return await this.runJoin(topics, partitionsPerTopic, owned, signal);
    } finally {
      this.joinsInProgress--;
    }
  }

  private async runJoin(topics: readonly string[], partitionsPerTopic: (topics: string[]) => Promise<Map<string, number>>, owned: readonly TopicPartition[], signal: AbortSignal | undefined): Promise<JoinResult> {
    this.stopHeartbeat();
    const joinEpoch = this.joinEpoch;
    // Subscription v1 carries what this member owns: cooperative assignors keep it in place.
    const metadata = encodeSubscription([...topics].sort(), null, owned);
    for (let attempt = 0; attempt < MAX_JOIN_ATTEMPTS; attempt++) {
      if (this.closed) throw new StrandError('NETWORK_EXCEPTION', 'consumer is closed');
      // cancelJoin() (unsubscribe, close): stop, rather than rejoin as a new member after the
      // LeaveGroup that removed this one.
      if (this.joinEpoch !== joinEpoch) throw new StrandError('REBALANCE_IN_PROGRESS', 'join cancelled');
      let conn: BrokerConnection;
      try {
        conn = await this.coordinatorConnection(signal);
        const join: JoinGroupRequest = {
          groupId: this.groupId,
          sessionTimeoutMs: this.config['session.timeout.ms'],
          rebalanceTimeoutMs: this.config['max.poll.interval.ms'],
          memberId: this.memberId,
          protocolType: 'consumer',
          protocols: this.assignors.map((a) => ({ name: a.name, metadata })),
          reason: this.generationId < 0 ? 'joining' : 'rebalance',
          ...(this.config['group.instance.id'] !== '' ? { groupInstanceId: this.config['group.instance.id'] } : {}),
        };
        // The coordinator holds a JoinGroup until every member rejoined: up to the rebalance timeout.
        const jr = await conn.unary(conn.client.joinGroup as UnaryMethod<JoinGroupRequest, JoinGroupResponse>, join, this.config['max.poll.interval.ms'] + this.timeoutMs(), 'JoinGroup', signal ?? this.cluster.closeSignal);
        if (jr.errorCode === 79 /* MEMBER_ID_REQUIRED */) {
          this.memberId = jr.memberId;
          continue;
        }
        if (jr.errorCode !== 0) throw StrandError.fromCode(jr.errorCode, `JoinGroup(${this.groupId}): ${jr.errorMessage}`);
        this.memberId = jr.memberId;
        this.generationId = jr.generationId;
        this.protocolName = jr.protocolName;
        const isLeader = jr.leader === jr.memberId;
        let assignments: { memberId: string; assignment: Buffer }[] = [];
        this.assignmentSnapshot = undefined;
        if (isLeader) assignments = await this.assign(jr, partitionsPerTopic);
        const sync: SyncGroupRequest = { groupId: this.groupId, generationId: jr.generationId, memberId: jr.memberId, protocolType: 'consumer', protocolName: jr.protocolName, assignments, ...(this.config['group.instance.id'] !== '' ? { groupInstanceId: this.config['group.instance.id'] } : {}) };
        const sr = await conn.unary(conn.client.syncGroup as UnaryMethod<SyncGroupRequest, SyncGroupResponse>, sync, this.config['max.poll.interval.ms'] + this.timeoutMs(), 'SyncGroup', signal ?? this.cluster.closeSignal);
        if (sr.errorCode !== 0) throw StrandError.fromCode(sr.errorCode, `SyncGroup(${this.groupId}): ${sr.errorMessage}`);
        if (this.joinEpoch !== joinEpoch) throw new StrandError('REBALANCE_IN_PROGRESS', 'join cancelled');
        this.rejoinNeeded = false;
        this.memberLost = false;
        this.startHeartbeat();
        return { generationId: this.generationId, memberId: this.memberId, isLeader, assignment: decodeAssignment(Buffer.from(sr.assignment)) };
      } catch (e: unknown) {
        const err = toStrandError(e, 'JoinGroup');
        if (this.closed) throw err;
        this.coordinatorLost(err);
        if (err.errorName === 'UNKNOWN_MEMBER_ID' || err.errorName === 'FENCED_INSTANCE_ID') {
          if (err.errorName === 'FENCED_INSTANCE_ID') throw this.fence(err);
          this.memberId = '';
          this.generationId = -1;
        } else if (err.errorName === 'ILLEGAL_GENERATION') this.generationId = -1;
        else if (!err.retriable && err.errorName !== 'REBALANCE_IN_PROGRESS') throw err;
        if ((err.errorName === 'UNKNOWN_MEMBER_ID' || err.errorName === 'ILLEGAL_GENERATION') && owned.length > 0) {
          // Out of the group (its session expired, say) while it still owned partitions: another
          // member may have had them since, so they are lost, not owned, as Kafka's
          // resetStateAndRejoin makes onJoinPrepare report. Rejoining here with them as owned
          // would keep their stale positions (cooperative) or commit those over the new owner's.
          this.memberLost = true;
          this.rejoinNeeded = true;
          throw new StrandError(err.errorName, `group ${this.groupId}: this member is no longer in the group (${err.errorName}); the partitions it owned are lost`);
        }
        await sleep(this.backoff(Math.min(attempt, 5)), signal ?? this.cluster.closeSignal);
      }
    }
    throw new StrandError('REBALANCE_IN_PROGRESS', `could not join group ${this.groupId} after ${MAX_JOIN_ATTEMPTS} attempts`);
  }

  private async assign(jr: JoinGroupResponse, partitionsPerTopic: (topics: string[]) => Promise<Map<string, number>>): Promise<{ memberId: string; assignment: Buffer }[]> {
    const assignor = this.assignors.find((a) => a.name === jr.protocolName);
    if (assignor === undefined) throw new StrandError('INCONSISTENT_GROUP_PROTOCOL', `the group chose assignor '${jr.protocolName}', which this consumer does not have`);
    const members: MemberSubscription[] = jr.members.map((m) => ({ memberId: m.memberId, ...decodeSubscription(Buffer.from(m.metadata)) }));
    const topics = [...new Set(members.flatMap((m) => m.topics))];
    const counts = await partitionsPerTopic(topics);
    const result = assignor.assign(members, counts);
    this.assignmentSnapshot = new Map(topics.map((t) => [t, counts.get(t) ?? 0]));
    return members.map((m) => ({ memberId: m.memberId, assignment: encodeAssignment(result.get(m.memberId) ?? []) }));
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.config['heartbeat.interval.ms']);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private heartbeat(): void {
    if (this.heartbeatInFlight || this.closed || this.generationId < 0 || this.memberId === '') return;
    this.heartbeatInFlight = true;
    const req: HeartbeatRequest = { groupId: this.groupId, generationId: this.generationId, memberId: this.memberId, ...(this.config['group.instance.id'] !== '' ? { groupInstanceId: this.config['group.instance.id'] } : {}) };
    this.coordinatorConnection()
      .then((conn) => conn.unary(conn.client.heartbeat as UnaryMethod<HeartbeatRequest, HeartbeatResponse>, req, this.timeoutMs(), 'Heartbeat', this.cluster.closeSignal))
      .then((r) => {
        if (r.errorCode !== 0) throw StrandError.fromCode(r.errorCode, r.errorMessage);
      })
      .catch((e: unknown) => {
        const err = toStrandError(e, 'Heartbeat');
        this.coordinatorLost(err);
        // Sent before a rejoin that has completed since: what the coordinator said about that
        // generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, a rebalance) is
        // not about the current one, as Kafka's HeartbeatResponseHandler ignores it
        // (generationUnchanged). Acted on, it would report the new assignment lost and stop its
        // heartbeat.
        if (req.generationId !== this.generationId || req.memberId !== this.memberId) return;
        if (err.errorName === 'FENCED_INSTANCE_ID') {
          this.fence(err);
          return;
        }
        if (err.needsRejoin) {
          this.rejoinNeeded = true;
          if (err.errorName === 'UNKNOWN_MEMBER_ID') {
            this.memberLost = true;
            this.memberId = '';
            this.generationId = -1;
          } else if (err.errorName === 'ILLEGAL_GENERATION') this.memberLost = true;
          // REBALANCE_IN_PROGRESS: keep heartbeating until this member sends its JoinGroup, so
          // an application that is busy between polls keeps its session (it has the rebalance
          // timeout, max.poll.interval.ms, to come back), as the Java client's heartbeat thread does.
          if (err.errorName !== 'REBALANCE_IN_PROGRESS') this.stopHeartbeat();
          this.wake();
        }
      })
      .finally(() => {
        this.heartbeatInFlight = false;
      });
  }

  /** Makes a join in progress give up at its next step (see join). */
  cancelJoin(): void {
    this.joinEpoch++;
  }

  /** Marks the member fenced for good: no more heartbeats; poll() throws `err`. */
  private fence(err: StrandError): StrandError {
    this.fatal ??= new StrandError('FENCED_INSTANCE_ID', `group ${this.groupId}: another consumer joined with group.instance.id '${this.config['group.instance.id']}'; this one is fenced and must be closed`);
    this.rejoinNeeded = true;
    this.stopHeartbeat();
    this.wake();
    return this.fatal ?? err;
  }

  /**
   * Commits offsets under the current generation (or as a standalone consumer when not a
   * member). Throws the first partition error; errors needing a rejoin mark the member for it.
   *
   * Commits go out one at a time, in call order, each built (generation included) when called:
   * a retried auto-commit must never land after a newer commit (close(), a revoke, a manual
   * commit) and move the group's offsets backwards.
   */
  commit(offsets: readonly OffsetToCommit[], asMember: boolean, signal?: AbortSignal): Promise<void> {
    if (offsets.length === 0) return Promise.resolve();
    if (asMember && this.generationId < 0) {
      // Not in a generation (left after the poll timeout, session expired, not joined yet): sent
      // as generation -1 it would pass as a standalone consumer's commit whenever the group is
      // empty. As the Java client (CommitFailedException, or RebalanceInProgressException while
      // it joins), the commit fails here; the next poll() rejoins.
      const joining = this.joinsInProgress > 0;
      return Promise.reject(
        new StrandError(
          joining ? 'REBALANCE_IN_PROGRESS' : 'UNKNOWN_MEMBER_ID',
          joining ? `commit failed: this member is joining group ${this.groupId}; poll() completes the join, then commit again` : `commit failed: this member is not in group ${this.groupId} (it was likely removed: no poll() within max.poll.interval.ms, or its session expired); poll() rejoins`,
        ),
      );
    }
    // Built now: its generation is the one these offsets belong to (sent later, it must still
    // be fenced by that generation, not pass under a newer one).
    const req = this.commitRequest(offsets, asMember);
    const run = this.commitTail.then(() => this.sendCommit(req, signal));
    this.commitTail = run.catch(() => undefined);
    return run;
  }

  private commitRequest(offsets: readonly OffsetToCommit[], asMember: boolean): OffsetCommitRequest {
    const byTopic = new Map<string, OffsetCommitRequest['topics'][number]>();
    for (const o of offsets) {
      let t = byTopic.get(o.topic);
      if (t === undefined) {
        t = { name: o.topic, partitions: [] };
        byTopic.set(o.topic, t);
      }
      t.partitions.push({ partition: o.partition, committedOffset: o.offset, committedLeaderEpoch: o.leaderEpoch ?? -1, metadata: o.metadata ?? '' });
    }
    return { groupId: this.groupId, generationId: asMember ? this.generationId : -1, memberId: asMember ? this.memberId : '', topics: [...byTopic.values()], ...(asMember && this.config['group.instance.id'] !== '' ? { groupInstanceId: this.config['group.instance.id'] } : {}) };
  }

  private async sendCommit(req: OffsetCommitRequest, signal?: AbortSignal): Promise<void> {
    const deadline = monotonicMs() + this.timeoutMs();
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await this.coordinatorConnection(signal);
        const r = await conn.unary(conn.client.offsetCommit as UnaryMethod<OffsetCommitRequest, OffsetCommitResponse>, req, this.timeoutMs(), 'OffsetCommit', signal ?? this.cluster.closeSignal);
        if (r.errorCode !== 0) throw StrandError.fromCode(r.errorCode, `OffsetCommit(${this.groupId})`);
        for (const t of r.topics) for (const p of t.partitions) if (p.errorCode !== 0) throw StrandError.fromCode(p.errorCode, `OffsetCommit(${this.groupId}) ${t.name}-${p.partition}`);
        return;
      } catch (e: unknown) {
        const err = toStrandError(e, 'OffsetCommit');
        this.coordinatorLost(err);
        if (err.errorName === 'FENCED_INSTANCE_ID' && req.generationId >= 0) throw this.fence(err);
        if (err.needsRejoin) {
          // A commit built under a generation this member has already left (it waited behind
          // others while a rebalance completed) says nothing about the current one.
          if (req.generationId === this.generationId) {
            this.rejoinNeeded = true;
            // Fenced out of its generation: its partitions may be another member's already, so
            // they are lost, not revoked (no commit, onPartitionsLost), as after the same answer
            // to a heartbeat (Kafka's resetGenerationOnResponseError). REBALANCE_IN_PROGRESS
            // leaves the member in its generation.
            if (err.errorName === 'UNKNOWN_MEMBER_ID' || err.errorName === 'ILLEGAL_GENERATION') this.memberLost = true;
            this.wake();
          }
          throw new StrandError(err.errorName, `commit failed: the group rebalanced and this member's generation ${req.generationId} is no longer current (${err.errorName}); its partitions may now belong to another member`);
        }
        const wait = this.backoff(attempt);
        if (!err.retriable || monotonicMs() + wait >= deadline || this.closed) throw err;
        await sleep(wait, signal ?? this.cluster.closeSignal);
      }
    }
  }

  /** Committed offsets of `partitions` (absent when none is committed). */
  async fetchCommitted(partitions: readonly TopicPartition[], signal?: AbortSignal): Promise<Map<string, CommittedOffset>> {
    const byTopic = new Map<string, number[]>();
    for (const tp of partitions) {
      const l = byTopic.get(tp.topic) ?? [];
      l.push(tp.partition);
      byTopic.set(tp.topic, l);
    }
    const deadline = monotonicMs() + this.timeoutMs();
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await this.coordinatorConnection(signal);
        const r = await conn.unary(conn.client.offsetFetch as UnaryMethod<OffsetFetchRequest, OffsetFetchResponse>, { groupId: this.groupId, topics: [...byTopic].map(([name, ps]) => ({ name, partitions: ps })), requireStable: true }, this.timeoutMs(), 'OffsetFetch', signal ?? this.cluster.closeSignal);
        if (r.errorCode !== 0) throw StrandError.fromCode(r.errorCode, `OffsetFetch(${this.groupId})`);
        const out = new Map<string, CommittedOffset>();
        for (const t of r.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw StrandError.fromCode(p.errorCode, `OffsetFetch(${this.groupId}) ${t.name}-${p.partition}`);
            if (p.committedOffset >= 0) out.set(key(t.name, p.partition), { offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.metadata });
          }
        }
        return out;
      } catch (e: unknown) {
        const err = toStrandError(e, 'OffsetFetch');
        this.coordinatorLost(err);
        const wait = this.backoff(attempt);
        if (!err.retriable || monotonicMs() + wait >= deadline || this.closed) throw err;
        await sleep(wait, signal ?? this.cluster.closeSignal);
      }
    }
  }

  /** Leaves the group (best effort, bounded by request.timeout.ms) and stops heartbeating. */
  async leave(reason = 'consumer closed'): Promise<void> {
    this.stopHeartbeat();
    if (this.memberId !== '' && this.config['group.instance.id'] === '') {
      try {
        const conn = await this.coordinatorConnection();
        await conn.unary(conn.client.leaveGroup as UnaryMethod<LeaveGroupRequest, LeaveGroupResponse>, { groupId: this.groupId, members: [{ memberId: this.memberId, reason }] }, this.timeoutMs(), 'LeaveGroup', this.cluster.closeSignal);
      } catch {
        // The session timeout removes us anyway; leaving is only faster.
      }
    }
    this.memberId = '';
    this.generationId = -1;
    this.rejoinNeeded = true;
  }

  close(): void {
    this.closed = true;
    this.stopHeartbeat();
  }
}
