// Safety checker for simulated clusters: the properties of Raft figure 3, checked after every
// step of a run. A violation throws SafetyViolation, which the simulator reports with its seed.
//
// - Election Safety: at most one leader per term.
// - Vote safety: a node grants at most one vote per term, even across crashes (this is what
//   "persist before answering" guarantees; SCENARIOS.md 10).
// - Log Matching: entries with the same index and term hold the same data and follow the same
//   previous term (by induction, the logs are identical up to there).
// - Leader Completeness: a new leader's log holds every entry committed before its term.
// - State Machine Safety: no two nodes apply different data at one index; checked through a
//   rolling hash of the applied state, which also covers snapshot installs.
// - Durability: an entry a leader commits is durable on a majority of voters (a leader
//   persisting in the background counts itself only once its write completed).
// - Monotonicity: commit and applied indexes never go back while a node is up.
// - Linearizable reads: a ReadIndex answer is at least every commit index any node knew when
//   the read was issued (thesis §6.4), so the read sees every write committed before it.

import { Entry, NodeId } from '../core/types';

export class SafetyViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetyViolation';
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface EntryRecord {
  readonly data: Uint8Array;
  readonly prevTerm: number;
}

/** Read access the checker needs to a node's log. */
export interface CheckedLog {
  term(index: number): number | undefined;
  lastIndex(): number;
  firstIndex(): number;
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly grants = new Map<string, NodeId>();
  private readonly entries = new Map<string, EntryRecord>();
  private readonly committedTerm = new Map<number, number>();
  private maxCommitted = 0;
  private readonly appliedHash = new Map<number, number>();
  checks = 0;

  leader(term: number, id: NodeId): void {
    this.checks++;
    const prev = this.leaderOfTerm.get(term);
    if (prev === undefined) this.leaderOfTerm.set(term, id);
    else if (prev !== id) throw new SafetyViolation(`election safety: ${prev} and ${id} are both leaders of term ${term}`);
  }

  /** Called when a node grants a vote (sends a VoteResp that is not a reject). */
  voteGranted(voter: NodeId, term: number, candidate: NodeId): void {
    this.checks++;
    const key = `${voter}@${term}`;
    const prev = this.grants.get(key);
    if (prev === undefined) this.grants.set(key, candidate);
    else if (prev !== candidate) throw new SafetyViolation(`vote safety: ${voter} voted for ${prev} and ${candidate} in term ${term}`);
  }

  /** Entries a node persisted, with the term of the entry before the first one. */
  appended(node: NodeId, ents: readonly Entry[], termBefore: (index: number) => number | undefined): void {
    for (const e of ents) {
      this.checks++;
      const key = `${e.index}:${e.term}`;
      const prevTerm = termBefore(e.index - 1);
      const rec = this.entries.get(key);
      if (rec === undefined) {
        if (prevTerm !== undefined) this.entries.set(key, { data: e.data, prevTerm });
        continue;
      }
      if (!sameBytes(rec.data, e.data)) throw new SafetyViolation(`log matching: ${node} has different data at index ${e.index} term ${e.term}`);
      if (prevTerm !== undefined && prevTerm !== rec.prevTerm) {
        throw new SafetyViolation(`log matching: ${node} entry ${e.index}:${e.term} follows term ${prevTerm}, another log has ${rec.prevTerm}`);
      }
    }
  }

  /** A node's commit index advanced to `commit`; its log is consulted for the terms. */
  committed(node: NodeId, from: number, commit: number, log: CheckedLog): void {
    for (let i = Math.max(from + 1, log.firstIndex()); i <= commit; i++) {
      this.checks++;
      const t = log.term(i);
      if (t === undefined) continue;
      const prev = this.committedTerm.get(i);
      if (prev === undefined) this.committedTerm.set(i, t);
      else if (prev !== t) throw new SafetyViolation(`state machine safety: ${node} committed term ${t} at index ${i}, another node committed term ${prev}`);
    }
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /** A leader committed `index`, which `held` of `voters` voters hold durably: that must be a majority. */
  durableQuorum(leader: NodeId, index: number, held: number, voters: number): void {
    this.checks++;
    if (held < Math.floor(voters / 2) + 1) {
      throw new SafetyViolation(`durability: leader ${leader} committed ${index}, durable on only ${held} of ${voters} voters`);
    }
  }

  /** A node became leader: its log must hold every committed entry (Raft §5.4). */
  newLeader(node: NodeId, log: CheckedLog): void {
    this.checks++;
    if (log.lastIndex() < this.maxCommitted) {
      throw new SafetyViolation(`leader completeness: leader ${node} last index ${log.lastIndex()} < committed ${this.maxCommitted}`);
    }
    for (let i = log.firstIndex(); i <= this.maxCommitted; i++) {
      const want = this.committedTerm.get(i);
      if (want === undefined) continue;
      const have = log.term(i);
      if (have !== want) throw new SafetyViolation(`leader completeness: leader ${node} has term ${String(have)} at committed index ${i}, want ${want}`);
    }
  }

  /** The state machine hash after applying `index` (or restoring a snapshot at it). */
  applied(node: NodeId, index: number, hash: number): void {
    this.checks++;
    const prev = this.appliedHash.get(index);
    if (prev === undefined) this.appliedHash.set(index, hash);
    else if (prev !== hash) throw new SafetyViolation(`state machine safety: ${node} state at index ${index} differs from another node's`);
  }

  /** The commit index a read issued now must reach. */
  readFloor(): number {
    return this.maxCommitted;
  }

  readAnswered(node: NodeId, requestId: number, floor: number, index: number): void {
    this.checks++;
    if (index < floor) throw new SafetyViolation(`linearizability: ${node} read ${requestId} got index ${index}, but ${floor} was committed before it was issued`);
  }

  monotonic(node: NodeId, what: string, before: number, after: number): void {
    this.checks++;
    if (after < before) throw new SafetyViolation(`monotonicity: ${node} ${what} went from ${before} back to ${after}`);
  }
}
