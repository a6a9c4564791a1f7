// Checks the leader core's rules one by one, driving PartitionLeader by hand with an in-memory
// SimLog: fetch fencing and divergence answers, HW = min durable offset over the maximal ISR
// (KIP-497), ISR shrink after replica.lag.time.max.ms, expansion at the HW, acks=all completion
// only when HW > the batch's last offset, min.insync.replicas refusal, the low watermark that
// DeleteRecords waits for (every live replica's log start), and the outputs handed out by
// takeReady().

import { PartitionLeader, type PartitionLeaderInit } from '../../src/replication/partition-leader';
import type { AlterPartitionRequest, FollowerFetchRequest, PartitionState, ReplicaLogView } from '../../src/replication/types';
import { SimLog } from '../../src/sim/sim-log';

const LAG = 1000;

function setup(opts: { isr?: number[]; minIsr?: number; records?: number; epoch?: number; hw?: number } = {}): { leader: PartitionLeader; log: SimLog } {
  const log = new SimLog();
  const epoch = opts.epoch ?? 1;
  for (let i = 0; i < (opts.records ?? 0); i++) log.appendAsLeader(`v${i}`, epoch);
  log.flush();
  const state: PartitionState = { leader: 1, leaderEpoch: epoch, partitionEpoch: 10, replicas: [1, 2, 3], isr: opts.isr ?? [1, 2, 3] };
  const init: PartitionLeaderInit = {
    localReplicaId: 1,
    state,
    log,
    highWatermark: opts.hw ?? 0,
    nowMs: 0,
    config: { replicaLagTimeMaxMs: LAG, minInsyncReplicas: opts.minIsr ?? 1 },
  };
  return { leader: new PartitionLeader(init), log };
}

function fetch(replicaId: number, fetchOffset: number, countable: number, lastFetchedEpoch = 1, currentLeaderEpoch = 1): FollowerFetchRequest {
  return { replicaId, currentLeaderEpoch, fetchOffset, lastFetchedEpoch, countableEndOffset: countable, logStartOffset: 0 };
}

