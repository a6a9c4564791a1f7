// The pure Raft core (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm", 2014, cited as "Raft §n"; Ongaro's thesis, 2014, cited as "thesis §n").
//
// Shaped after etcd-io/raft: inputs are step(message), tick(), propose(), readIndex(),
// transferLeadership() and proposeConfChange(); output is a Ready (hard state and entries to
// persist, messages to send, committed entries to apply) that the driver handles and then
// acknowledges with advance(). There is no I/O, clock or randomness here: time is ticks and
// randomness is an injected Rng, so a cluster run is a pure function of its inputs.
//
// Contract with the driver: after ready() returns a Ready, call advance() before any other
// input. This makes "persist before send" structural: no message produced by an input can
// leave before the state that input changed is durable (Raft figure 2, "Rules for Servers":
// persistent state is updated on stable storage before responding to RPCs).

import { decodeConfChange, encodeConfChange } from './conf-change';
import { Progress, ProgressState } from './progress';
import { RaftLog } from './raft-log';
import { Rng } from './rng';
import {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NONE,
  NodeId,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotMeta,
  SoftState,
  msg,
} from './types';

/** Vote/PreVote context value marking a leadership transfer: bypasses the leader lease. */
const CAMPAIGN_TRANSFER = 1;

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in (n, 2n]. Default 10. */
  readonly electionTicks?: number;
  /** Ticks between leader heartbeats. Must be < electionTicks. Default 1. */
  readonly heartbeatTicks?: number;
  /** Pre-vote (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Check-quorum and leader lease for votes (thesis §6.2, §9.6). Default true. */
  readonly checkQuorum?: boolean;
  /** Appends in flight per follower in replicate state. Default 256. */
  readonly maxInflight?: number;
  /** Byte budget of entries in one append message. Default 1 MiB. */
  readonly maxMsgBytes?: number;
  /** Entries in one append message. Default 4096. */
  readonly maxEntriesPerMsg?: number;
  /** Byte budget of committed entries in one Ready. Default 4 MiB. */
  readonly maxApplyBytes?: number;
  /** Entries a leader holds uncommitted before refusing proposals. Default 100_000. */
  readonly maxUncommittedEntries?: number;
  /** Size of one InstallSnapshot chunk. Default 256 KiB. */
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot a follower accepts. Default 256 MiB. */
  readonly maxSnapshotBytes?: number;
  /** ReadIndex requests a leader holds pending. Default 4096. */
  readonly maxPendingReads?: number;
  readonly rng: Rng;
}

/** What was durable when the node stopped (or the bootstrap state for a new node). */
export interface RaftInitialState {
  readonly hardState: HardState;
  /** The latest snapshot; a new cluster starts from one at index 0 holding the initial voters. */
  readonly snapshot: Snapshot;
  /** Entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

/**
 * The durable state of a member of a new cluster: the initial voters as committed AddVoter
 * entries at term 1 (as etcd's Bootstrap does). Putting them in the log, rather than only in a
 * snapshot, lets a node that joins later learn the whole membership by replaying the log.
 * Every initial member must be bootstrapped with the same `voters` in the same order.
 */
export function bootstrapState(voters: readonly NodeId[]): RaftInitialState {
  if (voters.length === 0) throw new Error('bootstrap: no voters');
  if (new Set(voters).size !== voters.length) throw new Error('bootstrap: duplicate voters');
  const entries: Entry[] = voters.map((nodeId, i) => ({
    index: i + 1,
    term: 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId }),
  }));
  return {
    hardState: { term: 1, vote: NONE, commit: entries.length },
    snapshot: { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) },
    entries,
  };
}

/** The durable state of a node that will join an existing cluster (as a learner). */
export function joinerState(): RaftInitialState {
  return {
    hardState: { term: 0, vote: NONE, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) },
    entries: [],
  };
}

export type ProposeResult =
  | { readonly ok: true; readonly firstIndex: number; readonly term: number }
  | { readonly ok: false; readonly reason: 'not-leader' | 'transferring' | 'overloaded' | 'conf-change-pending' | 'invalid'; readonly leader: NodeId; readonly detail: string };

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflight: number;
}

interface PendingRead {
  /** The leader-local context carried by the confirming heartbeats. */
  readonly ctx: number;
  readonly index: number;
  readonly from: NodeId;
  readonly requestId: number;
  readonly acks: Set<NodeId>;
}

interface IncomingSnapshot {
  readonly index: number;
  readonly term: number;
  /** Who sends it, in which term: chunks of another leader's copy never continue this one. */
  readonly from: string;
  readonly leaderTerm: number;
  readonly totalBytes: number;
  readonly parts: Uint8Array[];
  received: number;
}

interface ReadyMarks {
  readonly lastEntry: { index: number; term: number } | null;
  readonly mayPersistAsync: boolean;
  readonly snapshotIndex: number;
  readonly appliedTo: number;
  readonly committedEntries: readonly Entry[];
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x <= 0) throw new Error(`raft config: ${name} must be a positive integer, got ${x}`);
  return x;
}

