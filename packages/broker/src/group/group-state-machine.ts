/**
 * The pure core of a group coordinator: every group of one `__consumer_offsets` partition, their
 * membership (Kafka's classic protocol) and committed offsets. No I/O, no clock, no randomness:
 * time arrives as `nowMs` arguments, member ids come from an injected generator, and the outputs
 * collect in a Ready batch (`takeReady()`) that the driver executes:
 *
 * - `replies`: responses to deliver, each tagged with the requestId the driver passed in. A
 *   JoinGroup is parked until its rebalance completes; a follower's SyncGroup until the leader's
 *   assignment is persisted; an OffsetCommit until its records are acknowledged; an OffsetDelete
 *   until its tombstones are.
 * - `appends`: records for the partition, to be written with acks=all; the driver reports each
 *   outcome with `onAppended(appendId, error)`. State that must survive a coordinator failover
 *   (committed offsets, a generation's assignment, a deletion) becomes visible and is answered
 *   only after that acknowledgement.
 *
 * States (Kafka's GroupState):
 *
 *   Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
 *     ▲                 ▲        │ (nobody left)                                  │ leader's sync
 *     │                 │        ▼                                                ▼ persisted
 *     └──last member────┴──── Empty ◀── member leaves / expires ── Stable ◀──────────┘
 *   Empty ──offsets expired / DeleteGroups──▶ Dead
 *
 * Invariants (checked by `checkInvariants`, which the tests call after every step):
 * - Empty and Dead groups have no members; the other states have at least one, and a leader
 *   that is a member.
 * - every static member's instance id maps to it and back (`staticMembers`).
 * - a parked join exists only in PreparingRebalance, a parked sync only in CompletingRebalance.
 * - members + pending members <= group.max.size, except in PreparingRebalance of a group loaded
 *   with more members than the limit (lowered since, KIP-389): that rebalance brings it back to
 *   the limit (`acceptsRejoin`, `maybeCompleteJoin`).
 * - a committed offset is replaced only by the result of a later append (appendIds grow in log
 *   order), so an older commit acknowledged late never overwrites a newer one; likewise an
 *   OffsetDelete removes only offsets its tombstones follow in the log.
 */
import type {
  DescribedGroup,
  ErrorName,
  HeartbeatResponse,
  JoinGroupResponse,
  LeaveGroupResponse,
  ListedGroup,
  OffsetCommitResponse,
  OffsetDeleteResponse,
  OffsetFetchResponse,
  SyncGroupResponse,
} from '@strand/protocol';
import { ErrorCode } from '@strand/protocol';
import { CONSUMER_PROTOCOL_TYPE, subscribedTopicsOf } from './consumer-protocol';
import {
  decodeGroupMetadataValue,
  decodeGroupRecordKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataValue,
  encodeGroupRecordKey,
  encodeOffsetCommitValue,
  type GroupMetadataValue,
  type GroupRecord,
} from './group-records';

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface GroupConfig {
  /** group.min.session.timeout.ms / group.max.session.timeout.ms: allowed member session timeouts (ms). */
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms: how long the first rebalance of an Empty group waits for more members (ms). */
  initialRebalanceDelayMs: number;
  /** group.max.size: members (joined plus awaiting their first join with an id) per group. */
  maxSize: number;
  /** group.coordinator.max.groups: groups held by this state machine (one offsets partition). */
  maxGroups: number;
  /** offset.metadata.max.bytes: longest metadata string of a commit (UTF-8 bytes). */
  offsetMetadataMaxBytes: number;
  /** offsets.retention.minutes in ms: offsets of an Empty group expire this long after it became empty. */
  offsetsRetentionMs: number;
}

export interface JoinInput {
  groupId: string;
  memberId: string;
  groupInstanceId?: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: { name: string; metadata: Uint8Array }[];
  clientId: string;
  clientHost: string;
}

export interface SyncInput {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string;
  protocolType: string;
  protocolName: string;
  assignments: { memberId: string; assignment: Uint8Array }[];
}

export interface HeartbeatInput {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string;
}

export interface LeaveInput {
  groupId: string;
  members: { memberId: string; groupInstanceId?: string }[];
}

export interface CommitInput {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string;
  topics: { name: string; partitions: { partition: number; committedOffset: number; committedLeaderEpoch: number; metadata: string }[] }[];
}

export interface FetchInput {
  groupId: string;
  /** Empty: every committed partition of the group. */
  topics: { name: string; partitions: number[] }[];
}

export interface DeleteOffsetsInput {
  groupId: string;
  topics: { name: string; partitions: number[] }[];
}

export type GroupReply =
  | { requestId: number; kind: 'join'; response: JoinGroupResponse }
  | { requestId: number; kind: 'sync'; response: SyncGroupResponse }
  | { requestId: number; kind: 'heartbeat'; response: HeartbeatResponse }
  | { requestId: number; kind: 'leave'; response: LeaveGroupResponse }
  | { requestId: number; kind: 'commit'; response: OffsetCommitResponse }
  | { requestId: number; kind: 'delete'; response: { groupId: string; errorCode: number } }
  | { requestId: number; kind: 'deleteOffsets'; response: OffsetDeleteResponse };

export interface GroupAppend {
  appendId: number;
  records: GroupRecord[];
}

export interface GroupReady {
  replies: GroupReply[];
  appends: GroupAppend[];
}

interface Member {
  memberId: string;
  groupInstanceId: string | undefined;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: { name: string; metadata: Buffer }[];
  assignment: Buffer;
  /** The session ends when no heartbeat (or join/sync/commit) arrives before this. */
  heartbeatDeadlineMs: number;
  /** The parked JoinGroup's requestId (only in PreparingRebalance). */
  joinRequestId: number | null;
  /** The parked SyncGroup's requestId (only in CompletingRebalance). */
  syncRequestId: number | null;
  /** Sent SyncGroup in the current generation (members that never do are removed at the sync deadline). */
  synced: boolean;
}

interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  commitTimestampMs: number;
  /** The append that wrote it (-1: loaded from the log). Later appends win. */
  appendId: number;
}

interface Group {
  groupId: string;
  state: GroupStateName;
  /** When the group entered its current state (Kafka's currentStateTimestamp; offsets expiry base when Empty). */
  stateSinceMs: number;
  protocolType: string | null;
  protocolName: string | null;
  generationId: number;
  leaderId: string | null;
  members: Map<string, Member>;
  /** group.instance.id -> member id. */
  staticMembers: Map<string, string>;
  /** KIP-394: ids handed out with MEMBER_ID_REQUIRED, awaiting their join; value: expiry (ms). */
  pendingMembers: Map<string, number>;
  offsets: Map<string, { topic: string; partition: number; value: CommittedOffset }>;
  /**
   * The topics the current generation's members subscribe to (Kafka's
   * GroupMetadata.subscribedTopics: taken when a generation starts or is loaded, so a member that
   * rejoins with a new subscription does not make its old topics unprotected before the next
   * generation); null when unknown (a protocol type other than "consumer", or bytes that do not
   * parse).
   */
  subscribedTopics: Set<string> | null;
  /** PreparingRebalance: the join completes by this time even if members are missing. */
  rebalanceDeadlineMs: number;
  /** PreparingRebalance from Empty: the join completes no earlier than this (initial delay). */
  joinNotBeforeMs: number;
  /** CompletingRebalance: members that have not synced by this time are removed. */
  syncDeadlineMs: number;
  /** The append persisting the leader's assignment, while in flight. */
  assignmentAppendId: number | null;
}

type PendingAppend =
  | { kind: 'commit'; groupId: string; requestId: number; entries: PendingCommitEntry[]; response: OffsetCommitResponse }
  | { kind: 'assignment'; groupId: string; generationId: number; assignments: Map<string, Buffer> }
  /** A restarted static member's new id, answered once persisted; `old` is restored if the write fails. */
  | { kind: 'replace'; groupId: string; requestId: number; generationId: number; instanceId: string; old: Member; newId: string }
  | {
      kind: 'delete';
      groupId: string;
      requestId: number;
      /** What the group held when deleted (plus commits acknowledged meanwhile): restored if the tombstones fail. */
      saved: { stateSinceMs: number; offsets: Map<string, { topic: string; partition: number; value: CommittedOffset }> };
    }
  /** OffsetDelete's tombstones of `keys`; `response` is the answer once they are acknowledged. */
  | { kind: 'deleteOffsets'; groupId: string; requestId: number; keys: Set<string>; response: OffsetDeleteResponse }
  /**
   * Tombstones of offsets already gone from memory (expired, or of a deleted topic), and of the
   * group itself when `group`: if the write fails they are written again (`retryTombstones`), or
   * a reload would bring back what was answered as gone. `failures`: of the writes before this
   * one (0 for the first), what the backoff grows with.
   */
  | { kind: 'tombstones'; groupId: string; offsets: { topic: string; partition: number }[]; group: boolean; failures: number }
  | { kind: 'other' };

/** Tombstones whose write failed, due to be written again at `retryAtMs` (or once a commit of theirs in flight settles). */
type FailedTombstones = Extract<PendingAppend, { kind: 'tombstones' }> & { retryAtMs: number };

/**
 * Backoff of failed tombstone writes (ms): the first retry waits TOMBSTONE_RETRY_BACKOFF_MS, each
 * further failure doubles the wait, up to TOMBSTONE_RETRY_BACKOFF_MAX_MS (the names and values of
 * Kafka's retry.backoff.ms and retry.backoff.max.ms, KIP-580, which are client settings). A
 * write fails while the offsets partition cannot take acks=all writes (too few in-sync replicas,
 * a slow disk), which a retry every tick would only make worse. No jitter: one coordinator per
 * partition retries, there is no herd to spread.
 */
