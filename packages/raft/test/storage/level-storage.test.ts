// MemoryStorage, LevelStorage and WalStorage (src/storage): the same script runs against each —
// save, reload, truncate a suffix, install a snapshot, compact — and checks that load() returns
// what was saved. The durable ones run in a fresh temp directory that is removed afterwards.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Entry, EntryType } from '../../src/core/types';
import { LevelStorage } from '../../src/storage/level-storage';
import { LogStorage, MemoryStorage } from '../../src/storage/log-storage';
import { WalStorage } from '../../src/storage/wal-storage';

const e = (index: number, term: number, s: string): Entry => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(s) });
const text = (ents: readonly Entry[]): string[] => ents.map((x) => `${x.index}:${x.term}:${new TextDecoder().decode(x.data)}`);

async function script(open: () => LogStorage, reopen: (s: LogStorage) => Promise<LogStorage>): Promise<void> {
  let s = open();
  expect(await s.load()).toBeNull();
  await s.save({ hardState: { term: 1, vote: 'a', commit: 0 }, snapshot: null, entries: [e(1, 1, 'x'), e(2, 1, 'y'), e(3, 1, 'z')] });
  s = await reopen(s);
  let st = await s.load();
  expect(st?.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
  expect(text(st?.entries ?? [])).toEqual(['1:1:x', '2:1:y', '3:1:z']);
  // Truncate from 2 and append a shorter suffix of a new term.
  await s.save({ hardState: { term: 2, vote: 'b', commit: 1 }, snapshot: null, entries: [e(2, 2, 'q')] });
  s = await reopen(s);
  st = await s.load();
  expect(text(st?.entries ?? [])).toEqual(['1:1:x', '2:2:q']);
  expect(st?.hardState.vote).toBe('b');
  // Compact at 1.
  await s.compact({ meta: { index: 1, term: 1, confState: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array([7]) });
  s = await reopen(s);
  st = await s.load();
  expect(st?.snapshot.meta.index).toBe(1);
  expect(Array.from(st?.snapshot.data ?? [])).toEqual([7]);
  expect(text(st?.entries ?? [])).toEqual(['2:2:q']);
  // A snapshot from the leader replaces everything.
  await s.save({ hardState: null, snapshot: { meta: { index: 10, term: 3, confState: { voters: ['a'], learners: ['c'] } }, data: new Uint8Array([1, 2]) }, entries: [e(11, 3, 'w')] });
  s = await reopen(s);
  st = await s.load();
  expect(st?.snapshot.meta).toEqual({ index: 10, term: 3, confState: { voters: ['a'], learners: ['c'] } });
  expect(text(st?.entries ?? [])).toEqual(['11:3:w']);
  expect(st?.hardState.term).toBe(2);
  await s.close();
}

describe('log storage', () => {
  test('MemoryStorage', async () => {
    await script(
      () => new MemoryStorage(),
      async (s) => s,
    );
  });

  test.each([
    ['LevelStorage', 'strand-raft-level-', (dir: string): LogStorage => new LevelStorage(join(dir, 'db'))],
    ['WalStorage', 'strand-raft-wal-', (dir: string): LogStorage => new WalStorage(join(dir, 'wal'))],
  ])('%s survives reopening', async (_name, prefix, open) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try {
      let n = 0;
      await script(
        () => open(dir),
        async (s) => {
          await s.close();
          n++;
          return open(dir);
        },
      );
      expect(n).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a save called while a compaction runs', () => {
  test.each([
    ['MemoryStorage', (): LogStorage => new MemoryStorage(), false],
    ['LevelStorage', (dir: string): LogStorage => new LevelStorage(join(dir, 'db')), true],
    ['WalStorage', (dir: string): LogStorage => new WalStorage(join(dir, 'wal'), { segmentBytes: 100 }), true],
  ])('%s: comes out as if called after it', async (_name, open, durable) => {
    // RaftNode does not wait for a compaction before its next save (a snapshot can take longer
    // to write than an election timeout).
    const dir = mkdtempSync(join(tmpdir(), 'strand-raft-concurrent-'));
    try {
      let s = open(dir);
      await s.load();
      await s.save({ hardState: { term: 1, vote: 'a', commit: 3 }, snapshot: null, entries: [1, 2, 3, 4, 5, 6].map((i) => e(i, 1, `v${i}`)) });
      const compaction = s.compact({ meta: { index: 3, term: 1, confState: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array([3]) });
      const saved = s.save({ hardState: { term: 1, vote: 'a', commit: 3 }, snapshot: null, entries: [e(7, 1, 'v7'), e(8, 1, 'v8')] });
      await Promise.all([compaction, saved]);
      // A new leader replaces the uncommitted tail from 5: the chunk saved alongside the
      // compaction (7..8) must go with it.
      await s.save({ hardState: { term: 2, vote: 'b', commit: 3 }, snapshot: null, entries: [e(5, 2, 'new5')] });
      if (durable) {
        await s.close();
        s = open(dir);
      }
      const st = await s.load();
      expect(st?.snapshot.meta.index).toBe(3);
      expect(text(st?.entries ?? [])).toEqual(['4:1:v4', '5:2:new5']);
      expect(st?.hardState).toEqual({ term: 2, vote: 'b', commit: 3 });
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LevelStorage compaction after a truncation', () => {
  test.each([['in one session', false], ['after a restart', true]])('a chunk whose tail a later chunk truncated does not come back once the later chunk is compacted (%s)', async (_name, restart) => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-raft-level-'));
    try {
      let s = new LevelStorage(join(dir, 'db'));
      await s.load();
      // One chunk 1..6 of term 1, then a new leader replaces the suffix from 3 (chunk 3..4, term 2).
      await s.save({ hardState: { term: 1, vote: 'a', commit: 2 }, snapshot: null, entries: [1, 2, 3, 4, 5, 6].map((i) => e(i, 1, `old${i}`)) });
      await s.save({ hardState: { term: 2, vote: 'b', commit: 4 }, snapshot: null, entries: [e(3, 2, 'new3'), e(4, 2, 'new4')] });
      if (restart) {
        await s.close();
        s = new LevelStorage(join(dir, 'db'));
        expect(text((await s.load())?.entries ?? [])).toEqual(['1:1:old1', '2:1:old2', '3:2:new3', '4:2:new4']);
      }
      // The application snapshots at 4: the chunk 3..4 is covered; the chunk 1..6 reaches past 4
      // in its stored bytes, but its entries 5..6 were replaced by the truncation.
      await s.compact({ meta: { index: 4, term: 2, confState: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array([4]) });
      await s.close();
      s = new LevelStorage(join(dir, 'db'));
      const st = await s.load();
      expect(st?.snapshot.meta.index).toBe(4);
      // Entries 5 and 6 of term 1 after a snapshot of term 2 would break log matching (and make
      // the node's last term 1: it would vote for a candidate missing committed entries).
      expect(text(st?.entries ?? [])).toEqual([]);
      await s.save({ hardState: null, snapshot: null, entries: [e(5, 2, 'new5')] });
      await s.close();
      s = new LevelStorage(join(dir, 'db'));
      expect(text((await s.load())?.entries ?? [])).toEqual(['5:2:new5']);
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
