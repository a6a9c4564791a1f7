// Checks the follower core: the fetch it builds (fetch offset, last fetched epoch, countable end
// offset), truncation by leader epoch on diverging answers (KIP-101: to min of both epoch ends;
// KIP-279: an epoch the follower lacks takes one more round), waiting for metadata on
// FENCED_LEADER_EPOCH, backing off on UNKNOWN_LEADER_EPOCH and NOT_LEADER_OR_FOLLOWER,
// OFFSET_OUT_OF_RANGE (start over at the leader's log start below it, truncate to the leader's
// log end past it), and ignoring stale answers.

import { PartitionFollower } from '../../src/replication/partition-follower';
import { SimLog } from '../../src/sim/sim-log';

function logWith(epochs: number[], durable = epochs.length): SimLog {
  const log = new SimLog();
  epochs.forEach((e, i) => log.appendAsFollower([{ offset: i, epoch: e, value: `v${i}@${e}` }]));
  const all = log.slice();
  log.truncateTo(0);
  log.appendAsFollower(all.slice(0, durable));
  log.flush();
  log.appendAsFollower(all.slice(durable));
  return log;
}

function follower(log: SimLog, leaderEpoch = 5): PartitionFollower {
  return new PartitionFollower({ localReplicaId: 2, leaderId: 1, leaderEpoch, log, highWatermark: 0, retryBackoffMs: 50 });
}

