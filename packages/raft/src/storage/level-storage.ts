// LogStorage on level (LevelDB). Every write is one atomic batch with `sync: true`, so it is on
// disk (fsync) before save() resolves; the driver batches many proposals into one Ready, so one
// fsync covers all of them (group commit).
//
// Layout (keys are UTF-8 strings so that the default ordering is the log order):
//   "h"                 hard state: JSON {term, vote, commit}
//   "s"                 snapshot: u32 BE length of the JSON meta, the JSON meta, then the data
//   "e" + 16-digit index  entry: u8 type, 7 bytes of zero, f64 BE term, then the data
//
// Indexes are written as zero-padded decimal: 16 digits hold every safe integer below 2^53.

import { Level } from 'level';
import { RaftInitialState } from '../core/raft';
import { Entry, EntryType, HardState, Snapshot, SnapshotMeta } from '../core/types';
import { LogStorage, StorageUpdate } from './log-storage';

const HARD_STATE_KEY = 'h';
const SNAPSHOT_KEY = 's';

function entryKey(index: number): string {
  return `e${index.toString().padStart(16, '0')}`;
}

function encodeEntry(e: Entry): Uint8Array {
  const out = new Uint8Array(16 + e.data.byteLength);
  const v = new DataView(out.buffer);
  v.setUint8(0, e.type);
  v.setFloat64(8, e.term);
  out.set(e.data, 16);
  return out;
}

function decodeEntry(index: number, b: Uint8Array): Entry {
  if (b.byteLength < 16) throw new Error(`level storage: entry ${index} truncated (${b.byteLength} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = v.getUint8(0);
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new Error(`level storage: entry ${index} has unknown type ${type}`);
  const term = v.getFloat64(8);
  if (!Number.isSafeInteger(term) || term < 0) throw new Error(`level storage: entry ${index} has bad term ${term}`);
  return { index, term, type, data: b.slice(16) };
}

function encodeSnapshot(s: Snapshot): Uint8Array {
  const meta = new TextEncoder().encode(JSON.stringify(s.meta));
  const out = new Uint8Array(4 + meta.byteLength + s.data.byteLength);
  new DataView(out.buffer).setUint32(0, meta.byteLength);
  out.set(meta, 4);
  out.set(s.data, 4 + meta.byteLength);
  return out;
}

function isSnapshotMeta(x: unknown): x is SnapshotMeta {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  const cs = r['confState'];
  if (typeof cs !== 'object' || cs === null) return false;
  const c = cs as Record<string, unknown>;
  return typeof r['index'] === 'number' && typeof r['term'] === 'number' && Array.isArray(c['voters']) && Array.isArray(c['learners']);
}

function decodeSnapshot(b: Uint8Array): Snapshot {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0);
  const meta: unknown = JSON.parse(new TextDecoder().decode(b.subarray(4, 4 + n)));
  if (!isSnapshotMeta(meta)) throw new Error('level storage: corrupt snapshot meta');
  return { meta, data: b.slice(4 + n) };
}

function isHardState(x: unknown): x is HardState {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r['term'] === 'number' && typeof r['vote'] === 'string' && typeof r['commit'] === 'number';
}

type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export class LevelStorage implements LogStorage {
  private readonly db: Level<string, Uint8Array>;
  /** Index range of stored entries, kept in memory to know what a truncation must delete. */
  private firstIndex = 1;
  private lastIndex = 0;
  private opened = false;

  constructor(readonly path: string) {
    this.db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
  }

  async load(): Promise<RaftInitialState | null> {
    await this.db.open();
    this.opened = true;
    const hs = await this.db.get(HARD_STATE_KEY);
    const sb = await this.db.get(SNAPSHOT_KEY);
    if (hs === undefined) return null;
    const hardState: unknown = JSON.parse(new TextDecoder().decode(hs));
    if (!isHardState(hardState)) throw new Error('level storage: corrupt hard state');
    const snapshot: Snapshot = sb === undefined ? { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) } : decodeSnapshot(sb);
    const entries: Entry[] = [];
    for await (const [key, value] of this.db.iterator({ gt: entryKey(snapshot.meta.index), lt: 'f' })) {
      const index = Number(key.slice(1));
      const expect = snapshot.meta.index + 1 + entries.length;
      // A gap means a torn compaction or truncation: keep only the contiguous prefix.
      if (index !== expect) break;
      entries.push(decodeEntry(index, value));
    }
    this.firstIndex = snapshot.meta.index + 1;
    this.lastIndex = snapshot.meta.index + entries.length;
    return { hardState, snapshot, entries };
  }

  async save(u: StorageUpdate): Promise<void> {
    await this.ensureOpen();
    const ops: BatchOp[] = [];
    if (u.snapshot !== null) {
      ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(u.snapshot) });
      for (let i = this.firstIndex; i <= this.lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
      this.firstIndex = u.snapshot.meta.index + 1;
      this.lastIndex = u.snapshot.meta.index;
    }
    const first = u.entries[0]?.index;
    let newLast = this.lastIndex;
    if (first !== undefined) {
      // Replace the suffix from `first`: delete stored entries beyond the new last index.
      const last = first + u.entries.length - 1;
      for (let i = last + 1; i <= this.lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
      for (const e of u.entries) ops.push({ type: 'put', key: entryKey(e.index), value: encodeEntry(e) });
      newLast = last;
    }
    if (u.hardState !== null) ops.push({ type: 'put', key: HARD_STATE_KEY, value: new TextEncoder().encode(JSON.stringify(u.hardState)) });
    if (ops.length === 0) return;
    await this.db.batch(ops, { sync: true });
    this.lastIndex = newLast;
  }

  async compact(snapshot: Snapshot): Promise<void> {
    await this.ensureOpen();
    if (snapshot.meta.index < this.firstIndex) return;
    const ops: BatchOp[] = [{ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(snapshot) }];
    const upto = Math.min(snapshot.meta.index, this.lastIndex);
    for (let i = this.firstIndex; i <= upto; i++) ops.push({ type: 'del', key: entryKey(i) });
    await this.db.batch(ops, { sync: true });
    this.firstIndex = snapshot.meta.index + 1;
    if (this.lastIndex < snapshot.meta.index) this.lastIndex = snapshot.meta.index;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private async ensureOpen(): Promise<void> {
    if (!this.opened) {
      await this.db.open();
      this.opened = true;
    }
  }
}
