// Checks the simulator's log model: the derived leader-epoch cache answers OffsetsForLeaderEpoch
// like Kafka's, a crash loses exactly the unflushed tail, and truncation lowers the durable end.

import { SimLog } from '../../src/sim/sim-log';

describe('SimLog', () => {
  test('epoch end offsets', () => {
    const log = new SimLog();
    for (const e of [1, 1, 3, 3, 5]) log.appendAsLeader('x', e);
    expect(log.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 0 });
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 2 });
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 1, endOffset: 2 });
    expect(log.endOffsetForEpoch(4)).toEqual({ epoch: 3, endOffset: 4 });
    expect(log.endOffsetForEpoch(9)).toEqual({ epoch: 5, endOffset: 5 });
    expect(log.latestEpoch).toBe(5);
    expect(() => log.appendAsLeader('y', 4)).toThrow(/invariant/);
  });

  test('a new leader\'s epoch is recorded at the log end before any record of it (Kafka\'s makeLeader)', () => {
    const log = new SimLog();
    log.appendAsLeader('a', 1);
    log.appendAsLeader('b', 1);
    log.assignLeaderEpoch(3);
    expect(log.latestEpoch).toBe(3);
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 2 });
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 1, endOffset: 2 });
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 2 });
    expect(log.endOffsetForEpoch(9)).toEqual({ epoch: 3, endOffset: 2 });
    expect(() => log.appendAsLeader('y', 2)).toThrow(/invariant/);
    expect(() => log.assignLeaderEpoch(2)).toThrow(/invariant/);
    log.appendAsLeader('c', 3);
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 3 });
    // An empty log: an epoch older than the recorded one ends where it starts, not (-1, -1).
    const empty = new SimLog();
    empty.assignLeaderEpoch(2);
    expect(empty.endOffsetForEpoch(0)).toEqual({ epoch: 0, endOffset: 0 });
  });

  test('an epoch recorded with no record of it goes with a truncation to the log end, a crash, or a newer replicated epoch', () => {
    const log = new SimLog();
    log.appendAsLeader('a', 1);
    log.flush();
    log.assignLeaderEpoch(2);
    log.truncateTo(1);
    expect(log.latestEpoch).toBe(1);
    log.assignLeaderEpoch(2);
    log.crash();
    expect(log.latestEpoch).toBe(1);
    log.assignLeaderEpoch(2);
    log.appendAsFollower([{ offset: 1, epoch: 4, value: 'b' }]);
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 1, endOffset: 1 });
    expect(log.latestEpoch).toBe(4);
    log.assignLeaderEpoch(5);
    log.assignLeaderEpoch(6); // led 5, wrote nothing, now leads 6 (the real cache drops 5's entry too)
    expect(log.endOffsetForEpoch(5)).toEqual({ epoch: 4, endOffset: 2 });
    expect(log.endOffsetForEpoch(6)).toEqual({ epoch: 6, endOffset: 2 });
    // A replicated record of an older epoch behind it would leave the real cache wrong: a bug.
    expect(() => log.appendAsFollower([{ offset: 2, epoch: 4, value: 'c' }])).toThrow(/invariant/);
  });

  test('crash loses the unflushed tail; truncation lowers the durable end', () => {
    const log = new SimLog();
    log.appendAsLeader('a', 1);
    log.appendAsLeader('b', 1);
    log.flush();
    log.appendAsLeader('c', 1);
    expect(log.countableEndOffset).toBe(2);
    log.crash();
    expect(log.slice().map((r) => r.value)).toEqual(['a', 'b']);
    log.truncateTo(1);
    expect(log.durableEndOffset).toBe(1);
    const pc = new SimLog('page-cache');
    pc.appendAsLeader('a', 1);
    expect(pc.countableEndOffset).toBe(1);
  });
});
