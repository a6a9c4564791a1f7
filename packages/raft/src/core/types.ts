// Types shared by the pure Raft core, its drivers and the simulator.
//
// Indexes and terms are JavaScript numbers: they are safe integers below 2^53, which a log
// appending a million entries a second would reach in ~285 years. They cross the wire as
// uint64 and are checked on decode.

/** A node's identity: a short, stable, printable string ("n1", "controller-2"). */
export type NodeId = string;

/** No node (no leader known, no vote cast). */
export const NONE: NodeId = '';

export enum EntryType {
  /** Application data, or an empty no-op appended by a new leader (Raft §5.4.2, §8). */
  Normal = 0,
  /** A single-server membership change; `data` is an encoded ConfChange. */
  ConfChange = 1,
}

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be on stable storage before the node answers anyone (Raft figure 2, "persistent state"). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  /** Not required for safety, but lets a restarted node re-apply committed entries at once. */
  readonly commit: number;
}

/** Cluster membership: voters elect and count toward commit; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * Each member's context from the conf change that added it (RaftNode: its "host:port"
   * address), so that a node restoring from a snapshot knows how to reach every member.
   * Absent when no member has one.
   */
  readonly contexts?: Readonly<Record<NodeId, string>>;
}

export interface SnapshotMeta {
  /** Last index covered by the snapshot. */
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
  /** Membership as of `index` (Raft §7: a snapshot carries the latest configuration). */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's serialized state machine at `meta.index`. */
  readonly data: Uint8Array;
}

export enum ConfChangeType {
  /** Add a non-voting member that receives the log (Raft thesis §4.2.1). */
  AddLearner = 0,
  /** Promote a caught-up learner to voter. */
  AddVoter = 1,
  /** Remove a voter or learner. */
  RemoveNode = 2,
}

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /**
   * Opaque to the core, replicated with the change and kept in the membership (ConfState
   * contexts) while the node is a member. RaftNode puts the member's address here. An AddVoter
   * without one keeps the learner's.
   */
  readonly context?: string;
}

export enum MessageType {
  /** Append entries (Raft §5.3). Also the probe that finds where logs diverge. */
  App = 1,
  AppResp = 2,
  /** RequestVote (Raft §5.2). */
  Vote = 3,
  VoteResp = 4,
  /** Pre-vote (Raft thesis §9.6): would you vote for me? No term change on either side. */
  PreVote = 5,
  PreVoteResp = 6,
  /** Heartbeat: an empty append without log matching; carries commit and a read context. */
  Heartbeat = 7,
  HeartbeatResp = 8,
  /** One chunk of InstallSnapshot (Raft §7). */
  Snap = 9,
  /** Acknowledges a snapshot chunk; `index` is the snapshot index, `rejectHint` the next offset. */
  SnapResp = 10,
  /** Leadership transfer (Raft thesis §3.10): start an election now, skipping pre-vote and lease. */
  TimeoutNow = 11,
  /** A follower forwards a proposal to its leader. */
  Prop = 12,
  /** A follower forwards a ReadIndex request to its leader (Raft thesis §6.4). */
  ReadIndex = 13,
  ReadIndexResp = 14,
  /** A follower asks the leader to transfer leadership to `from`. */
  TransferLeader = 15,
}

/** One chunk of a snapshot in flight. */
export interface SnapshotChunk {
  readonly meta: SnapshotMeta;
  /** Byte offset of `data` in the whole snapshot. */
  readonly offset: number;
  /** Total size of the snapshot in bytes. */
  readonly totalBytes: number;
  readonly data: Uint8Array;
}

/**
 * Every message between cores. One flat shape (as etcd's raftpb.Message) keeps the codec and
 * the simulator simple; each type documents which fields it uses in raft.ts.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** App: term of the entry at `index`. AppResp reject: term at `rejectHint`. Vote: last log term. */
  readonly logTerm: number;
  /** App: index preceding `entries`. AppResp: match/rejected index. Vote: last log index. */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  /** AppResp reject: the follower's guess of the last index that may match. */
  readonly rejectHint: number;
  /** Heartbeat/ReadIndex: a read request id. Vote/PreVote: 1 marks a leadership transfer. */
  readonly context: number;
  readonly snapshot: SnapshotChunk | null;
}

export enum Role {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** Volatile state reported to the driver for events and status. */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId;
  readonly term: number;
}

/** A ReadIndex result: once `index` is applied, a read for `requestId` is linearizable. */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/**
 * Everything the driver must do, in this order (Raft figure 2 "before responding to RPCs"):
 * 1. persist `hardState`, `snapshot` and `entries` durably (entries replace any stored suffix
 *    starting at entries[0].index); a change of `commit` alone need not be synced;
 * 2. send `messages` (they may promise things about the state persisted in 1). Exception: App
 *    messages may be sent before step 1 when the Ready changes neither term nor vote (see
 *    canSendEarly);
 * 3. restore `snapshot` into the state machine, then apply `committedEntries` in order;
 * 4. call `advance()`.
 * Or, when `mayPersistAsync` (a leader's Ready changing neither term nor vote, no snapshot):
 * send everything, apply, call `advanceAsync()`, write the entries and hard state in the
 * background after every earlier write, and report completion with `persisted(index, term)`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /**
   * A leader's Ready that changes neither term nor vote and holds no snapshot: none of its
   * messages depends on its entries being durable, so the driver may send everything, apply,
   * and call advanceAsync(), writing the entries in the background and reporting them with
   * persisted(index, term) (thesis §10.2.1: the leader writes its log in parallel with
   * replication, and counts itself toward commit only once its write is durable; a majority of
   * followers can commit without it).
   */
  readonly mayPersistAsync: boolean;
}

/** Build a message with defaults for the unused fields. */
export function msg(fields: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return {
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    snapshot: null,
    ...fields,
  };
}

/**
 * Messages of `rd` that may leave before its state is persisted: a leader's appends, when the
 * Ready changes neither term nor vote relative to `persisted` (thesis §10.2.1: the leader can
 * write to its disk in parallel with replicating, since it counts itself only once durable).
 */
export function earlyMessages(rd: Ready, persisted: HardState): Message[] {
  const hs = rd.hardState;
  if (hs !== null && (hs.term !== persisted.term || hs.vote !== persisted.vote)) return [];
  return rd.messages.filter((m) => m.type === MessageType.App);
}
