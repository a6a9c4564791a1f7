/**
 * Partition reassignment in the pure controller logic (Kafka's protocol): the replica set grows
 * to target + removing replicas while the new ones catch up; AlterPartition adding them to the
 * ISR completes it (removed replicas leave, leadership moves off a removed leader); every replica
 * set change starts a new leader epoch; a reassignment can be cancelled; bad targets are typed
 * errors.
 */
import { ErrorCode } from '@strand/protocol';
import { MetadataImage, alterPartition, alterReassignments, alterTopicConfigs, createPartitions, topicIdToBytes, type PartitionState } from '../src';
import { clusterWith, run, topic, withTopic } from './fixtures';

describe('partition reassignment', () => {
  it('stages, catches up through the ISR, then completes', () => {
    let image = withTopic(clusterWith([1, 2, 3, 4]), { ...topic('t', 1, -1), replicationFactor: -1, numPartitions: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }] });
    const id = image.topicByName('t')!.id;
    const before = image.partition(id, 0)!;
    const staged = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: [3, 4] }]));
    expect(staged.result[0]!.errorCode).toBe(0);
    image = staged.image;
    let p: PartitionState = image.partition(id, 0)!;
    expect(p).toMatchObject({ replicas: [3, 4, 1, 2], addingReplicas: [3, 4], removingReplicas: [1, 2], leader: before.leader });
    expect(p.leaderEpoch).toBe(before.leaderEpoch + 1);
    expect(alterReassignments(image, [{ topic: 't', partition: 0, replicas: [1, 3] }]).finish(image)[0]!.errorCode).toBe(ErrorCode.REASSIGNMENT_IN_PROGRESS);
    // The leader adds the new replicas to the ISR once they caught up: the reassignment completes.
    const leaderEpoch = image.brokers.get(p.leader)!.epoch;
    image = run(image, alterPartition(image, p.leader, leaderEpoch, id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [...p.isr, 3, 4], newIsrWithEpochs: [] }])).image;
    p = image.partition(id, 0)!;
    expect(p).toMatchObject({ replicas: [3, 4], isr: [3, 4], addingReplicas: [], removingReplicas: [] });
    expect([3, 4]).toContain(p.leader);
  });

  it('cancels a reassignment in progress and rejects bad targets', () => {
    let image = withTopic(clusterWith([1, 2, 3]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [] });
    const id = image.topicByName('t')!.id;
    expect(alterReassignments(image, [{ topic: 't', partition: 0, replicas: null }]).finish(image)[0]!.errorCode).toBe(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS);
    expect(alterReassignments(image, [{ topic: 't', partition: 0, replicas: [1, 1] }]).finish(image)[0]!.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    expect(alterReassignments(image, [{ topic: 't', partition: 0, replicas: [9] }]).finish(image)[0]!.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    expect(alterReassignments(image, [{ topic: 'x', partition: 0, replicas: [1] }]).finish(image)[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    image = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: [2, 3] }])).image;
    image = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: null }])).image;
    // As Kafka's revert: the original members (in the staged order, target first), nothing pending.
    expect(image.partition(id, 0)).toMatchObject({ replicas: [2, 1], addingReplicas: [], removingReplicas: [] });
  });

  it('refuses to cancel when only adding replicas are in sync (reverting would drop every in-sync copy)', () => {
    let image = withTopic(clusterWith([1, 2, 3, 4]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [] });
    const id = image.topicByName('t')!.id;
    image = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: [3, 4] }])).image;
    // Broker 3 caught up and the originals 1 and 2 fell out: only 3 is in sync, and it leads.
    image = MetadataImage.fromRecords(image.offset + 1, [...image.toRecords(), { partitionChange: { topicId: topicIdToBytes(id), partition: 0, leader: 3, isr: { values: [3] }, replicas: null, addingReplicas: null, removingReplicas: null } }]);
    const cancel = alterReassignments(image, [{ topic: 't', partition: 0, replicas: null }]).finish(image)[0]!;
    expect(cancel.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
    expect(image.partition(id, 0)).toMatchObject({ replicas: [3, 4, 1, 2], isr: [3], leader: 3 });
  });

  it('a removal waits while a target replica is out of the ISR (no unclean election, the in-sync copies stay)', () => {
    let image = withTopic(clusterWith([1, 2, 3]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2, 3] }], configs: [] });
    const id = image.topicByName('t')!.id;
    const p = image.partition(id, 0)!;
    // Only broker 1 in sync.
    image = MetadataImage.fromRecords(image.offset + 1, [...image.toRecords(), { partitionChange: { topicId: topicIdToBytes(id), partition: 0, isr: { values: [1] }, replicas: null, addingReplicas: null, removingReplicas: null } }]);
    expect(image.partition(id, 0)).toMatchObject({ leader: p.leader, isr: [1] });
    image = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: [2, 3] }])).image;
    // Staged, not completed: broker 1 stays a replica (and leader) until 2 and 3 are in sync.
    expect(image.partition(id, 0)).toMatchObject({ replicas: [2, 3, 1], isr: [1], removingReplicas: [1] });
  });

  it('a pure removal completes at once and moves leadership off a removed leader', () => {
    let image = withTopic(clusterWith([1, 2, 3]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2, 3] }], configs: [] });
    const id = image.topicByName('t')!.id;
    image = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: [2, 3] }])).image;
    expect(image.partition(id, 0)).toMatchObject({ replicas: [2, 3], isr: [2, 3], leader: 2, addingReplicas: [], removingReplicas: [] });
  });
  it('a topic\'s replication factor during a move of its partition 0 is the target\'s, not target + removing (CreatePartitions, min.insync.replicas)', () => {
    let image = withTopic(clusterWith([1, 2, 3, 4, 5, 6]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2, 3] }], configs: [] });
    const id = image.topicByName('t')!.id;
    // Partition 0 moves to 4, 5, 6 (still three replicas): six replicas while they catch up.
    image = run(image, alterReassignments(image, [{ topic: 't', partition: 0, replicas: [4, 5, 6] }])).image;
    expect(image.partition(id, 0)!.replicas).toHaveLength(6);
    const grown = run(image, createPartitions(image, [{ name: 't', count: 2, assignments: [] }], false));
    expect(grown.result[0]!.errorCode).toBe(0);
    expect(grown.image.partition(id, 1)!.replicas).toHaveLength(3);
    const explicit = createPartitions(image, [{ name: 't', count: 2, assignments: [{ partition: 1, brokerIds: [1, 2, 3] }] }], false);
    expect(explicit.finish(image)[0]!.errorCode).toBe(0);
    // min.insync.replicas 4 could never be met by three replicas once the move completes.
    expect(alterTopicConfigs(image, 't', [{ name: 'min.insync.replicas', value: '4' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
  });
});