export class RaftCore {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  role: Role = Role.Follower;
  leader: NodeId = NONE;
  readonly log: RaftLog;

  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  /** Members' conf-change contexts (addresses for RaftNode); part of the snapshot's ConfState. */
  private contexts = new Map<NodeId, string>();
  /** Leader only: every member's progress, including our own. */
  private readonly prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxInflight: number;
  private readonly maxMsgBytes: number;
  private readonly maxEntriesPerMsg: number;
  private readonly maxApplyBytes: number;
  private readonly maxUncommittedEntries: number;
  private readonly snapshotChunkBytes: number;
  private readonly maxSnapshotBytes: number;
  private readonly maxPendingReads: number;
  private readonly rng: Rng;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Leader: index of the last conf change proposed; no new one until it is applied. */
  private pendingConfIndex = 0;
  private leadTransferee: NodeId = NONE;

  private readCtxSeq = 0;
  private pendingReads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private readsAwaitingCommit: Array<{ from: NodeId; requestId: number }> = [];
  private readStates: ReadState[] = [];
  private incomingSnapshot: IncomingSnapshot | null = null;

  private msgs: Message[] = [];
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private inReady: ReadyMarks | null = null;
  private stepRole: (m: Message) => void = (m) => this.stepFollower(m);

  constructor(config: RaftConfig, initial: RaftInitialState) {
    if (config.id === NONE) throw new Error('raft config: id must not be empty');
    this.id = config.id;
    this.electionTicks = positiveInt('electionTicks', config.electionTicks, 10);
    this.heartbeatTicks = positiveInt('heartbeatTicks', config.heartbeatTicks, 1);
    if (this.heartbeatTicks >= this.electionTicks) throw new Error('raft config: heartbeatTicks must be below electionTicks');
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.maxInflight = positiveInt('maxInflight', config.maxInflight, 256);
    this.maxMsgBytes = positiveInt('maxMsgBytes', config.maxMsgBytes, 1 << 20);
    this.maxEntriesPerMsg = positiveInt('maxEntriesPerMsg', config.maxEntriesPerMsg, 4096);
    this.maxApplyBytes = positiveInt('maxApplyBytes', config.maxApplyBytes, 4 << 20);
    this.maxUncommittedEntries = positiveInt('maxUncommittedEntries', config.maxUncommittedEntries, 100_000);
    this.snapshotChunkBytes = positiveInt('snapshotChunkBytes', config.snapshotChunkBytes, 256 << 10);
    this.maxSnapshotBytes = positiveInt('maxSnapshotBytes', config.maxSnapshotBytes, 256 << 20);
    this.maxPendingReads = positiveInt('maxPendingReads', config.maxPendingReads, 4096);
    this.rng = config.rng;

    this.log = new RaftLog(initial.snapshot, initial.entries, initial.hardState.commit);
    this.applyConfState(initial.snapshot.meta.confState);
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    this.prevHardState = this.hardState();
    this.becomeFollower(this.term, NONE);
    this.prevSoftState = this.softState();
  }

  // ---------------------------------------------------------------------------------------
  // Inputs

