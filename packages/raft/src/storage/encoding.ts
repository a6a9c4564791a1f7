// Encodings shared by the durable LogStorage implementations (LevelStorage, WalStorage).
//
//   entries   per entry: f64 BE term, u8 type, u32 BE data length, data (indexes are implied:
//             the first index is stored next to the run)
//   snapshot  u32 BE length of the JSON meta, the JSON meta, then the data
//   hard state JSON {term, vote, commit}

import { Entry, EntryType, HardState, Snapshot, SnapshotMeta } from '../core/types';

const ENTRY_HEADER_BYTES = 13;

export function encodeChunk(ents: readonly Entry[]): Uint8Array {
  let size = 0;
  for (const e of ents) size += ENTRY_HEADER_BYTES + e.data.byteLength;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let off = 0;
  for (const e of ents) {
    v.setFloat64(off, e.term);
    v.setUint8(off + 8, e.type);
    v.setUint32(off + 9, e.data.byteLength);
    out.set(e.data, off + ENTRY_HEADER_BYTES);
    off += ENTRY_HEADER_BYTES + e.data.byteLength;
  }
  return out;
}

export function decodeChunk(first: number, b: Uint8Array): Entry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Entry[] = [];
  let off = 0;
  while (off < b.byteLength) {
    const index = first + out.length;
    if (off + ENTRY_HEADER_BYTES > b.byteLength) throw new Error(`raft storage: chunk at ${first} truncated in entry ${index}`);
    const term = v.getFloat64(off);
    const type = v.getUint8(off + 8);
    const len = v.getUint32(off + 9);
    if (!Number.isSafeInteger(term) || term < 0) throw new Error(`raft storage: entry ${index} has bad term ${term}`);
    if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new Error(`raft storage: entry ${index} has unknown type ${type}`);
    if (off + ENTRY_HEADER_BYTES + len > b.byteLength) throw new Error(`raft storage: entry ${index} data truncated`);
    out.push({ index, term, type, data: b.slice(off + ENTRY_HEADER_BYTES, off + ENTRY_HEADER_BYTES + len) });
    off += ENTRY_HEADER_BYTES + len;
  }
  return out;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const meta = new TextEncoder().encode(JSON.stringify(s.meta));
  const out = new Uint8Array(4 + meta.byteLength + s.data.byteLength);
  new DataView(out.buffer).setUint32(0, meta.byteLength);
  out.set(meta, 4);
  out.set(s.data, 4 + meta.byteLength);
  return out;
}

export function isSnapshotMeta(x: unknown): x is SnapshotMeta {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  const cs = r['confState'];
  if (typeof cs !== 'object' || cs === null) return false;
  const c = cs as Record<string, unknown>;
  return typeof r['index'] === 'number' && typeof r['term'] === 'number' && Array.isArray(c['voters']) && Array.isArray(c['learners']);
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0);
  const meta: unknown = JSON.parse(new TextDecoder().decode(b.subarray(4, 4 + n)));
  if (!isSnapshotMeta(meta)) throw new Error('raft storage: corrupt snapshot meta');
  return { meta, data: b.slice(4 + n) };
}

export function isHardState(x: unknown): x is HardState {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r['term'] === 'number' && typeof r['vote'] === 'string' && typeof r['commit'] === 'number';
}

export function encodeHardState(hs: HardState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(hs));
}

export function decodeHardState(b: Uint8Array): HardState {
  const hs: unknown = JSON.parse(new TextDecoder().decode(b));
  if (!isHardState(hs)) throw new Error('raft storage: corrupt hard state');
  return hs;
}