describe('PartitionFollower', () => {
  test('builds fetches from its log and keeps one in flight', () => {
    const log = logWith([1, 1, 2], 2);
    const f = follower(log);
    const out = f.pollFetch(0, 1000);
    expect(out?.request).toEqual({ replicaId: 2, currentLeaderEpoch: 5, fetchOffset: 3, lastFetchedEpoch: 2, countableEndOffset: 2, logStartOffset: 0 });
    expect(f.pollFetch(10, 1000)).toBeNull();
    expect(f.pollFetch(1000, 1000)).not.toBeNull(); // the first counts as lost
  });

  test('a diverging epoch it holds: truncate to the smaller of both ends (KIP-101)', () => {
    const log = logWith([1, 1, 2, 2, 2]);
    const f = follower(log);
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'diverging', divergingEpoch: { epoch: 2, endOffset: 3 }, highWatermark: 2, logStartOffset: 0 }, 0)).toEqual({ kind: 'truncate', offset: 3 });
  });

  test('a diverging epoch it lacks: truncate to the end of its largest smaller epoch and ask again (KIP-279)', () => {
    const log = logWith([1, 1, 3, 3]);
    const f = follower(log);
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    // Leader knows epochs 1 and 2 only; epoch 2 ends at 6 there. We lack 2: cut after epoch 1.
    expect(f.onFetchResponse(id, { kind: 'diverging', divergingEpoch: { epoch: 2, endOffset: 6 }, highWatermark: 0, logStartOffset: 0 }, 0)).toEqual({ kind: 'truncate', offset: 2 });
  });

  test('no matching epoch on the leader and its log starts past ours: start over at its log start', () => {
    const log = logWith([1, 1, 1]);
    const f = follower(log);
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    // Truncating to 8 would leave the log as it is and the same fetch would get the same answer.
    expect(f.onFetchResponse(id, { kind: 'diverging', divergingEpoch: { epoch: -1, endOffset: -1 }, highWatermark: 9, logStartOffset: 8 }, 0)).toEqual({ kind: 'truncate-fully', offset: 8 });
    const again = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(again, { kind: 'diverging', divergingEpoch: { epoch: -1, endOffset: -1 }, highWatermark: 9, logStartOffset: 2 }, 0)).toEqual({ kind: 'truncate', offset: 2 });
  });

  test('a failed apply backs off before the next fetch', () => {
    const f = follower(logWith([1]));
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    f.onApplyFailed(id, 10);
    expect(f.pollFetch(30, 1000)).toBeNull();
    expect(f.pollFetch(60, 1000)).not.toBeNull();
  });

  test('never truncates by its high watermark', () => {
    const log = logWith([1, 1, 1, 1]);
    const f = new PartitionFollower({ localReplicaId: 2, leaderId: 1, leaderEpoch: 5, log, highWatermark: 1 });
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    // The leader's epoch 1 ends at 4 too: nothing to truncate although our HW is 1.
    expect(f.onFetchResponse(id, { kind: 'read', fetchOffset: 4, highWatermark: 4, logStartOffset: 0 }, 0)).toEqual({ kind: 'append' });
    f.onAppended(4);
    expect(f.highWatermark).toBe(4);
  });

  test('FENCED_LEADER_EPOCH waits for metadata; UNKNOWN_LEADER_EPOCH and NOT_LEADER_OR_FOLLOWER back off', () => {
    const log = logWith([1]);
    const f = follower(log);
    let id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'error', error: 'UNKNOWN_LEADER_EPOCH', leaderEpoch: 4, logStartOffset: 0 }, 0)).toEqual({ kind: 'backoff' });
    expect(f.pollFetch(49, 1000)).toBeNull();
    id = (f.pollFetch(50, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'error', error: 'FENCED_LEADER_EPOCH', leaderEpoch: 6, logStartOffset: 0 }, 50)).toEqual({ kind: 'await-metadata' });
    expect(f.state).toBe('awaiting-metadata');
    expect(f.pollFetch(10_000, 1000)).toBeNull();
    // NOT_LEADER_OR_FOLLOWER (leadership not taken up yet) backs off instead: no newer epoch may come.
    const g = follower(logWith([1]));
    const gid = (g.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(g.onFetchResponse(gid, { kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER', leaderEpoch: 5, logStartOffset: 0 }, 0)).toEqual({ kind: 'backoff' });
    expect(g.pollFetch(50, 1000)).not.toBeNull();
  });

  test('stale or duplicated answers are ignored; the HW is capped by the log end', () => {
    const log = logWith([1, 1]);
    const f = follower(log);
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id + 1, { kind: 'read', fetchOffset: 2, highWatermark: 2, logStartOffset: 0 }, 0)).toEqual({ kind: 'ignore' });
    expect(f.onFetchResponse(id, { kind: 'read', fetchOffset: 2, highWatermark: 9, logStartOffset: 0 }, 0)).toEqual({ kind: 'append' });
    f.onAppended(9);
    expect(f.highWatermark).toBe(2);
    expect(f.onFetchResponse(id, { kind: 'read', fetchOffset: 2, highWatermark: 2, logStartOffset: 0 }, 0)).toEqual({ kind: 'ignore' });
    log.truncateTo(1);
    f.onTruncated();
    expect(f.highWatermark).toBe(1);
  });

  test('OFFSET_OUT_OF_RANGE below the leader log start empties the log there; otherwise it backs off', () => {
    const log = logWith([1, 1]);
    const f = follower(log);
    let id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'error', error: 'OFFSET_OUT_OF_RANGE', leaderEpoch: 5, logStartOffset: 10 }, 0)).toEqual({ kind: 'truncate-fully', offset: 10 });
    id = (f.pollFetch(1, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'error', error: 'OFFSET_OUT_OF_RANGE', leaderEpoch: 5, logStartOffset: 0 }, 1)).toEqual({ kind: 'backoff' });
  });

  // (Below its own log start it truncates fully there: test/server/partition-replication.test.ts,
  // on a real log; SimLog always starts at 0.)
  test('OFFSET_OUT_OF_RANGE past the leader log end (an unclean election) truncates to that end', () => {
    const log = logWith([1, 1, 1, 1, 1]);
    const f = follower(log);
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'error', error: 'OFFSET_OUT_OF_RANGE', leaderEpoch: 5, logStartOffset: 0, logEndOffset: 3 }, 0)).toEqual({ kind: 'truncate', offset: 3 });
  });

  test('a diverging answer with no common epoch truncates to the log start', () => {
    const log = logWith([3, 3]);
    const f = follower(log);
    const id = (f.pollFetch(0, 1000) as { correlationId: number }).correlationId;
    expect(f.onFetchResponse(id, { kind: 'diverging', divergingEpoch: { epoch: -1, endOffset: -1 }, highWatermark: 0, logStartOffset: 0 }, 0)).toEqual({ kind: 'truncate', offset: 0 });
  });
});
