// RaftNode: the driver around the pure core. It owns the loop — ticks from a monotonic clock,
// inbound messages, proposals and reads are fed to the core; each Ready is handled in the only
// safe order: persist (durably), then send, then apply, then advance (Raft figure 2: persistent
// state is on stable storage before responding to RPCs).
//
// Throughput comes from batching, not from concurrency: while one Ready is being persisted,
// every proposal that arrives waits in a queue, and the next loop turn hands all of them to the
// core in one propose() call, so they become one append, one level batch and one fsync.
//
// A leader does not wait for its own disk (thesis §10.2.1, RaftCore.advanceAsync): its Ready is
// sent and applied at once and its write joins an ordered write queue (queued saves merge into
// one batch); the core learns the write is durable through persisted() and only then counts
// the leader toward commit. Every other storage write (follower entries, votes, snapshots,
// compactions) goes through the same queue, so storage sees writes in log order. A compaction
// is started when it reaches the head of the queue but not waited for: the saves behind it go on
// while its snapshot is written (the storage orders what must be ordered, LogStorage.compact).

import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ProgressStatus, RaftConfig, RaftCore, RaftInitialState, bootstrapState, joinerState, ProposeResult } from '../core/raft';
import { SeededRng } from '../core/rng';
import { decodeConfChange } from '../core/conf-change';
import { ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, MessageType, NodeId, Ready, Role, Snapshot, SnapshotMeta, SoftState, earlyMessages } from '../core/types';
import { LogStorage, StorageUpdate } from '../storage/log-storage';
import { Transport } from '../transport/transport';
import { InvalidRequestError, MembershipChangePendingError, NodeStoppedError, NotLeaderError, OverloadedError, ProposalDroppedError } from './errors';

/** The application's replicated state machine. */
export interface StateMachine {
  /**
   * Apply a committed command. Commands arrive in log order, once per process life; after a
   * restart they are replayed from the last snapshot, so apply must be deterministic.
   */
  apply(index: number, data: Uint8Array): void;
  /**
   * Serialize the state as of the last applied index. May return a promise, for a state too
   * large to encode in one event-loop turn: the state must then be captured at the call (an
   * immutable copy), since apply() goes on while it is encoded. RaftNode captures the applied
   * index, its term and the membership at the call, keeps committing and applying meanwhile,
   * and compacts the log up to that index once the promise resolves, unless a newer snapshot was
   * installed in between (then the bytes are dropped). One snapshot at a time; a rejection is a
   * bug and stops the node.
   */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /**
   * Replace the state with a snapshot taken at `index`. May return a promise: RaftNode then
   * waits for it before it applies anything after the snapshot, moves its applied index to
   * `index`, or calls the state machine again (its loop waits as for a slow storage write;
   * messages queue meanwhile). A rejection stops the node.
   */
  restore(data: Uint8Array, index: number): void | Promise<void>;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly storage: LogStorage;
  readonly transport: Transport;
  readonly stateMachine: StateMachine;
  /** Initial voters when the storage is empty. Omit to start as a node that will be added (as a learner). */
  readonly bootstrapVoters?: readonly NodeId[];
  /** Length of one tick in ms (monotonic clock). Default 10. */
  readonly tickMs?: number;
  /**
   * Election timeout in ticks (randomized in (n, 2n]). Default 50 (510-1000 ms with 10 ms
   * ticks). Fine ticks give the randomized timeout 50 distinct values: two survivors of a leader
   * crash then rarely time out close enough together to split the vote.
   */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. Default ceil(electionTicks / 10) (50 ms with the defaults). */
  readonly heartbeatTicks?: number;
  /** Take a snapshot and compact the log every this many applied entries. Default 10_000. */
  readonly snapshotEveryEntries?: number;
  /** Proposals waiting to enter the log, and proposals waiting to be applied. Default 100_000. */
  readonly maxPendingProposals?: number;
  /** Proposals handed to the core in one append. Default 8192. */
  readonly maxProposalsPerBatch?: number;
  /** Largest proposal in bytes. Default 1 MiB. */
  readonly maxProposalBytes?: number;
  /** Inbound messages queued while a Ready is being handled. Default 100_000. */
  readonly maxInboxMessages?: number;
  /** Reads waiting for a read index or for apply. Default 10_000. */
  readonly maxPendingReads?: number;
  /** A proposal or read not settled within this is rejected (outcome unknown). Default 10_000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * Leader writes its log in the background (thesis §10.2.1): a leader's Ready is sent and
   * applied at once and its write queued behind earlier ones; the leader counts itself toward
   * commit only when the write is durable, so two followers can commit an entry before the
   * leader's own fsync completes. Default true.
   */
  readonly asyncLeaderWrites?: boolean;
  /** Seed of the core's PRNG (election jitter). Default: random. */
  readonly seed?: number;
  /** Extra core options (inflight window, message sizes...). */
  readonly core?: Partial<Omit<RaftConfig, 'id' | 'rng' | 'electionTicks' | 'heartbeatTicks'>>;
}

export interface NodeStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Leader only: each member's replication progress. */
  readonly progress: Readonly<Record<NodeId, ProgressStatus>>;
}

/**
 * Leader only: when a peer was last heard from and last caught up with the leader's log end
 * (wall-clock ms since the epoch, -1 never in this term), as Kafka's DescribeQuorum reports
 * lastFetchTimestamp / lastCaughtUpTimestamp (KIP-836).
 */
export interface PeerContact {
  readonly lastResponseMs: number;
  readonly lastCaughtUpMs: number;
}

export type LeaderChangeListener = (s: SoftState) => void;