export const TOMBSTONE_RETRY_BACKOFF_MS = 100;
export const TOMBSTONE_RETRY_BACKOFF_MAX_MS = 1000;

/** The wait before writing again tombstones whose write failed `failures` (>= 1) times in a row. */
export function tombstoneRetryBackoffMs(failures: number): number {
  return Math.min(TOMBSTONE_RETRY_BACKOFF_MS * 2 ** Math.min(failures - 1, 30), TOMBSTONE_RETRY_BACKOFF_MAX_MS);
}

/** One partition of a commit in flight; `dropped` once its topic was deleted meanwhile (tombstoned after it). */
interface PendingCommitEntry {
  key: string;
  topic: string;
  partition: number;
  value: CommittedOffset;
  dropped?: boolean;
}

const offsetKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

const offsetTombstone = (groupId: string, o: { topic: string; partition: number }): GroupRecord => ({ key: encodeGroupRecordKey({ kind: 'offset', group: groupId, topic: o.topic, partition: o.partition }), value: null });

/**
 * Longest group id, instance id, protocol type or name, topic name and client id (UTF-8 bytes)
 * accepted: they are stored as int16-length strings in the records (at most 32767 bytes), and a
 * record that cannot be encoded must be refused up front, never half-applied.
 */
export const MAX_NAME_BYTES = 4096;

/** For each protocol name, how many of `members` list it (each member counted once). */
function supportCounts(members: readonly { protocols: readonly { name: string }[] }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of members) {
    for (const name of new Set(m.protocols.map((p) => p.name))) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

const tooLong = (s: string | undefined): boolean => s !== undefined && Buffer.byteLength(s, 'utf8') > MAX_NAME_BYTES;

function code(name: ErrorName | null): number {
  return name === null ? 0 : ErrorCode[name];
}

function sameProtocols(a: readonly { name: string; metadata: Buffer }[], b: readonly { name: string; metadata: Uint8Array }[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]?.name && p.metadata.equals(Buffer.from(b[i]?.metadata ?? new Uint8Array())));
}

/** Wrong uses of the core (driver bugs) crash; client mistakes are answered with error codes. */
function assert(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Error(`group state machine: ${msg}`);
}

export class GroupStateMachine {
  private readonly groups = new Map<string, Group>();
  /** Groups that may have a timer (members, member ids awaiting their join, a rebalance): what tick() walks. */
  private readonly timed = new Set<Group>();
  private readonly pending = new Map<number, PendingAppend>();
  /** Tombstone writes that failed, written again after a backoff (bounded by the groups and offsets they name). */
  private failedTombstones: FailedTombstones[] = [];
  private nextAppendId = 1;
  private ready: GroupReady = { replies: [], appends: [] };
  private closed = false;

  constructor(
    private readonly config: GroupConfig,
    /** A fresh member id (unique across coordinator failovers: the driver uses a UUID). */
    private readonly newMemberId: (clientId: string) => string,
  ) {}

  /** The outputs produced since the last call. */
  takeReady(): GroupReady {
    const r = this.ready;
    this.ready = { replies: [], appends: [] };
    return r;
  }

  // -------------------------------------------------------------------------------------------
  // loading

  /**
   * Applies one record read from the partition (in log order) while loading; the last value of
   * each key wins and a tombstone deletes. Call `finishLoad` once the log has been read.
   */
  replay(key: Buffer, value: Buffer | null): void {
    const k = decodeGroupRecordKey(key);
    if (k.kind === 'offset') {
      const g = this.groups.get(k.group);
      if (value === null) {
        g?.offsets.delete(offsetKey(k.topic, k.partition));
        return;
      }
      const v = decodeOffsetCommitValue(value);
      const group = g ?? this.createGroup(k.group, 0);
      group.offsets.set(offsetKey(k.topic, k.partition), { topic: k.topic, partition: k.partition, value: { ...v, appendId: -1 } });
      return;
    }
    if (value === null) {
      // As Kafka's loader: the tombstone removes the group's metadata, not its offsets, which have
      // keys (and tombstones) of their own. Offsets whose tombstones never made it to the log (a
      // failed write) therefore load the same before and after compaction drops this tombstone,
      // held by a fresh Empty group without a protocol type (expiring by commit time).
      const prev = this.groups.get(k.group);
      this.groups.delete(k.group);
      if (prev !== undefined && prev.offsets.size > 0) this.createGroup(k.group, 0).offsets = prev.offsets;
      return;
    }
    const v = decodeGroupMetadataValue(value);
    const prev = this.groups.get(k.group);
    const group = this.createGroup(k.group, v.currentStateTimestampMs);
    if (prev !== undefined) for (const [ok, o] of prev.offsets) group.offsets.set(ok, o);
    group.protocolType = v.protocolType === '' ? null : v.protocolType;
    group.protocolName = v.protocolName;
    group.generationId = v.generationId;
    group.leaderId = v.leaderId;
    for (const m of v.members) {
      group.members.set(m.memberId, {
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId ?? undefined,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocolType: v.protocolType,
        protocols: v.protocolName === null ? [] : [{ name: v.protocolName, metadata: m.subscription }],
        assignment: m.assignment,
        heartbeatDeadlineMs: 0,
        joinRequestId: null,
        syncRequestId: null,
        synced: true,
      });
      if (m.groupInstanceId !== null) group.staticMembers.set(m.groupInstanceId, m.memberId);
    }
    group.subscribedTopics = this.generationSubscriptions(group);
    group.state = group.members.size > 0 ? 'Stable' : 'Empty';
    if (group.state === 'Stable') this.timed.add(group);
  }

  /** Ends loading: loaded members get a full session from now (their heartbeats went elsewhere). */
  finishLoad(nowMs: number): void {
    for (const g of [...this.groups.values()]) {
      // Offsets without metadata made the group; with every one of them tombstoned there is
      // nothing left of it (Kafka loads only groups with metadata or offsets).
      if (g.protocolType === null && g.members.size === 0 && g.offsets.size === 0) {
        this.groups.delete(g.groupId);
        continue;
      }
      for (const m of g.members.values()) m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
      if (g.members.size === 0 && g.leaderId !== null) g.leaderId = null;
      if (g.state === 'Stable' && (g.leaderId === null || !g.members.has(g.leaderId))) g.leaderId = g.members.keys().next().value ?? null;
      // KIP-389 (Kafka's onGroupLoaded): group.max.size was lowered below the group's size (it
      // is a static setting: at a restart). The rebalance lets the members commit their offsets
      // and leaves the group at the limit: rejoins beyond it are refused, members that do not
      // rejoin are out.
      if (g.state === 'Stable' && g.members.size > this.config.maxSize) this.prepareRebalance(g, nowMs);
    }
  }

  // -------------------------------------------------------------------------------------------
  // JoinGroup

  join(requestId: number, req: JoinInput, nowMs: number): void {
    const reply = (error: ErrorName, memberId = req.memberId): void =>
      this.reply({ requestId, kind: 'join', response: { errorCode: code(error), errorMessage: '', generationId: -1, protocolType: '', protocolName: '', leader: '', memberId, members: [] } });
    if (req.groupId === '' || tooLong(req.groupId)) return reply('INVALID_GROUP_ID');
    if (tooLong(req.groupInstanceId) || tooLong(req.protocolType) || tooLong(req.clientId) || tooLong(req.clientHost) || req.protocols.some((p) => tooLong(p.name))) return reply('INVALID_REQUEST');
    if (req.sessionTimeoutMs < this.config.minSessionTimeoutMs || req.sessionTimeoutMs > this.config.maxSessionTimeoutMs) return reply('INVALID_SESSION_TIMEOUT');
    let group = this.groups.get(req.groupId);
    if (group === undefined) {
      if (req.memberId !== '') return reply('UNKNOWN_MEMBER_ID');
      if (this.groups.size >= this.config.maxGroups) return reply('COORDINATOR_NOT_AVAILABLE');
      group = this.createGroup(req.groupId, nowMs);
    }
    if (group.state === 'Dead') return reply('COORDINATOR_NOT_AVAILABLE');
    if (!this.protocolsCompatible(group, req)) return reply('INCONSISTENT_GROUP_PROTOCOL');
    const rebalanceTimeoutMs = req.rebalanceTimeoutMs > 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs;
    const input = { ...req, rebalanceTimeoutMs };
    if (req.memberId === '') this.joinUnknownMember(requestId, group, input, nowMs);
    else this.joinKnownMember(requestId, group, input, nowMs);
  }

  private joinUnknownMember(requestId: number, group: Group, req: JoinInput, nowMs: number): void {
    const instanceId = req.groupInstanceId;
    if (instanceId !== undefined && group.staticMembers.has(instanceId)) {
      this.replaceStaticMember(requestId, group, req, nowMs);
      return;
    }
    if (group.members.size + group.pendingMembers.size >= this.config.maxSize) {
      this.reply({ requestId, kind: 'join', response: this.joinError('GROUP_MAX_SIZE_REACHED', '', `group ${group.groupId} has group.max.size=${this.config.maxSize} members`) });
      return;
    }
    const memberId = this.newMemberId(req.clientId);
    if (instanceId !== undefined) {
      // A new static member joins directly (its instance id already identifies it).
      this.addMemberAndRebalance(requestId, group, { ...req, memberId }, nowMs);
      return;
    }
    // KIP-394: hand out the id first, so that a client whose JoinGroup times out does not leave a
    // member behind that the group waits for; the id is forgotten if not used within a session.
    group.pendingMembers.set(memberId, nowMs + req.sessionTimeoutMs);
    this.timed.add(group);
    this.reply({ requestId, kind: 'join', response: this.joinError('MEMBER_ID_REQUIRED', memberId, '') });
  }

