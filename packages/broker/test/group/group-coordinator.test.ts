/**
 * The coordinator driver over a fake __consumer_offsets replica: an in-memory log of real
 * RecordBatch bytes whose acks=all completions the test releases by hand. Checks routing
 * (NOT_COORDINATOR when not leading, COORDINATOR_LOAD_IN_PROGRESS while loading), that commits
 * and assignments are answered only after their write is acknowledged (and fail with the mapped
 * error when it is not), that losing leadership answers parked requests NOT_COORDINATOR, and that
 * a new leadership epoch reloads the same groups and offsets from the log (skipping a corrupt
 * record), and that a deleted or re-created topic's offsets are tombstoned when the metadata image
 * shows it (or, for a partition led elsewhere then, when it loads here), and that OffsetDelete follows Kafka's rules end to end through the driver (answered
 * after its tombstones are acknowledged, which a reload then honours). FindCoordinator is checked
 * over real metadata images built with the controller's operations. No timers run: the
 * coordinator's tick is not started.
 */
import { CoordinatorType, ErrorCode, encodeRecordBatch, readBatchHeader, stampBatch, type CreateTopicsRequest, type CreateTopicsResponse } from '@strand/protocol';
import { CONTROLLER_CONFIG, MetadataImage, brokerHeartbeat, createTopics, deleteTopics, registerBroker, type Operation } from '@strand/controller';
import { BROKER_CONFIG } from '../../src/server/broker-config';
import type { ProduceResult } from '../../src/server/partition';
import { encodeGroupRecordKey } from '../../src/group/group-records';
import { GroupCoordinator, OFFSETS_TOPIC, type OffsetsPartition, type OffsetsReplicas } from '../../src/group/group-coordinator';
import { groupPartitionFor } from '../../src/group/group-partitioner';
import { consumerSubscription } from '../support/consumer-subscription';

const NUM_PARTITIONS = 3;

/** A leader replica whose log is an array of stamped batches; produce waits for `release()`. */
class FakePartition implements OffsetsPartition {
  isLeader = true;
  leaderEpoch = 0;
  private batches: Buffer[] = [];
  private next = 0;
  private waiting: { resolve: (r: ProduceResult) => void; baseOffset: number }[] = [];

  readonly log: OffsetsPartition['log'];

  constructor() {
    const batches = (): Buffer[] => this.batches;
    const end = (): number => this.next;
    this.log = {
      logStartOffset: 0,
      get logEndOffset(): number {
        return end();
      },
      read: (offset: number) => {
        const from = batches().filter((b) => readBatchHeader(b).baseOffset >= offset);
        return { records: Buffer.concat(from), firstOffset: from.length > 0 ? readBatchHeader(from[0] as Buffer).baseOffset : -1, nextOffset: end(), batchCount: from.length };
      },
    };
  }

  /** Appends raw bytes as the next batch (stamped with its base offset), as the leader would. */
  appendRaw(batch: Buffer): number {
    const b = Buffer.from(batch);
    const base = this.next;
    stampBatch(b, 0, base, this.leaderEpoch);
    this.batches.push(b);
    this.next += readBatchHeader(b).lastOffsetDelta + 1;
    return base;
  }

  produce(records: Buffer): Promise<ProduceResult> {
    if (!this.isLeader) return Promise.resolve({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, errorMessage: '', baseOffset: -1, logAppendTimeMs: -1, logStartOffset: 0 });
    const baseOffset = this.appendRaw(records);
    return new Promise((resolve) => this.waiting.push({ resolve, baseOffset }));
  }

  get inFlight(): number {
    return this.waiting.length;
  }