describe('PartitionLeader: answering follower fetches', () => {
  test('an older current leader epoch is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH (KIP-320)', () => {
    const { leader } = setup({ epoch: 5, records: 2 });
    expect(leader.handleFollowerFetch(fetch(2, 0, 0, -1, 4), 0)).toMatchObject({ kind: 'error', error: 'FENCED_LEADER_EPOCH' });
    expect(leader.handleFollowerFetch(fetch(2, 0, 0, -1, 6), 0)).toMatchObject({ kind: 'error', error: 'UNKNOWN_LEADER_EPOCH' });
    expect(leader.handleFollowerFetch(fetch(9, 0, 0, -1, 5), 0)).toMatchObject({ kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER' });
  });

  test('a last fetched epoch that ends before the fetch offset here is answered with the epoch end (KIP-101)', () => {
    const log = new SimLog();
    log.appendAsLeader('a', 1);
    log.appendAsLeader('b', 1);
    log.appendAsLeader('c', 3);
    log.flush();
    const leader = new PartitionLeader({ localReplicaId: 1, state: { leader: 1, leaderEpoch: 3, partitionEpoch: 1, replicas: [1, 2], isr: [1, 2] }, log, highWatermark: 0, nowMs: 0 });
    // Follower has epoch 1 up to offset 3 (one more than the leader's epoch 1).
    expect(leader.handleFollowerFetch({ replicaId: 2, currentLeaderEpoch: 3, fetchOffset: 3, lastFetchedEpoch: 1, countableEndOffset: 3, logStartOffset: 0 }, 0)).toEqual({
      kind: 'diverging',
      divergingEpoch: { epoch: 1, endOffset: 2 },
      highWatermark: 0,
      logStartOffset: 0,
    });
    // Follower has an epoch 2 the leader never had (KIP-279): answered with epoch 1's end.
    expect(leader.handleFollowerFetch({ replicaId: 2, currentLeaderEpoch: 3, fetchOffset: 3, lastFetchedEpoch: 2, countableEndOffset: 3, logStartOffset: 0 }, 0)).toMatchObject({
      kind: 'diverging',
      divergingEpoch: { epoch: 1, endOffset: 2 },
    });
    // Matching: read from the fetch offset.
    expect(leader.handleFollowerFetch({ replicaId: 2, currentLeaderEpoch: 3, fetchOffset: 2, lastFetchedEpoch: 1, countableEndOffset: 2, logStartOffset: 0 }, 0)).toMatchObject({ kind: 'read', fetchOffset: 2 });
    expect(leader.handleFollowerFetch({ replicaId: 2, currentLeaderEpoch: 3, fetchOffset: 9, lastFetchedEpoch: 3, countableEndOffset: 2, logStartOffset: 0 }, 0)).toMatchObject({ kind: 'diverging' });
  });

  test('a fetch offset beyond the log end without an epoch is OFFSET_OUT_OF_RANGE', () => {
    const { leader } = setup({ records: 2 });
    expect(leader.handleFollowerFetch(fetch(2, 5, 5, -1), 0)).toMatchObject({ kind: 'error', error: 'OFFSET_OUT_OF_RANGE' });
  });
});

describe('PartitionLeader: high watermark', () => {
  test('HW is the minimum DURABLE offset over the ISR, the leader counting its own fsynced end', () => {
    const { leader, log } = setup({ records: 4 });
    leader.handleFollowerFetch(fetch(2, 4, 4), 1);
    expect(leader.highWatermark).toBe(0); // replica 3 has not fetched in this term
    leader.handleFollowerFetch(fetch(3, 4, 2), 1);
    expect(leader.highWatermark).toBe(2); // replica 3 has only 2 durable
    expect(leader.takeReady().highWatermark).toBe(2);
    log.appendAsLeader('x', 1); // not flushed on the leader: does not count
    leader.onLocalLogChanged();
    leader.handleFollowerFetch(fetch(2, 5, 5), 2);
    leader.handleFollowerFetch(fetch(3, 5, 5), 2);
    expect(leader.highWatermark).toBe(4);
    log.flush();
    leader.onLocalLogChanged();
    expect(leader.highWatermark).toBe(5);
  });

  test('a follower offset counts only up to its fetch offset, even if it claims more durable bytes', () => {
    const { leader } = setup({ records: 4, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(2, 3, 4), 1);
    expect(leader.highWatermark).toBe(3);
  });

  test('the HW never decreases within a leadership', () => {
    const { leader } = setup({ records: 4, isr: [1, 2], hw: 3 });
    expect(leader.highWatermark).toBe(3);
    leader.handleFollowerFetch(fetch(2, 1, 1), 1);
    expect(leader.highWatermark).toBe(3);
  });
});

describe('PartitionLeader: ISR changes (KIP-497 maximal ISR)', () => {
  test('a follower that has not caught up for replica.lag.time.max.ms is proposed out; it still counts until committed', () => {
    const { leader, log } = setup({ records: 2 });
    leader.handleFollowerFetch(fetch(2, 2, 2), 10);
    leader.handleFollowerFetch(fetch(3, 2, 2), 10);
    expect(leader.highWatermark).toBe(2);
    log.appendAsLeader('c', 1);
    log.flush();
    leader.onLocalLogChanged();
    leader.handleFollowerFetch(fetch(2, 3, 3), 20);
    leader.takeReady();
    leader.tick(LAG + 10); // replica 3 was last caught up at 10: not yet lagging
    expect(leader.takeReady().alterPartition).toBeNull();
    leader.tick(LAG + 11);
    const ready = leader.takeReady();
    expect(ready.alterPartition).toEqual({ leaderId: 1, leaderEpoch: 1, partitionEpoch: 10, newIsr: [1, 2] });
    expect(leader.maximalIsr).toEqual([1, 2, 3]);
    expect(leader.highWatermark).toBe(2); // 3 still counts while the shrink is in flight
    leader.onAlterPartitionResponse(ready.alterPartition as AlterPartitionRequest, { error: null, leaderEpoch: 1, partitionEpoch: 11, isr: [1, 2] });
    expect(leader.isr).toEqual([1, 2]);
    expect(leader.partitionEpoch).toBe(11);
    expect(leader.highWatermark).toBe(3);
  });

  test('a follower whose durable matching offset reaches the HW is proposed in and counts at once', () => {
    const { leader } = setup({ records: 3, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(2, 3, 3), 1);
    expect(leader.highWatermark).toBe(3);
    leader.handleFollowerFetch(fetch(3, 3, 2), 1); // LEO reached, durable not yet
    expect(leader.takeReady().alterPartition).toBeNull();
    leader.handleFollowerFetch(fetch(3, 3, 3), 2);
    expect(leader.takeReady().alterPartition).toEqual({ leaderId: 1, leaderEpoch: 1, partitionEpoch: 10, newIsr: [1, 2, 3] });
    expect(leader.maximalIsr).toEqual([1, 2, 3]);
    expect(leader.isr).toEqual([1, 2]);
  });

  test('an expansion names each follower\'s broker epoch from its last accepted fetch (KIP-903)', () => {
    const { leader } = setup({ records: 3, isr: [1, 2] });
    leader.handleFollowerFetch({ ...fetch(2, 3, 3), brokerEpoch: 40 }, 1);
    leader.handleFollowerFetch({ ...fetch(3, 3, 3), brokerEpoch: 77 }, 1);
    expect(leader.takeReady().alterPartition).toEqual({ leaderId: 1, leaderEpoch: 1, partitionEpoch: 10, newIsr: [1, 2, 3], newIsrBrokerEpochs: [{ replicaId: 2, brokerEpoch: 40 }, { replicaId: 3, brokerEpoch: 77 }] });
  });

  test('fenced or shutting-down brokers are not proposed in (KIP-841)', () => {
    const { leader } = setup({ records: 1, isr: [1, 2] });
    leader.setIneligibleReplicas([3]);
    leader.handleFollowerFetch(fetch(3, 1, 1), 1);
    expect(leader.takeReady().alterPartition).toBeNull();
  });

  test('a rejected proposal is dropped and nothing is proposed until metadata moves the partition epoch', () => {
    const { leader } = setup({ records: 1, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(3, 1, 1), 1);
    const sent = leader.takeReady().alterPartition as AlterPartitionRequest;
    // A late answer to some other proposal is ignored.
    leader.onAlterPartitionResponse({ ...sent, partitionEpoch: 9 }, { error: 'INVALID_UPDATE_VERSION' });
    expect(leader.pendingAlterPartition).toEqual(sent);
    leader.onAlterPartitionResponse(sent, { error: 'INELIGIBLE_REPLICA' });
    expect(leader.pendingAlterPartition).toBeNull();
    leader.handleFollowerFetch(fetch(3, 1, 1), 2);
    expect(leader.takeReady().alterPartition).toBeNull();
    leader.onPartitionState({ leader: 1, leaderEpoch: 1, partitionEpoch: 12, replicas: [1, 2, 3], isr: [1, 2] });
    leader.handleFollowerFetch(fetch(3, 1, 1), 3);
    expect(leader.takeReady().alterPartition).toEqual({ leaderId: 1, leaderEpoch: 1, partitionEpoch: 12, newIsr: [1, 2, 3] });
  });

  test('INVALID_UPDATE_VERSION keeps counting the proposal (a retried copy may have committed) until metadata settles it', () => {
    const { leader, log } = setup({ records: 2, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(2, 2, 2), 0);
    leader.handleFollowerFetch(fetch(3, 2, 2), 0);
    const sent = leader.takeReady().alterPartition as AlterPartitionRequest;
    expect(sent.newIsr).toEqual([1, 2, 3]);
    leader.onAlterPartitionResponse(sent, { error: 'INVALID_UPDATE_VERSION' });
    expect(leader.maximalIsr).toEqual([1, 2, 3]);
    log.appendAsLeader('c', 1);
    log.flush();
    leader.handleFollowerFetch(fetch(2, 3, 3), 1);
    expect(leader.highWatermark).toBe(2); // replica 3 still counts
    leader.tick(leader.config.alterPartitionRetryMs * 2);
    expect(leader.takeReady().alterPartition).toBeNull(); // not re-sent: waits for metadata
    leader.onPartitionState({ leader: 1, leaderEpoch: 1, partitionEpoch: 11, replicas: [1, 2, 3], isr: [1, 2] });
    expect(leader.maximalIsr).toEqual([1, 2]);
    expect(leader.highWatermark).toBe(3);
  });

  test('an unanswered proposal is re-sent after alterPartitionRetryMs', () => {
    const { leader } = setup({ records: 1, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(3, 1, 1), 0);
    const first = leader.takeReady().alterPartition;
    leader.tick(leader.config.alterPartitionRetryMs - 1);
    expect(leader.takeReady().alterPartition).toBeNull();
    leader.tick(leader.config.alterPartitionRetryMs);
    expect(leader.takeReady().alterPartition).toEqual(first);
  });
});

describe('PartitionLeader: acks=all', () => {
  test('refused while the committed ISR is below min.insync.replicas', () => {
    const { leader } = setup({ isr: [1], minIsr: 2 });
    expect(leader.checkProduce(-1)).toBe('NOT_ENOUGH_REPLICAS');
    expect(leader.checkProduce(1)).toBeNull();
  });

  test('a produce of offsets [a, b] completes when HW > b, not before', () => {
    const { leader, log } = setup({ isr: [1, 2], minIsr: 2 });
    log.appendAsLeader('a', 1);
    log.appendAsLeader('b', 1);
    log.flush();
    leader.onLocalLogChanged();
    leader.addProduceWaiter(7, 1, 10_000);
    leader.handleFollowerFetch(fetch(2, 1, 1), 1);
    expect(leader.takeReady().completedProduces).toEqual([]);
    leader.handleFollowerFetch(fetch(2, 2, 2), 2);
    expect(leader.takeReady().completedProduces).toEqual([{ requestId: 7, error: null }]);
  });

  test('waiters time out, and fail with NOT_LEADER_OR_FOLLOWER on resignation', () => {
    const { leader, log } = setup({ isr: [1, 2] });
    log.appendAsLeader('a', 1);
    leader.addProduceWaiter(1, 0, 100);
    leader.addProduceWaiter(2, 0, 500);
    leader.tick(100);
    expect(leader.takeReady().completedProduces).toEqual([{ requestId: 1, error: 'REQUEST_TIMED_OUT' }]);
    leader.resign();
    expect(leader.takeReady().completedProduces).toEqual([{ requestId: 2, error: 'NOT_LEADER_OR_FOLLOWER' }]);
    expect(leader.checkProduce(-1)).toBe('NOT_LEADER_OR_FOLLOWER');
  });

  test('the number of waiting produces is bounded', () => {
    const log = new SimLog();
    log.appendAsLeader('a', 1);
    const leader = new PartitionLeader({ localReplicaId: 1, state: { leader: 1, leaderEpoch: 1, partitionEpoch: 0, replicas: [1, 2], isr: [1, 2] }, log, highWatermark: 0, nowMs: 0, config: { maxPendingProduces: 2 } });
    leader.addProduceWaiter(1, 0, 100);
    leader.addProduceWaiter(2, 0, 100);
    expect(leader.checkProduce(-1)).toBe('THROTTLING_QUOTA_EXCEEDED');
  });
});

describe('PartitionLeader: rarer rules', () => {
  test('a produce completing after the ISR fell below min.insync.replicas is NOT_ENOUGH_REPLICAS_AFTER_APPEND', () => {
    const { leader, log } = setup({ isr: [1, 2], minIsr: 2 });
    log.appendAsLeader('a', 1);
    log.flush();
    leader.onLocalLogChanged();
    leader.addProduceWaiter(1, 0, 10_000);
    leader.onPartitionState({ leader: 1, leaderEpoch: 1, partitionEpoch: 11, replicas: [1, 2, 3], isr: [1] }); // the controller removed a fenced 2
    expect(leader.takeReady().completedProduces).toEqual([{ requestId: 1, error: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' }]);
  });

  test("caught up as of the previous fetch: lastCaughtUpTime is that fetch's time (Kafka's rule)", () => {
    const { leader, log } = setup({ records: 2, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(2, 2, 2), 100); // caught up at 100
    log.appendAsLeader('c', 1);
    log.flush();
    leader.onLocalLogChanged();
    leader.handleFollowerFetch(fetch(2, 2, 2), 150); // behind the new end; reached the end as of 100
    log.appendAsLeader('d', 1);
    log.flush();
    leader.onLocalLogChanged();
    leader.handleFollowerFetch(fetch(2, 3, 3), 900); // reached the end as of 150
    expect(leader.followerProgress(2)?.lastCaughtUpTimeMs).toBe(150);
    leader.tick(150 + LAG);
    expect(leader.takeReady().alterPartition).toBeNull();
    leader.tick(151 + LAG);
    expect(leader.takeReady().alterPartition?.newIsr).toEqual([1]);
  });

  test('metadata of another leader epoch does not touch this leadership', () => {
    const { leader } = setup({ isr: [1, 2] });
    leader.onPartitionState({ leader: 2, leaderEpoch: 2, partitionEpoch: 20, replicas: [1, 2, 3], isr: [2] });
    expect(leader.isr).toEqual([1, 2]);
    expect(leader.partitionEpoch).toBe(10);
  });

  test('a follower never counts before it fetched in this term, even if it is in the ISR', () => {
    const { leader } = setup({ records: 3, isr: [1, 2, 3] });
    leader.handleFollowerFetch(fetch(2, 3, 3), 1);
    expect(leader.highWatermark).toBe(0);
    expect(leader.followerProgress(3)).toMatchObject({ logEndOffset: -1, matchedDurableOffset: -1 });
  });
});

describe('PartitionLeader: consumer fetches (SCENARIOS.md 12)', () => {
  test('reads are bounded by the HW; epochs are fenced; offsets past the log end are out of range', () => {
    const { leader, log } = setup({ records: 3, isr: [1, 2] });
    leader.handleFollowerFetch(fetch(2, 2, 2), 1);
    expect(leader.handleConsumerFetch({ currentLeaderEpoch: 1, fetchOffset: 0 })).toEqual({ kind: 'read', fetchOffset: 0, maxOffset: 2, highWatermark: 2, logStartOffset: 0 });
    expect(leader.handleConsumerFetch({ currentLeaderEpoch: -1, fetchOffset: 3 })).toMatchObject({ kind: 'read', fetchOffset: 3, maxOffset: 2 });
    expect(leader.handleConsumerFetch({ currentLeaderEpoch: 0, fetchOffset: 0 })).toMatchObject({ kind: 'error', error: 'FENCED_LEADER_EPOCH' });
    expect(leader.handleConsumerFetch({ currentLeaderEpoch: 2, fetchOffset: 0 })).toMatchObject({ kind: 'error', error: 'UNKNOWN_LEADER_EPOCH' });
    expect(leader.handleConsumerFetch({ currentLeaderEpoch: 1, fetchOffset: log.logEndOffset + 1 })).toMatchObject({ kind: 'error', error: 'OFFSET_OUT_OF_RANGE' });
    leader.resign();
    expect(leader.handleConsumerFetch({ currentLeaderEpoch: 1, fetchOffset: 0 })).toMatchObject({ kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER' });
  });
});

/** The leader's log as the core sees it, with a log start DeleteRecords can move (SimLog keeps none). */
function withLogStart(log: SimLog): { view: ReplicaLogView; moveStart: (offset: number) => void } {
  let start = 0;
  const view: ReplicaLogView = {
    get logStartOffset() {
      return start;
    },
    get logEndOffset() {
      return log.logEndOffset;
    },
    get countableEndOffset() {
      return log.countableEndOffset;
    },
    get latestEpoch() {
      return log.latestEpoch;
    },
    endOffsetForEpoch: (epoch) => log.endOffsetForEpoch(epoch),
  };
  return { view, moveStart: (offset) => void (start = offset) };
}

/** Leader 1 of replicas [1, 2, 3] over 10 records in epoch 1, with a movable log start. */
function deletable(isr = [1, 2, 3], maxPendingProduces = 100): { leader: PartitionLeader; moveStart: (offset: number) => void } {
  const log = new SimLog();
  for (let i = 0; i < 10; i++) log.appendAsLeader(`v${i}`, 1);
  log.flush();
  const { view, moveStart } = withLogStart(log);
  const leader = new PartitionLeader({ localReplicaId: 1, state: { leader: 1, leaderEpoch: 1, partitionEpoch: 10, replicas: [1, 2, 3], isr }, log: view, highWatermark: 0, nowMs: 0, config: { replicaLagTimeMaxMs: LAG, maxPendingProduces } });
  return { leader, moveStart };
}

/** An accepted fetch from the log end (10) reporting log start `logStart`. */
const fetchWithStart = (replicaId: number, logStart: number, fetchOffset = 10): FollowerFetchRequest => ({ ...fetch(replicaId, fetchOffset, fetchOffset), logStartOffset: logStart });

describe('PartitionLeader: low watermark and DeleteRecords (Kafka\'s DelayedDeleteRecords)', () => {
  test('the low watermark is the smallest log start over the leader and every follower, unknown (-1) until each fetched in this term', () => {
    const { leader, moveStart } = deletable();
    expect(leader.lowWatermark).toBe(-1);
    leader.handleFollowerFetch(fetchWithStart(2, 0), 1);
    expect(leader.lowWatermark).toBe(-1); // 3 has not fetched yet
    leader.handleFollowerFetch(fetchWithStart(3, 0), 1);
    expect(leader.lowWatermark).toBe(0);
    moveStart(6);
    leader.addDeleteRecordsWaiter(7, 6, 1000);
    expect(leader.takeReady().completedDeleteRecords).toEqual([]);
    leader.handleFollowerFetch(fetchWithStart(2, 6), 2);
    expect(leader.lowWatermark).toBe(0);
    expect(leader.takeReady().completedDeleteRecords).toEqual([]);
    leader.handleFollowerFetch(fetchWithStart(3, 6), 3);
    expect(leader.lowWatermark).toBe(6);
    expect(leader.takeReady().completedDeleteRecords).toEqual([{ requestId: 7, error: null, lowWatermark: 6 }]);
    // Reached already: answered at once, with the low watermark (which may exceed the offset).
    leader.addDeleteRecordsWaiter(8, 4, 1000);
    expect(leader.takeReady().completedDeleteRecords).toEqual([{ requestId: 8, error: null, lowWatermark: 6 }]);
    expect(leader.pendingDeleteRecordsCount).toBe(0);
  });

  test('a follower that fetches out of range or diverges does not count; its log start never counts past its log end', () => {
    const { leader, moveStart } = deletable();
    leader.handleFollowerFetch(fetchWithStart(2, 0), 1);
    leader.handleFollowerFetch(fetchWithStart(3, 0), 1);
    moveStart(6);
    leader.addDeleteRecordsWaiter(1, 6, 1000);
    leader.handleFollowerFetch(fetchWithStart(2, 6), 2);
    // Follower 3 restarted with an empty disk: its fetch from 0 is out of range and not taken.
    expect(leader.handleFollowerFetch({ ...fetch(3, 0, 0, -1), logStartOffset: 0 }, 3)).toMatchObject({ kind: 'error', error: 'OFFSET_OUT_OF_RANGE' });
    expect(leader.followerProgress(3)?.logStartOffset).toBe(0);
    // A diverging fetch does not count either (Kafka updates follower state only on a read).
    expect(leader.handleFollowerFetch({ ...fetch(3, 10, 10, 7), logStartOffset: 9 }, 3)).toMatchObject({ kind: 'diverging' });
    expect(leader.followerProgress(3)?.logStartOffset).toBe(0);
    // Started over at our log start: it reports 6 and the DeleteRecords completes.
    leader.handleFollowerFetch({ ...fetch(3, 6, 6, -1), logStartOffset: 6 }, 4);
    expect(leader.takeReady().completedDeleteRecords).toEqual([{ requestId: 1, error: null, lowWatermark: 6 }]);
    // A log start past the fetch offset (no replica has one) counts as its log end.
    leader.handleFollowerFetch({ ...fetch(3, 8, 8), logStartOffset: 9 }, 5);
    expect(leader.followerProgress(3)?.logStartOffset).toBe(8);
  });

  test('the latest report counts, not the largest: a follower restarted with a lower log start lowers the low watermark', () => {
    const { leader, moveStart } = deletable();
    moveStart(6);
    leader.handleFollowerFetch(fetchWithStart(2, 6), 1);
    leader.handleFollowerFetch(fetchWithStart(3, 6), 1);
    expect(leader.lowWatermark).toBe(6);
    leader.handleFollowerFetch({ ...fetchWithStart(3, 4), brokerEpoch: 9 }, 2);
    expect(leader.lowWatermark).toBe(4);
    leader.addDeleteRecordsWaiter(1, 6, 1000);
    expect(leader.takeReady().completedDeleteRecords).toEqual([]);
  });

  test('a follower outside the ISR holds the low watermark while its broker is alive; a fenced one does not', () => {
    const { leader, moveStart } = deletable([1, 2]);
    leader.handleFollowerFetch(fetchWithStart(2, 0), 1);
    moveStart(5);
    leader.addDeleteRecordsWaiter(1, 5, 1000);
    leader.handleFollowerFetch(fetchWithStart(2, 5), 2);
    // 3 is not in the ISR and has not fetched: Kafka's low watermark still waits for it.
    expect(leader.takeReady().completedDeleteRecords).toEqual([]);
    // Shrinking the ISR to the leader changes nothing either.
    leader.onPartitionState({ leader: 1, leaderEpoch: 1, partitionEpoch: 11, replicas: [1, 2, 3], isr: [1] });
    expect(leader.takeReady().completedDeleteRecords).toEqual([]);
    leader.setFencedReplicas([3]);
    expect(leader.lowWatermark).toBe(5);
    expect(leader.takeReady().completedDeleteRecords).toEqual([{ requestId: 1, error: null, lowWatermark: 5 }]);
    // Unfenced again, it counts again (with what it last reported: nothing in this term).
    leader.setFencedReplicas([]);
    expect(leader.lowWatermark).toBe(-1);
  });

  test('an unreached DeleteRecords times out with the low watermark as of the request, or fails on resignation', () => {
    const { leader, moveStart } = deletable();
    leader.handleFollowerFetch(fetchWithStart(2, 0), 1);
    leader.handleFollowerFetch(fetchWithStart(3, 2), 1);
    moveStart(6);
    leader.addDeleteRecordsWaiter(1, 6, 500);
    leader.addDeleteRecordsWaiter(2, 6, 900);
    leader.handleFollowerFetch(fetchWithStart(2, 3), 2);
    leader.tick(499);
    expect(leader.takeReady().completedDeleteRecords).toEqual([]);
    leader.tick(500);
    expect(leader.takeReady().completedDeleteRecords).toEqual([{ requestId: 1, error: 'REQUEST_TIMED_OUT', lowWatermark: 0 }]);
    leader.resign();
    expect(leader.takeReady().completedDeleteRecords).toEqual([{ requestId: 2, error: 'NOT_LEADER_OR_FOLLOWER', lowWatermark: -1 }]);
    expect(leader.checkDeleteRecords()).toBe('NOT_LEADER_OR_FOLLOWER');
  });

  test('waiting DeleteRecords are bounded like produce waiters', () => {
    const { leader, moveStart } = deletable([1, 2, 3], 2);
    moveStart(1);
    expect(leader.checkDeleteRecords()).toBeNull();
    leader.addDeleteRecordsWaiter(1, 1, 1000);
    leader.addDeleteRecordsWaiter(2, 1, 1000);
    expect(leader.checkDeleteRecords()).toBe('THROTTLING_QUOTA_EXCEEDED');
    expect(() => leader.addDeleteRecordsWaiter(3, 1, 1000)).toThrow(/bound/);
    expect(() => deletable().leader.addDeleteRecordsWaiter(4, 1, 1000)).toThrow(/log start/);
  });
});