  /** Advance logical time by one tick. */
  tick(): void {
    this.assertNotInReady();
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  /** Start an election now (as if the election timeout had elapsed). Used by tests and tools. */
  campaign(): void {
    this.assertNotInReady();
    this.hup(false);
  }

  /** Append application data to the log (leader only). All of `datas` go in one append. */
  propose(datas: readonly Uint8Array[]): ProposeResult {
    this.assertNotInReady();
    return this.appendProposal(datas.map((data) => ({ type: EntryType.Normal, data })));
  }

  /**
   * Propose one membership change (thesis §4.1: one server at a time keeps any two majorities
   * overlapping). A voter can only be added by promoting a learner that has caught up to the
   * commit index (thesis §4.2.1), so that a new voter cannot stall commits while it catches up.
   */
  proposeConfChange(cc: ConfChange): ProposeResult {
    this.assertNotInReady();
    if (this.role !== Role.Leader) return this.refuse('not-leader', 'not the leader');
    // The first entry of our term must be applied first: that fixes the single-server change
    // bug Ongaro described in 2015 (a leader must commit an entry of its term before a change).
    if (this.pendingConfIndex > this.log.applied) return this.refuse('conf-change-pending', `conf change at ${this.pendingConfIndex} not applied yet`);
    const isVoter = this.voters.has(cc.nodeId);
    const isLearner = this.learners.has(cc.nodeId);
    switch (cc.type) {
      case ConfChangeType.AddLearner:
        if (isVoter || isLearner) return this.refuse('invalid', `${cc.nodeId} is already a member`);
        break;
      case ConfChangeType.AddVoter: {
        if (isVoter) return this.refuse('invalid', `${cc.nodeId} is already a voter`);
        if (!isLearner) return this.refuse('invalid', `${cc.nodeId} must join as a learner first`);
        const pr = this.prs.get(cc.nodeId);
        if (pr === undefined || pr.match < this.log.committed) {
          return this.refuse('invalid', `learner ${cc.nodeId} has not caught up (match ${pr?.match ?? 0} < commit ${this.log.committed})`);
        }
        break;
      }
      case ConfChangeType.RemoveNode:
        if (!isVoter && !isLearner) return this.refuse('invalid', `${cc.nodeId} is not a member`);
        if (isVoter && this.voters.size === 1) return this.refuse('invalid', 'cannot remove the last voter');
        break;
    }
    const res = this.appendProposal([{ type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
    if (res.ok) this.pendingConfIndex = res.firstIndex;
    return res;
  }

  /**
   * Ask for a linearizable read point (thesis §6.4). The answer arrives as a ReadState in a
   * later Ready: once the state machine has applied its index, a read reflects every write
   * committed before this call. Returns false if no leader is known (the caller retries).
   */
  readIndex(requestId: number): boolean {
    this.assertNotInReady();
    if (this.role === Role.Leader) {
      this.leaderReadIndex(this.id, requestId);
      return true;
    }
    if (this.leader === NONE) return false;
    this.send(msg({ type: MessageType.ReadIndex, from: this.id, to: this.leader, context: requestId }));
    return true;
  }

  /** Hand leadership to `to` (thesis §3.10). Works from any member; followers forward it. */
  transferLeadership(to: NodeId): void {
    this.assertNotInReady();
    if (this.role === Role.Leader) {
      this.leaderTransfer(to);
    } else if (this.leader !== NONE) {
      this.send(msg({ type: MessageType.TransferLeader, from: to, to: this.leader }));
    }
  }

  /** Handle one message from a peer. */
  step(m: Message): void {
    this.assertNotInReady();
    if (m.to !== this.id) throw new Error(`raft ${this.id}: message for ${m.to}`);
    if (m.term === 0) {
      // Requests forwarded between members (ReadIndex, TransferLeader) carry no term: they
      // change no state until a leader confirms itself (ReadIndex) or acts (TransferLeader).
      if (m.type !== MessageType.ReadIndex && m.type !== MessageType.TransferLeader) return;
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // Thesis §9.6 / §4.2.3: a server that heard from a live leader within the minimum
        // election timeout ignores (pre)votes, so a partitioned or removed server cannot
        // depose a healthy leader. A leadership transfer is deliberate and bypasses this.
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease = this.checkQuorum && this.leader !== NONE && this.electionElapsed < this.electionTicks;
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote never changes our term (thesis §9.6): that is its whole point.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // Granted pre-votes carry the term we would campaign at, not a term anyone is in.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A leader of an older term is talking to us: either a delayed message, or we are a
        // stranded peer whose term rose while partitioned. With pre-vote and check-quorum our
        // votes may never win and our higher-term votes are ignored, so we would be stuck
        // forever; answering at our term makes that leader step down and lets a fresh election
        // include us (etcd's leader_step_down_stranded_peer scenario).
        this.send(msg({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term }));
      } else if (m.type === MessageType.PreVote) {
        // Reject explicitly so the pre-candidate learns our higher term and catches up.
        this.send(msg({ type: MessageType.PreVoteResp, from: this.id, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    this.stepRole(m);
  }

  // ---------------------------------------------------------------------------------------
  // Ready / advance

  hasReady(): boolean {
    if (this.inReady !== null) return false;
    const ss = this.softState();
    const hs = this.hardState();
    return (
      !softStateEqual(ss, this.prevSoftState) ||
      !hardStateEqual(hs, this.prevHardState) ||
      this.log.unstableSnapshot !== null ||
      this.log.inProgressIndex < this.log.lastIndex() ||
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.applied < this.log.committed
    );
  }

  /** Collect everything the driver must do now. Call advance(ready) when done. */
  ready(): Ready {
    this.assertNotInReady();
    const ss = this.softState();
    const hs = this.hardState();
    const entries = this.log.unstableEntries();
    const committedEntries = this.log.nextCommittedEntries(this.maxApplyBytes);
    const snapshot = this.log.unstableSnapshot;
    const mayPersistAsync = this.role === Role.Leader && snapshot === null && hs.term === this.prevHardState.term && hs.vote === this.prevHardState.vote;
    const rd: Ready = {
      softState: softStateEqual(ss, this.prevSoftState) ? null : ss,
      hardState: hardStateEqual(hs, this.prevHardState) ? null : hs,
      entries,
      snapshot,
      messages: this.msgs,
      committedEntries,
      readStates: this.readStates,
      mayPersistAsync,
    };
    const last = entries[entries.length - 1];
    if (last !== undefined) this.log.inProgressIndex = last.index;
    const lastCommitted = committedEntries[committedEntries.length - 1];
    this.inReady = {
      lastEntry: last === undefined ? null : { index: last.index, term: last.term },
      mayPersistAsync,
      snapshotIndex: snapshot?.meta.index ?? 0,
      appliedTo: lastCommitted?.index ?? this.log.applied,
      committedEntries,
    };
    this.msgs = [];
    this.readStates = [];
    this.prevSoftState = ss;
    this.prevHardState = hs;
    return rd;
  }

  /** The driver persisted, sent and applied the last Ready. */
  advance(): void {
    const marks = this.endReady();
    if (marks.lastEntry !== null) this.onStable(marks.lastEntry.index, marks.lastEntry.term);
    this.afterReady(marks);
  }

  /**
   * The driver sent and applied the last Ready (which had `mayPersistAsync`), and is writing its
   * entries and hard state in the background, after every earlier write. It reports the write
   * with persisted(); until then this leader does not count itself toward their commit.
   */
  advanceAsync(): void {
    const marks = this.inReady;
    if (marks === null) throw new Error('raft: advance without ready');
    if (!marks.mayPersistAsync) throw new Error('raft: advanceAsync on a Ready that must be persisted first');
    this.endReady();
    this.afterReady(marks);
  }

  /** A background write (see advanceAsync) of entries up to (index, term) is durable. */
  persisted(index: number, term: number): void {
    this.assertNotInReady();
    this.onStable(index, term);
  }

  private endReady(): ReadyMarks {
    const marks = this.inReady;
    if (marks === null) throw new Error('raft: advance without ready');
    this.inReady = null;
    return marks;
  }

  private onStable(index: number, term: number): void {
    this.log.stableTo(index, term);
    // Our own copy counts toward commit only once durable (thesis §10.2.1).
    const self = this.role === Role.Leader ? this.prs.get(this.id) : undefined;
    if (self !== undefined && self.maybeUpdate(this.log.stableIndex) && this.maybeCommit()) {
      this.releaseReadsAwaitingCommit();
      this.bcastAppend();
    }
  }

  private afterReady(marks: ReadyMarks): void {
    if (this.log.unstableSnapshot !== null && this.log.unstableSnapshot.meta.index === marks.snapshotIndex) {
      this.log.unstableSnapshot = null;
    }
    for (const e of marks.committedEntries) {
      // Membership takes effect when applied (as etcd's ApplyConfChange); with one change at a
      // time and the pendingConfIndex rule this keeps majorities of old and new overlapping.
      if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data));
    }
    if (marks.appliedTo > this.log.applied) this.log.appliedTo(marks.appliedTo);
  }

  /**
   * What a snapshot of the state machine taken now is for: the applied index, its term and the
   * membership as of it (membership changes take effect when applied). An application that
   * encodes its snapshot over time captures this together with its state and hands it to
   * compact() once the bytes are ready.
   */
  snapshotPoint(): SnapshotMeta {
    const index = this.log.applied;
    const term = this.log.term(index);
    if (term === undefined) throw new Error(`raft: no term for the applied index ${index}`);
    return { index, term, confState: this.confState() };
  }

  /**
   * The application snapshotted its state machine at `at` (default: now, the applied index):
   * compact the log up to `at.index` (Raft §7). `at` is a snapshotPoint() taken when the state
   * was captured; entries applied since stay in the log. Returns the snapshot, which the driver
   * persists before deleting entries; the current one if it is at or past `at.index` (the
   * driver should have dropped such a late snapshot).
   */
  compact(data: Uint8Array, at: SnapshotMeta = this.snapshotPoint()): Snapshot {
    this.assertNotInReady();
    if (at.index > this.log.applied) throw new Error(`raft: compact at ${at.index} beyond applied ${this.log.applied}`);
    if (at.index <= this.log.snapshot.meta.index) return this.log.snapshot;
    // Applied entries are committed, so never replaced: a different term means `at` was not a
    // snapshotPoint() of this log.
    const term = this.log.term(at.index);
    if (term !== at.term) throw new Error(`raft: compact at ${at.index} of term ${at.term}, but the entry there has term ${term}`);
    return this.log.compact(at.index, data, at.confState);
  }

  // ---------------------------------------------------------------------------------------
  // Introspection

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { role: this.role, leader: this.leader, term: this.term };
  }

  confState(): ConfState {
    const voters = [...this.voters].sort();
    const learners = [...this.learners].sort();
    if (this.contexts.size === 0) return { voters, learners };
    const contexts: Record<NodeId, string> = {};
    for (const id of [...this.contexts.keys()].sort()) contexts[id] = this.contexts.get(id) ?? '';
    return { voters, learners, contexts };
  }

  progress(): Map<NodeId, ProgressStatus> {
    const out = new Map<NodeId, ProgressStatus>();
    for (const [id, pr] of this.prs) {
      out.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, recentActive: pr.recentActive, inflight: pr.inflights.size });
    }
    return out;
  }

  /** Leader only: the highest index known to be replicated on `id` (undefined: not a member, or not leader). */
  matchOf(id: NodeId): number | undefined {
    return this.role === Role.Leader ? this.prs.get(id)?.match : undefined;
  }

  isPromotable(): boolean {
    return this.voters.has(this.id);
  }

  /**
   * How many more tick() calls until one does something visible (a leader's heartbeat or
   * check-quorum, a campaign), at least 1; Infinity if ticks only count (a node that cannot
   * campaign). Until then tick() only counts elapsed time, so a driver may sleep that long and
   * replay the ticks at once, provided it replays those that elapsed before any message it
   * steps: message handling reads the elapsed counts (the pre-vote lease, thesis §4.2.3).
   */
  ticksUntilNextEvent(): number {
    if (this.role === Role.Leader) return Math.max(1, Math.min(this.heartbeatTicks - this.heartbeatElapsed, this.electionTicks - this.electionElapsed));
    if (!this.isPromotable()) return Infinity;
    return Math.max(1, this.randomizedElectionTimeout - this.electionElapsed);
  }

  // ---------------------------------------------------------------------------------------
  // Role transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.leader = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    // Randomized in (n, 2n] (Raft §5.2), strictly above n: a follower that times out is then
    // past the leader lease (n ticks) of peers whose ticks run up to one tick behind its own,
    // so its pre-vote is not ignored merely because of tick phase.
    this.randomizedElectionTimeout = this.electionTicks + 1 + this.rng.nextInt(this.electionTicks);
    this.leadTransferee = NONE;
    this.votes = new Map();
    this.pendingConfIndex = 0;
    this.pendingReads = [];
    this.readsAwaitingCommit = [];
    this.resetProgress();
  }

  private resetProgress(): void {
    this.prs.clear();
    if (this.role !== Role.Leader) return;
    const last = this.log.lastIndex();
    for (const id of [...this.voters, ...this.learners]) this.addProgress(id, last + 1);
  }

  private addProgress(id: NodeId, next: number): void {
    const pr = new Progress(next, this.maxInflight, this.learners.has(id));
    if (id === this.id) {
      // Our own match is what is durable here (see advance()).
      pr.maybeUpdate(this.log.stableIndex);
      pr.becomeReplicate();
      pr.recentActive = true;
    }
    this.prs.set(id, pr);
  }

  private becomeFollower(term: number, leader: NodeId): void {
    this.role = Role.Follower;
    this.reset(term);
    this.leader = leader;
    this.stepRole = (m) => this.stepFollower(m);
  }

  private becomePreCandidate(): void {
    if (this.role === Role.Leader) throw new Error('raft: leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote (thesis §9.6).
    this.role = Role.PreCandidate;
    this.votes = new Map();
    this.leader = NONE;
    this.stepRole = (m) => this.stepCandidate(m);
  }

  private becomeCandidate(): void {
    if (this.role === Role.Leader) throw new Error('raft: leader cannot become candidate');
    this.role = Role.Candidate;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.stepRole = (m) => this.stepCandidate(m);
  }

  private becomeLeader(): void {
    if (this.role === Role.Follower) throw new Error('raft: follower cannot become leader');
    this.role = Role.Leader;
    this.reset(this.term);
    this.leader = this.id;
    this.stepRole = (m) => this.stepLeader(m);
    // Conf changes wait until the entry below is applied (see proposeConfChange).
    this.pendingConfIndex = this.log.lastIndex();
    // Raft §8 / §5.4.2: a new leader commits an empty entry of its own term, which commits
    // everything before it and lets ReadIndex serve reads (thesis §6.4).
    this.appendEntries([{ type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  // ---------------------------------------------------------------------------------------
  // Elections (Raft §5.2, thesis §9.6)

  private tickElection(): void {
    this.electionElapsed++;
    if (this.isPromotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private hup(transfer: boolean): void {
    if (this.role === Role.Leader || !this.isPromotable()) return;
    // A committed but unapplied membership change may remove us or change the quorum: campaign
    // only once it is applied (etcd does the same).
    for (const e of this.log.slice(Math.max(this.log.applied + 1, this.log.firstIndex()), this.log.committed, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
      if (e.type === EntryType.ConfChange) return;
    }
    if (this.preVote && !transfer) this.runCampaign(true, false);
    else this.runCampaign(false, transfer);
  }

  private runCampaign(pre: boolean, transfer: boolean): void {
    let term: number;
    let type: MessageType;
    if (pre) {
      this.becomePreCandidate();
      term = this.term + 1;
      type = MessageType.PreVote;
    } else {
      this.becomeCandidate();
      term = this.term;
      type = MessageType.Vote;
    }
    if (this.poll(this.id, true) === 'won') {
      // Single-voter cluster: we won on our own vote.
      if (pre) this.runCampaign(false, transfer);
      else {
        this.becomeLeader();
        this.bcastAppend();
      }
      return;
    }
    for (const id of [...this.voters].sort()) {
      if (id === this.id) continue;
      this.send(
        msg({ type, from: this.id, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context: transfer ? CAMPAIGN_TRANSFER : 0 }),
      );
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = Math.floor(this.voters.size / 2) + 1;
    if (yes >= q) return 'won';
    if (no > this.voters.size - q) return 'lost';
    return 'pending';
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    // Raft §5.2: one vote per term, first come first served; a repeated request from the same
    // candidate (a duplicate or retry) gets the same answer. A pre-vote at a higher term is
    // granted to anyone with an up-to-date log, since it binds us to nothing.
    const canVote = this.vote === m.from || (this.vote === NONE && this.leader === NONE) || (isPre && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send(msg({ type: respType, from: this.id, to: m.from, term: m.term }));
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(msg({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Per-role message handling

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        break;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        break;
      case MessageType.TimeoutNow:
        // Thesis §3.10: the leader brought us up to date and asks us to campaign at once.
        this.hup(true);
        break;
      case MessageType.ReadIndexResp:
        this.readStates.push({ requestId: m.context, index: m.index });
        break;
      case MessageType.TransferLeader:
      case MessageType.ReadIndex:
        // Meant for a leader; we may have just stepped down. Forward if we know one.
        if (this.leader !== NONE) this.send({ ...m, to: this.leader, term: 0 });
        break;
      default:
        break;
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        // Raft §5.2: a candidate that hears from a leader of its term steps down.
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case MessageType.PreVoteResp:
      case MessageType.VoteResp: {
        if (m.type !== myResp) break;
        // Only answers to this campaign count: a pre-vote answer carries term+1.
        const expect = this.role === Role.PreCandidate ? this.term + 1 : this.term;
        if (!m.reject && m.term !== expect) break;
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.role === Role.PreCandidate) this.runCampaign(false, false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        break;
      }
      default:
        break;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.ReadIndex:
        this.leaderReadIndex(m.from, m.context);
        return;
      case MessageType.TransferLeader:
        this.leaderTransfer(m.from);
        return;
      default:
        break;
    }
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        this.handleAppResp(m, pr);
        break;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.probeSent = false;
        // The follower is alive: if our window filled with appends that may have been lost,
        // free a slot so replication cannot stall forever (etcd does the same).
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.state === ProgressState.Snapshot) pr.snapshotChunkSent = false;
        // An empty append still probes: it finds where a silent follower's log ends.
        if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Snapshot) this.sendAppend(m.from, pr, true);
        if (m.context !== 0) this.recvReadAck(m.from, m.context);
        break;
      case MessageType.SnapResp:
        pr.recentActive = true;
        if (pr.state !== ProgressState.Snapshot || m.index !== pr.pendingSnapshot) break;
        // rejectHint is the next byte offset the follower expects (also after a reject).
        pr.snapshotOffset = m.rejectHint;
        pr.snapshotChunkSent = false;
        if (pr.snapshotOffset < this.log.snapshot.data.byteLength) this.sendAppend(m.from, pr, false);
        break;
      default:
        break;
    }
  }

  private handleAppResp(m: Message, pr: Progress): void {
    if (m.reject) {
      // Raft §5.3 back-off, using the follower's hint (its last index, refined by term) to skip
      // a whole divergent term per round trip instead of one entry.
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from, pr, true);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (pr.state === ProgressState.Probe && pr.match === m.index) pr.probeSent = false;
      else return;
    }
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        // The follower installed the snapshot (or already had its entries): resume appends.
        if (pr.match >= pr.pendingSnapshot || pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.releaseReadsAwaitingCommit();
      this.bcastAppend();
    } else if (oldPaused || pr.match < this.log.lastIndex()) {
      // Fill the pipeline up to the inflight limit.
      while (this.sendAppend(m.from, pr, false));
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send(msg({ type: MessageType.TimeoutNow, from: this.id, to: m.from, term: this.term }));
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index matches any leader's log (Leader Completeness).
      this.send(msg({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term, index: this.log.committed }));
      return;
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send(msg({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term, index: last }));
      return;
    }
    // Reject with a hint: the largest index <= min(m.index, our last) whose term is <= the
    // leader's term at m.index. The leader skips straight past everything that cannot match.
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      msg({
        type: MessageType.AppResp,
        from: this.id,
        to: m.from,
        term: this.term,
        index: m.index,
        reject: true,
        rejectHint: hintIndex,
        logTerm: this.log.term(hintIndex) ?? 0,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so this never commits past what we hold.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(msg({ type: MessageType.HeartbeatResp, from: this.id, to: m.from, term: this.term, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const c = m.snapshot;
    if (c === null) return;
    const meta = c.meta;
    if (meta.index <= this.log.committed) {
      // We already have everything it covers.
      this.incomingSnapshot = null;
      this.send(msg({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term, index: this.log.committed }));
      return;
    }
    if (c.totalBytes > this.maxSnapshotBytes) {
      // A configuration mismatch between peers, not a bug here: refuse the snapshot (the leader
      // keeps retrying; an operator must raise maxSnapshotBytes) rather than fail this node.
      this.incomingSnapshot = null;
      return;
    }
    let inc = this.incomingSnapshot;
    if (c.offset === 0) {
      inc = { index: meta.index, term: meta.term, from: m.from, leaderTerm: m.term, totalBytes: c.totalBytes, parts: [], received: 0 };
      this.incomingSnapshot = inc;
    }
    // Two leaders' snapshots at one index and term hold the same state, but not necessarily the
    // same bytes: only chunks from the sender and term that started a transfer continue it.
    const same = inc !== null && inc.index === meta.index && inc.term === meta.term && inc.from === m.from && inc.leaderTerm === m.term;
    if (!same || inc === null || inc.received !== c.offset || inc.totalBytes !== c.totalBytes || c.offset + c.data.byteLength > c.totalBytes) {
      // Out of order, duplicate, overlong, or from another snapshot or sender: tell the leader
      // where we are (from the start unless it is the transfer in progress).
      const expected = same && inc !== null ? inc.received : 0;
      this.send(msg({ type: MessageType.SnapResp, from: this.id, to: m.from, term: this.term, index: meta.index, reject: true, rejectHint: expected }));
      return;
    }
    inc.parts.push(c.data);
    inc.received += c.data.byteLength;
    if (inc.received < inc.totalBytes) {
      this.send(msg({ type: MessageType.SnapResp, from: this.id, to: m.from, term: this.term, index: meta.index, rejectHint: inc.received }));
      return;
    }
    this.incomingSnapshot = null;
    const data = new Uint8Array(inc.totalBytes);
    let off = 0;
    for (const p of inc.parts) {
      data.set(p, off);
      off += p.byteLength;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // Our log already contains the snapshot's last entry: keep the log, just commit.
      this.log.commitTo(meta.index);
    } else {
      // Raft §7: discard the log and restore from the snapshot.
      this.log.restore({ meta, data });
      this.applyConfState(meta.confState);
    }
    this.send(msg({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term, index: this.log.lastIndex() }));
  }

  // ---------------------------------------------------------------------------------------
  // Leader: replication (Raft §5.3) and commitment (Raft §5.4.2)

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // Thesis §6.2: a leader that has not heard from a majority in an election timeout may
        // be partitioned away; stepping down stops it from serving stale reads and lets its
        // clients find the real leader.
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.prs) pr.recentActive = id === this.id;
      }
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(0);
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const v of this.voters) if (v === this.id || this.prs.get(v)?.recentActive === true) active++;
    return active >= Math.floor(this.voters.size / 2) + 1;
  }

  private appendProposal(ents: Array<{ type: EntryType; data: Uint8Array }>): ProposeResult {
    if (this.role !== Role.Leader) return this.refuse('not-leader', 'not the leader');
    if (this.leadTransferee !== NONE) {
      // Point clients at the node that is about to lead.
      return { ok: false, reason: 'transferring', leader: this.leadTransferee, detail: `transferring leadership to ${this.leadTransferee}` };
    }
    if (this.log.lastIndex() - this.log.committed + ents.length > this.maxUncommittedEntries) {
      return this.refuse('overloaded', `more than ${this.maxUncommittedEntries} uncommitted entries`);
    }
    if (ents.length === 0) return this.refuse('invalid', 'empty proposal');
    const firstIndex = this.appendEntries(ents);
    this.bcastAppend();
    return { ok: true, firstIndex, term: this.term };
  }

  private refuse(reason: 'not-leader' | 'transferring' | 'overloaded' | 'conf-change-pending' | 'invalid', detail: string): ProposeResult {
    return { ok: false, reason, leader: this.leader, detail };
  }

  /** Append entries of our term; returns the first new index. */
  private appendEntries(ents: ReadonlyArray<{ type: EntryType; data: Uint8Array }>): number {
    const first = this.log.lastIndex() + 1;
    const out: Entry[] = ents.map((e, i) => ({ index: first + i, term: this.term, type: e.type, data: e.data }));
    this.log.append(out);
    // Our own copy counts toward commit only once it is durable (advance()), so the driver may
    // send these appends to followers before its own write completes: the leader's and the
    // followers' fsyncs then overlap (thesis §10.2.1).
    return first;
  }

  /**
   * Commit the highest index a majority of voters hold, but only if it is of our term: an
   * older entry on a majority can still be overwritten (Raft §5.4.2, figure 8).
   */
  private maybeCommit(): boolean {
    const matches: number[] = [];
    for (const v of this.voters) matches.push(this.prs.get(v)?.match ?? 0);
    if (matches.length === 0) return false;
    matches.sort((a, b) => b - a);
    const q = Math.floor(matches.length / 2) + 1;
    const idx = matches[q - 1] ?? 0;
    return this.log.maybeCommit(idx, this.term);
  }

  private bcastAppend(): void {
    for (const [id, pr] of this.prs) if (id !== this.id) this.sendAppend(id, pr, true);
  }

  private bcastHeartbeat(ctx: number): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      this.send(msg({ type: MessageType.Heartbeat, from: this.id, to: id, term: this.term, commit: Math.min(pr.match, this.log.committed), context: ctx }));
    }
  }

  /** Send the next append (or snapshot chunk) to `to`. Returns true if a message was sent. */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.state === ProgressState.Snapshot) return this.sendSnapshotChunk(to, pr);
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      // The entries this follower needs are compacted: InstallSnapshot (Raft §7).
      pr.becomeSnapshot(this.log.snapshot.meta.index);
      return this.sendSnapshotChunk(to, pr);
    }
    const ents = pr.next <= this.log.lastIndex() ? this.log.slice(pr.next, this.log.lastIndex(), this.maxMsgBytes, this.maxEntriesPerMsg) : [];
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(msg({ type: MessageType.App, from: this.id, to, term: this.term, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }));
    const last = ents[ents.length - 1];
    if (last !== undefined) pr.sentEntries(last.index);
    else if (pr.state === ProgressState.Probe) pr.probeSent = true;
    return true;
  }

  /**
   * One chunk at a time, acknowledged by SnapResp; a lost chunk is resent on the next
   * heartbeat response. This bounds the leader's memory per follower to one chunk.
   */
  private sendSnapshotChunk(to: NodeId, pr: Progress): boolean {
    if (pr.snapshotChunkSent) return false;
    const snap = this.log.snapshot;
    if (pr.pendingSnapshot !== snap.meta.index) pr.becomeSnapshot(snap.meta.index);
    const total = snap.data.byteLength;
    const offset = Math.min(pr.snapshotOffset, total);
    const data = snap.data.subarray(offset, Math.min(total, offset + this.snapshotChunkBytes));
    this.send(msg({ type: MessageType.Snap, from: this.id, to, term: this.term, snapshot: { meta: snap.meta, offset, totalBytes: total, data } }));
    pr.snapshotChunkSent = true;
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Leader: ReadIndex (thesis §6.4)

  private leaderReadIndex(from: NodeId, requestId: number): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // Step 1: until an entry of our term is committed, our commit index may be behind the
      // previous leader's; park the request.
      if (this.readsAwaitingCommit.length < this.maxPendingReads) this.readsAwaitingCommit.push({ from, requestId });
      return;
    }
    if (this.voters.size === 1) {
      this.answerRead(from, requestId, this.log.committed);
      return;
    }
    if (this.pendingReads.length >= this.maxPendingReads) return;
    // Steps 2-3: record the commit index, then confirm we are still leader with a heartbeat
    // round acknowledged by a majority.
    const ctx = ++this.readCtxSeq;
    this.pendingReads.push({ ctx, index: this.log.committed, from, requestId, acks: new Set([this.id]) });
    this.bcastHeartbeat(ctx);
  }

  private recvReadAck(from: NodeId, ctx: number): void {
    const pos = this.pendingReads.findIndex((r) => r.ctx === ctx);
    if (pos < 0) return;
    const r = this.pendingReads[pos];
    if (r === undefined || !this.voters.has(from)) return;
    r.acks.add(from);
    let n = 0;
    for (const v of this.voters) if (r.acks.has(v)) n++;
    if (n < Math.floor(this.voters.size / 2) + 1) return;
    // A later confirmation also confirms every earlier request.
    const done = this.pendingReads.splice(0, pos + 1);
    for (const d of done) this.answerRead(d.from, d.requestId, d.index);
  }

  private releaseReadsAwaitingCommit(): void {
    if (this.readsAwaitingCommit.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const w of waiting) this.leaderReadIndex(w.from, w.requestId);
  }

  private answerRead(from: NodeId, requestId: number, index: number): void {
    if (from === this.id) this.readStates.push({ requestId, index });
    else this.send(msg({ type: MessageType.ReadIndexResp, from: this.id, to: from, term: this.term, index, context: requestId }));
  }

  // ---------------------------------------------------------------------------------------
  // Leader: leadership transfer (thesis §3.10)

  private leaderTransfer(to: NodeId): void {
    const pr = this.prs.get(to);
    if (to === this.id || pr === undefined || pr.isLearner) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    // The transfer must finish within an election timeout or it is abandoned (tickLeader).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) {
      this.send(msg({ type: MessageType.TimeoutNow, from: this.id, to, term: this.term }));
    } else {
      this.sendAppend(to, pr, true);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Membership (thesis §4)

  private applyConfState(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    this.contexts = new Map();
    for (const [id, ctx] of Object.entries(cs.contexts ?? {})) if (this.voters.has(id) || this.learners.has(id)) this.contexts.set(id, ctx);
    if (this.role === Role.Leader) this.resetProgress();
  }

  private applyConfChange(cc: ConfChange): void {
    switch (cc.type) {
      case ConfChangeType.AddLearner:
        if (this.voters.has(cc.nodeId)) break;
        this.learners.add(cc.nodeId);
        if (cc.context !== undefined) this.contexts.set(cc.nodeId, cc.context);
        if (this.role === Role.Leader && !this.prs.has(cc.nodeId)) this.addProgress(cc.nodeId, this.log.lastIndex() + 1);
        break;
      case ConfChangeType.AddVoter: {
        this.learners.delete(cc.nodeId);
        this.voters.add(cc.nodeId);
        if (cc.context !== undefined) this.contexts.set(cc.nodeId, cc.context);
        const pr = this.prs.get(cc.nodeId);
        if (pr !== undefined) pr.isLearner = false;
        else if (this.role === Role.Leader) this.addProgress(cc.nodeId, this.log.lastIndex() + 1);
        break;
      }
      case ConfChangeType.RemoveNode:
        this.voters.delete(cc.nodeId);
        this.learners.delete(cc.nodeId);
        this.contexts.delete(cc.nodeId);
        this.prs.delete(cc.nodeId);
        if (this.leadTransferee === cc.nodeId) this.leadTransferee = NONE;
        break;
    }
    if (this.role !== Role.Leader) return;
    if (!this.voters.has(this.id)) {
      // Thesis §4.2.2: a removed leader steps down once the change is committed.
      this.becomeFollower(this.term, NONE);
      return;
    }
    // The quorum may have shrunk.
    if (this.maybeCommit()) this.bcastAppend();
  }

  // ---------------------------------------------------------------------------------------

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private assertNotInReady(): void {
    if (this.inReady !== null) throw new Error(`raft ${this.id}: input between ready() and advance()`);
  }
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

