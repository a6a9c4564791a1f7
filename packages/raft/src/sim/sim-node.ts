// One simulated node: a RaftCore, the durable state its driver has persisted, and a tiny
// state machine (a rolling hash of applied entries). The driver here follows the Ready
// contract exactly: persist, then send, then apply, then advance. A crash discards the core
// and everything in memory; a restart rebuilds the core from the durable state only, so any
// state the core held but had not yet handed out in a Ready is lost, as on a real machine.

import { RaftConfig, RaftCore } from '../core/raft';
import { Entry, HardState, Message, MessageType, NONE, NodeId, ReadState, Role, Snapshot, SnapshotMeta, earlyMessages } from '../core/types';
import { SafetyChecker } from './checker';

/** A leader's write in flight (RaftCore.advanceAsync): lost if the node crashes before it completes. */
interface PendingWrite {
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  /** Term of the entry before each entry, as the log had it when the Ready was built. */
  readonly prevTerms: ReadonlyArray<number | undefined>;
}

/** What survives a crash. */
export interface DurableState {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

/** FNV-1a over the entry's index, term and data: the simulated state machine. */
export function mixEntry(hash: number, e: Entry): number {
  let h = hash ^ 0x811c9dc5;
  const mix = (b: number): void => {
    h ^= b & 0xff;
    h = Math.imul(h, 0x01000193);
  };
  for (const x of [e.index, e.term]) for (let s = 0; s < 32; s += 8) mix(x >>> s);
  for (let i = 0; i < e.data.byteLength; i++) mix(e.data[i] ?? 0);
  return h >>> 0;
}

export function encodeSmState(index: number, hash: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, index);
  v.setUint32(4, hash);
  return b;
}

export function decodeSmState(data: Uint8Array): { index: number; hash: number } {
  if (data.byteLength === 0) return { index: 0, hash: 0 };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: v.getUint32(0), hash: v.getUint32(4) };
}

export class SimNode {
  core: RaftCore | null = null;
  smIndex = 0;
  smHash = 0;
  /** For monotonicity checks within one life. */
  private commitSeen = 0;
  private appliedSeen = 0;
  private leaderTerm = -1;
  readonly readStates: ReadState[] = [];
  /** Reads in flight: request id -> commit floor at issue time (bounded; see readIndex()). */
  private readonly readFloors = new Map<number, number>();
  /** Data of every normal entry applied in this life, by index (bounded by the run length). */
  readonly appliedData = new Map<number, Uint8Array>();
  crashes = 0;
  /** Background writes in flight, oldest first (a storage queue completes them in order). */
  private pendingWrites: PendingWrite[] = [];
  asyncReadies = 0;
  /**
   * A snapshot being written in the background (RaftNode's asynchronous StateMachine.snapshot):
   * the state captured at `at`, compacted by finishSnapshot() while the node goes on applying.
   * Lost with a crash.
   */
  private pendingSnapshot: { at: SnapshotMeta; data: Uint8Array } | null = null;
  /** Snapshots compacted at a point captured earlier (finishSnapshot), and those found stale. */
  deferredCompactions = 0;
  staleSnapshots = 0;
  /** Set by SimCluster: checks that what a leader commits is durable on a majority of voters. */
  onLeaderCommit: ((leader: SimNode, from: number, to: number) => void) | null = null;

  constructor(
    readonly id: NodeId,
    readonly durable: DurableState,
    private readonly makeConfig: () => RaftConfig,
    private readonly checker: SafetyChecker,
  ) {}

  get alive(): boolean {
    return this.core !== null;
  }

  start(): void {
    if (this.core !== null) throw new Error(`sim: ${this.id} already running`);
    const d = this.durable;
    this.core = new RaftCore(this.makeConfig(), { hardState: d.hardState, snapshot: d.snapshot, entries: d.entries.slice() });
    const sm = decodeSmState(d.snapshot.data);
    this.smIndex = sm.index;
    this.smHash = sm.hash;
    this.commitSeen = this.core.log.committed;
    this.appliedSeen = this.core.log.applied;
    this.leaderTerm = -1;
    this.appliedData.clear();
  }

  /**
   * A crash loses whatever was not durable. Background writes complete in order, so a crash
   * keeps a prefix of them: `keepWrites` of the oldest (the rest never reached the disk).
   */
  crash(keepWrites = 0): void {
    for (const w of this.pendingWrites.slice(0, keepWrites)) this.writeDurable(w);
    this.pendingWrites = [];
    this.pendingSnapshot = null;
    this.core = null;
    this.crashes++;
  }

  get pendingWriteCount(): number {
    return this.pendingWrites.length;
  }

