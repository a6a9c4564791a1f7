// Unit tests of Progress and Inflights (src/core/progress.ts, inflights.ts): the state machine
// probe -> replicate -> snapshot, the invariant 0 <= match < next, stale-response handling and
// the bounded pipelining window. Each case drives the object directly and checks its fields.

import { Inflights } from '../../src/core/inflights';
import { Progress, ProgressState } from '../../src/core/progress';

describe('Inflights', () => {
  test('is bounded and frees by index', () => {
    const f = new Inflights(3);
    f.add(5);
    f.add(7);
    f.add(9);
    expect(f.full()).toBe(true);
    expect(() => f.add(10)).toThrow();
    f.freeLE(7);
    expect(f.size).toBe(1);
    f.add(12);
    f.add(13);
    expect(f.full()).toBe(true);
    f.freeFirstOne();
    expect(f.size).toBe(2);
    f.freeLE(100);
    expect(f.size).toBe(0);
  });

  test('rejects non-increasing indexes and bad capacities', () => {
    const f = new Inflights(2);
    f.add(3);
    expect(() => f.add(3)).toThrow();
    expect(() => new Inflights(0)).toThrow();
  });
});

describe('Progress', () => {
  test('starts probing and pauses after one send', () => {
    const p = new Progress(11, 4, false);
    expect(p.state).toBe(ProgressState.Probe);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(12);
    expect(p.isPaused()).toBe(true);
    expect(p.next).toBe(11); // probe does not advance next optimistically
  });

  test('a match moves to replicate, which pipelines up to the inflight limit', () => {
    const p = new Progress(11, 2, false);
    expect(p.maybeUpdate(10)).toBe(true);
    p.becomeReplicate();
    expect(p.next).toBe(11);
    p.sentEntries(12);
    p.sentEntries(14);
    expect(p.next).toBe(15);
    expect(p.isPaused()).toBe(true);
    expect(p.maybeUpdate(12)).toBe(true);
    p.inflights.freeLE(12);
    expect(p.isPaused()).toBe(false);
  });

  test('stale acks and rejects are ignored', () => {
    const p = new Progress(11, 4, false);
    p.maybeUpdate(10);
    p.becomeReplicate();
    p.sentEntries(15);
    expect(p.maybeUpdate(9)).toBe(false);
    expect(p.maybeDecrTo(8, 8)).toBe(false); // rejected <= match: an old response
    expect(p.maybeDecrTo(15, 12)).toBe(true);
    expect(p.next).toBe(11);
  });

  test('probe back-off uses the hint but never goes below match + 1', () => {
    const p = new Progress(100, 4, false);
    p.maybeUpdate(5);
    p.becomeProbe();
    p.next = 100;
    expect(p.maybeDecrTo(98, 50)).toBe(false); // not the probe we sent (next - 1 = 99)
    expect(p.maybeDecrTo(99, 50)).toBe(true);
    expect(p.next).toBe(51);
    p.next = 10;
    expect(p.maybeDecrTo(9, 0)).toBe(true);
    expect(p.next).toBe(6);
  });

  test('snapshot state pauses until the follower reports the snapshot index, then probes after it', () => {
    const p = new Progress(5, 4, false);
    p.becomeSnapshot(40);
    expect(p.isPaused()).toBe(true);
    p.maybeUpdate(40);
    p.becomeProbe();
    expect(p.state).toBe(ProgressState.Probe);
    expect(p.next).toBe(41);
  });

  test('the invariant 0 <= match < next is enforced', () => {
    expect(() => new Progress(0, 4, false)).toThrow(/invariant/);
    const p = new Progress(5, 4, false);
    p.match = 7;
    expect(() => p.becomeProbe()).not.toThrow(); // next is recomputed from match
    expect(p.next).toBe(8);
  });
});
