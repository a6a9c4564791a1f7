// The durable state of one Raft node, behind an interface with an in-memory twin
// (MemoryStorage, for tests and the in-process cluster) and a level-backed implementation
// (LevelStorage). The driver calls save() with each Ready's hard state, entries and snapshot and
// sends the Ready's messages only after the returned promise resolves: every write is durable
// before anything that depends on it leaves the node (Raft figure 2).

import { RaftInitialState } from '../core/raft';
import { Entry, HardState, Snapshot } from '../core/types';

export interface StorageUpdate {
  readonly hardState: HardState | null;
  /** A snapshot received from the leader: replaces the whole log. Written before `entries`. */
  readonly snapshot: Snapshot | null;
  /** New entries; any stored entry at or after entries[0].index is replaced. */
  readonly entries: readonly Entry[];
  /**
   * Whether the write must be durable before save() resolves (default true). The driver passes
   * false only when nothing but the commit index changed: commit is not needed for safety
   * (a restarted node re-learns it), so it need not cost an fsync on the commit path.
   */
  readonly sync?: boolean;
}

export interface LogStorage {
  /** The state stored so far, or null if the storage is empty (a new node). */
  load(): Promise<RaftInitialState | null>;
  /** Write the update atomically and durably. */
  save(update: StorageUpdate): Promise<void>;
  /**
   * Store a snapshot taken by the application and drop the entries it covers (Raft §7). The
   * driver calls it once the saves of the entries it covers are done, and may call save() again
   * before it resolves (a snapshot can take longer to write than an election timeout): those
   * saves must come out as if called after it. They never replace an entry the snapshot covers
   * (it covers applied, so committed, entries), but may install a newer snapshot.
   */
  compact(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}

/** LogStorage in memory: the twin used by tests and by in-process clusters. */
export class MemoryStorage implements LogStorage {
  private hardState: HardState | null = null;
  private snapshot: Snapshot | null = null;
  private entries: Entry[] = [];
  saves = 0;

  async load(): Promise<RaftInitialState | null> {
    if (this.hardState === null || this.snapshot === null) return null;
    return { hardState: this.hardState, snapshot: this.snapshot, entries: this.entries.slice() };
  }

  async save(u: StorageUpdate): Promise<void> {
    this.saves++;
    if (u.snapshot !== null) {
      this.snapshot = u.snapshot;
      this.entries = [];
    }
    if (this.snapshot === null) {
      this.snapshot = { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    }
    const first = u.entries[0]?.index;
    if (first !== undefined) {
      const base = this.snapshot.meta.index + 1;
      if (first < base || first > base + this.entries.length) throw new Error(`memory storage: entries at ${first} do not follow the log (${base}..${base + this.entries.length - 1})`);
      this.entries.length = first - base;
      this.entries.push(...u.entries);
    }
    if (u.hardState !== null) this.hardState = u.hardState;
    else if (this.hardState === null) this.hardState = { term: 0, vote: '', commit: 0 };
  }

  async compact(snapshot: Snapshot): Promise<void> {
    const cur = this.snapshot;
    if (cur !== null && snapshot.meta.index <= cur.meta.index) return;
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.meta.index);
  }

  async close(): Promise<void> {}
}