  /** Complete the oldest `n` background writes and tell the core. */
  completeWrites(n = Infinity): void {
    const core = this.core;
    if (core === null) return;
    const done = this.pendingWrites.splice(0, Math.min(n, this.pendingWrites.length));
    for (const w of done) this.writeDurable(w);
    for (const w of done) {
      const last = w.entries[w.entries.length - 1];
      if (last !== undefined) core.persisted(last.index, last.term);
    }
    if (done.length > 0) this.check();
  }

  private writeDurable(w: PendingWrite): void {
    const d = this.durable;
    if (w.entries.length > 0) {
      const first = w.entries[0]?.index ?? 0;
      this.checker.appended(this.id, w.entries, (i) => (i === first - 1 ? w.prevTerms[0] : w.prevTerms[i - first + 1]));
      d.entries = d.entries.filter((e) => e.index < first);
      d.entries.push(...w.entries);
      const expectFirst = d.snapshot.meta.index + 1;
      // Entries the snapshot already covers were compacted (after this write, in storage order).
      d.entries = d.entries.filter((e) => e.index >= expectFirst);
      d.entries.forEach((e, i) => {
        if (e.index !== expectFirst + i) throw new Error(`sim: ${this.id} durable log not contiguous at ${e.index}`);
      });
    }
    if (w.hardState !== null) d.hardState = w.hardState;
  }

  /** Run the invariants that concern this node's in-memory state. */
  check(): void {
    const core = this.core;
    if (core === null) return;
    if (core.role === Role.Leader) {
      this.checker.leader(core.term, this.id);
      if (this.leaderTerm !== core.term) {
        this.leaderTerm = core.term;
        this.checker.newLeader(this.id, core.log);
      }
    }
    const commit = core.log.committed;
    this.checker.monotonic(this.id, 'commit', this.commitSeen, commit);
    if (commit > this.commitSeen) {
      this.checker.committed(this.id, this.commitSeen, commit, core.log);
      if (core.role === Role.Leader) this.onLeaderCommit?.(this, this.commitSeen, commit);
      this.commitSeen = commit;
    }
    this.checker.monotonic(this.id, 'applied', this.appliedSeen, core.log.applied);
    this.appliedSeen = core.log.applied;
  }