/** One storage operation in the node's write queue (started in order; saves one at a time, see pumpWrites). */
type WriteOp =
  | { kind: 'save'; update: StorageUpdate & { entries: Entry[] }; waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>; lasts: Array<{ index: number; term: number }> }
  | { kind: 'compact'; snapshot: Snapshot; waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> };

/**
 * Merge `u` into the queued save `into` (later entries replace the suffix from their first
 * index). `into.entries` is an array owned by the queue: the common case, an append right after
 * it, extends it in place.
 */
export function mergeUpdate(into: StorageUpdate & { entries: Entry[] }, u: StorageUpdate): StorageUpdate & { entries: Entry[] } {
  const hardState = u.hardState ?? into.hardState;
  if (u.snapshot !== null) return { hardState, snapshot: u.snapshot, entries: [...u.entries], sync: true };
  const first = u.entries[0]?.index;
  const entries = into.entries;
  if (first !== undefined) {
    const base = entries[0]?.index;
    if (base !== undefined && first > base && first <= base + entries.length) entries.length = first - base;
    else if (base !== undefined && first <= base) entries.length = 0;
    for (const e of u.entries) entries.push(e);
  }
  return { hardState, snapshot: into.snapshot, entries, sync: true };
}

interface ProposalWaiter {
  readonly resolve: (index: number) => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
}

interface QueuedProposal extends ProposalWaiter {
  readonly data: Uint8Array;
}

interface QueuedConfChange extends ProposalWaiter {
  readonly cc: ConfChange;
}

interface AppliedWaiter extends ProposalWaiter {
  readonly term: number;
}

interface ReadWaiter {
  readonly resolve: (index: number) => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
  index: number;
}

/** One ReadIndex request to the core, answering every read queued when it was made. */
interface ReadRequest {
  readonly waiters: ReadWaiter[];
  /** The tick (counted like ticksDone) it was made: unanswered for an election timeout, it is made again. */
  readonly issuedTick: number;
}

function settleWith<T extends { reject: (e: Error) => void }>(items: Iterable<T>, e: Error): void {
  for (const w of items) w.reject(e);
}

export class RaftNode {
  readonly id: NodeId;
  private core: RaftCore | null = null;
  private readonly opts: RaftNodeOptions;
  private readonly tickMs: number;
  private readonly electionTicks: number;
  private readonly snapshotEvery: number;
  private readonly maxPending: number;
  private readonly maxBatch: number;
  private readonly maxProposalBytes: number;
  private readonly maxInbox: number;
  private readonly maxReads: number;
  private readonly timeoutMs: number;

  private inbox: Message[] = [];
  private proposals: QueuedProposal[] = [];
  private confChanges: QueuedConfChange[] = [];
  private transfers: NodeId[] = [];
  private readsQueued: ReadWaiter[] = [];
  private readonly readsByRequest = new Map<number, ReadRequest>();
  /** Reads waiting in readsByRequest (the sum of its waiters). */
  private readsInFlight = 0;
  private readsAwaitingApply: ReadWaiter[] = [];
  private readonly appliedWaiters = new Map<number, AppliedWaiter>();
  private readSeq = 0;
  private pendingTicks = 0;
  private ticksDone = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The tick (counted like ticksDone) the armed timer is for; Infinity when none is armed. */
  private timerTick = Infinity;
  private scheduled = false;
  private running: Promise<void> | null = null;
  private stopped = false;
  private fatal: unknown = null;
  private applied = 0;
  private softState: SoftState = { role: Role.Follower, leader: '', term: 0 };
  /** The leader's commit-index updates not sent yet (handleReadyAsync, flushHeldSoon). */
  private heldCommitUpdates: Message[] = [];
  /** The hard state last written, to tell a term/vote change (must sync) from a commit-only one. */
  private persisted: HardState = { term: 0, vote: '', commit: 0 };
  /** The newest hard state from the core (may differ from `persisted` by its commit index only). */
  private latestHardState: HardState = { term: 0, vote: '', commit: 0 };
  private readonly listeners = new Set<LeaderChangeListener>();
  /** Leader only: each peer's last answer and last caught-up time in `contactTerm` (see PeerContact). */
  private readonly contact = new Map<NodeId, { lastResponseMs: number; lastCaughtUpMs: number }>();
  private contactTerm = -1;
  private readonly asyncWrites: boolean;
  /** Storage operations not started yet, in order; `writing` while a save runs. */
  private writeQueue: WriteOp[] = [];
  private writing: Promise<void> | null = null;
  /** Compactions started and not finished (they do not hold up the queue). */
  private readonly compacting = new Set<Promise<void>>();
  /** Background writes that completed: reported to the core (persisted()) on the next loop turn. */
  private stableReports: Array<{ index: number; term: number }> = [];
  /** The point of the state machine's snapshot whose promise has not resolved yet (one at a time). */
  private snapshotPending: SnapshotMeta | null = null;
  /** A snapshot whose promise resolved: compacted on the next loop turn (finishSnapshot). */
  private snapshotDone: { readonly at: SnapshotMeta; readonly data: Uint8Array } | null = null;
  /**
   * Counters for status and benchmarks. `snapshots`: taken and compacted; `snapshotsDropped`:
   * resolved after a newer snapshot was installed, so not used.
   */
  readonly metrics = { readies: 0, saves: 0, entriesPersisted: 0, messagesSent: 0, applied: 0, droppedInbound: 0, proposalBatches: 0, asyncReadies: 0, timerWakeups: 0, snapshots: 0, snapshotsDropped: 0 };

