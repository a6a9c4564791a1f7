// The safety checker (src/sim/checker.ts) must itself be trusted: each property is fed a
// history that violates it and must throw SafetyViolation, and a consistent history must pass.

import { EntryType } from '../../src/core/types';
import { CheckedLog, SafetyChecker, SafetyViolation } from '../../src/sim/checker';

const e = (index: number, term: number, s: string) => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(s) });
const logOf = (terms: number[]): CheckedLog => ({
  term: (i) => (i === 0 ? 0 : terms[i - 1]),
  lastIndex: () => terms.length,
  firstIndex: () => 1,
});

describe('SafetyChecker', () => {
  test('election safety: two leaders in one term', () => {
    const c = new SafetyChecker();
    c.leader(3, 'a');
    c.leader(3, 'a');
    c.leader(4, 'b');
    expect(() => c.leader(3, 'b')).toThrow(SafetyViolation);
  });

  test('vote safety: two grants in one term', () => {
    const c = new SafetyChecker();
    c.voteGranted('a', 2, 'b');
    c.voteGranted('a', 2, 'b');
    expect(() => c.voteGranted('a', 2, 'c')).toThrow(/vote safety/);
  });

  test('durability: a committed entry must be durable on a majority of voters', () => {
    const c = new SafetyChecker();
    c.durableQuorum('a', 5, 2, 3);
    c.durableQuorum('a', 5, 3, 5);
    expect(() => c.durableQuorum('a', 6, 1, 3)).toThrow(/durability/);
    expect(() => c.durableQuorum('a', 6, 2, 4)).toThrow(/durability/);
  });

  test('log matching: same index and term, different data or different predecessor', () => {
    const c = new SafetyChecker();
    c.appended('a', [e(1, 1, 'x'), e(2, 1, 'y')], (i) => (i === 0 ? 0 : 1));
    expect(() => c.appended('b', [e(2, 1, 'z')], () => 1)).toThrow(/log matching/);
    expect(() => c.appended('b', [e(2, 1, 'y')], () => 2)).toThrow(/log matching/);
  });

  test('leader completeness: a new leader missing a committed entry', () => {
    const c = new SafetyChecker();
    c.committed('a', 0, 3, logOf([1, 1, 2]));
    c.newLeader('b', logOf([1, 1, 2, 3]));
    expect(() => c.newLeader('c', logOf([1, 1]))).toThrow(/leader completeness/);
    expect(() => c.newLeader('c', logOf([1, 1, 3]))).toThrow(/leader completeness/);
  });

  test('state machine safety and monotonicity', () => {
    const c = new SafetyChecker();
    c.applied('a', 5, 123);
    c.applied('b', 5, 123);
    expect(() => c.applied('c', 5, 124)).toThrow(/state machine safety/);
    expect(() => c.committed('b', 0, 2, logOf([1, 2]))).not.toThrow();
    expect(() => c.committed('c', 0, 2, logOf([1, 3]))).toThrow(/state machine safety/);
    expect(() => c.monotonic('a', 'commit', 5, 4)).toThrow(/monotonicity/);
  });

  test('linearizable reads: an answer below the commit floor at issue time', () => {
    const c = new SafetyChecker();
    c.committed('a', 0, 4, logOf([1, 1, 1, 1]));
    const floor = c.readFloor();
    expect(floor).toBe(4);
    c.readAnswered('a', 1, floor, 4);
    expect(() => c.readAnswered('a', 2, floor, 3)).toThrow(/linearizability/);
  });
});
