// One simulated node: a RaftCore, the durable state its driver has persisted, and a tiny
// state machine (a rolling hash of applied entries). The driver here follows the Ready
// contract exactly: persist, then send, then apply, then advance. A crash discards the core
// and everything in memory; a restart rebuilds the core from the durable state only, so any
// state the core held but had not yet handed out in a Ready is lost, as on a real machine.

import { RaftConfig, RaftCore } from '../core/raft';
import { Entry, HardState, Message, MessageType, NONE, NodeId, ReadState, Role, Snapshot, earlyMessages } from '../core/types';
import { SafetyChecker } from './checker';

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

  crash(): void {
    this.core = null;
    this.crashes++;
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
  handleReady(send: (m: Message) => void, crashBeforePersist = false): boolean {
    const core = this.core;
    if (core === null || !core.hasReady()) return false;
    const rd = core.ready();
    const d = this.durable;
    const early = earlyMessages(rd, d.hardState);
    if (crashBeforePersist) {
      for (const m of early) send(m);
      this.crash();
      return true;
    }
    // 1. Persist.
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
    if (rd.snapshot !== null) {
      const sm = decodeSmState(rd.snapshot.data);
      if (sm.index !== rd.snapshot.meta.index) throw new Error(`sim: snapshot state index ${sm.index} != meta index ${rd.snapshot.meta.index}`);
      this.smIndex = sm.index;
      this.smHash = sm.hash;
      this.checker.applied(this.id, sm.index, sm.hash);
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.smIndex + 1) throw new Error(`sim: ${this.id} applies ${e.index} after ${this.smIndex}`);
      this.smHash = mixEntry(this.smHash, e);
      this.smIndex = e.index;
      if (e.data.byteLength > 0) this.appliedData.set(e.index, e.data);
      this.checker.applied(this.id, e.index, this.smHash);
    }
    for (const rs of rd.readStates) {
      const floor = this.readFloors.get(rs.requestId);
      if (floor !== undefined) {
        this.readFloors.delete(rs.requestId);
        this.checker.readAnswered(this.id, rs.requestId, floor, rs.index);
      }
    }
    this.readStates.push(...rd.readStates);
    if (this.readStates.length > 10_000) this.readStates.splice(0, this.readStates.length - 10_000);
    core.advance();
    this.check();
    return true;
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
    if (core === null || core.hasReady()) return false;
    if (core.log.applied <= core.log.snapshot.meta.index) return false;
    if (this.smIndex !== core.log.applied) throw new Error(`sim: ${this.id} state machine at ${this.smIndex}, core applied ${core.log.applied}`);
    const snap = core.compact(encodeSmState(this.smIndex, this.smHash));
    // Durable order: the snapshot first, then drop the entries it covers.
    this.durable.snapshot = snap;
    this.durable.entries = this.durable.entries.filter((e) => e.index > snap.meta.index);
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