  /** Completes every waiting produce (in log order) with `errorCode`. */
  async release(errorCode = 0): Promise<void> {
    const w = this.waiting;
    this.waiting = [];
    for (const x of w) x.resolve({ errorCode, errorMessage: '', baseOffset: errorCode === 0 ? x.baseOffset : -1, logAppendTimeMs: -1, logStartOffset: 0 });
    await flush();
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(image: () => MetadataImage | null = () => null): { coordinator: GroupCoordinator; part: FakePartition; replicas: { leading: boolean } & OffsetsReplicas; group: string } {
  const part = new FakePartition();
  // A group that lands on partition 1 of the offsets topic.
  const group = ['g-a', 'g-b', 'g-c', 'g-d', 'g-e', 'g-f'].find((g) => groupPartitionFor(g, NUM_PARTITIONS) === 1) as string;
  const replicas = {
    leading: true,
    // The offsets topic and `t` (two partitions), the topic the tests commit offsets of.
    metadataImage: { topicByName: (name: string) => (name === OFFSETS_TOPIC ? { partitions: new Map([[0, null], [1, null], [2, null]]) } : name === 't' ? { partitions: new Map([[0, null], [1, null]]) } : undefined) },
    partitionByName: (topic: string, p: number): OffsetsPartition | undefined => (topic === OFFSETS_TOPIC && p === 1 ? part : undefined),
  };
  const config = BROKER_CONFIG.parse({ 'group.initial.rebalance.delay.ms': 0, 'group.min.session.timeout.ms': 100 });
  const logger = { info: (): void => undefined, warn: jest.fn() };
  const coordinator = new GroupCoordinator({ brokerId: 1, config, replicas, listenerName: 'BROKER', image, createTopics: () => Promise.reject(new Error('unused')), logger });
  return { coordinator, part, replicas, group };
}

const join = (c: GroupCoordinator, group: string, memberId: string): ReturnType<GroupCoordinator['joinGroup']> =>
  c.joinGroup({ groupId: group, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('s') }], reason: '' }, { clientId: 'cli', clientHost: 'h' });

const commit = (c: GroupCoordinator, group: string, memberId: string, generationId: number, offset: number): ReturnType<GroupCoordinator['offsetCommit']> =>
  c.offsetCommit({ groupId: group, generationId, memberId, topics: [{ name: 't', partitions: [{ partition: 0, committedOffset: offset, committedLeaderEpoch: -1, metadata: '' }] }] });

const committed = (c: GroupCoordinator, group: string): number | undefined => c.offsetFetch({ groupId: group, topics: [{ name: 't', partitions: [0] }], requireStable: false }).topics[0]?.partitions[0]?.committedOffset;

