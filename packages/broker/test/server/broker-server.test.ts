/**
 * The broker's handling of the controller's AlterPartition answers (alterPartitionAnswer), fed to
 * a real PartitionLeader over an in-memory SimLog: a leader with a pending ISR expansion gets each
 * per-partition error the controller can return, and we check what the high watermark then counts.
 * The controller checks the broker epoch, the topic and the leader epoch before the partition
 * epoch, so those errors do not prove that the proposal (or an earlier copy of it whose answer was
 * lost) was not applied: the proposal must keep counting in the maximal ISR (KIP-497) and be sent
 * again. Only INELIGIBLE_REPLICA and INVALID_REQUEST, checked after the partition epoch, let the
 * leader fall back to the committed ISR.
 */
import { ErrorCode, type ErrorName } from '@strand/protocol';
import { alterPartitionAnswer } from '../../src/server/broker-server';
import { PartitionLeader } from '../../src/replication/partition-leader';
import type { AlterPartitionRequest } from '../../src/replication/types';
import { SimLog } from '../../src/sim/sim-log';

const RETRY_MS = 5000;

/** Leader 1 of replicas [1, 2] with ISR [1]; follower 2 catches up, so 1 proposes [1, 2]. */
function leaderWithPendingExpansion(): { leader: PartitionLeader; request: AlterPartitionRequest } {
  const log = new SimLog();
  log.appendAsLeader('a', 1);
  log.appendAsLeader('b', 1);
  log.flush();
  const leader = new PartitionLeader({
    localReplicaId: 1,
    state: { leader: 1, leaderEpoch: 1, partitionEpoch: 7, replicas: [1, 2], isr: [1] },
    log,
    highWatermark: 0,
    nowMs: 0,
    config: { replicaLagTimeMaxMs: 30_000, alterPartitionRetryMs: RETRY_MS },
  });
  leader.handleFollowerFetch({ replicaId: 2, currentLeaderEpoch: 1, fetchOffset: 2, lastFetchedEpoch: 1, countableEndOffset: 2, logStartOffset: 0 }, 0);
  const request = leader.takeReady().alterPartition;
  if (request === null) throw new Error('the leader proposed no expansion');
  expect(request.newIsr).toEqual([1, 2]);
  return { leader, request };
}

function answer(name: ErrorName): { errorCode: number; leaderEpoch: number; partitionEpoch: number; isr: number[] } {
  return { errorCode: ErrorCode[name], leaderEpoch: -1, partitionEpoch: -1, isr: [] };
}

test.each(['STALE_BROKER_EPOCH', 'UNKNOWN_TOPIC_ID', 'UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_LEADER_EPOCH', 'UNKNOWN_SERVER_ERROR'] as const)(
  'an expansion refused with %s (checked before the partition epoch) keeps counting and is sent again',
  (name) => {
    const { leader, request } = leaderWithPendingExpansion();
    const resp = alterPartitionAnswer(answer(name));
    if (resp !== null) leader.onAlterPartitionResponse(request, resp);
    // An earlier copy may have committed [1, 2]: the HW must still wait for 2.
    expect(leader.maximalIsr).toEqual([1, 2]);
    leader.tick(RETRY_MS);
    expect(leader.takeReady().alterPartition).toEqual(request);
  },
);

test.each(['INVALID_UPDATE_VERSION', 'FENCED_LEADER_EPOCH', 'NOT_LEADER_OR_FOLLOWER'] as const)('an expansion refused with %s keeps counting until metadata settles it', (name) => {
  const { leader, request } = leaderWithPendingExpansion();
  leader.onAlterPartitionResponse(request, alterPartitionAnswer(answer(name))!);
  expect(leader.maximalIsr).toEqual([1, 2]);
  leader.onPartitionState({ leader: 1, leaderEpoch: 1, partitionEpoch: 8, replicas: [1, 2], isr: [1, 2] });
  expect(leader.isr).toEqual([1, 2]);
});

test.each(['INELIGIBLE_REPLICA', 'INVALID_REQUEST'] as const)('an expansion refused with %s (after the partition epoch check) falls back to the committed ISR', (name) => {
  const { leader, request } = leaderWithPendingExpansion();
  leader.onAlterPartitionResponse(request, alterPartitionAnswer(answer(name))!);
  expect(leader.maximalIsr).toEqual([1]);
});

test('a successful answer carries the committed ISR and partition epoch', () => {
  const { leader, request } = leaderWithPendingExpansion();
  leader.onAlterPartitionResponse(request, alterPartitionAnswer({ errorCode: 0, leaderEpoch: 1, partitionEpoch: 8, isr: [1, 2] })!);
  expect(leader.isr).toEqual([1, 2]);
  expect(leader.partitionEpoch).toBe(8);
  expect(leader.pendingAlterPartition).toBeNull();
});
