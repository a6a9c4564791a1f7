// The replicated log as one core sees it (Raft §5.3): a snapshot followed by entries, with
// three cursors: `stableIndex` (handed to the driver to persist and acknowledged by advance()),
// `committed` and `applied`. Invariant: snapshot.index <= applied <= committed <= lastIndex(),
// and committed entries are never truncated (Raft §5.4: Leader Completeness relies on it).
//
// Entries after the snapshot are kept in memory: the driver bounds them by taking a snapshot
// and calling compact() (see RaftNode's snapshotEntries). A core can therefore serve any entry
// a follower needs without I/O, which keeps it pure.

import { Entry, Snapshot, ConfState } from './types';

export function entryBytes(e: Entry): number {
  // data plus a fixed allowance for index, term and type in any encoding.
  return e.data.byteLength + 24;
}

export class RaftLog {
  snapshot: Snapshot;
  private entries: Entry[];
  committed: number;
  applied: number;
  /** Last index the driver has persisted (entries up to it were in an advanced Ready). */
  stableIndex: number;
  /**
   * Last index handed to the driver in a Ready (>= stableIndex). Between them are entries whose
   * write is in flight (a leader persisting asynchronously, see RaftCore.advanceAsync).
   */
  inProgressIndex: number;
  /** A snapshot received from the leader that the driver has not persisted yet. */
  unstableSnapshot: Snapshot | null = null;

  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number) {
    this.snapshot = snapshot;
    const first = snapshot.meta.index + 1;
    // Entries at or before the snapshot are covered by it; storage may hand us a few.
    this.entries = entries.filter((e) => e.index >= first);
    this.entries.forEach((e, i) => {
      if (e.index !== first + i) throw new Error(`raft log: entries not contiguous at ${e.index}, expected ${first + i}`);
    });
    this.stableIndex = this.lastIndex();
    this.inProgressIndex = this.stableIndex;
    this.committed = Math.max(snapshot.meta.index, Math.min(committed, this.lastIndex()));
    this.applied = snapshot.meta.index;
  }

  firstIndex(): number {
    return this.snapshot.meta.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.meta.index + this.entries.length;
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    const snap = this.snapshot.meta;
    if (index === snap.index) return snap.term;
    if (index < snap.index || index > this.lastIndex()) return undefined;
    return this.entries[index - snap.index - 1]?.term;
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t === undefined) throw new Error('raft log: no term for last index');
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  entry(index: number): Entry | undefined {
    if (index < this.firstIndex() || index > this.lastIndex()) return undefined;
    return this.entries[index - this.firstIndex()];
  }

  /**
   * Entries [lo, hi] limited to `maxBytes` (at least one entry is returned if any) and
   * `maxCount`. Caller ensures lo >= firstIndex().
   */
  slice(lo: number, hi: number, maxBytes: number, maxCount: number): Entry[] {
    if (lo < this.firstIndex()) throw new Error(`raft log: slice from ${lo} below first index ${this.firstIndex()}`);
    hi = Math.min(hi, this.lastIndex(), lo + maxCount - 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.entries[i - this.firstIndex()];
      if (e === undefined) break;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * The first entry of `ents` that is not already in the log with the same term, or 0 if all
   * are present (Raft §5.3: "if an existing entry conflicts with a new one, delete it and all
   * that follow").
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`: no entry in (result, index] can match
   * a log whose entry at `index` has term `term`, so the leader can skip them all at once
   * (Raft §5.3, the optimisation at the end of the section, as refined by etcd).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapshot.meta.index; i--) {
      const t = this.term(i);
      if (t !== undefined && t <= term) return i;
    }
    return i;
  }

  /**
   * Follower side of AppendEntries (Raft figure 2, receiver steps 2-5). Returns the new last
   * index matched with the leader, or undefined if the log does not contain (prevIndex, prevTerm).
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new Error(`raft log: entry ${conflict} conflicts with committed entry (committed=${this.committed})`);
      }
      this.append(ents.slice(conflict - prevIndex - 1));
    }
    // Commit only what we know matches the leader: up to the last new entry, not our whole log.
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Append, truncating any conflicting suffix first. Returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const first = ents[0]?.index ?? 0;
    if (first - 1 < this.committed) throw new Error(`raft log: append at ${first} would truncate committed ${this.committed}`);
    if (first > this.lastIndex() + 1) throw new Error(`raft log: append at ${first} leaves a gap after ${this.lastIndex()}`);
    if (first <= this.lastIndex()) {
      this.entries.length = first - this.firstIndex();
      // The truncated tail may have been persisted: it must be rewritten by the next Ready.
      this.stableIndex = Math.min(this.stableIndex, first - 1);
      this.inProgressIndex = Math.min(this.inProgressIndex, first - 1);
    }
    for (const e of ents) this.entries.push(e);
    return this.lastIndex();
  }

  /** Entries not yet handed to the driver. */
  unstableEntries(): Entry[] {
    const from = Math.max(this.inProgressIndex + 1, this.firstIndex());
    return this.entries.slice(from - this.firstIndex());
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) throw new Error(`raft log: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Leader side: commit `index` only if it holds an entry of the current term (Raft §5.4.2). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** Committed entries not applied yet, bounded by `maxBytes` (at least one if any). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed, maxBytes, Number.MAX_SAFE_INTEGER);
  }

  appliedTo(index: number): void {
    if (index < this.applied || index > this.committed) {
      throw new Error(`raft log: applied ${index} out of range [${this.applied}, ${this.committed}]`);
    }
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    if (index <= this.stableIndex) return;
    // If the entry at `index` changed since the Ready was built, the newer entry is still
    // unstable. An index the snapshot covers is committed, so it cannot have changed.
    if (this.matchTerm(index, term) || (index <= this.snapshot.meta.index && index <= this.inProgressIndex)) this.stableIndex = index;
    if (this.inProgressIndex < this.stableIndex) this.inProgressIndex = this.stableIndex;
  }

  /** Replace the whole log by a snapshot from the leader (Raft §7, receiver steps 6-8). */
  restore(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.applied = snapshot.meta.index;
    this.stableIndex = snapshot.meta.index;
    this.inProgressIndex = snapshot.meta.index;
    this.unstableSnapshot = snapshot;
  }

  /**
   * The application took a snapshot at `index` (<= applied): drop the entries it covers
   * (Raft §7). `confState` is the membership as of `index`.
   */
  compact(index: number, data: Uint8Array, confState: ConfState): Snapshot {
    if (index > this.applied) throw new Error(`raft log: compact at ${index} beyond applied ${this.applied}`);
    if (index <= this.snapshot.meta.index) return this.snapshot;
    const term = this.term(index);
    if (term === undefined) throw new Error(`raft log: no term for compaction index ${index}`);
    this.entries = this.entries.slice(index - this.firstIndex() + 1);
    this.snapshot = { meta: { index, term, confState }, data };
    return this.snapshot;
  }
}
