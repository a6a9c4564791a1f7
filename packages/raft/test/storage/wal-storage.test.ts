// WalStorage (src/storage/wal-storage.ts) beyond the shared script in level-storage.test.ts:
// torn tails are cut back to the last whole record, damage anywhere else stops load(), segments
// roll over and compaction removes only what its snapshot covers, a compaction's snapshot write
// does not hold up later saves and a crash at any step of it loses nothing, the bootstrap
// snapshot (index 0) keeps its membership, and a LevelStorage log migrates into a WAL.

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Entry, EntryType, Snapshot } from '../../src/core/types';
import { LevelStorage } from '../../src/storage/level-storage';
import { migrateLevelToWal } from '../../src/storage/migrate';
import { WalCompactStep, WalStorage } from '../../src/storage/wal-storage';
import { encodeSnapshot } from '../../src/storage/encoding';

const e = (index: number, term: number, s: string): Entry => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(s) });
const text = (ents: readonly Entry[]): string[] => ents.map((x) => `${x.index}:${x.term}:${new TextDecoder().decode(x.data)}`);
const snap = (index: number, term: number, data: number[]): Snapshot => ({ meta: { index, term, confState: { voters: ['a', 'b', 'c'], learners: [] } }, data: new Uint8Array(data) });

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'strand-raft-wal-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const segments = (d: string): string[] =>
  fs
    .readdirSync(d)
    .filter((n) => n.endsWith('.wal'))
    .sort();

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** A compaction that stops at `step` until released: `reached` resolves when it gets there. */
function holdAt(step: WalCompactStep): { hook: (s: WalCompactStep) => Promise<void> | undefined; reached: Promise<void>; release: () => void } {
  let arrived = (): void => undefined;
  let release = (): void => undefined;
  const reached = new Promise<void>((r) => (arrived = r));
  const gate = new Promise<void>((r) => (release = r));
  const hook = (s: WalCompactStep): Promise<void> | undefined => {
    if (s !== step) return undefined;
    arrived();
    return gate;
  };
  return { hook, reached, release };
}

async function reopen(s: WalStorage, d: string, segmentBytes?: number): Promise<WalStorage> {
  await s.close();
  return new WalStorage(d, segmentBytes === undefined ? {} : { segmentBytes });
}