  private joinKnownMember(requestId: number, group: Group, req: JoinInput, nowMs: number): void {
    // Before the pending ids: a pending id (handed to a dynamic member) joining with an instance id
    // another member holds would give two members one instance id (Kafka refuses it as well).
    const fenced = this.instanceFencing(group, req.memberId, req.groupInstanceId);
    if (fenced !== null) return this.reply({ requestId, kind: 'join', response: this.joinError(fenced, req.memberId, '') });
    if (group.pendingMembers.has(req.memberId)) {
      group.pendingMembers.delete(req.memberId);
      this.addMemberAndRebalance(requestId, group, req, nowMs);
      return;
    }
    const member = group.members.get(req.memberId);
    if (member === undefined || group.state === 'Empty') return this.reply({ requestId, kind: 'join', response: this.joinError('UNKNOWN_MEMBER_ID', req.memberId, '') });
    member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
    switch (group.state) {
      case 'PreparingRebalance':
        if (!this.acceptsRejoin(group, member)) return this.refuseOverMaxSize(requestId, group, member, nowMs);
        this.updateMember(member, req, requestId);
        this.maybeCompleteJoin(group, nowMs);
        return;
      case 'CompletingRebalance':
        if (sameProtocols(member.protocols, req.protocols)) {
          // The member lost the join response: send it again (same generation).
          this.reply({ requestId, kind: 'join', response: this.joinResponse(group, member.memberId) });
          return;
        }
        this.updateMember(member, req, requestId);
        this.prepareRebalance(group, nowMs);
        return;
      case 'Stable':
        if (member.memberId === group.leaderId || !sameProtocols(member.protocols, req.protocols)) {
          // The leader rejoins to force a rebalance (e.g. new topics matched its subscription).
          this.updateMember(member, req, requestId);
          this.prepareRebalance(group, nowMs);
          return;
        }
        this.reply({ requestId, kind: 'join', response: this.joinResponse(group, member.memberId) });
        return;
      default:
        assert(false, `join in state ${group.state}`);
    }
  }

  /**
   * A static member restarted (same group.instance.id, no member id): it takes the old member's
   * place under a new member id. In Stable the generation and assignment stay (no rebalance: the
   * point of static membership) and the group record is rewritten with the new id; as in Kafka
   * the answer waits for that write, and a failed write restores the old member (else, after a
   * failover, the log's old id would fence the new incarnation with FENCED_INSTANCE_ID, fatal to
   * the client, while it was told it is the member).
   */
  private replaceStaticMember(requestId: number, group: Group, req: JoinInput, nowMs: number): void {
    const instanceId = req.groupInstanceId;
    assert(instanceId !== undefined, 'replaceStaticMember without an instance id');
    const oldId = group.staticMembers.get(instanceId);
    assert(oldId !== undefined, 'replaceStaticMember of an unknown instance');
    const old = group.members.get(oldId);
    assert(old !== undefined, `static member ${oldId} missing`);
    if (group.state === 'PreparingRebalance' && !this.acceptsRejoin(group, old)) return this.refuseOverMaxSize(requestId, group, old, nowMs);
    const newId = this.newMemberId(req.clientId);
    // The old incarnation's parked requests are fenced.
    if (old.joinRequestId !== null) this.reply({ requestId: old.joinRequestId, kind: 'join', response: this.joinError('FENCED_INSTANCE_ID', oldId, 'a newer member with this group.instance.id joined') });
    if (old.syncRequestId !== null) this.reply({ requestId: old.syncRequestId, kind: 'sync', response: this.syncError('FENCED_INSTANCE_ID') });
    const member: Member = { ...old, memberId: newId, joinRequestId: null, syncRequestId: null, sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: req.rebalanceTimeoutMs, clientId: req.clientId, clientHost: req.clientHost, heartbeatDeadlineMs: nowMs + req.sessionTimeoutMs };
    group.members.delete(oldId);
    group.members.set(newId, member);
    group.staticMembers.set(instanceId, newId);
    if (group.leaderId === oldId) group.leaderId = newId;
    switch (group.state) {
      case 'Stable': {
        // As Kafka's updateStaticMemberThenRebalanceOrCompleteJoin, the new incarnation's protocols
        // replace the old ones, and only a change of the group's protocol, or (Strand) of what the
        // member subscribes to, needs a rebalance. The rest of the metadata changes with every
        // restart (a consumer's owned partitions, v1, are empty again; after a failover only the
        // chosen protocol's metadata was loaded), so comparing all of it rebalanced every restart.
        member.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
        if (this.selectProtocol(group) !== group.protocolName || this.subscriptionChanged(group, old, member)) {
          this.updateMember(member, req, requestId);
          this.prepareRebalance(group, nowMs);
          return;
        }
        this.append([this.groupMetadataRecord(group)], { kind: 'replace', groupId: group.groupId, requestId, generationId: group.generationId, instanceId, old, newId });
        return;
      }
      case 'CompletingRebalance':
        // The leader may already hold the old id in its assignment: start over.
        this.updateMember(member, req, requestId);
        this.prepareRebalance(group, nowMs);
        return;
      case 'PreparingRebalance':
        this.updateMember(member, req, requestId);
        this.maybeCompleteJoin(group, nowMs);
        return;
      default:
        assert(false, `static member in state ${group.state}`);
    }
  }

  /**
   * Whether a member may (re)join the join phase (Kafka's acceptJoiningMember, PreparingRebalance):
   * one already parked may repeat its join; another only while fewer than group.max.size are
   * parked. Always so unless the group is over the limit (loaded so, KIP-389): then the first
   * to rejoin keep their place and the rest are refused.
   */
  private acceptsRejoin(group: Group, member: Member): boolean {
    if (member.joinRequestId !== null) return true;
    let parked = 0;
    for (const m of group.members.values()) if (m.joinRequestId !== null) parked++;
    return parked < this.config.maxSize;
  }

  /** A member refused by `acceptsRejoin` leaves the group, told GROUP_MAX_SIZE_REACHED (as Kafka, with no member id). */
  private refuseOverMaxSize(requestId: number, group: Group, member: Member, nowMs: number): void {
    this.removeMember(group, member);
    this.reply({ requestId, kind: 'join', response: this.joinError('GROUP_MAX_SIZE_REACHED', '', `group ${group.groupId} has more members than group.max.size=${this.config.maxSize}`) });
    this.onMembershipShrunk(group, nowMs);
  }

  private addMemberAndRebalance(requestId: number, group: Group, req: JoinInput, nowMs: number): void {
    const member: Member = {
      memberId: req.memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: req.clientId,
      clientHost: req.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
      assignment: Buffer.alloc(0),
      heartbeatDeadlineMs: nowMs + req.sessionTimeoutMs,
      joinRequestId: requestId,
      syncRequestId: null,
      synced: false,
    };
    if (group.members.size === 0) group.protocolType = req.protocolType;
    group.members.set(member.memberId, member);
    if (member.groupInstanceId !== undefined) group.staticMembers.set(member.groupInstanceId, member.memberId);
    if (group.leaderId === null) group.leaderId = member.memberId;
    if (group.state === 'PreparingRebalance') {
      // Kafka's initial delay: each new member of a first rebalance extends the wait (bounded by the rebalance timeout).
      if (group.joinNotBeforeMs > nowMs) group.joinNotBeforeMs = Math.min(nowMs + this.config.initialRebalanceDelayMs, group.rebalanceDeadlineMs);
      this.maybeCompleteJoin(group, nowMs);
    } else {
      this.prepareRebalance(group, nowMs);
    }
  }

  private updateMember(member: Member, req: JoinInput, requestId: number): void {
    if (member.joinRequestId !== null && member.joinRequestId !== requestId) {
      // A retried JoinGroup supersedes the parked one (the client has given up on it).
      this.reply({ requestId: member.joinRequestId, kind: 'join', response: this.joinError('UNKNOWN_MEMBER_ID', member.memberId, 'superseded by a newer JoinGroup of the same member') });
    }
    member.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    member.joinRequestId = requestId;
  }