  constructor(opts: RaftNodeOptions) {
    this.opts = opts;
    this.id = opts.id;
    const int = (name: string, v: number | undefined, d: number): number => {
      const x = v ?? d;
      if (!Number.isSafeInteger(x) || x <= 0) throw new Error(`raft node: ${name} must be a positive integer, got ${x}`);
      return x;
    };
    this.tickMs = int('tickMs', opts.tickMs, 10);
    this.electionTicks = int('electionTicks', opts.electionTicks, 50);
    this.snapshotEvery = int('snapshotEveryEntries', opts.snapshotEveryEntries, 10_000);
    this.maxPending = int('maxPendingProposals', opts.maxPendingProposals, 100_000);
    this.maxBatch = int('maxProposalsPerBatch', opts.maxProposalsPerBatch, 8192);
    this.maxProposalBytes = int('maxProposalBytes', opts.maxProposalBytes, 1 << 20);
    this.maxInbox = int('maxInboxMessages', opts.maxInboxMessages, 100_000);
    this.maxReads = int('maxPendingReads', opts.maxPendingReads, 10_000);
    this.timeoutMs = int('requestTimeoutMs', opts.requestTimeoutMs, 10_000);
    this.asyncWrites = opts.asyncLeaderWrites ?? true;
  }

  /** Load (or bootstrap) durable state, restore the state machine, start ticking. */
  async start(): Promise<void> {
    if (this.core !== null) throw new Error('raft node: already started');
    let init: RaftInitialState | null = await this.opts.storage.load();
    if (init === null) {
      init = this.opts.bootstrapVoters !== undefined ? bootstrapState(this.opts.bootstrapVoters) : joinerState();
      await this.opts.storage.save({ hardState: init.hardState, snapshot: init.snapshot, entries: init.entries });
    }
    this.persisted = init.hardState;
    this.latestHardState = init.hardState;
    // Members' addresses: from the snapshot's membership, then from every conf change in the
    // log (also uncommitted ones: knowing an address early is harmless).
    this.learnAddresses(init.snapshot.meta.confState);
    for (const e of init.entries) this.learnFromEntry(e);
    if (init.snapshot.meta.index > 0) await this.opts.stateMachine.restore(init.snapshot.data, init.snapshot.meta.index);
    this.applied = init.snapshot.meta.index;
    this.core = new RaftCore(
      {
        ...this.opts.core,
        id: this.id,
        electionTicks: this.electionTicks,
        heartbeatTicks: this.opts.heartbeatTicks ?? Math.ceil(this.electionTicks / 10),
        rng: new SeededRng(this.opts.seed ?? randomInt(0, 2 ** 31)),
      },
      init,
    );
    this.softState = this.core.softState();
    this.opts.transport.onMessage((m) => this.receive(m));
    this.startedAt = performance.now();
    this.wake();
  }

  /** Stop ticking and processing; pending requests are rejected. Storage and transport stay open (the caller owns them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarmTimer();
    // Settle requests first: the loop may be waiting on a slow (or hung) write, and nothing it
    // does after that write can resolve a request we have already rejected (a promise settles once).
    this.rejectAll(new NodeStoppedError('raft node stopped'));
    if (this.running !== null) await this.running;
    // Let queued writes and running compactions finish: the caller closes the storage next.
    while (this.writing !== null || this.compacting.size > 0) {
      await Promise.all([this.writing, ...this.compacting].map((w) => w?.catch(() => undefined)));
    }
    this.rejectAll(new NodeStoppedError('raft node stopped'));
  }

  // ---------------------------------------------------------------------------------------
  // Application API

  /**
   * Replicate `data` and resolve with its log index once it is committed and applied here.
   * Rejects with NotLeaderError (carrying the leader hint) on a follower, OverloadedError when
   * too many proposals are pending, ProposalDroppedError when leadership changed before it was
   * applied (its outcome is then unknown).
   */
  propose(data: Uint8Array): Promise<number> {
    const err = this.admit();
    if (err !== null) return Promise.reject(err);
    if (data.byteLength === 0) return Promise.reject(new InvalidRequestError('raft node: empty proposal'));
    if (data.byteLength > this.maxProposalBytes) return Promise.reject(new OverloadedError(`proposal of ${data.byteLength} bytes exceeds ${this.maxProposalBytes}`));
    if (this.proposals.length + this.appliedWaiters.size >= this.maxPending) return Promise.reject(new OverloadedError(`${this.maxPending} proposals pending`));
    return new Promise<number>((resolve, reject) => {
      this.proposals.push({ data, resolve, reject, deadline: performance.now() + this.timeoutMs });
      this.wake();
    });
  }

  /**
   * Linearizable read barrier (ReadIndex, thesis §6.4): resolves with an index once this
   * node's state machine has applied everything committed before the call. Reading the state
   * machine right after it resolves is linearizable. Works on followers too.
   */
  readBarrier(): Promise<number> {
    const err = this.admit();
    if (err !== null) return Promise.reject(err);
    if (this.readsInFlight + this.readsQueued.length + this.readsAwaitingApply.length >= this.maxReads) {
      return Promise.reject(new OverloadedError(`${this.maxReads} reads pending`));
    }
    return new Promise<number>((resolve, reject) => {
      this.readsQueued.push({ resolve, reject, deadline: performance.now() + this.timeoutMs, index: 0 });
      this.wake();
    });
  }

  /**
   * Add a learner, promote a caught-up learner, or remove a member; resolves when applied.
   * `cc.context` is the member's "host:port" address: every node (and every node restoring from
   * a later snapshot) hands it to its transport when the change is applied.
   */
  changeMembership(cc: ConfChange): Promise<number> {
    const err = this.admit();
    if (err !== null) return Promise.reject(err);
    if (cc.nodeId === '' || cc.nodeId.length > 256) return Promise.reject(new InvalidRequestError(`raft node: bad node id ${JSON.stringify(cc.nodeId)}`));
    if (cc.context !== undefined && !isAddress(cc.context)) return Promise.reject(new InvalidRequestError(`raft node: bad address ${JSON.stringify(cc.context)} (want host:port)`));
    if (cc.context !== undefined && cc.type === ConfChangeType.RemoveNode) return Promise.reject(new InvalidRequestError('raft node: a removal carries no address'));
    return new Promise<number>((resolve, reject) => {
      this.confChanges.push({ cc, resolve, reject, deadline: performance.now() + this.timeoutMs });
      this.wake();
    });
  }