describe('WalStorage', () => {
  test('a torn tail is cut back to the last whole record, and appends go on after it', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d);
    await s.load();
    await s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, snapshot: null, entries: [e(1, 1, 'x'), e(2, 1, 'y')] });
    await s.save({ hardState: { term: 1, vote: 'a', commit: 2 }, snapshot: null, entries: [e(3, 1, 'z')] });
    await s.close();
    const file = join(d, segments(d)[0] as string);
    const whole = fs.statSync(file).size;
    // A torn second write: its record is half there. Then garbage after a whole record.
    for (const damage of ['truncate', 'garbage', 'zeros'] as const) {
      if (damage === 'truncate') fs.truncateSync(file, whole - 5);
      else fs.appendFileSync(file, damage === 'garbage' ? Buffer.from('not a record at all') : Buffer.alloc(4096));
      s = new WalStorage(d);
      const st = await s.load();
      const expected = damage === 'truncate' ? ['1:1:x', '2:1:y'] : ['1:1:x', '2:1:y', '3:1:z'];
      expect({ damage, entries: text(st?.entries ?? []) }).toEqual({ damage, entries: expected });
      expect(fs.statSync(file).size).toBeLessThanOrEqual(whole);
      if (damage === 'truncate') {
        // What was cut was never acknowledged; the log goes on from the last whole record.
        await s.save({ hardState: { term: 1, vote: 'a', commit: 2 }, snapshot: null, entries: [e(3, 1, 'z')] });
        expect(fs.statSync(file).size).toBe(whole);
      }
      await s.close();
    }
    s = new WalStorage(d);
    expect(text((await s.load())?.entries ?? [])).toEqual(['1:1:x', '2:1:y', '3:1:z']);
    expect((await s.load())?.hardState).toEqual({ term: 1, vote: 'a', commit: 2 });
    await s.close();
  });

  test('damage in a segment that is not the last stops load()', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d, { segmentBytes: 64 });
    await s.load();
    for (let i = 1; i <= 6; i++) await s.save({ hardState: { term: 1, vote: 'a', commit: i - 1 }, snapshot: null, entries: [e(i, 1, `v${i}`)] });
    s = await reopen(s, d, 64);
    expect(text((await s.load())?.entries ?? [])).toHaveLength(6);
    await s.close();
    const names = segments(d);
    expect(names.length).toBeGreaterThan(2);
    const victim = join(d, names[1] as string);
    const bytes = fs.readFileSync(victim);
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
    fs.writeFileSync(victim, bytes);
    s = new WalStorage(d, { segmentBytes: 64 });
    await expect(s.load()).rejects.toThrow(/corrupt/);
    await s.close();
  });

  test('segments roll over; compaction removes the ones its snapshot covers and keeps the hard state', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d, { segmentBytes: 100 });
    await s.load();
    await s.save({ hardState: { term: 3, vote: 'b', commit: 0 }, snapshot: null, entries: [] });
    for (let i = 1; i <= 20; i++) await s.save({ hardState: null, snapshot: null, entries: [e(i, 3, `value-${i}`)] });
    const before = segments(d);
    expect(before.length).toBeGreaterThan(5);
    await s.compact(snap(12, 3, [9, 9]));
    const after = segments(d);
    expect(after.length).toBeLessThan(before.length);
    expect(after[after.length - 1]).toBe(before[before.length - 1]);
    // A stale compaction changes nothing.
    await s.compact(snap(5, 3, [1]));
    expect(segments(d)).toEqual(after);
    s = await reopen(s, d, 100);
    const st = await s.load();
    expect(st?.hardState).toEqual({ term: 3, vote: 'b', commit: 0 });
    expect(st?.snapshot.meta.index).toBe(12);
    expect(Array.from(st?.snapshot.data ?? [])).toEqual([9, 9]);
    expect(text(st?.entries ?? [])).toEqual(Array.from({ length: 8 }, (_, k) => `${13 + k}:3:value-${13 + k}`));
    // Truncation across a segment boundary, after the reopen.
    await s.save({ hardState: { term: 4, vote: 'c', commit: 12 }, snapshot: null, entries: [e(15, 4, 'new')] });
    s = await reopen(s, d, 100);
    expect(text((await s.load())?.entries ?? [])).toEqual(['13:3:value-13', '14:3:value-14', '15:4:new']);
    await s.close();
  });

  test('a crash that leaves a new segment empty does not lose the hard state to a later compaction', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d, { segmentBytes: 1 });
    await s.load();
    await s.save({ hardState: { term: 7, vote: 'b', commit: 4 }, snapshot: null, entries: [e(1, 7, 'a'), e(2, 7, 'b'), e(3, 7, 'c'), e(4, 7, 'd')] });
    await s.save({ hardState: null, snapshot: null, entries: [e(5, 7, 'e')] });
    await s.close();
    // The crash: the next segment was created (directory synced) but its header never synced.
    const names = segments(d);
    const next = Number((names[names.length - 1] as string).slice(0, 16)) + 1;
    fs.writeFileSync(join(d, `${next.toString().padStart(16, '0')}.wal`), Buffer.alloc(0));
    s = new WalStorage(d, { segmentBytes: 1 });
    expect((await s.load())?.hardState).toEqual({ term: 7, vote: 'b', commit: 4 });
    // A snapshot covering every older segment: they go, the hard state must not.
    await s.compact(snap(5, 7, [1]));
    expect(segments(d)).toHaveLength(1);
    s = await reopen(s, d, 1);
    const st = await s.load();
    expect(st?.hardState).toEqual({ term: 7, vote: 'b', commit: 4 });
    expect(st?.snapshot.meta.index).toBe(5);
    await s.close();
  });

  test('damage followed by a whole record in the last segment is corruption, not a torn tail', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d);
    await s.load();
    await s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, snapshot: null, entries: [e(1, 1, 'first')] });
    const afterFirst = fs.statSync(join(d, segments(d)[0] as string)).size;
    await s.save({ hardState: null, snapshot: null, entries: [e(2, 1, 'second')] });
    await s.save({ hardState: null, snapshot: null, entries: [e(3, 1, 'third')] });
    await s.close();
    const file = join(d, segments(d)[0] as string);
    const bytes = fs.readFileSync(file);
    bytes[afterFirst + 12] = (bytes[afterFirst + 12] as number) ^ 0xff; // inside the second record
    fs.writeFileSync(file, bytes);
    s = new WalStorage(d);
    await expect(s.load()).rejects.toThrow(/not a torn write/);
    await s.close();
    // Nothing was cut off.
    expect(fs.statSync(file).size).toBe(bytes.length);
  });

  test('a compaction whose snapshot write is slow does not hold up later saves; segments go only once it is durable', async () => {
    const d = join(dir, 'wal');
    const held = holdAt('snapshot-synced');
    let s = new WalStorage(d, { segmentBytes: 100, onCompactStep: held.hook });
    await s.load();
    await s.save({ hardState: { term: 3, vote: 'b', commit: 12 }, snapshot: null, entries: [] });
    for (let i = 1; i <= 20; i++) await s.save({ hardState: null, snapshot: null, entries: [e(i, 3, `value-${i}`)] });
    const before = segments(d);
    let compacted = false;
    const compaction = s.compact(snap(12, 3, [9, 9])).then(() => (compacted = true));
    await withTimeout(held.reached, 5000, 'the snapshot write');
    // The snapshot is written (not renamed yet) and the compaction waits: appends, a new term and
    // a truncation of the uncommitted tail (above the snapshot) all complete meanwhile.
    for (let i = 21; i <= 25; i++) await withTimeout(s.save({ hardState: null, snapshot: null, entries: [e(i, 3, `value-${i}`)] }), 5000, `save ${i}`);
    await withTimeout(s.save({ hardState: { term: 4, vote: 'c', commit: 20 }, snapshot: null, entries: [e(23, 4, 'new-23')] }), 5000, 'truncating save');
    expect(compacted).toBe(false);
    expect(segments(d).slice(0, before.length)).toEqual(before);
    held.release();
    await withTimeout(compaction, 5000, 'the compaction');
    expect(segments(d).length).toBeLessThan(before.length);
    s = await reopen(s, d, 100);
    const st = await s.load();
    expect(st?.hardState).toEqual({ term: 4, vote: 'c', commit: 20 });
    expect(st?.snapshot.meta.index).toBe(12);
    expect(text(st?.entries ?? [])).toEqual([...Array.from({ length: 10 }, (_, k) => `${13 + k}:3:value-${13 + k}`), '23:4:new-23']);
    await s.close();
  });

  test.each(['snapshot-synced', 'snapshot-durable', 'segments-dropped'] as const)('a crash at %s, with saves made during the compaction, loses nothing', async (step) => {
    const d = join(dir, 'wal');
    const crashed = join(dir, 'crashed');
    let s = new WalStorage(d, { segmentBytes: 100 });
    await s.load();
    await s.save({ hardState: { term: 3, vote: 'b', commit: 12 }, snapshot: null, entries: [] });
    for (let i = 1; i <= 20; i++) await s.save({ hardState: null, snapshot: null, entries: [e(i, 3, `value-${i}`)] });
    // The old snapshot, which a crash before the new one is renamed into place must leave usable.
    await s.compact(snap(5, 3, [5]));
    await s.close();
    const held = holdAt(step);
    s = new WalStorage(d, { segmentBytes: 100, onCompactStep: held.hook });
    await s.load();
    const before = segments(d);
    const compaction = s.compact(snap(12, 3, [9, 9]));
    await withTimeout(held.reached, 5000, `the compaction at ${step}`);
    await withTimeout(s.save({ hardState: { term: 4, vote: 'c', commit: 20 }, snapshot: null, entries: [e(21, 4, 'value-21'), e(22, 4, 'value-22')] }), 5000, 'a save');
    // The crash: what is on disk now is all that survives (every step so far was synced).
    fs.cpSync(d, crashed, { recursive: true });
    held.release();
    await compaction;
    await s.close();
    // (The compaction does delete the oldest segment, which the partial image below relies on.)
    expect(segments(d)).not.toContain(before[0]);
    const images: Array<[string, string]> = [[step, crashed]];
    if (step === 'snapshot-durable') {
      // A crash part-way through the deletions: the oldest covered segment gone, the others not.
      const partial = join(dir, 'partial');
      fs.cpSync(crashed, partial, { recursive: true });
      fs.rmSync(join(partial, before[0] as string));
      images.push(['part-way through the deletions', partial]);
    }
    for (const [what, image] of images) {
      s = new WalStorage(image, { segmentBytes: 100 });
      const st = await s.load();
      const snapshotIndex = step === 'snapshot-synced' ? 5 : 12;
      expect({ what, index: st?.snapshot.meta.index, data: Array.from(st?.snapshot.data ?? []) }).toEqual({ what, index: snapshotIndex, data: snapshotIndex === 5 ? [5] : [9, 9] });
      expect(st?.hardState).toEqual({ term: 4, vote: 'c', commit: 20 });
      const expected = Array.from({ length: 20 - snapshotIndex }, (_, k) => `${snapshotIndex + 1 + k}:3:value-${snapshotIndex + 1 + k}`);
      expect(text(st?.entries ?? [])).toEqual([...expected, '21:4:value-21', '22:4:value-22']);
      expect(fs.existsSync(join(image, 'snapshot.tmp'))).toBe(false);
      // The restarted node goes on: the compaction is taken again, and its segments go.
      await s.save({ hardState: null, snapshot: null, entries: [e(23, 4, 'value-23')] });
      await s.compact(snap(12, 3, [9, 9]));
      s = await reopen(s, image, 100);
      const after = await s.load();
      expect(after?.snapshot.meta.index).toBe(12);
      expect(text(after?.entries ?? [])).toEqual([...Array.from({ length: 8 }, (_, k) => `${13 + k}:3:value-${13 + k}`), '21:4:value-21', '22:4:value-22', '23:4:value-23']);
      expect(after?.hardState).toEqual({ term: 4, vote: 'c', commit: 20 });
      await s.close();
    }
  });

  test('a snapshot installed from the leader while a compaction is written wins over it', async () => {
    const d = join(dir, 'wal');
    const held = holdAt('snapshot-synced');
    let s = new WalStorage(d, { segmentBytes: 100, onCompactStep: held.hook });
    await s.load();
    await s.save({ hardState: { term: 3, vote: 'b', commit: 8 }, snapshot: null, entries: [] });
    for (let i = 1; i <= 10; i++) await s.save({ hardState: null, snapshot: null, entries: [e(i, 3, `value-${i}`)] });
    const compaction = s.compact(snap(8, 3, [8]));
    await withTimeout(held.reached, 5000, 'the snapshot write');
    await withTimeout(s.save({ hardState: { term: 5, vote: '', commit: 30 }, snapshot: snap(30, 5, [3, 0]), entries: [e(31, 5, 'w')] }), 5000, 'the install');
    held.release();
    await compaction;
    // An older compaction after it changes nothing.
    await s.compact(snap(20, 5, [2, 0]));
    s = await reopen(s, d, 100);
    const st = await s.load();
    expect(st?.snapshot.meta.index).toBe(30);
    expect(Array.from(st?.snapshot.data ?? [])).toEqual([3, 0]);
    expect(text(st?.entries ?? [])).toEqual(['31:5:w']);
    expect(st?.hardState).toEqual({ term: 5, vote: '', commit: 30 });
    await s.close();
  });

  test('close() waits for a compaction in progress and refuses later calls', async () => {
    const d = join(dir, 'wal');
    const held = holdAt('snapshot-durable');
    const s = new WalStorage(d, { segmentBytes: 100, onCompactStep: held.hook });
    await s.load();
    await s.save({ hardState: { term: 1, vote: 'a', commit: 6 }, snapshot: null, entries: [] });
    for (let i = 1; i <= 6; i++) await s.save({ hardState: null, snapshot: null, entries: [e(i, 1, `value-${i}`)] });
    const compaction = s.compact(snap(6, 1, [6]));
    await withTimeout(held.reached, 5000, 'the snapshot write');
    let closed = false;
    const closing = s.close().then(() => (closed = true));
    await expect(s.save({ hardState: null, snapshot: null, entries: [e(7, 1, 'late')] })).rejects.toThrow(/closed/);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    held.release();
    await compaction;
    await closing;
    expect(segments(d)).toHaveLength(1);
  });

  test('the snapshot file is checksummed: a damaged one stops load(); an older unchecksummed one still loads', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d, { segmentBytes: 100 });
    await s.load();
    await s.save({ hardState: { term: 2, vote: 'a', commit: 6 }, snapshot: null, entries: [] });
    for (let i = 1; i <= 6; i++) await s.save({ hardState: null, snapshot: null, entries: [e(i, 2, `value-${i}`)] });
    await s.compact(snap(4, 2, [7, 7, 7]));
    await s.close();
    const file = join(d, 'snapshot');
    const good = fs.readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01;
    fs.writeFileSync(file, bad);
    s = new WalStorage(d, { segmentBytes: 100 });
    await expect(s.load()).rejects.toThrow(/snapshot is corrupt/);
    await s.close();
    // The format before the checksum: the encoded snapshot alone.
    fs.writeFileSync(file, encodeSnapshot(snap(4, 2, [7, 7, 7])));
    s = new WalStorage(d, { segmentBytes: 100 });
    const st = await s.load();
    expect(Array.from(st?.snapshot.data ?? [])).toEqual([7, 7, 7]);
    await s.close();
  });

  test('the bootstrap snapshot at index 0 keeps its membership; a leader snapshot replaces the log', async () => {
    const d = join(dir, 'wal');
    let s = new WalStorage(d);
    expect(await s.load()).toBeNull();
    await s.save({ hardState: { term: 0, vote: '', commit: 0 }, snapshot: snap(0, 0, []), entries: [] });
    await s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, snapshot: null, entries: [e(1, 1, 'x'), e(2, 1, 'y')] });
    s = await reopen(s, d);
    let st = await s.load();
    expect(st?.snapshot.meta.confState.voters).toEqual(['a', 'b', 'c']);
    expect(text(st?.entries ?? [])).toEqual(['1:1:x', '2:1:y']);
    // The application's snapshot (file) at 1, then the leader's at 30 (record): the newer wins.
    await s.compact(snap(1, 1, [1]));
    await s.save({ hardState: { term: 2, vote: 'a', commit: 30 }, snapshot: snap(30, 2, [3]), entries: [e(31, 2, 'w')] });
    s = await reopen(s, d);
    st = await s.load();
    expect(st?.snapshot.meta.index).toBe(30);
    expect(Array.from(st?.snapshot.data ?? [])).toEqual([3]);
    expect(text(st?.entries ?? [])).toEqual(['31:2:w']);
    await s.close();
  });

  test('a LevelStorage log moves into a WAL, once', async () => {
    const levelDir = join(dir, 'raft');
    const walDir = join(dir, 'raft-wal');
    expect(await migrateLevelToWal(levelDir, walDir)).toBe(false);
    const level = new LevelStorage(levelDir);
    await level.load();
    await level.save({ hardState: { term: 2, vote: 'b', commit: 1 }, snapshot: snap(0, 0, []), entries: [e(1, 1, 'x'), e(2, 2, 'y')] });
    await level.compact(snap(1, 1, [5]));
    await level.close();
    expect(await migrateLevelToWal(levelDir, walDir)).toBe(true);
    expect(fs.existsSync(levelDir)).toBe(false);
    expect(fs.existsSync(`${walDir}.migrating`)).toBe(false);
    const s = new WalStorage(walDir);
    const st = await s.load();
    expect(st?.hardState).toEqual({ term: 2, vote: 'b', commit: 1 });
    expect(st?.snapshot.meta.index).toBe(1);
    expect(Array.from(st?.snapshot.data ?? [])).toEqual([5]);
    expect(text(st?.entries ?? [])).toEqual(['2:2:y']);
    await s.close();
    expect(await migrateLevelToWal(levelDir, walDir)).toBe(false);
  });
});