test('routing: NOT_COORDINATOR for partitions this broker does not lead, LOAD_IN_PROGRESS while loading', async () => {
  const { coordinator, part, group } = setup();
  // Something to load (a tombstone of another group), so loading takes a turn of the event loop.
  part.appendRaw(encodeRecordBatch({ records: [{ key: encodeGroupRecordKey({ kind: 'group', group: 'old' }), value: null }], baseTimestamp: 0 }));
  // Not reconciled yet: no shard.
  expect((await join(coordinator, group, '')).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  const other = ['x1', 'x2', 'x3', 'x4', 'x5', 'x6'].find((g) => groupPartitionFor(g, NUM_PARTITIONS) !== 1) as string;
  coordinator.reconcile();
  expect(coordinator.offsetFetch({ groupId: group, topics: [], requireStable: false }).errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  await flush();
  expect(coordinator.offsetFetch({ groupId: group, topics: [], requireStable: false }).errorCode).toBe(0);
  expect((await join(coordinator, other, '')).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  coordinator.close();
});

test('ListGroups lists only groups of partitions this broker still leads (as every other group request routes)', async () => {
  const { coordinator, part, group } = setup();
  coordinator.reconcile();
  await flush();
  const c = commit(coordinator, group, '', -1, 3);
  await part.release();
  await c;
  expect(coordinator.listGroups({ statesFilter: [] }).groups.map((g) => g.groupId)).toEqual([group]);
  // Leadership gone, before the replica manager's change notice (reconcile) or the next tick.
  part.isLeader = false;
  expect(coordinator.describeGroups({ groups: [group] }).groups[0]?.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  expect(coordinator.listGroups({ statesFilter: [] }).groups).toEqual([]);
  coordinator.close();
});

test('join, sync and commit are answered only after acks=all; a failed write maps to COORDINATOR_NOT_AVAILABLE', async () => {
  const { coordinator, part, group } = setup();
  coordinator.reconcile();
  await flush();
  const first = await join(coordinator, group, '');
  expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
  expect(first.memberId.startsWith('cli-')).toBe(true);
  const joined = await join(coordinator, group, first.memberId);
  expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: first.memberId });
  let synced = false;
  const sync = coordinator.syncGroup({ groupId: group, generationId: 1, memberId: first.memberId, protocolType: 'consumer', protocolName: 'range', assignments: [{ memberId: first.memberId, assignment: Buffer.from('A') }] }).then((r) => {
    synced = true;
    return r;
  });
  await flush();
  expect(synced).toBe(false);
  expect(part.inFlight).toBe(1);
  await part.release();
  expect(Buffer.from((await sync).assignment).toString()).toBe('A');

  const c1 = commit(coordinator, group, first.memberId, 1, 5);
  await flush();
  expect(committed(coordinator, group)).toBe(-1); // not acknowledged: not visible
  await part.release();
  expect((await c1).topics[0]?.partitions[0]?.errorCode).toBe(0);
  expect(committed(coordinator, group)).toBe(5);

  const c2 = commit(coordinator, group, first.memberId, 1, 6);
  await flush();
  await part.release(ErrorCode.REQUEST_TIMED_OUT);
  expect((await c2).topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  expect(committed(coordinator, group)).toBe(5);
  expect((await commit(coordinator, group, first.memberId, 0, 9)).topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
  coordinator.close();
});

test('leadership lost: parked requests get NOT_COORDINATOR; a new epoch reloads groups and offsets from the log', async () => {
  const { coordinator, part, group } = setup();
  coordinator.reconcile();
  await flush();
  const id = (await join(coordinator, group, '')).memberId;
  await join(coordinator, group, id);
  const sync = coordinator.syncGroup({ groupId: group, generationId: 1, memberId: id, protocolType: '', protocolName: '', assignments: [{ memberId: id, assignment: Buffer.from('A') }] });
  await flush();
  await part.release();
  await sync;
  const c = commit(coordinator, group, id, 1, 41);
  await flush();
  await part.release();
  expect((await c).topics[0]?.partitions[0]?.errorCode).toBe(0);
  // A commit in flight when leadership goes.
  const lost = commit(coordinator, group, id, 1, 42);
  await flush();
  part.isLeader = false;
  coordinator.reconcile();
  expect((await lost).topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  expect((await coordinator.heartbeat({ groupId: group, generationId: 1, memberId: id })).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  await part.release(); // the old leader's write completes late: ignored

  // A corrupt record in the log must not stop the load.
  part.appendRaw(encodeRecordBatch({ records: [{ key: Buffer.from([0, 9, 9]), value: Buffer.from('junk') }], baseTimestamp: 0 }));
  part.isLeader = true;
  part.leaderEpoch = 1;
  coordinator.reconcile();
  await flush();
  await flush();
  // The generation and member survived: the same member heartbeats and commits without rejoining.
  expect((await coordinator.heartbeat({ groupId: group, generationId: 1, memberId: id })).errorCode).toBe(0);
  expect(committed(coordinator, group)).toBeGreaterThanOrEqual(41);
  const desc = coordinator.describeGroups({ groups: [group] }).groups[0];
  expect(desc).toMatchObject({ groupState: 'Stable', generationId: 1 });
  expect(Buffer.from(desc!.members[0]!.memberAssignment).toString()).toBe('A');
  expect(coordinator.listGroups({ statesFilter: [] }).groups.map((g) => g.groupId)).toEqual([group]);
  coordinator.close();
});

/** A real metadata image with brokers 1..n registered and unfenced, built with the controller's own operations. */
function clusterImage(n: number): MetadataImage {
  const apply = <T>(image: MetadataImage, op: Operation<T>): MetadataImage => (op.records.length > 0 ? image.apply(image.offset + 1, op.records) : image);
  let image = MetadataImage.EMPTY.apply(0, [{ cluster: { clusterId: 'test' } }]);
  for (let id = 1; id <= n; id++) {
    image = apply(image, registerBroker(image, { brokerId: id, incarnationId: `i${id}`, endpoints: [{ listener: 'BROKER', host: `host${id}`, port: 9000 + id }], clusterId: '', previousShutdownClean: true }, () => false));
  }
  for (let id = 1; id <= n; id++) image = apply(image, brokerHeartbeat(image, id, image.brokers.get(id)!.epoch, image.offset, false));
  return image;
}

describe('FindCoordinator', () => {
  function coordinatorOver(image: () => MetadataImage, created: CreateTopicsRequest[]): GroupCoordinator {
    const replicas: OffsetsReplicas = { metadataImage: null, partitionByName: () => undefined };
    const config = BROKER_CONFIG.parse({ 'offsets.topic.num.partitions': 7 });
    return new GroupCoordinator({
      brokerId: 1,
      config,
      replicas,
      listenerName: 'BROKER',
      image,
      createTopics: (req) => {
        created.push(req);
        const res: CreateTopicsResponse = { topics: [{ name: OFFSETS_TOPIC, errorCode: 0, errorMessage: '', topicId: Buffer.alloc(0), numPartitions: 7, replicationFactor: 2 }] };
        return Promise.resolve(res);
      },
      logger: { info: () => undefined, warn: () => undefined },
    });
  }

  test('creates __consumer_offsets on first use (compacted, RF offsets.topic.replication.factor) and answers COORDINATOR_NOT_AVAILABLE meanwhile', async () => {
    const created: CreateTopicsRequest[] = [];
    let brokers = 2;
    const c = coordinatorOver(() => clusterImage(brokers), created);
    // Fewer live brokers than offsets.topic.replication.factor (3): not created at a lower RF.
    const early = await c.findCoordinator({ key: 'g', keyType: CoordinatorType.COORDINATOR_GROUP });
    expect(early).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE });
    expect(early.errorMessage).toMatch(/offsets.topic.replication.factor=3/);
    expect(created).toHaveLength(0);
    brokers = 3;
    const r = await c.findCoordinator({ key: 'g', keyType: CoordinatorType.COORDINATOR_GROUP });
    expect(r.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(created).toHaveLength(1);
    const t = created[0]!.topics[0]!;
    expect(t).toMatchObject({ name: OFFSETS_TOPIC, numPartitions: 7, replicationFactor: 3 });
    expect(Object.fromEntries(t.configs.map((x) => [x.name, x.value]))).toEqual({ 'cleanup.policy': 'compact', 'min.insync.replicas': '2', 'segment.bytes': String(100 * 1024 * 1024) });
  });

  test('every group named in DescribeGroups and DeleteGroups gets an answer; past 10,000, INVALID_REQUEST', async () => {
    const c = coordinatorOver(() => clusterImage(3), []);
    const ids = Array.from({ length: 10_001 }, (_, i) => `g${i}`);
    const described = c.describeGroups({ groups: ids });
    expect(described.groups).toHaveLength(10_001);
    expect(described.groups[10_000]).toMatchObject({ groupId: 'g10000', errorCode: ErrorCode.INVALID_REQUEST });
    const deleted = await c.deleteGroups({ groups: ids });
    expect(deleted.results).toHaveLength(10_001);
    expect(deleted.results[10_000]).toEqual({ groupId: 'g10000', errorCode: ErrorCode.INVALID_REQUEST });
    expect(deleted.results[0]!.errorCode).not.toBe(ErrorCode.INVALID_REQUEST);
  });

  test('answers the endpoint of the leader of the group\'s partition', async () => {
    let image = clusterImage(3);
    const op = createTopics(image, [{ name: OFFSETS_TOPIC, numPartitions: 7, replicationFactor: 3, assignments: [], configs: [] }], false, CONTROLLER_CONFIG.defaults(), () => 'ab'.repeat(16));
    image = image.apply(image.offset + 1, op.records);
    const c = coordinatorOver(() => image, []);
    for (const g of ['orders', 'billing', 'x']) {
      const leader = image.topicByName(OFFSETS_TOPIC)!.partitions.get(groupPartitionFor(g, 7))!.leader;
      expect(await c.findCoordinator({ key: g, keyType: CoordinatorType.COORDINATOR_GROUP })).toEqual({ errorCode: 0, errorMessage: '', nodeId: leader, host: `host${leader}`, port: 9000 + leader });
    }
    expect(await c.findCoordinator({ key: 'orders', keyType: CoordinatorType.COORDINATOR_GROUP }, 'BROKER')).toMatchObject({ errorCode: 0, port: 9000 + image.topicByName(OFFSETS_TOPIC)!.partitions.get(groupPartitionFor('orders', 7))!.leader });
    // Asked on a listener the coordinator does not have: not available (Kafka), not another listener's address.
    expect(await c.findCoordinator({ key: 'orders', keyType: CoordinatorType.COORDINATOR_GROUP }, 'EXTERNAL')).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, host: '', port: -1 });
    expect((await c.findCoordinator({ key: '', keyType: CoordinatorType.COORDINATOR_GROUP })).errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
    expect((await c.findCoordinator({ key: 'tx', keyType: CoordinatorType.COORDINATOR_TRANSACTION })).errorCode).toBe(ErrorCode.INVALID_REQUEST);
  });
});

/** Images that create or delete topic `t` (each creation a new topic id). */
function topicImages(): { withTopic: (img: MetadataImage) => MetadataImage; withoutTopic: (img: MetadataImage) => MetadataImage } {
  let n = 0;
  const newId = (): string => (++n).toString(16).padStart(32, '0');
  return {
    withTopic: (img) => img.apply(img.offset + 1, createTopics(img, [{ name: 't', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], false, CONTROLLER_CONFIG.defaults(), newId).records),
    withoutTopic: (img) => img.apply(img.offset + 1, deleteTopics(img, ['t'], CONTROLLER_CONFIG.defaults()).records),
  };
}

/** A loaded coordinator whose group committed offset 5 of `t`-0 (acknowledged). */
async function committedToTopic(): Promise<ReturnType<typeof setup> & ReturnType<typeof topicImages> & { image: { current: MetadataImage } }> {
  const images = topicImages();
  const image = { current: images.withTopic(clusterImage(1)) };
  const s = setup(() => image.current);
  s.coordinator.onMetadataImage(image.current);
  s.coordinator.reconcile();
  await flush();
  const c = commit(s.coordinator, s.group, '', -1, 5);
  await s.part.release();
  expect((await c).topics[0]?.partitions[0]?.errorCode).toBe(0);
  return { ...s, ...images, image };
}

test('offsets of a deleted topic, or of one re-created under the same name, are tombstoned with the image that removes it', async () => {
  const { coordinator, part, group, withTopic, withoutTopic, image } = await committedToTopic();
  expect(committed(coordinator, group)).toBe(5);

  // Deleted and re-created between two images: a new topic id under the same name.
  image.current = withTopic(withoutTopic(image.current));
  coordinator.onMetadataImage(image.current);
  expect(committed(coordinator, group)).toBe(-1);
  expect(part.inFlight).toBe(1); // the tombstones
  await part.release();
  // A new leadership epoch reloads from the log: the offset stays gone.
  part.leaderEpoch = 1;
  coordinator.reconcile();
  await flush();
  expect(committed(coordinator, group)).toBe(-1);

  const again = commit(coordinator, group, '', -1, 2);
  await part.release();
  expect((await again).topics[0]?.partitions[0]?.errorCode).toBe(0);
  image.current = withoutTopic(image.current);
  coordinator.onMetadataImage(image.current);
  expect(committed(coordinator, group)).toBe(-1);
  coordinator.close();
});

test('a topic deleted while this broker did not lead the offsets partition loses its offsets when the partition loads here', async () => {
  const { coordinator, part, group, withoutTopic, image } = await committedToTopic();

  // Leadership moves away; the topic is deleted while another broker coordinates the group.
  part.isLeader = false;
  coordinator.reconcile();
  image.current = withoutTopic(image.current);
  coordinator.onMetadataImage(image.current);
  expect(part.inFlight).toBe(0);

  // Leading again: the reload finds the old offset in the log, and tombstones it.
  part.isLeader = true;
  part.leaderEpoch = 1;
  coordinator.reconcile();
  await flush();
  expect(committed(coordinator, group)).toBe(-1);
  expect(part.inFlight).toBe(1);
  await part.release();
  part.leaderEpoch = 2;
  coordinator.reconcile();
  await flush();
  expect(committed(coordinator, group)).toBe(-1);
  coordinator.close();
});

test('OffsetCommit for a topic or partition the metadata does not have is UNKNOWN_TOPIC_OR_PARTITION for it (Kafka), the others commit', async () => {
  const { coordinator, part, group } = setup();
  coordinator.reconcile();
  await flush();
  const res = coordinator.offsetCommit({
    groupId: group,
    generationId: -1,
    memberId: '',
    topics: [
      { name: 'gone', partitions: [{ partition: 0, committedOffset: 1, committedLeaderEpoch: -1, metadata: '' }] },
      { name: 't', partitions: [{ partition: 9, committedOffset: 2, committedLeaderEpoch: -1, metadata: '' }, { partition: 0, committedOffset: 3, committedLeaderEpoch: -1, metadata: '' }] },
    ],
  });
  await part.release();
  expect(await res).toEqual({
    errorCode: 0,
    topics: [
      { name: 'gone', partitions: [{ partition: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
      { name: 't', partitions: [{ partition: 9, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }, { partition: 0, errorCode: 0 }] },
    ],
  });
  expect(committed(coordinator, group)).toBe(3);
  expect(coordinator.offsetFetch({ groupId: group, topics: [{ name: 'gone', partitions: [0] }], requireStable: false }).topics[0]?.partitions[0]?.committedOffset).toBe(-1);
  // Nothing known at all: answered at once, nothing written.
  const none = await coordinator.offsetCommit({ groupId: group, generationId: -1, memberId: '', topics: [{ name: 'gone', partitions: [{ partition: 0, committedOffset: 1, committedLeaderEpoch: -1, metadata: '' }] }] });
  expect(none.topics[0]?.partitions[0]?.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  expect(part.inFlight).toBe(0);
  coordinator.close();
});

describe('OffsetDelete', () => {
  const deleteOffsets = (c: GroupCoordinator, group: string, topics: { name: string; partitions: number[] }[]): ReturnType<GroupCoordinator['offsetDelete']> => c.offsetDelete({ groupId: group, topics });
  const standaloneCommit = async (c: GroupCoordinator, part: FakePartition, group: string, partition: number, offset: number): Promise<void> => {
    const r = c.offsetCommit({ groupId: group, generationId: -1, memberId: '', topics: [{ name: 't', partitions: [{ partition, committedOffset: offset, committedLeaderEpoch: -1, metadata: '' }] }] });
    await flush();
    await part.release();
    expect((await r).topics[0]?.partitions[0]?.errorCode).toBe(0);
  };
  const committedAt = (c: GroupCoordinator, group: string, partition: number): number | undefined =>
    c.offsetFetch({ groupId: group, topics: [{ name: 't', partitions: [partition] }], requireStable: false }).topics[0]?.partitions[0]?.committedOffset;

  test('routing as for every group request: NOT_COORDINATOR, then COORDINATOR_LOAD_IN_PROGRESS while loading; an unknown group is GROUP_ID_NOT_FOUND', async () => {
    const { coordinator, part, group } = setup();
    part.appendRaw(encodeRecordBatch({ records: [{ key: encodeGroupRecordKey({ kind: 'group', group: 'old' }), value: null }], baseTimestamp: 0 }));
    expect(await deleteOffsets(coordinator, group, [{ name: 't', partitions: [0] }])).toEqual({ errorCode: ErrorCode.NOT_COORDINATOR, topics: [] });
    coordinator.reconcile();
    expect(await deleteOffsets(coordinator, group, [{ name: 't', partitions: [0] }])).toEqual({ errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, topics: [] });
    await flush();
    // Reported even when no partition named is known (Kafka asks the coordinator all the same).
    expect(await deleteOffsets(coordinator, group, [{ name: 'gone', partitions: [0] }])).toEqual({ errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] });
    expect(part.inFlight).toBe(0);
    coordinator.close();
  });

  test('an Empty group: answered in the request\'s order once the tombstones are acknowledged; unknown topics and partitions are UNKNOWN_TOPIC_OR_PARTITION; a reload keeps them deleted', async () => {
    const { coordinator, part, group } = setup();
    coordinator.reconcile();
    await flush();
    await standaloneCommit(coordinator, part, group, 0, 5);
    await standaloneCommit(coordinator, part, group, 1, 6);
    let answered = false;
    const res = deleteOffsets(coordinator, group, [{ name: 'gone', partitions: [0] }, { name: 't', partitions: [9, 0] }]).then((r) => {
      answered = true;
      return r;
    });
    await flush();
    expect(answered).toBe(false);
    expect(part.inFlight).toBe(1);
    expect(committedAt(coordinator, group, 0)).toBe(5); // not acknowledged: still served
    await part.release();
    expect(await res).toEqual({
      errorCode: 0,
      topics: [
        { name: 'gone', partitions: [{ partition: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
        { name: 't', partitions: [{ partition: 9, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }, { partition: 0, errorCode: 0 }] },
      ],
    });
    expect([committedAt(coordinator, group, 0), committedAt(coordinator, group, 1)]).toEqual([-1, 6]);
    // A new leadership epoch reloads from the log: the tombstone holds, the other offset stays.
    part.leaderEpoch = 1;
    coordinator.reconcile();
    await flush();
    expect([committedAt(coordinator, group, 0), committedAt(coordinator, group, 1)]).toEqual([-1, 6]);
    coordinator.close();
  });

  test('a group with members: the topic its member subscribes to is GROUP_SUBSCRIBED_TO_TOPIC, and deletable once the subscription moves to another topic', async () => {
    const { coordinator, part, group } = setup();
    coordinator.reconcile();
    await flush();
    const joinSubscribed = (memberId: string, topics: string[]): ReturnType<GroupCoordinator['joinGroup']> =>
      coordinator.joinGroup({ groupId: group, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId, protocolType: 'consumer', protocols: [{ name: 'range', metadata: consumerSubscription(...topics) }], reason: '' }, { clientId: 'cli', clientHost: 'h' });
    const syncGeneration = async (memberId: string, generationId: number): Promise<void> => {
      const s = coordinator.syncGroup({ groupId: group, generationId, memberId, protocolType: 'consumer', protocolName: 'range', assignments: [{ memberId, assignment: Buffer.alloc(0) }] });
      await flush();
      await part.release();
      expect((await s).errorCode).toBe(0);
    };
    const id = (await joinSubscribed('', ['t'])).memberId;
    expect(await joinSubscribed(id, ['t'])).toMatchObject({ errorCode: 0, generationId: 1 });
    await syncGeneration(id, 1);
    const c = commit(coordinator, group, id, 1, 7);
    await flush();
    await part.release();
    expect((await c).topics[0]?.partitions[0]?.errorCode).toBe(0);

    expect(await deleteOffsets(coordinator, group, [{ name: 't', partitions: [0, 1] }])).toEqual({ errorCode: 0, topics: [{ name: 't', partitions: [{ partition: 0, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC }, { partition: 1, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC }] }] });
    expect(part.inFlight).toBe(0);
    expect(committedAt(coordinator, group, 0)).toBe(7);

    // The member now subscribes to another topic: generation 2 no longer consumes t.
    expect(await joinSubscribed(id, ['other'])).toMatchObject({ errorCode: 0, generationId: 2 });
    await syncGeneration(id, 2);
    const res = deleteOffsets(coordinator, group, [{ name: 't', partitions: [0] }]);
    await flush();
    await part.release();
    expect(await res).toEqual({ errorCode: 0, topics: [{ name: 't', partitions: [{ partition: 0, errorCode: 0 }] }] });
    expect(committedAt(coordinator, group, 0)).toBe(-1);
    expect(coordinator.describeGroups({ groups: [group] }).groups[0]?.groupState).toBe('Stable');
    coordinator.close();
  });

  test('a failed write leaves the offsets as they were and answers the mapped error; over 10,000 partitions is INVALID_REQUEST', async () => {
    const { coordinator, part, group } = setup();
    coordinator.reconcile();
    await flush();
    await standaloneCommit(coordinator, part, group, 0, 5);
    const res = deleteOffsets(coordinator, group, [{ name: 't', partitions: [0] }]);
    await flush();
    await part.release(ErrorCode.NOT_ENOUGH_REPLICAS);
    expect(await res).toEqual({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, topics: [] });
    expect(committedAt(coordinator, group, 0)).toBe(5);
    // Leadership lost with the tombstones in flight: NOT_COORDINATOR, and nothing changed here.
    const lost = deleteOffsets(coordinator, group, [{ name: 't', partitions: [0] }]);
    await flush();
    part.isLeader = false;
    coordinator.reconcile();
    expect(await lost).toEqual({ errorCode: ErrorCode.NOT_COORDINATOR, topics: [] });
    part.isLeader = true;

    const many = Array.from({ length: 10_001 }, (_, i) => i);
    expect(await deleteOffsets(coordinator, group, [{ name: 't', partitions: many }])).toEqual({ errorCode: ErrorCode.INVALID_REQUEST, topics: [] });
    coordinator.close();
  });
});