  private prepareRebalance(group: Group, nowMs: number): void {
    if (group.state === 'CompletingRebalance') this.resetAssignment(group, 'REBALANCE_IN_PROGRESS');
    const fromEmpty = group.state === 'Empty';
    const timeout = Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));
    this.transition(group, 'PreparingRebalance', nowMs);
    group.rebalanceDeadlineMs = nowMs + timeout;
    group.joinNotBeforeMs = fromEmpty ? Math.min(nowMs + this.config.initialRebalanceDelayMs, group.rebalanceDeadlineMs) : nowMs;
    this.maybeCompleteJoin(group, nowMs);
  }

  /** Completes the join phase once every member has rejoined (and the initial delay passed), or at the rebalance deadline (static members that are absent then stay members). */
  private maybeCompleteJoin(group: Group, nowMs: number): void {
    if (group.state !== 'PreparingRebalance') return;
    const allJoined = [...group.members.values()].every((m) => m.joinRequestId !== null) && group.pendingMembers.size === 0;
    if (!(allJoined && nowMs >= group.joinNotBeforeMs) && nowMs < group.rebalanceDeadlineMs) return;
    // Dynamic members that did not rejoin in time are out. Static members (KIP-345) stay, as in
    // Kafka's onCompleteJoin (`notYetRejoinedDynamicMembers`): a static member is removed only by
    // its session timeout or a LeaveGroup naming its instance id, so a pod restarting slower than
    // the rebalance timeout still comes back to its place. It stays in the member list the leader
    // assigns from (with its last subscription), and its session restarts below like everyone's.
    for (const m of [...group.members.values()]) if (m.joinRequestId === null && m.groupInstanceId === undefined) this.removeMember(group, m);
    const joined = [...group.members.values()].filter((m) => m.joinRequestId !== null);
    // A group loaded over group.max.size (KIP-389): at most that many joined (`acceptsRejoin`);
    // absent static members past the limit go too, the latest in member order first. (Kafka
    // keeps them, leaving the group over its limit until their sessions end.)
    const absentStatic = [...group.members.values()].filter((m) => m.joinRequestId === null);
    while (group.members.size > this.config.maxSize) {
      const m = absentStatic.pop();
      assert(m !== undefined, `${group.groupId}: more members joined than group.max.size`);
      this.removeMember(group, m);
    }
    if (group.members.size > 0 && joined.length === 0) {
      // Only absent static members are left: nobody could lead or be answered. Kafka waits another
      // rebalance timeout (maybeElectNewJoinedLeader fails); their sessions end meanwhile unless
      // they heartbeat or rejoin, so this cannot go on for a member that is gone.
      group.rebalanceDeadlineMs = nowMs + Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));
      return;
    }
    group.pendingMembers.clear();
    group.generationId++;
    if (group.members.size === 0) {
      group.protocolName = null;
      group.leaderId = null;
      group.subscribedTopics = this.generationSubscriptions(group);
      this.transition(group, 'Empty', nowMs);
      this.append([this.groupMetadataRecord(group)], { kind: 'other' });
      return;
    }
    group.protocolName = this.selectProtocol(group);
    group.subscribedTopics = this.generationSubscriptions(group);
    // The leader must be a member that is waiting for this answer (Kafka's maybeElectNewJoinedLeader).
    const leader = group.leaderId === null ? undefined : group.members.get(group.leaderId);
    if (leader === undefined || leader.joinRequestId === null) group.leaderId = joined[0]?.memberId ?? null;
    this.transition(group, 'CompletingRebalance', nowMs);
    group.syncDeadlineMs = nowMs + Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));
    for (const m of group.members.values()) {
      assert(m.joinRequestId !== null || m.groupInstanceId !== undefined, 'a dynamic member without a parked join survived the join phase');
      m.synced = false;
      m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
      if (m.joinRequestId === null) continue; // an absent static member: learns the generation when it rejoins
      this.reply({ requestId: m.joinRequestId, kind: 'join', response: this.joinResponse(group, m.memberId) });
      m.joinRequestId = null;
    }
  }

  // -------------------------------------------------------------------------------------------
  // SyncGroup

  sync(requestId: number, req: SyncInput, nowMs: number): void {
    const fail = (e: ErrorName): void => this.reply({ requestId, kind: 'sync', response: this.syncError(e) });
    const group = this.groups.get(req.groupId);
    if (req.groupId === '') return fail('INVALID_GROUP_ID');
    if (group === undefined) return fail('UNKNOWN_MEMBER_ID');
    if (group.state === 'Dead') return fail('COORDINATOR_NOT_AVAILABLE');
    const fenced = this.instanceFencing(group, req.memberId, req.groupInstanceId);
    if (fenced !== null) return fail(fenced);
    const member = group.members.get(req.memberId);
    if (member === undefined) return fail('UNKNOWN_MEMBER_ID');
    if (req.generationId !== group.generationId) return fail('ILLEGAL_GENERATION');
    if ((req.protocolType !== '' && req.protocolType !== group.protocolType) || (req.protocolName !== '' && req.protocolName !== group.protocolName)) return fail('INCONSISTENT_GROUP_PROTOCOL');
    switch (group.state) {
      case 'Empty':
        return fail('UNKNOWN_MEMBER_ID');
      case 'PreparingRebalance':
        return fail('REBALANCE_IN_PROGRESS');
      case 'Stable':
        member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
        this.reply({ requestId, kind: 'sync', response: { errorCode: 0, errorMessage: '', protocolType: group.protocolType ?? '', protocolName: group.protocolName ?? '', assignment: member.assignment } });
        return;
      case 'CompletingRebalance': {
        member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
        if (member.syncRequestId !== null) this.reply({ requestId: member.syncRequestId, kind: 'sync', response: this.syncError('REBALANCE_IN_PROGRESS') });
        member.syncRequestId = requestId;
        member.synced = true;
        if (member.memberId !== group.leaderId || group.assignmentAppendId !== null) return;
        // The leader's assignment: persist it with the generation, then answer everyone.
        const assignments = new Map<string, Buffer>();
        for (const a of req.assignments) if (group.members.has(a.memberId)) assignments.set(a.memberId, Buffer.from(a.assignment));
        for (const m of group.members.values()) if (!assignments.has(m.memberId)) assignments.set(m.memberId, Buffer.alloc(0));
        group.assignmentAppendId = this.append([this.groupMetadataRecord(group, assignments)], { kind: 'assignment', groupId: group.groupId, generationId: group.generationId, assignments });
        return;
      }
      default:
        assert(false, `sync in state ${group.state}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Heartbeat and LeaveGroup

  heartbeat(requestId: number, req: HeartbeatInput, nowMs: number): void {
    const answer = (e: ErrorName | null): void => this.reply({ requestId, kind: 'heartbeat', response: { errorCode: code(e), errorMessage: '' } });
    const group = this.groups.get(req.groupId);
    if (req.groupId === '') return answer('INVALID_GROUP_ID');
    if (group === undefined) return answer('UNKNOWN_MEMBER_ID');
    if (group.state === 'Dead') return answer('COORDINATOR_NOT_AVAILABLE');
    const fenced = this.instanceFencing(group, req.memberId, req.groupInstanceId);
    if (fenced !== null) return answer(fenced);
    const member = group.members.get(req.memberId);
    if (member === undefined || group.state === 'Empty') return answer('UNKNOWN_MEMBER_ID');
    if (req.generationId !== group.generationId) return answer('ILLEGAL_GENERATION');
    member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
    // A heartbeat is how a Stable member learns it must rejoin.
    answer(group.state === 'PreparingRebalance' ? 'REBALANCE_IN_PROGRESS' : null);
  }

  /**
   * LeaveGroup for one or more members (Kafka's v3+, KIP-345): each member gets its own answer,
   * and a group this coordinator does not know answers UNKNOWN_MEMBER_ID for each, as Kafka's
   * GroupCoordinator. An empty member id with an instance id is an administrative removal of
   * that static member, whoever holds the instance now.
   */
  leave(requestId: number, req: LeaveInput, nowMs: number): void {
    const answer = (e: ErrorName | null, members: LeaveGroupResponse['members'] = []): void => this.reply({ requestId, kind: 'leave', response: { errorCode: code(e), errorMessage: '', members } });
    if (req.groupId === '') return answer('INVALID_GROUP_ID');
    const group = this.groups.get(req.groupId);
    if (group?.state === 'Dead') return answer('COORDINATOR_NOT_AVAILABLE');
    let removed = false;
    const members = req.members.map((who) => {
      const result = (e: ErrorName | null): LeaveGroupResponse['members'][number] => ({ memberId: who.memberId, ...(who.groupInstanceId === undefined ? {} : { groupInstanceId: who.groupInstanceId }), errorCode: code(e) });
      if (group === undefined) return result('UNKNOWN_MEMBER_ID');
      let memberId = who.memberId;
      if (who.groupInstanceId !== undefined) {
        const current = group.staticMembers.get(who.groupInstanceId);
        if (current === undefined) return result('UNKNOWN_MEMBER_ID');
        if (memberId !== '' && memberId !== current) return result('FENCED_INSTANCE_ID');
        memberId = current;
      }
      if (group.pendingMembers.delete(memberId)) return result(null);
      const member = group.members.get(memberId);
      if (member === undefined) return result('UNKNOWN_MEMBER_ID');
      this.removeMember(group, member);
      removed = true;
      return result(null);
    });
    if (group !== undefined) {
      if (removed) this.onMembershipShrunk(group, nowMs);
      else this.maybeCompleteJoin(group, nowMs);
    }
    answer(null, members);
  }

  // -------------------------------------------------------------------------------------------
  // offsets

  commit(requestId: number, req: CommitInput, nowMs: number): void {
    const all = (e: ErrorName): OffsetCommitResponse => ({
      errorCode: 0,
      topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: code(e) })) })),
    });
    const fail = (e: ErrorName): void => this.reply({ requestId, kind: 'commit', response: all(e) });
    if (req.groupId === '' || tooLong(req.groupId)) return fail('INVALID_GROUP_ID');
    let group = this.groups.get(req.groupId);
    if (group === undefined) {
      // Only a standalone consumer (generation -1, KIP-?) creates a group by committing.
      if (req.generationId >= 0) return fail('ILLEGAL_GENERATION');
      if (this.groups.size >= this.config.maxGroups) return fail('COORDINATOR_NOT_AVAILABLE');
      group = this.createGroup(req.groupId, nowMs);
    }
    if (group.state === 'Dead') return fail('COORDINATOR_NOT_AVAILABLE');
    if (!(req.generationId < 0 && group.state === 'Empty')) {
      // SCENARIOS 13: a member of an older generation must not commit over the new owner's offsets.
      // The order is Kafka's validateOffsetCommit: membership and generation first, so that in
      // CompletingRebalance only a member of the new generation hears REBALANCE_IN_PROGRESS (it
      // keeps its generation); a member fenced out of it must hear ILLEGAL_GENERATION or
      // UNKNOWN_MEMBER_ID, which tell its client that its partitions are lost, not revoked.
      const fenced = this.instanceFencing(group, req.memberId, req.groupInstanceId);
      if (fenced !== null) return fail(fenced);
      const member = group.members.get(req.memberId);
      if (member === undefined) return fail('UNKNOWN_MEMBER_ID');
      if (req.generationId !== group.generationId) return fail('ILLEGAL_GENERATION');
      if (group.state === 'CompletingRebalance') return fail('REBALANCE_IN_PROGRESS');
      member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
    }
    const response: OffsetCommitResponse = { errorCode: 0, topics: [] };
    const entries: PendingCommitEntry[] = [];
    const appendId = this.nextAppendId;
    for (const t of req.topics) {
      const partitions: { partition: number; errorCode: number }[] = [];
      for (const p of t.partitions) {
        if (Buffer.byteLength(p.metadata, 'utf8') > this.config.offsetMetadataMaxBytes) {
          partitions.push({ partition: p.partition, errorCode: code('OFFSET_METADATA_TOO_LARGE') });
          continue;
        }
        if (t.name === '' || tooLong(t.name) || p.partition < 0 || p.committedOffset < 0) {
          partitions.push({ partition: p.partition, errorCode: code('INVALID_COMMIT_OFFSET_SIZE') });
          continue;
        }
        partitions.push({ partition: p.partition, errorCode: 0 });
        entries.push({ key: offsetKey(t.name, p.partition), topic: t.name, partition: p.partition, value: { offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.metadata, commitTimestampMs: nowMs, appendId } });
      }
      response.topics.push({ name: t.name, partitions });
    }
    if (entries.length === 0) return this.reply({ requestId, kind: 'commit', response });
    const records = entries.map((e) => ({
      key: encodeGroupRecordKey({ kind: 'offset', group: group.groupId, topic: e.topic, partition: e.partition }),
      value: encodeOffsetCommitValue({ offset: e.value.offset, leaderEpoch: e.value.leaderEpoch, metadata: e.value.metadata, commitTimestampMs: e.value.commitTimestampMs }),
    }));
    const id = this.append(records, { kind: 'commit', groupId: group.groupId, requestId, entries, response });
    assert(id === appendId, 'append ids out of step');
  }

  /** Every acknowledged committed offset of every group (for the lag metric). */
  *committedOffsets(): Generator<{ groupId: string; topic: string; partition: number; offset: number }> {
    for (const g of this.groups.values()) {
      for (const o of g.offsets.values()) yield { groupId: g.groupId, topic: o.topic, partition: o.partition, offset: o.value.offset };
    }
  }

  /** Committed offsets (only acknowledged ones: an in-flight commit is not visible). */
  fetchOffsets(req: FetchInput): OffsetFetchResponse {
    const group = this.groups.get(req.groupId);
    const offsets = group?.offsets ?? new Map<string, { topic: string; partition: number; value: CommittedOffset }>();
    const result = (o: CommittedOffset | undefined, partition: number): OffsetFetchResponse['topics'][number]['partitions'][number] =>
      o === undefined ? { partition, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: 0 } : { partition, committedOffset: o.offset, committedLeaderEpoch: o.leaderEpoch, metadata: o.metadata, errorCode: 0 };
    if (req.topics.length > 0) {
      return { errorCode: 0, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => result(offsets.get(offsetKey(t.name, p))?.value, p)) })) };
    }
    const byTopic = new Map<string, { partition: number; value: CommittedOffset }[]>();
    for (const o of offsets.values()) {
      const list = byTopic.get(o.topic) ?? [];
      list.push(o);
      byTopic.set(o.topic, list);
    }
    return {
      errorCode: 0,
      topics: [...byTopic.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, list]) => ({ name, partitions: list.sort((a, b) => a.partition - b.partition).map((o) => result(o.value, o.partition)) })),
    };
  }

  // -------------------------------------------------------------------------------------------
  // administration

  listGroups(statesFilter: readonly string[]): ListedGroup[] {
    const want = new Set(statesFilter.map((s) => s.toLowerCase()));
    return [...this.groups.values()]
      .filter((g) => g.state !== 'Dead' && (want.size === 0 || want.has(g.state.toLowerCase())))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType ?? '', groupState: g.state }));
  }

  describeGroup(groupId: string): DescribedGroup {
    const g = this.groups.get(groupId);
    if (g === undefined || g.state === 'Dead') return { errorCode: 0, groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [], generationId: -1 };
    return {
      errorCode: 0,
      groupId,
      groupState: g.state,
      protocolType: g.protocolType ?? '',
      protocolData: g.protocolName ?? '',
      generationId: g.generationId,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }),
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: m.protocols.find((p) => p.name === g.protocolName)?.metadata ?? Buffer.alloc(0),
        // Assignments are only meaningful once the generation is Stable.
        memberAssignment: g.state === 'Stable' ? m.assignment : Buffer.alloc(0),
      })),
    };
  }

  /** DeleteGroups for one group: only an Empty group; its offsets and metadata get tombstones. */
  deleteGroup(requestId: number, groupId: string): void {
    const answer = (e: ErrorName | null): void => this.reply({ requestId, kind: 'delete', response: { groupId, errorCode: code(e) } });
    const g = this.groups.get(groupId);
    if (g === undefined || g.state === 'Dead') return answer('GROUP_ID_NOT_FOUND');
    if (g.state !== 'Empty') return answer('NON_EMPTY_GROUP');
    // The tombstones are taken before groupDead clears the offsets: without them, compaction
    // would drop the group tombstone and the offsets would come back at the next load. Partitions
    // whose first commit is still in flight are tombstoned too: that commit precedes the
    // tombstones in the log, and would otherwise outlive the group once compaction drops them.
    const keys = new Map<string, { topic: string; partition: number }>();
    for (const [k, o] of g.offsets) keys.set(k, o);
    for (const p of this.pending.values()) if (p.kind === 'commit' && p.groupId === groupId) for (const e of p.entries) keys.set(e.key, e);
    const records = this.tombstones(g, [...keys.values()]);
    const saved = { stateSinceMs: g.stateSinceMs, offsets: new Map(g.offsets) };
    this.groupDead(g);
    this.append(records, { kind: 'delete', groupId, requestId, saved });
  }

  /**
   * OffsetDelete (KIP-496), as Kafka's GroupCoordinator.handleDeleteOffsets: an Empty group loses
   * the named partitions' offsets; a "consumer" group with members loses those of topics its
   * members do not subscribe to, and answers GROUP_SUBSCRIBED_TO_TOPIC for the others (all of
   * them while a subscription does not parse); a group of another protocol type with members is
   * NON_EMPTY_GROUP, an unknown or Dead one GROUP_ID_NOT_FOUND. A partition without a committed
   * offset is answered NONE with nothing written. The others get tombstones (a partition whose
   * commit is still in flight too: that commit precedes them in the log), and the offsets go from
   * memory, and the request is answered, only once the tombstones are acknowledged; a failed write
   * changes nothing and is answered as a group-level error. An Empty group left without offsets
   * is forgotten by the next expiry pass (`expireOffsets`), with its metadata tombstone.
   */
  deleteOffsets(requestId: number, req: DeleteOffsetsInput): void {
    const fail = (e: ErrorName): void => this.reply({ requestId, kind: 'deleteOffsets', response: { errorCode: code(e), topics: [] } });
    if (req.groupId === '' || tooLong(req.groupId)) return fail('INVALID_GROUP_ID');
    const g = this.groups.get(req.groupId);
    if (g === undefined || g.state === 'Dead') return fail('GROUP_ID_NOT_FOUND');
    let consumed: ReadonlySet<string> | null = new Set<string>();
    if (g.state !== 'Empty') {
      if (g.protocolType !== CONSUMER_PROTOCOL_TYPE) return fail('NON_EMPTY_GROUP');
      consumed = this.consumedTopics(g);
    }
    const inFlight = this.pendingCommitKeys(g.groupId);
    const gone = new Map<string, { topic: string; partition: number }>();
    const response: OffsetDeleteResponse = { errorCode: 0, topics: [] };
    for (const t of req.topics) {
      const subscribed = consumed === null || consumed.has(t.name);
      response.topics.push({ name: t.name, partitions: t.partitions.map((partition) => ({ partition, errorCode: subscribed ? code('GROUP_SUBSCRIBED_TO_TOPIC') : 0 })) });
      if (subscribed) continue;
      for (const partition of t.partitions) {
        const k = offsetKey(t.name, partition);
        if (g.offsets.has(k) || inFlight.has(k)) gone.set(k, { topic: t.name, partition });
      }
    }
    if (gone.size === 0) return this.reply({ requestId, kind: 'deleteOffsets', response });
    this.append(
      [...gone.values()].map((o) => offsetTombstone(g.groupId, o)),
      { kind: 'deleteOffsets', groupId: g.groupId, requestId, keys: new Set(gone.keys()), response },
    );
  }

  // -------------------------------------------------------------------------------------------
  // time

  /** Session expiry, rebalance and sync deadlines, pending member expiry. */
  tick(nowMs: number): void {
    if (this.failedTombstones.length > 0) this.retryTombstones(nowMs);
    // Only groups with a timer: an Empty group without member ids awaiting their join (e.g. one
    // of standalone commits; up to group.coordinator.max.groups of them) costs nothing here.
    for (const g of this.timed) {
      if (this.groups.get(g.groupId) !== g || (g.members.size === 0 && g.pendingMembers.size === 0 && (g.state === 'Empty' || g.state === 'Dead'))) {
        this.timed.delete(g);
        continue;
      }
      for (const [id, deadline] of [...g.pendingMembers]) {
        if (deadline <= nowMs) g.pendingMembers.delete(id);
      }
      let removed = false;
      for (const m of [...g.members.values()]) {
        // A member parked in a join or sync is waiting on the coordinator, not silent.
        if (m.joinRequestId !== null || m.syncRequestId !== null) continue;
        if (m.heartbeatDeadlineMs <= nowMs && g.state !== 'Empty' && g.state !== 'Dead') {
          this.removeMember(g, m);
          removed = true;
        }
      }
      if (g.state === 'CompletingRebalance' && g.syncDeadlineMs <= nowMs && g.assignmentAppendId === null) {
        // The leader never sent the assignment (or members never synced): drop the silent ones.
        for (const m of [...g.members.values()]) {
          if (!m.synced) {
            this.removeMember(g, m);
            removed = true;
          }
        }
        if (!removed) this.prepareRebalance(g, nowMs);
      }
      if (removed) this.onMembershipShrunk(g, nowMs);
      else this.maybeCompleteJoin(g, nowMs);
    }
  }

  /**
   * The earliest time at which `tick` would change something (a session, pending member id,
   * initial delay, rebalance or sync deadline, a failed tombstone write to repeat after its backoff), or null when
   * nothing is timed. A driver may sleep
   * until then instead of ticking on a fixed interval. O(members).
   */
  nextDeadlineMs(): number | null {
    let next = this.tombstoneRetryDueMs() ?? Infinity;
    for (const g of this.groups.values()) {
      for (const d of g.pendingMembers.values()) next = Math.min(next, d);
      if (g.state === 'Empty' || g.state === 'Dead') continue;
      for (const m of g.members.values()) if (m.joinRequestId === null && m.syncRequestId === null) next = Math.min(next, m.heartbeatDeadlineMs);
      if (g.state === 'PreparingRebalance') next = Math.min(next, g.rebalanceDeadlineMs, Math.max(g.joinNotBeforeMs, 0));
      if (g.state === 'CompletingRebalance' && g.assignmentAppendId === null) next = Math.min(next, g.syncDeadlineMs);
    }
    return next === Infinity ? null : next;
  }

  /**
   * Offsets expiry (offsets.retention.minutes): a group Empty for longer than the retention loses
   * its offsets (a standalone group, without a protocol type, counts from each commit instead);
   * an Empty group left without offsets is deleted. Writes tombstones.
   */
  expireOffsets(nowMs: number): void {
    for (const g of [...this.groups.values()]) {
      if (g.state !== 'Empty') continue;
      // A partition with a commit in flight is not expired (Kafka's pendingOffsetCommits): its
      // tombstone would follow the commit in the log and delete it at the next load, although
      // the commit is answered as a success and visible here.
      const pendingKeys = this.pendingCommitKeys(g.groupId);
      const expired = [...g.offsets.entries()].filter(([k]) => !pendingKeys.has(k)).map(([, o]) => o).filter((o) => {
        const base = g.protocolType === null ? o.value.commitTimestampMs : Math.max(g.stateSinceMs, o.value.commitTimestampMs);
        return base + this.config.offsetsRetentionMs <= nowMs;
      });
      for (const o of expired) g.offsets.delete(offsetKey(o.topic, o.partition));
      // An Empty group without offsets is forgotten (unless a member id handed out is still unused).
      const dead = g.offsets.size === 0 && g.pendingMembers.size === 0 && this.groupAppendsSettled(g.groupId);
      if (dead) this.groups.delete(g.groupId);
      if (dead || expired.length > 0) this.appendTombstones(g.groupId, expired, dead);
    }
  }

  /**
   * Topics were deleted (or deleted and re-created: a new topic id under the same name): as Kafka's
   * onPartitionsDeleted, every group's offsets of them get tombstones, commits of them still in
   * flight included (their records precede the tombstones in the log, and are not applied when
   * acknowledged), so a re-created topic is never consumed from the old topic's positions. An
   * Empty group left without offsets is forgotten, as at expiry.
   */
  deleteTopicOffsets(topics: ReadonlySet<string>): void {
    if (topics.size === 0) return;
    const inFlight = new Map<string, Map<string, { topic: string; partition: number }>>();
    for (const p of this.pending.values()) {
      if (p.kind !== 'commit') continue;
      for (const e of p.entries) {
        if (!topics.has(e.topic)) continue;
        e.dropped = true;
        const keys = inFlight.get(p.groupId) ?? new Map<string, { topic: string; partition: number }>();
        keys.set(e.key, e);
        inFlight.set(p.groupId, keys);
      }
    }
    for (const g of [...this.groups.values()]) {
      const keys = inFlight.get(g.groupId) ?? new Map<string, { topic: string; partition: number }>();
      // A group being deleted holds its offsets in its deletion, to be restored should that write
      // fail: they go too, with tombstones of their own (those of the deletion may never be written).
      const offsets = g.state === 'Dead' ? this.pendingDeleteOf(g.groupId)?.saved.offsets : g.offsets;
      if (offsets === undefined) continue;
      for (const [k, o] of [...offsets]) {
        if (!topics.has(o.topic)) continue;
        offsets.delete(k);
        keys.set(k, o);
      }
      if (keys.size === 0) continue;
      const dead = g.state === 'Empty' && g.offsets.size === 0 && g.pendingMembers.size === 0 && this.groupAppendsSettled(g.groupId);
      if (dead) this.groups.delete(g.groupId);
      this.appendTombstones(g.groupId, [...keys.values()], dead);
    }
  }

  // -------------------------------------------------------------------------------------------
  // appends

  /** The outcome of an append (null: acknowledged by acks=all). */
  onAppended(appendId: number, error: ErrorName | null, nowMs: number): void {
    const p = this.pending.get(appendId);
    if (this.closed) return; // answered NOT_COORDINATOR by shutdown()
    assert(p !== undefined, `unknown append ${appendId}`);
    this.pending.delete(appendId);
    const failure: ErrorName | null = error === null ? null : coordinatorError(error);
    switch (p.kind) {
      case 'commit': {
        const group = this.groups.get(p.groupId);
        // A group being deleted keeps what it would hold should the deletion fail.
        const offsets = group === undefined ? undefined : group.state !== 'Dead' ? group.offsets : this.pendingDeleteOf(p.groupId)?.saved.offsets;
        if (failure === null && offsets !== undefined) {
          for (const e of p.entries) {
            if (e.dropped === true) continue;
            const cur = offsets.get(e.key);
            if (cur === undefined || cur.value.appendId < e.value.appendId) offsets.set(e.key, { topic: e.topic, partition: e.partition, value: e.value });
          }
        }
        const response: OffsetCommitResponse =
          failure === null ? p.response : { errorCode: 0, topics: p.response.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((x) => ({ partition: x.partition, errorCode: x.errorCode === 0 ? code(failure) : x.errorCode })) })) };
        this.reply({ requestId: p.requestId, kind: 'commit', response });
        return;
      }
      case 'assignment': {
        const group = this.groups.get(p.groupId);
        if (group === undefined || group.state !== 'CompletingRebalance' || group.generationId !== p.generationId || group.assignmentAppendId !== appendId) return;
        group.assignmentAppendId = null;
        if (failure !== null) {
          this.resetAssignment(group, failure);
          this.prepareRebalance(group, nowMs);
          return;
        }
        for (const m of group.members.values()) {
          m.assignment = p.assignments.get(m.memberId) ?? Buffer.alloc(0);
          if (m.syncRequestId !== null) {
            this.reply({ requestId: m.syncRequestId, kind: 'sync', response: { errorCode: 0, errorMessage: '', protocolType: group.protocolType ?? '', protocolName: group.protocolName ?? '', assignment: m.assignment } });
            m.syncRequestId = null;
          }
        }
        this.transition(group, 'Stable', nowMs);
        return;
      }
      case 'replace': {
        const g = this.groups.get(p.groupId);
        const current = g !== undefined && g.staticMembers.get(p.instanceId) === p.newId ? g.members.get(p.newId) : undefined;
        if (failure === null) {
          this.reply({ requestId: p.requestId, kind: 'join', response: g !== undefined && current !== undefined ? this.joinResponse(g, p.newId) : this.joinError('UNKNOWN_MEMBER_ID', p.newId, 'removed from the group') });
          return;
        }
        // Restore the old incarnation only if nothing else happened to the group meanwhile (the
        // same Stable generation): otherwise the group has moved on and the error suffices.
        if (g !== undefined && current !== undefined && g.state === 'Stable' && g.generationId === p.generationId) {
          g.members.delete(p.newId);
          g.members.set(p.old.memberId, { ...p.old, heartbeatDeadlineMs: Math.max(p.old.heartbeatDeadlineMs, nowMs + p.old.sessionTimeoutMs) });
          g.staticMembers.set(p.instanceId, p.old.memberId);
          if (g.leaderId === p.newId) g.leaderId = p.old.memberId;
        }
        this.reply({ requestId: p.requestId, kind: 'join', response: this.joinError(failure, p.newId, 'the new member id could not be persisted') });
        return;
      }
      case 'delete': {
        const g = this.groups.get(p.groupId);
        if (g !== undefined && g.state === 'Dead') {
          if (failure === null) {
            this.groups.delete(p.groupId);
          } else {
            // The tombstones are not known to be in the log: the group stands as the log has it
            // (Kafka's new coordinator reverts likewise), so its offsets are still served.
            g.offsets = p.saved.offsets;
            this.transition(g, 'Empty', p.saved.stateSinceMs);
          }
        }
        this.reply({ requestId: p.requestId, kind: 'delete', response: { groupId: p.groupId, errorCode: code(failure) } });
        return;
      }
      case 'deleteOffsets': {
        if (failure !== null) {
          // The tombstones are not known to be in the log: the offsets stand, as a reload has them.
          this.reply({ requestId: p.requestId, kind: 'deleteOffsets', response: { errorCode: code(failure), topics: [] } });
          return;
        }
        const group = this.groups.get(p.groupId);
        // A group being deleted keeps what it would hold should the deletion fail.
        const offsets = group === undefined ? undefined : group.state !== 'Dead' ? group.offsets : this.pendingDeleteOf(p.groupId)?.saved.offsets;
        for (const k of p.keys) {
          const cur = offsets?.get(k);
          // A commit appended after the tombstones follows them in the log: it stands.
          if (cur !== undefined && cur.value.appendId < appendId) offsets?.delete(k);
        }
        // Commits appended before the tombstones and not acknowledged yet precede them in the
        // log: whenever they are acknowledged, they must not be applied.
        for (const [id, q] of this.pending) {
          if (id > appendId || q.kind !== 'commit' || q.groupId !== p.groupId) continue;
          for (const e of q.entries) if (p.keys.has(e.key)) e.dropped = true;
        }
        this.reply({ requestId: p.requestId, kind: 'deleteOffsets', response: p.response });
        return;
      }
      case 'tombstones':
        if (failure !== null) this.failedTombstones.push({ ...p, failures: p.failures + 1, retryAtMs: nowMs + tombstoneRetryBackoffMs(p.failures + 1) });
        return;
      case 'other':
        return;
    }
  }

  /**
   * Writes again the tombstones of failed writes (a refused or timed-out write may not be in the
   * log): those of offsets still gone with no commit of them in flight that will be applied (such
   * a commit stands, its record after the failed tombstones), and the group's if it is still gone
   * with nothing in flight. Appended after everything since, they agree with what is served now.
   * Each waits out its backoff (`tombstoneRetryBackoffMs`) first; the failures count carries over
   * to the new write, so a partition that keeps refusing writes is tried at most once a second.
   */
  private retryTombstones(nowMs: number): void {
    const failed = this.failedTombstones;
    this.failedTombstones = [];
    for (const p of failed) {
      if (p.retryAtMs > nowMs) {
        this.failedTombstones.push(p);
        continue;
      }
      const g = this.groups.get(p.groupId);
      const offsets = g === undefined ? undefined : g.state === 'Dead' ? this.pendingDeleteOf(g.groupId)?.saved.offsets : g.offsets;
      // A commit in flight stands unless dropped (a dropped one is never applied here: the
      // tombstone must follow it).
      const inFlight = new Set<string>();
      for (const q of this.pending.values()) if (q.kind === 'commit' && q.groupId === p.groupId) for (const e of q.entries) if (e.dropped !== true) inFlight.add(e.key);
      const missing = p.offsets.filter((o) => offsets?.has(offsetKey(o.topic, o.partition)) !== true);
      // Those with a commit in flight wait for its outcome: should it fail, they are still due.
      const waiting = missing.filter((o) => inFlight.has(offsetKey(o.topic, o.partition)));
      const gone = missing.filter((o) => !inFlight.has(offsetKey(o.topic, o.partition)));
      const group = p.group && g === undefined && this.groupAppendsSettled(p.groupId);
      if (gone.length > 0 || group) this.appendTombstones(p.groupId, gone, group, p.failures);
      if (waiting.length > 0 || (p.group && !group && g === undefined)) this.failedTombstones.push({ ...p, offsets: waiting, group: p.group && !group && g === undefined });
    }
  }

  /** The coordinator stops (leadership moved): every parked request is answered NOT_COORDINATOR. */
  shutdown(): void {
    for (const g of this.groups.values()) {
      for (const m of g.members.values()) {
        if (m.joinRequestId !== null) this.reply({ requestId: m.joinRequestId, kind: 'join', response: this.joinError('NOT_COORDINATOR', m.memberId, '') });
        if (m.syncRequestId !== null) this.reply({ requestId: m.syncRequestId, kind: 'sync', response: this.syncError('NOT_COORDINATOR') });
        m.joinRequestId = null;
        m.syncRequestId = null;
      }
    }
    for (const [id, p] of this.pending) {
      if (p.kind === 'commit' || p.kind === 'delete' || p.kind === 'replace' || p.kind === 'deleteOffsets') this.onAppended(id, 'NOT_LEADER_OR_FOLLOWER', 0);
    }
    this.pending.clear();
    this.groups.clear();
    this.closed = true;
  }

  // -------------------------------------------------------------------------------------------
  // inspection (tests, metrics)

  get groupCount(): number {
    return this.groups.size;
  }

  get pendingAppendCount(): number {
    return this.pending.size;
  }

  /** When the earliest failed tombstone write is due to be repeated (a tick at or after it does), or null when none failed. */
  tombstoneRetryDueMs(): number | null {
    let due = Infinity;
    for (const p of this.failedTombstones) due = Math.min(due, p.retryAtMs);
    return due === Infinity ? null : due;
  }

  stateOf(groupId: string): GroupStateName | undefined {
    return this.groups.get(groupId)?.state;
  }

  generationOf(groupId: string): number | undefined {
    return this.groups.get(groupId)?.generationId;
  }

  leaderOf(groupId: string): string | null | undefined {
    return this.groups.get(groupId)?.leaderId;
  }

  membersOf(groupId: string): string[] {
    return [...(this.groups.get(groupId)?.members.keys() ?? [])];
  }

  /** Throws when an invariant of the header comment does not hold. */
  checkInvariants(): void {
    for (const g of this.groups.values()) {
      const empty = g.state === 'Empty' || g.state === 'Dead';
      assert((empty && g.pendingMembers.size === 0) || this.timed.has(g), `${g.groupId}: ${g.state} with ${g.pendingMembers.size} pending ids is not ticked`);
      assert(empty === (g.members.size === 0), `${g.groupId}: ${g.state} with ${g.members.size} members`);
      if (!empty) assert(g.leaderId !== null && g.members.has(g.leaderId), `${g.groupId}: leader ${g.leaderId} is not a member`);
      assert(g.members.size + g.pendingMembers.size <= this.config.maxSize || g.state === 'PreparingRebalance', `${g.groupId}: over group.max.size in ${g.state}`);
      for (const [instance, id] of g.staticMembers) assert(g.members.get(id)?.groupInstanceId === instance, `${g.groupId}: static ${instance} -> ${id} broken`);
      for (const m of g.members.values()) {
        if (m.groupInstanceId !== undefined) assert(g.staticMembers.get(m.groupInstanceId) === m.memberId, `${g.groupId}: ${m.memberId} not in staticMembers`);
        if (m.joinRequestId !== null) assert(g.state === 'PreparingRebalance', `${g.groupId}: parked join in ${g.state}`);
        if (m.syncRequestId !== null) assert(g.state === 'CompletingRebalance', `${g.groupId}: parked sync in ${g.state}`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // helpers

  private createGroup(groupId: string, nowMs: number): Group {
    const g: Group = {
      groupId,
      state: 'Empty',
      stateSinceMs: nowMs,
      protocolType: null,
      protocolName: null,
      generationId: 0,
      leaderId: null,
      members: new Map(),
      staticMembers: new Map(),
      pendingMembers: new Map(),
      offsets: new Map(),
      subscribedTopics: new Set(),
      rebalanceDeadlineMs: 0,
      joinNotBeforeMs: 0,
      syncDeadlineMs: 0,
      assignmentAppendId: null,
    };
    this.groups.set(groupId, g);
    return g;
  }

  private transition(group: Group, to: GroupStateName, nowMs: number): void {
    group.state = to;
    group.stateSinceMs = nowMs;
    if (to !== 'Empty' && to !== 'Dead') this.timed.add(group);
  }

  private groupDead(g: Group): void {
    this.transition(g, 'Dead', g.stateSinceMs);
    g.offsets.clear();
  }

  private pendingDeleteOf(groupId: string): Extract<PendingAppend, { kind: 'delete' }> | undefined {
    for (const p of this.pending.values()) if (p.kind === 'delete' && p.groupId === groupId) return p;
    return undefined;
  }

  /** The offset keys of the group's commits still in flight. */
  private pendingCommitKeys(groupId: string): Set<string> {
    const keys = new Set<string>();
    for (const p of this.pending.values()) if (p.kind === 'commit' && p.groupId === groupId) for (const e of p.entries) keys.add(e.key);
    return keys;
  }

  private groupAppendsSettled(groupId: string): boolean {
    for (const p of this.pending.values()) if (p.kind !== 'other' && p.kind !== 'tombstones' && p.groupId === groupId) return false;
    return true;
  }

  /**
   * The topics the members subscribe to with the group's chosen protocol (Kafka's
   * computeSubscribedTopics): none without members; null (unknown) for another protocol type
   * than "consumer" or bytes that do not parse.
   */
  private generationSubscriptions(group: Group): Set<string> | null {
    const topics = new Set<string>();
    if (group.members.size === 0) return topics;
    if (group.protocolType !== CONSUMER_PROTOCOL_TYPE) return null;
    for (const m of group.members.values()) {
      const p = m.protocols.find((x) => x.name === group.protocolName);
      const t = p === undefined ? null : subscribedTopicsOf(p.metadata);
      if (t === null) return null;
      for (const x of t) topics.add(x);
    }
    return topics;
  }

  /**
   * Whether `after` subscribes to something else than `before` under the group's protocol: the
   * topics for a "consumer" group (owned partitions and user data aside), else the metadata bytes.
   */
  private subscriptionChanged(group: Group, before: Member, after: Member): boolean {
    const a = before.protocols.find((p) => p.name === group.protocolName)?.metadata;
    const b = after.protocols.find((p) => p.name === group.protocolName)?.metadata;
    if (a === undefined || b === undefined) return true;
    const ta = group.protocolType === CONSUMER_PROTOCOL_TYPE ? subscribedTopicsOf(a) : null;
    const tb = group.protocolType === CONSUMER_PROTOCOL_TYPE ? subscribedTopicsOf(b) : null;
    if (ta === null || tb === null) return !a.equals(b);
    const sa = new Set(ta);
    const sb = new Set(tb);
    return sa.size !== sb.size || [...sa].some((t) => !sb.has(t));
  }

  /**
   * What OffsetDelete must leave alone in a group with members: the current generation's topics
   * and those of every protocol a member joined with since (about to be consumed); null when
   * some subscription is unknown, meaning every topic.
   */
  private consumedTopics(group: Group): Set<string> | null {
    if (group.subscribedTopics === null) return null;
    const topics = new Set(group.subscribedTopics);
    for (const m of group.members.values()) {
      for (const p of m.protocols) {
        const t = subscribedTopicsOf(p.metadata);
        if (t === null) return null;
        for (const x of t) topics.add(x);
      }
    }
    return topics;
  }

  private tombstones(g: Group, offsets: readonly { topic: string; partition: number }[]): GroupRecord[] {
    return [
      ...offsets.map((o) => ({ key: encodeGroupRecordKey({ kind: 'offset', group: g.groupId, topic: o.topic, partition: o.partition }), value: null })),
      { key: encodeGroupRecordKey({ kind: 'group', group: g.groupId }), value: null },
    ];
  }

  /** Tombstones of offsets gone from memory (and of the group when `group`), written again should the write fail. */
  private appendTombstones(groupId: string, offsets: { topic: string; partition: number }[], group: boolean, failures = 0): void {
    const records: GroupRecord[] = offsets.map((o) => offsetTombstone(groupId, o));
    if (group) records.push({ key: encodeGroupRecordKey({ kind: 'group', group: groupId }), value: null });
    this.append(records, { kind: 'tombstones', groupId, offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition })), group, failures });
  }

  private removeMember(group: Group, m: Member): void {
    if (m.joinRequestId !== null) this.reply({ requestId: m.joinRequestId, kind: 'join', response: this.joinError('UNKNOWN_MEMBER_ID', m.memberId, 'removed from the group') });
    if (m.syncRequestId !== null) this.reply({ requestId: m.syncRequestId, kind: 'sync', response: this.syncError('UNKNOWN_MEMBER_ID') });
    group.members.delete(m.memberId);
    if (m.groupInstanceId !== undefined) group.staticMembers.delete(m.groupInstanceId);
    if (group.leaderId === m.memberId) group.leaderId = group.members.keys().next().value ?? null;
  }

  /** After members left or expired: Stable/CompletingRebalance rebalance; PreparingRebalance may now complete. */
  private onMembershipShrunk(group: Group, nowMs: number): void {
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') {
      this.prepareRebalance(group, nowMs);
    } else if (group.state === 'PreparingRebalance') {
      if (group.members.size === 0) group.rebalanceDeadlineMs = nowMs; // nobody to wait for
      this.maybeCompleteJoin(group, nowMs);
    }
  }

  private resetAssignment(group: Group, error: ErrorName): void {
    group.assignmentAppendId = null;
    for (const m of group.members.values()) {
      m.assignment = Buffer.alloc(0);
      if (m.syncRequestId !== null) {
        this.reply({ requestId: m.syncRequestId, kind: 'sync', response: this.syncError(error) });
        m.syncRequestId = null;
      }
    }
  }

  /** FENCED_INSTANCE_ID when the instance id belongs to another member id; null when fine. */
  private instanceFencing(group: Group, memberId: string, instanceId: string | undefined): ErrorName | null {
    if (instanceId === undefined) return null;
    const current = group.staticMembers.get(instanceId);
    if (current !== undefined && current !== memberId) return 'FENCED_INSTANCE_ID';
    return null;
  }

  private protocolsCompatible(group: Group, req: JoinInput): boolean {
    if (req.protocolType === '' || req.protocols.length === 0) return false;
    if (group.members.size === 0) return true;
    if (group.protocolType !== req.protocolType) return false;
    // Some protocol must be supported by every member, the joiner included (a rejoining member's
    // old protocols do not count: they are being replaced).
    const others = [...group.members.values()].filter((m) => m.memberId !== req.memberId);
    const support = supportCounts(others);
    return req.protocols.some((p) => (support.get(p.name) ?? 0) === others.length);
  }

  /** Kafka's vote: among protocols every member supports, each member votes its most preferred; most votes win (ties: first candidate). */
  private selectProtocol(group: Group): string {
    const members = [...group.members.values()];
    const first = members[0];
    assert(first !== undefined, 'selectProtocol on an empty group');
    // Linear in the protocols listed (counts, not nested scans): a member may list thousands.
    const support = supportCounts(members);
    const candidates = first.protocols.map((p) => p.name).filter((name) => support.get(name) === members.length);
    assert(candidates.length > 0, `${group.groupId}: no common protocol`);
    const candidateSet = new Set(candidates);
    const votes = new Map<string, number>();
    for (const m of members) {
      const vote = m.protocols.find((p) => candidateSet.has(p.name));
      if (vote !== undefined) votes.set(vote.name, (votes.get(vote.name) ?? 0) + 1);
    }
    let best = candidates[0] as string;
    for (const c of candidates) if ((votes.get(c) ?? 0) > (votes.get(best) ?? 0)) best = c;
    return best;
  }

  private memberList(group: Group): JoinGroupResponse['members'] {
    return [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }),
      metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0),
    }));
  }

  private joinResponse(group: Group, memberId: string): JoinGroupResponse {
    // The leader needs the member list to compute the assignment, also when the response is
    // sent again (CompletingRebalance, after a lost response): empty, it would assign nothing.
    const members = memberId === group.leaderId ? this.memberList(group) : [];
    return { errorCode: 0, errorMessage: '', generationId: group.generationId, protocolType: group.protocolType ?? '', protocolName: group.protocolName ?? '', leader: group.leaderId ?? '', memberId, members };
  }

  private joinError(error: ErrorName, memberId: string, message: string): JoinGroupResponse {
    return { errorCode: code(error), errorMessage: message, generationId: -1, protocolType: '', protocolName: '', leader: '', memberId, members: [] };
  }

  private syncError(error: ErrorName): SyncGroupResponse {
    return { errorCode: code(error), errorMessage: '', protocolType: '', protocolName: '', assignment: Buffer.alloc(0) };
  }

  private groupMetadataRecord(group: Group, assignments?: Map<string, Buffer>): GroupRecord {
    const value: GroupMetadataValue = {
      protocolType: group.protocolType ?? '',
      generationId: group.generationId,
      protocolName: group.protocolName,
      leaderId: group.leaderId,
      currentStateTimestampMs: group.stateSinceMs,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId ?? null,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        sessionTimeoutMs: m.sessionTimeoutMs,
        subscription: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? Buffer.alloc(0),
        assignment: assignments?.get(m.memberId) ?? m.assignment,
      })),
    };
    return { key: encodeGroupRecordKey({ kind: 'group', group: group.groupId }), value: encodeGroupMetadataValue(value) };
  }

  private append(records: GroupRecord[], purpose: PendingAppend): number {
    const appendId = this.nextAppendId++;
    this.pending.set(appendId, purpose);
    this.ready.appends.push({ appendId, records });
    return appendId;
  }

  private reply(r: GroupReply): void {
    this.ready.replies.push(r);
  }
}

/** Kafka's mapping of a failed append to what the group client sees (it retries or rediscovers). */
export function coordinatorError(appendError: ErrorName): ErrorName {
  switch (appendError) {
    case 'UNKNOWN_TOPIC_OR_PARTITION':
    case 'NOT_ENOUGH_REPLICAS':
    case 'NOT_ENOUGH_REPLICAS_AFTER_APPEND':
    case 'REQUEST_TIMED_OUT':
      return 'COORDINATOR_NOT_AVAILABLE';
    case 'NOT_LEADER_OR_FOLLOWER':
    case 'KAFKA_STORAGE_ERROR':
      return 'NOT_COORDINATOR';
    case 'MESSAGE_TOO_LARGE':
    case 'RECORD_LIST_TOO_LARGE':
    case 'INVALID_FETCH_SIZE':
      return 'UNKNOWN_SERVER_ERROR';
    default:
      return appendError;
  }
}