  /**
   * Persist, send, apply, advance. Returns false if there was nothing to do. With
   * `crashBeforePersist`, the driver sends what it may send early (a leader's appends) and then
   * the node crashes before the write completes: that Ready's state is lost.
   */
  handleReady(send: (m: Message) => void, crashBeforePersist = false, persistAsync = false): boolean {
    const core = this.core;
    if (core === null || !core.hasReady()) return false;
    const rd = core.ready();
    const d = this.durable;
    if (persistAsync && rd.mayPersistAsync) {
      // Send everything, apply, and leave the write in flight behind the earlier ones.
      for (const m of rd.messages) send(m);
      if (rd.entries.length > 0 || rd.hardState !== null) {
        const prevTerms = rd.entries.map((e) => core.log.term(e.index - 1));
        this.pendingWrites.push({ entries: rd.entries, hardState: rd.hardState, prevTerms });
      }
      this.applyReady(rd.committedEntries, rd.readStates, null);
      this.asyncReadies++;
      core.advanceAsync();
      this.check();
      return true;
    }
    const early = earlyMessages(rd, d.hardState);
    if (crashBeforePersist) {
      for (const m of early) send(m);
      this.crash();
      return true;
    }
    // 1. Persist, after every background write (storage completes writes in order).
    const flushed = this.pendingWrites;
    this.pendingWrites = [];
    for (const w of flushed) this.writeDurable(w);
    if (rd.snapshot !== null) {
      d.snapshot = rd.snapshot;
      d.entries = [];
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]?.index ?? 0;
      this.checker.appended(this.id, rd.entries, (i) => core.log.term(i));
      d.entries = d.entries.filter((e) => e.index < first);
      d.entries.push(...rd.entries);
      const expectFirst = d.snapshot.meta.index + 1;
      d.entries.forEach((e, i) => {
        if (e.index !== expectFirst + i) throw new Error(`sim: ${this.id} durable log not contiguous at ${e.index}`);
      });
    }
    if (rd.hardState !== null) d.hardState = rd.hardState;
    // 2. Send.
    for (const m of rd.messages) {
      if (m.type === MessageType.VoteResp && !m.reject) this.checker.voteGranted(this.id, m.term, m.to);
      send(m);
    }
    // 3. Apply.
    this.applyReady(rd.committedEntries, rd.readStates, rd.snapshot);
    core.advance();
    for (const w of flushed) {
      const last = w.entries[w.entries.length - 1];
      if (last !== undefined) core.persisted(last.index, last.term);
    }
    this.check();
    return true;
  }

  private applyReady(committedEntries: readonly Entry[], readStates: readonly ReadState[], snapshot: Snapshot | null): void {
    if (snapshot !== null) {
      const sm = decodeSmState(snapshot.data);
      if (sm.index !== snapshot.meta.index) throw new Error(`sim: snapshot state index ${sm.index} != meta index ${snapshot.meta.index}`);
      this.smIndex = sm.index;
      this.smHash = sm.hash;
      this.checker.applied(this.id, sm.index, sm.hash);
    }
    for (const e of committedEntries) {
      if (e.index !== this.smIndex + 1) throw new Error(`sim: ${this.id} applies ${e.index} after ${this.smIndex}`);
      this.smHash = mixEntry(this.smHash, e);
      this.smIndex = e.index;
      if (e.data.byteLength > 0) this.appliedData.set(e.index, e.data);
      this.checker.applied(this.id, e.index, this.smHash);
    }
    for (const rs of readStates) {
      const floor = this.readFloors.get(rs.requestId);
      if (floor !== undefined) {
        this.readFloors.delete(rs.requestId);
        this.checker.readAnswered(this.id, rs.requestId, floor, rs.index);
      }
    }
    this.readStates.push(...readStates);
    if (this.readStates.length > 10_000) this.readStates.splice(0, this.readStates.length - 10_000);
  }

  /** Issue a ReadIndex request whose answer the checker will verify. */
  readIndex(requestId: number): boolean {
    if (this.core === null) return false;
    if (this.readFloors.size >= 10_000) this.readFloors.clear();
    this.readFloors.set(requestId, this.checker.readFloor());
    return this.core.readIndex(requestId);
  }

  /** Take a snapshot of the state machine at the applied index and compact the log (Raft §7). */
  compact(): boolean {
    const core = this.core;
    if (core === null || !this.canSnapshot(core)) return false;
    this.compactAt(core, encodeSmState(this.smIndex, this.smHash), core.snapshotPoint());
    return true;
  }

  /** Whether a snapshot may be taken now: no Ready pending, and entries applied past the last one. */
  private canSnapshot(core: RaftCore): boolean {
    if (core.hasReady() || core.log.applied <= core.log.snapshot.meta.index) return false;
    if (this.smIndex !== core.log.applied) throw new Error(`sim: ${this.id} state machine at ${this.smIndex}, core applied ${core.log.applied}`);
    return true;
  }

  private compactAt(core: RaftCore, data: Uint8Array, at: SnapshotMeta): void {
    // Storage order: background writes complete before the snapshot is written.
    this.completeWrites();
    const snap = core.compact(data, at);
    if (snap.meta.index !== at.index) throw new Error(`sim: ${this.id} compacted at ${snap.meta.index}, asked ${at.index}`);
    // Durable order: the snapshot first, then drop the entries it covers.
    this.durable.snapshot = snap;
    this.durable.entries = this.durable.entries.filter((e) => e.index > snap.meta.index);
  }

  /**
   * Captures the state machine at the applied index (RaftCore.snapshotPoint), to be compacted
   * later by finishSnapshot: what RaftNode does while an asynchronous snapshot is encoded.
   */
  startSnapshot(): boolean {
    const core = this.core;
    if (core === null || this.pendingSnapshot !== null || !this.canSnapshot(core)) return false;
    this.pendingSnapshot = { at: core.snapshotPoint(), data: encodeSmState(this.smIndex, this.smHash) };
    return true;
  }

  get snapshotPending(): boolean {
    return this.pendingSnapshot !== null;
  }

  /**
   * Compacts at the captured point, entries applied since staying in the log; a snapshot the log
   * has already passed (one installed from the leader meanwhile) is dropped, as RaftNode does.
   */
  finishSnapshot(): boolean {
    const core = this.core;
    const pending = this.pendingSnapshot;
    if (core === null || pending === null || core.hasReady()) return false;
    this.pendingSnapshot = null;
    if (pending.at.index <= core.log.snapshot.meta.index) {
      this.staleSnapshots++;
      return false;
    }
    this.compactAt(core, pending.data, pending.at);
    this.deferredCompactions++;
    return true;
  }

  get role(): Role | 'down' {
    return this.core?.role ?? 'down';
  }

  get term(): number {
    return this.core?.term ?? this.durable.hardState.term;
  }

  get leader(): NodeId {
    return this.core?.leader ?? NONE;
  }
}