  /** Add `id` as a learner; `address` ("host:port") is replicated to every member's transport. */
  addLearner(id: NodeId, address?: string): Promise<number> {
    return this.changeMembership(address === undefined ? { type: ConfChangeType.AddLearner, nodeId: id } : { type: ConfChangeType.AddLearner, nodeId: id, context: address });
  }

  /** Promote a caught-up learner to voter (keeps the address it was added with unless given a new one). */
  promoteLearner(id: NodeId, address?: string): Promise<number> {
    return this.changeMembership(address === undefined ? { type: ConfChangeType.AddVoter, nodeId: id } : { type: ConfChangeType.AddVoter, nodeId: id, context: address });
  }

  removeMember(id: NodeId): Promise<number> {
    return this.changeMembership({ type: ConfChangeType.RemoveNode, nodeId: id });
  }

  /** Ask the leader to hand leadership to `to` (thesis §3.10). Watch onLeaderChange for the result. */
  transferLeadership(to: NodeId): void {
    if (this.admit() !== null) return;
    if (this.transfers.length < 16) this.transfers.push(to);
    this.wake();
  }

  /** Listen for role, leader and term changes. Returns an unsubscribe function. */
  onLeaderChange(listener: LeaderChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): NodeStatus {
    const core = this.core;
    if (core === null) throw new Error('raft node: not started');
    const cs = core.confState();
    return {
      id: this.id,
      role: core.role,
      term: core.term,
      leader: core.leader,
      commit: core.log.committed,
      applied: this.applied,
      lastIndex: core.log.lastIndex(),
      snapshotIndex: core.log.snapshot.meta.index,
      voters: cs.voters,
      learners: cs.learners,
      progress: Object.fromEntries(core.progress()),
    };
  }

  /** Leader only: each peer's PeerContact in the current term (empty on a follower). */
  peerContact(): ReadonlyMap<NodeId, PeerContact> {
    return this.core?.role === Role.Leader && this.contactTerm === this.core.term ? this.contact : new Map();
  }

  /** Records the answers of this loop's messages (leader only): the peer is alive, and caught up when it matches the log end. */
  private noteContact(core: RaftCore, inbox: readonly Message[]): void {
    if (this.contactTerm !== core.term) {
      this.contact.clear();
      this.contactTerm = core.term;
    }
    const now = Date.now();
    const last = core.log.lastIndex();
    for (const m of inbox) {
      if (m.term !== core.term || (m.type !== MessageType.AppResp && m.type !== MessageType.HeartbeatResp && m.type !== MessageType.SnapResp)) continue;
      let c = this.contact.get(m.from);
      if (c === undefined) {
        c = { lastResponseMs: now, lastCaughtUpMs: -1 };
        this.contact.set(m.from, c);
      }
      c.lastResponseMs = now;
      if ((core.matchOf(m.from) ?? -1) >= last) c.lastCaughtUpMs = now;
    }
  }

  get isLeader(): boolean {
    return this.core?.role === Role.Leader;
  }

  // ---------------------------------------------------------------------------------------
  // Inputs

  private admit(): Error | null {
    if (this.fatal !== null) return new NodeStoppedError('raft node failed', this.fatal);
    if (this.stopped || this.core === null) return new NodeStoppedError('raft node not running');
    return null;
  }

  private receive(m: Message): void {
    if (this.stopped || m.to !== this.id) return;
    if (this.inbox.length >= this.maxInbox) {
      // Raft tolerates loss; a bounded inbox protects the process when the loop falls behind.
      this.metrics.droppedInbound++;
      return;
    }
    this.inbox.push(m);
    this.wake();
  }

  /**
   * Counts the ticks elapsed on the monotonic clock since the last count into pendingTicks (so
   * a late timer does not stretch timeouts). After a long stall at most one election timeout of
   * ticks is replayed.
   */
  private countTicks(): void {
    const due = Math.floor((performance.now() - this.startedAt) / this.tickMs);
    const n = due - this.ticksDone;
    if (n <= 0) return;
    this.ticksDone = due;
    this.pendingTicks = Math.min(this.pendingTicks + n, this.electionTicks);
  }

  private onTimer(): void {
    this.metrics.timerWakeups++;
    this.timer = null;
    this.timerTick = Infinity;
    this.countTicks();
    this.expireRequests();
    this.wake();
    // A loop still running (a slow or stuck storage write) re-arms only when it ends: keep
    // ticking meanwhile, so request deadlines are still enforced.
    if (this.running !== null && this.core !== null) this.armTimer(this.core);
  }

