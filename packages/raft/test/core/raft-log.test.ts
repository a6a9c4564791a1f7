// Unit tests of RaftLog (src/core/raft-log.ts): term lookups across the snapshot boundary,
// AppendEntries matching and conflict truncation (Raft §5.3), the conflict hint search,
// commitment by term (§5.4.2), stable/unstable tracking and compaction (§7).

import { RaftLog } from '../../src/core/raft-log';
import { Entry, EntryType, Snapshot } from '../../src/core/types';

const e = (index: number, term: number, s = ''): Entry => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(s) });
const snap0: Snapshot = { meta: { index: 0, term: 0, confState: { voters: ['a'], learners: [] } }, data: new Uint8Array(0) };

describe('RaftLog', () => {
  test('terms, first and last index', () => {
    const l = new RaftLog(snap0, [e(1, 1), e(2, 1), e(3, 2)], 0);
    expect(l.firstIndex()).toBe(1);
    expect(l.lastIndex()).toBe(3);
    expect(l.term(0)).toBe(0);
    expect(l.term(3)).toBe(2);
    expect(l.term(4)).toBeUndefined();
    expect(l.lastTerm()).toBe(2);
    expect(l.isUpToDate(3, 2)).toBe(true);
    expect(l.isUpToDate(2, 2)).toBe(false);
    expect(l.isUpToDate(1, 3)).toBe(true);
  });

  test('maybeAppend checks the previous entry, truncates conflicts and commits only what matches', () => {
    const l = new RaftLog(snap0, [e(1, 1), e(2, 1), e(3, 1)], 1);
    expect(l.maybeAppend(3, 2, 3, [])).toBeUndefined();
    // Entry 3 conflicts (term 2 vs 1): replace it and append 4.
    expect(l.maybeAppend(2, 1, 10, [e(3, 2), e(4, 2)])).toBe(4);
    expect(l.term(3)).toBe(2);
    expect(l.committed).toBe(4);
    // A stale append (already present) changes nothing.
    expect(l.maybeAppend(1, 1, 2, [e(2, 1)])).toBe(2);
    expect(l.lastIndex()).toBe(4);
  });

  test('truncating a committed entry is a bug and throws', () => {
    const l = new RaftLog(snap0, [e(1, 1), e(2, 1)], 2);
    expect(() => l.maybeAppend(1, 1, 2, [e(2, 2)])).toThrow(/committed/);
  });

  test('findConflictByTerm skips entries whose term is above the given one', () => {
    const l = new RaftLog(snap0, [e(1, 1), e(2, 1), e(3, 3), e(4, 3), e(5, 4)], 0);
    expect(l.findConflictByTerm(5, 2)).toBe(2);
    expect(l.findConflictByTerm(5, 4)).toBe(5);
    expect(l.findConflictByTerm(4, 3)).toBe(4);
    expect(l.findConflictByTerm(5, 0)).toBe(0);
  });

  test('maybeCommit needs an entry of the given term (figure 8)', () => {
    const l = new RaftLog(snap0, [e(1, 1), e(2, 2)], 0);
    expect(l.maybeCommit(1, 2)).toBe(false);
    expect(l.maybeCommit(2, 2)).toBe(true);
    expect(l.committed).toBe(2);
  });

  test('stable and unstable entries, and a truncation makes the tail unstable again', () => {
    const l = new RaftLog(snap0, [], 0);
    l.append([e(1, 1), e(2, 1)]);
    expect(l.unstableEntries().map((x) => x.index)).toEqual([1, 2]);
    l.stableTo(2, 1);
    expect(l.unstableEntries()).toEqual([]);
    l.append([e(2, 2)]);
    expect(l.unstableEntries().map((x) => x.index)).toEqual([2]);
    l.stableTo(2, 1); // stale: the entry at 2 is now term 2
    expect(l.unstableEntries().length).toBe(1);
  });

  test('entries handed out for a background write are not handed out again; a truncation resets the cursor', () => {
    const l = new RaftLog(snap0, [], 0);
    l.append([e(1, 1), e(2, 1), e(3, 1)]);
    l.inProgressIndex = 3; // what RaftCore.ready() does
    expect(l.unstableEntries()).toEqual([]);
    expect(l.stableIndex).toBe(0);
    l.append([e(3, 2)]);
    expect(l.inProgressIndex).toBe(2);
    expect(l.unstableEntries().map((x) => `${x.index}:${x.term}`)).toEqual(['3:2']);
    l.stableTo(3, 1); // the write of the replaced entry completes: 3 is not stable
    expect(l.stableIndex).toBe(0);
    l.stableTo(2, 1);
    expect(l.stableIndex).toBe(2);
  });

  test('compaction keeps terms at the boundary and slices respect byte limits', () => {
    const l = new RaftLog(snap0, [e(1, 1, 'aaaa'), e(2, 1, 'bbbb'), e(3, 2, 'cccc')], 3);
    l.appliedTo(2);
    const s = l.compact(2, new Uint8Array([9]), { voters: ['a'], learners: [] });
    expect(s.meta).toMatchObject({ index: 2, term: 1 });
    expect(l.firstIndex()).toBe(3);
    expect(l.term(2)).toBe(1);
    expect(l.term(1)).toBeUndefined();
    expect(() => l.slice(2, 3, 100, 100)).toThrow();
    expect(l.slice(3, 3, 1, 100).length).toBe(1); // at least one entry
    expect(() => l.compact(3, new Uint8Array(0), { voters: [], learners: [] })).toThrow(/applied/);
  });

  test('restore replaces the log with a snapshot', () => {
    const l = new RaftLog(snap0, [e(1, 1)], 0);
    l.restore({ meta: { index: 10, term: 3, confState: { voters: ['a'], learners: [] } }, data: new Uint8Array(0) });
    expect(l.lastIndex()).toBe(10);
    expect(l.committed).toBe(10);
    expect(l.unstableSnapshot?.meta.index).toBe(10);
  });
});