  /**
   * Arms the timer for the next tick that matters. While requests wait (their deadlines are
   * checked per tick) that is the next tick; otherwise the core's next timed event (a leader's
   * heartbeat, a follower's election timeout), but never more than half an election timeout
   * away, so a timer up to that late still loses no tick to countTicks' cap (one election
   * timeout). An idle node thus wakes about once per heartbeat rather than every tick; feed() counts the ticks slept through before it
   * steps any message, which keeps the core's view of elapsed time what per-tick timers gave.
   */
  private armTimer(core: RaftCore): void {
    if (this.stopped) return;
    const busy =
      this.proposals.length > 0 || this.appliedWaiters.size > 0 || this.readsByRequest.size > 0 || this.readsQueued.length > 0 || this.readsAwaitingApply.length > 0 || this.confChanges.length > 0 || this.transfers.length > 0;
    const ahead = busy ? 1 : Math.max(1, Math.min(core.ticksUntilNextEvent(), Math.ceil(this.electionTicks / 2)) - this.pendingTicks);
    const tick = this.ticksDone + ahead;
    if (this.timer !== null && this.timerTick <= tick) return;
    this.disarmTimer();
    this.timerTick = tick;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(this.startedAt + tick * this.tickMs - performance.now())));
  }

  private disarmTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerTick = Infinity;
  }

  private wake(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running === null) {
        this.running = this.loop().finally(() => {
          this.running = null;
        });
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // The loop

  private async loop(): Promise<void> {
    const core = this.core;
    if (core === null) return;
    // A timer must be armed while the loop runs: onTimer re-arms only when it finds a loop
    // running, so a loop started by its wake() that then hangs in a storage write would leave
    // none, and the requests queued meanwhile would never meet their deadline.
    this.armTimer(core);
    try {
      while (!this.stopped) {
        this.feed(core);
        if (this.snapshotDone !== null) this.finishSnapshot(core);
        if (!core.hasReady()) break;
        const rd = core.ready();
        if (this.asyncWrites && rd.mayPersistAsync) {
          this.handleReadyAsync(rd);
          core.advanceAsync();
        } else {
          await this.handleReady(rd);
          core.advance();
        }
        this.afterApply();
        this.maybeSnapshot(core);
      }
    } catch (e: unknown) {
      this.fail(e);
    } finally {
      if (this.heldCommitUpdates.length > 0) this.flushHeldSoon();
      this.armTimer(core);
    }
  }

  /**
   * Sends held commit-index updates after the microtasks of this turn, unless a proposal made in
   * them is queued by then: its loop pass sends them with its append.
   */
  private flushHeldSoon(): void {
    setImmediate(() => {
      if (this.stopped || (this.proposals.length > 0 && (this.scheduled || this.running !== null))) return;
      this.send([]);
    });
  }

  private feed(core: RaftCore): void {
    this.countTicks();
    if (this.stableReports.length > 0) {
      const reports = this.stableReports;
      this.stableReports = [];
      for (const r of reports) core.persisted(r.index, r.term);
    }
    for (; this.pendingTicks > 0; this.pendingTicks--) core.tick();
    if (this.inbox.length > 0) {
      const inbox = this.inbox;
      this.inbox = [];
      for (const m of inbox) core.step(m);
      if (core.role === Role.Leader) this.noteContact(core, inbox);
    }
    while (this.proposals.length > 0) {
      const batch = this.proposals.length <= this.maxBatch ? this.proposals : this.proposals.slice(0, this.maxBatch);
      this.proposals = this.proposals.length <= this.maxBatch ? [] : this.proposals.slice(this.maxBatch);
      const res = core.propose(batch.map((p) => p.data));
      this.metrics.proposalBatches++;
      if (res.ok) batch.forEach((p, i) => this.appliedWaiters.set(res.firstIndex + i, { resolve: p.resolve, reject: p.reject, deadline: p.deadline, term: res.term }));
      else settleWith(batch, this.refusal(res));
    }
    if (this.confChanges.length > 0) {
      const ccs = this.confChanges;
      this.confChanges = [];
      for (const c of ccs) {
        const res = core.proposeConfChange(c.cc);
        if (res.ok) this.appliedWaiters.set(res.firstIndex, { resolve: c.resolve, reject: c.reject, deadline: c.deadline, term: res.term });
        else c.reject(this.refusal(res));
      }
    }
    this.retryUnansweredReads();
    if (this.readsQueued.length > 0 && (core.role === Role.Leader || core.leader !== '')) {
      // Reads wait here (bounded by their deadline) while no leader is known: a read is always
      // safe to retry, so there is no reason to fail it during an election. Every read queued
      // now shares one request (as etcd's server batches its linearizable reads): its index is
      // the commit index when the leader takes it, at least that of each read's call, and the
      // core holds a bounded number of requests (maxPendingReads), dropping the rest.
      const id = ++this.readSeq;
      if (core.readIndex(id)) {
        this.readsByRequest.set(id, { waiters: this.readsQueued, issuedTick: this.ticksDone });
        this.readsInFlight += this.readsQueued.length;
        this.readsQueued = [];
      }
    }
    for (const to of this.transfers) core.transferLeadership(to);
    this.transfers = [];
  }

  private refusal(res: ProposeResult): Error {
    if (res.ok) throw new Error('refusal of an accepted proposal');
    switch (res.reason) {
      case 'not-leader':
      case 'transferring':
        return new NotLeaderError(res.leader, res.detail);
      case 'overloaded':
        return new OverloadedError(res.detail);
      case 'conf-change-pending':
        return new MembershipChangePendingError(`raft node: ${res.detail}`);
      case 'invalid':
        return new InvalidRequestError(`raft node: ${res.detail}`);
    }
  }

  /** Sends `messages`, after any held commit-index updates (in one write per peer). */
  private send(messages: readonly Message[]): void {
    let out = messages;
    if (this.heldCommitUpdates.length > 0) {
      out = [...this.heldCommitUpdates, ...messages];
      this.heldCommitUpdates = [];
    }
    if (out.length === 0) return;
    this.opts.transport.send(out);
    this.metrics.messagesSent += out.length;
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.metrics.readies++;
    // 0. A leader's appends may leave before its own write (thesis §10.2.1): the fsyncs of
    //    leader and followers overlap. Everything else waits for durability.
    //    (Held commit-index updates go now too: they must not wait for this write.)
    const early = earlyMessages(rd, this.persisted);
    this.send(early);
    // 1. Persist: one atomic, synced batch. A hard state whose only change is the commit index
    //    is not written on its own (commit is not needed for safety; a restarted node re-learns
    //    it): it rides along with the next write, keeping a storage round trip off the commit
    //    path.
    if (rd.hardState !== null) this.latestHardState = rd.hardState;
    const hs = this.latestHardState;
    const termOrVote = hs.term !== this.persisted.term || hs.vote !== this.persisted.vote;
    if (rd.snapshot !== null || rd.entries.length > 0 || termOrVote) {
      // Behind any background writes: storage applies writes in order.
      await this.enqueueSave({ hardState: hs, snapshot: rd.snapshot, entries: rd.entries, sync: true }, null);
      this.persisted = hs;
    }
    // 2. Send.
    this.send(early.length === 0 ? rd.messages : rd.messages.filter((m) => m.type !== MessageType.App));
    // 3. Apply: the snapshot first (an asynchronous restore is waited for, like the write above:
    //    the core takes no input until advance()), then the entries after it.
    if (rd.snapshot !== null) await this.restoreSnapshot(rd.snapshot);
    this.applyReady(rd);
  }

  /**
   * A leader's Ready that changes neither term nor vote (thesis §10.2.1): send everything now
   * (commit-index updates within the next turn), queue the write behind earlier ones, apply what
   * is committed. The core learns the write is durable through persisted() on a later loop turn;
   * until then it does not count itself.
   */
  private handleReadyAsync(rd: Ready): void {
    this.metrics.readies++;
    this.metrics.asyncReadies++;
    // Commit-index updates (appends without entries) wait for the next send, or at most until
    // the event loop's next turn (flushHeldSoon): an application that proposes again as soon as
    // a proposal resolves does so within this turn, and then both leave in one write per peer.
    // Sent on their own, the append would queue behind the update in the peer's grpc-js stream
    // (a stream starts a write only once the previous one is done: ~0.1 ms at the median, one
    // proposal at a time) and the follower would wake twice.
    let others: Message[] | null = null;
    for (const m of rd.messages) {
      if (m.type === MessageType.App && m.entries.length === 0) this.heldCommitUpdates.push(m);
      else (others ??= []).push(m);
    }
    if (others !== null) this.send(others);
    if (rd.snapshot !== null) throw new Error('raft node: a Ready with a snapshot is never asynchronous');
    if (rd.hardState !== null) this.latestHardState = rd.hardState;
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) {
      // The commit index rides along; term and vote are unchanged (mayPersistAsync).
      this.enqueueSave({ hardState: this.latestHardState, snapshot: null, entries: rd.entries, sync: true }, { index: last.index, term: last.term }).then(
        () => {
          this.wake();
        },
        () => {
          // fail() already stopped the node.
        },
      );
    }
    this.applyReady(rd);
  }

  /**
   * Queue a save behind earlier storage operations; consecutive queued saves are merged into one
   * write (one fsync: group commit). `last` is reported to the core once durable.
   */
  private enqueueSave(update: StorageUpdate, last: { index: number; term: number } | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const tail = this.writeQueue[this.writeQueue.length - 1];
      if (tail !== undefined && tail.kind === 'save') {
        tail.update = mergeUpdate(tail.update, update);
        tail.waiters.push({ resolve, reject });
        if (last !== null) tail.lasts.push(last);
      } else {
        this.writeQueue.push({ kind: 'save', update: { ...update, entries: [...update.entries] }, waiters: [{ resolve, reject }], lasts: last === null ? [] : [last] });
      }
      this.pumpWrites();
    });
  }

  private enqueueCompact(snapshot: Snapshot): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.writeQueue.push({ kind: 'compact', snapshot, waiters: [{ resolve, reject }] });
      this.pumpWrites();
    });
  }

  /**
   * Starts the queued operations in order: a save runs alone (the next waits for it, so saves
   * reach the storage in log order, merged while they wait); a compaction is started once the
   * saves before it are done (the entries it covers are durable first) and the queue moves on
   * at once. A compaction writes a whole snapshot, which can take longer than an election
   * timeout: a follower whose next save waited for it would answer nothing meanwhile, and with
   * every node compacting at about the same applied index, the leader's check-quorum would step
   * it down. The storage lets later saves run alongside (WalStorage) or orders them itself.
   */
  private pumpWrites(): void {
    while (this.writing === null) {
      const op = this.writeQueue.shift();
      if (op === undefined) return;
      if (op.kind === 'compact') this.startCompact(op);
      else this.startSave(op);
    }
  }

  private startSave(op: Extract<WriteOp, { kind: 'save' }>): void {
    this.writing = this.opts.storage.save(op.update).then(
      () => {
        this.writing = null;
        this.metrics.saves++;
        this.metrics.entriesPersisted += op.update.entries.length;
        for (const l of op.lasts) this.stableReports.push(l);
        for (const w of op.waiters) w.resolve();
        this.pumpWrites();
      },
      (e: unknown) => {
        this.writing = null;
        this.failWrites(op, e);
      },
    );
  }

  private startCompact(op: Extract<WriteOp, { kind: 'compact' }>): void {
    const run: Promise<void> = this.opts.storage.compact(op.snapshot).then(
      () => {
        this.compacting.delete(run);
        for (const w of op.waiters) w.resolve();
      },
      (e: unknown) => {
        this.compacting.delete(run);
        this.failWrites(op, e);
      },
    );
    this.compacting.add(run);
  }

  /** A storage operation failed: fail-stop, and nothing queued is written. */
  private failWrites(op: WriteOp, e: unknown): void {
    this.fail(e);
    for (const w of op.waiters) w.reject(e);
    for (const q of this.writeQueue) for (const w of q.waiters) w.reject(e);
    this.writeQueue = [];
  }

  /** A failed write leaves us unsure what is durable: fail-stop is the only safe answer. */
  private fail(e: unknown): void {
    if (this.fatal !== null) return;
    this.fatal = e;
    this.stopped = true;
    this.disarmTimer();
    this.rejectAll(new NodeStoppedError('raft node failed', e));
  }

  /**
   * Restores the state machine from a snapshot installed from the leader (persisted already).
   * `applied` moves to its index only once the state machine holds it, so reads waiting for
   * that index are not answered from the old state.
   */
  private async restoreSnapshot(snap: Snapshot): Promise<void> {
    this.learnAddresses(snap.meta.confState);
    await this.opts.stateMachine.restore(snap.data, snap.meta.index);
    this.applied = snap.meta.index;
    // Proposals at or below the snapshot were decided elsewhere; we cannot tell how.
    for (const [idx, w] of this.appliedWaiters) {
      if (idx > this.applied) break;
      w.reject(new ProposalDroppedError('replaced by a snapshot; outcome unknown'));
      this.appliedWaiters.delete(idx);
    }
  }

  /** Applies a Ready's committed entries (its snapshot, if any, is restored: restoreSnapshot) and read states. */
  private applyReady(rd: Ready): void {
    const sm = this.opts.stateMachine;
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.Normal && e.data.byteLength > 0) sm.apply(e.index, e.data);
      else if (e.type === EntryType.ConfChange) this.learnFromEntry(e, true);
      this.applied = e.index;
      this.metrics.applied++;
      const w = this.appliedWaiters.get(e.index);
      if (w !== undefined) {
        this.appliedWaiters.delete(e.index);
        if (w.term === e.term) w.resolve(e.index);
        else w.reject(new ProposalDroppedError(`entry ${e.index} was overwritten by term ${e.term}`));
      }
    }
    for (const rs of rd.readStates) {
      const req = this.takeReadRequest(rs.requestId);
      if (req === undefined) continue;
      for (const r of req.waiters) {
        r.index = rs.index;
        this.readsAwaitingApply.push(r);
      }
    }
    if (rd.softState !== null) this.onSoftState(rd.softState);
  }

  /** Give the transport every member's address in `cs`. */
  private learnAddresses(cs: ConfState): void {
    const t = this.opts.transport;
    if (t.setPeer === undefined) return;
    for (const [id, addr] of Object.entries(cs.contexts ?? {})) if (id !== this.id && isAddress(addr)) t.setPeer(id, addr);
  }

  /** A conf-change entry: an added member's address goes to the transport; a removed member's link closes once applied. */
  private learnFromEntry(e: Entry, applied = false): void {
    if (e.type !== EntryType.ConfChange) return;
    const cc = decodeConfChange(e.data);
    if (cc.nodeId === this.id) return;
    const t = this.opts.transport;
    if (cc.type === ConfChangeType.RemoveNode) {
      if (applied) t.removePeer?.(cc.nodeId);
    } else if (cc.context !== undefined && isAddress(cc.context)) {
      t.setPeer?.(cc.nodeId, cc.context);
    }
  }

  private afterApply(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: ReadWaiter[] = [];
    for (const r of this.readsAwaitingApply) {
      if (r.index <= this.applied) r.resolve(r.index);
      else still.push(r);
    }
    this.readsAwaitingApply = still;
  }

  private onSoftState(s: SoftState): void {
    const was = this.softState;
    this.softState = s;
    if (was.role === Role.Leader && s.role !== Role.Leader) {
      // Our uncommitted proposals may or may not survive under the next leader.
      const e = new ProposalDroppedError(`leadership lost (term ${s.term}); outcome unknown`);
      settleWith(this.appliedWaiters.values(), e);
      this.appliedWaiters.clear();
    }
    if (was.leader !== s.leader || was.term !== s.term) {
      // Reads routed to the old leader will never be answered: ask the new one.
      this.requeueReads(() => true);
    }
    for (const l of this.listeners) {
      try {
        l(s);
      } catch {
        // A listener's failure is its own; it must not stop the node.
      }
    }
  }

  /**
   * Every `snapshotEveryEntries` applied entries: snapshot the state machine. A synchronous
   * snapshot compacts at once; an asynchronous one is compacted when it resolves (finishSnapshot)
   * at the point captured here, while the loop goes on, and no other is started meanwhile.
   */
  private maybeSnapshot(core: RaftCore): void {
    if (this.snapshotPending !== null || this.snapshotDone !== null) return;
    if (this.applied - core.log.snapshot.meta.index < this.snapshotEvery) return;
    if (core.log.applied !== this.applied) return;
    const at = core.snapshotPoint();
    const out = this.opts.stateMachine.snapshot();
    if (out instanceof Uint8Array) {
      this.compactAt(core, at, out);
      return;
    }
    this.snapshotPending = at;
    out.then(
      (data) => {
        this.snapshotPending = null;
        if (this.stopped) return;
        this.snapshotDone = { at, data };
        this.wake();
      },
      (e: unknown) => {
        this.snapshotPending = null;
        if (!this.stopped) this.fail(e);
      },
    );
  }

  /**
   * A snapshot resolved: compact at its point, unless the log's snapshot is already at or past
   * it (one from the leader was installed meanwhile: it holds a newer state, and the bytes here
   * would replace it with an older one).
   */
  private finishSnapshot(core: RaftCore): void {
    const done = this.snapshotDone;
    if (done === null) return;
    this.snapshotDone = null;
    if (core.log.snapshot.meta.index >= done.at.index) {
      this.metrics.snapshotsDropped++;
      return;
    }
    this.compactAt(core, done.at, done.data);
    // The entries applied while it was encoded may already call for the next one.
    this.maybeSnapshot(core);
  }

  private compactAt(core: RaftCore, at: SnapshotMeta, data: Uint8Array): void {
    const snap = core.compact(data, at);
    this.metrics.snapshots++;
    this.send([]);
    // Behind the writes of the entries it covers; later writes do not wait for it (pumpWrites).
    // Not awaited either: nothing the loop does next depends on it (the core already dropped the
    // entries from memory), and writing a large snapshot can take longer than an election
    // timeout, which a leader's loop must not sit out (no heartbeats, no acknowledgements
    // counted). A failure fail-stops the node in failWrites.
    this.enqueueCompact(snap).catch(() => undefined);
  }

  private expireRequests(): void {
    const now = performance.now();
    const e = (index = -1): ProposalDroppedError => new ProposalDroppedError(`not settled within ${this.timeoutMs} ms; outcome unknown`, index);
    // Requests not handed to the core yet: they wait for a loop turn, which a slow or hung
    // storage write can hold up indefinitely. They never entered the log.
    if ((this.proposals[0]?.deadline ?? Infinity) <= now) this.proposals = this.expireQueued(this.proposals, now, e);
    if ((this.confChanges[0]?.deadline ?? Infinity) <= now) this.confChanges = this.expireQueued(this.confChanges, now, e);
    // Waiters are in index order, so deadlines are (nearly) increasing: stop at the first live one.
    for (const [idx, w] of this.appliedWaiters) {
      if (w.deadline > now) break;
      w.reject(e(idx));
      this.appliedWaiters.delete(idx);
    }
    // Not in deadline order: a ReadIndex asked again goes to the end under a new id, with its
    // old waiters. Few requests are in flight (one per loop turn with reads), so check them all.
    for (const [id, req] of this.readsByRequest) {
      if ((req.waiters[0]?.deadline ?? Infinity) > now) continue;
      const live = req.waiters.filter((r) => r.deadline > now);
      for (const r of req.waiters) if (r.deadline <= now) r.reject(e());
      this.readsInFlight -= req.waiters.length - live.length;
      if (live.length > 0) this.readsByRequest.set(id, { waiters: live, issuedTick: req.issuedTick });
      else this.readsByRequest.delete(id);
    }
    if (this.readsQueued.length > 0 && (this.readsQueued[0]?.deadline ?? Infinity) <= now) {
      const keep: ReadWaiter[] = [];
      for (const r of this.readsQueued) {
        if (r.deadline <= now) r.reject(new NotLeaderError(this.core?.leader ?? '', `no leader answered within ${this.timeoutMs} ms`));
        else keep.push(r);
      }
      this.readsQueued = keep;
    }
    if (this.readsAwaitingApply.length > 0 && (this.readsAwaitingApply[0]?.deadline ?? Infinity) <= now) {
      const keep: ReadWaiter[] = [];
      for (const r of this.readsAwaitingApply) {
        if (r.deadline <= now) r.reject(e());
        else keep.push(r);
      }
      this.readsAwaitingApply = keep;
    }
  }

  private takeReadRequest(id: number): ReadRequest | undefined {
    const req = this.readsByRequest.get(id);
    if (req === undefined) return undefined;
    this.readsByRequest.delete(id);
    this.readsInFlight -= req.waiters.length;
    return req;
  }

  /** Moves the reads of every request `which` selects back to the queue (in order, ahead of newer reads) to be asked again. */
  private requeueReads(which: (req: ReadRequest) => boolean): void {
    const again: ReadWaiter[] = [];
    for (const [id, req] of this.readsByRequest) {
      if (!which(req)) continue;
      this.takeReadRequest(id);
      for (const r of req.waiters) again.push(r);
    }
    if (again.length > 0) this.readsQueued = [...again, ...this.readsQueued];
  }

  /**
   * A request unanswered for an election timeout is asked again under a new id (etcd's server
   * retries its ReadIndex the same way): the forwarded request or its answer may have been lost
   * (a reconnect, a full queue), or every acknowledgement of the leader's confirming heartbeat,
   * and nothing else would resend them before the reads time out. A late answer to the old id
   * is ignored; a new request's index is as good (it is taken later).
   */
  private retryUnansweredReads(): void {
    if (this.readsByRequest.size === 0) return;
    const due = this.ticksDone - this.electionTicks;
    if ((this.readsByRequest.values().next().value?.issuedTick ?? Infinity) > due) return;
    this.requeueReads((req) => req.issuedTick <= due);
  }

  /** Rejects the items of `queue` whose deadline passed; returns the others, in order. */
  private expireQueued<T extends ProposalWaiter>(queue: T[], now: number, e: () => Error): T[] {
    const keep: T[] = [];
    for (const w of queue) {
      if (w.deadline <= now) w.reject(e());
      else keep.push(w);
    }
    return keep;
  }

  private rejectAll(e: Error): void {
    settleWith(this.proposals, e);
    this.proposals = [];
    settleWith(this.confChanges, e);
    this.confChanges = [];
    settleWith(this.appliedWaiters.values(), e);
    this.appliedWaiters.clear();
    settleWith(this.readsQueued, e);
    this.readsQueued = [];
    for (const req of this.readsByRequest.values()) settleWith(req.waiters, e);
    this.readsByRequest.clear();
    this.readsInFlight = 0;
    settleWith(this.readsAwaitingApply, e);
    this.readsAwaitingApply = [];
  }
}

/** "host:port" with a port in 1..65535 (the address convention of conf-change contexts). */
function isAddress(s: string): boolean {
  const i = s.lastIndexOf(':');
  if (i <= 0 || s.length > 1024 || /\s/.test(s)) return false;
  const port = Number(s.slice(i + 1));
  return Number.isInteger(port) && port > 0 && port <= 65535 && String(port) === s.slice(i + 1);
}
