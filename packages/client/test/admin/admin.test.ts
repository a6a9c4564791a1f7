/**
 * Checks Admin against the in-memory broker twin: topic create (with configs, duplicate and
 * invalid cases), list, describe (leaders, replicas, ISR), partitions, configs describe/alter,
 * cluster description, offsets by spec, delete records (answered per partition: one may fail with
 * OFFSET_OUT_OF_RANGE while another is deleted), log dirs per broker (replicas with sizes, a
 * topic filter, per-broker errors for unregistered and unreachable brokers), preferred leader
 * election, retries of a retriable whole-call failure, and the group operations (list, describe
 * with decoded assignments, offsets with lag, reset, delete, refusal while members are active,
 * and deleting some partitions' offsets: per-partition results, group errors thrown, a moved or
 * loading coordinator retried).
 */
import { ErrorCode } from '@strand/protocol';
import { Admin } from '../../src/admin/admin';
import { Consumer } from '../../src/consumer/consumer';
import { Producer } from '../../src/producer/producer';
import { MemoryCluster } from '../support/memory-broker';

let mem: MemoryCluster;
let admin: Admin;

beforeEach(async () => {
  mem = await MemoryCluster.start({ brokers: 3 });
  // A bounded retry count (Kafka's admin default is unbounded, within default.api.timeout.ms), so
  // the tests can count attempts and an unreachable broker fails fast.
  admin = new Admin({ 'bootstrap.servers': mem.bootstrap, 'retry.backoff.ms': 5, retries: 5 });
});

afterEach(async () => {
  await admin.close();
  await mem.stop();
});

describe('Admin', () => {
  it('creates, lists, describes, grows and deletes topics', async () => {
    expect(await admin.createTopics([{ name: 'a', numPartitions: 3, replicationFactor: 2, configs: { 'retention.ms': '1000' } }, { name: 'b' }])).toEqual([{ name: 'a' }, { name: 'b' }]);
    const dup = await admin.createTopics([{ name: 'a' }]);
    expect(dup[0]?.error?.errorName).toBe('TOPIC_ALREADY_EXISTS');
    await expect(admin.createTopic({ name: 'c', replicationFactor: 5 })).rejects.toMatchObject({ errorName: 'INVALID_REPLICATION_FACTOR' });
    await expect(admin.createTopic({ name: 'd', configs: { 'retention.ms': 'soon' } })).rejects.toMatchObject({ errorName: 'INVALID_CONFIG' });
    expect(await admin.listTopics()).toEqual(['a', 'b']);
    const [a] = await admin.describeTopics(['a']);
    expect(a?.partitions.map((p) => [p.partition, p.leader, p.replicas, p.isr])).toEqual([
      [0, 1, [1, 2], [1, 2]],
      [1, 2, [2, 3], [2, 3]],
      [2, 3, [3, 1], [3, 1]],
    ]);
    await admin.createPartitions('a', 5);
    expect((await admin.describeTopics(['a']))[0]?.partitions.length).toBe(5);
    await expect(admin.createPartitions('a', 2)).rejects.toMatchObject({ errorName: 'INVALID_PARTITIONS' });
    expect(await admin.deleteTopics(['b', 'zz'])).toEqual([{ name: 'b' }, expect.objectContaining({ name: 'zz' })]);
    expect(await admin.listTopics()).toEqual(['a']);
  });

  it('adds partitions on the brokers given, or only validates the request (Kafka NewPartitions.increaseTo with assignments)', async () => {
    await admin.createTopic({ name: 'g', numPartitions: 1, replicationFactor: 2 });
    await admin.createPartitions('g', 4, { validateOnly: true });
    expect((await admin.describeTopics(['g']))[0]?.partitions.length).toBe(1);
    await admin.createPartitions('g', 3, { assignments: [[3, 1], [2, 3]] });
    expect((await admin.describeTopics(['g']))[0]?.partitions.map((p) => p.replicas)).toEqual([expect.any(Array), [3, 1], [2, 3]]);
    await expect(admin.createPartitions('g', 5, { assignments: [[1, 2]] })).rejects.toMatchObject({ errorName: 'INVALID_REPLICA_ASSIGNMENT' });
  });

  it('describes and alters configs', async () => {
    await admin.createTopic({ name: 't', configs: { 'cleanup.policy': 'compact' } });
    const cfg = await admin.describeConfigs('t');
    expect(cfg.find((c) => c.name === 'cleanup.policy')).toMatchObject({ value: 'compact', source: 'dynamic', isDefault: false });
    expect(cfg.find((c) => c.name === 'retention.ms')).toMatchObject({ source: 'default', isDefault: true });
    await admin.alterConfigs('t', { set: { 'retention.ms': '5000' }, delete: ['cleanup.policy'] });
    const after = await admin.describeConfigs('t', { keys: ['retention.ms', 'cleanup.policy'] });
    expect(after.map((c) => [c.name, c.value, c.source])).toEqual([
      ['retention.ms', '5000', 'dynamic'],
      ['cleanup.policy', 'delete', 'default'],
    ]);
    await expect(admin.alterConfigs('t', { set: { 'min.insync.replicas': '0' } })).rejects.toMatchObject({ errorName: 'INVALID_CONFIG' });
  });

  it('appends to and subtracts from a list config (Kafka APPEND / SUBTRACT)', async () => {
    await admin.createTopic({ name: 'l' });
    const policy = async (): Promise<string | undefined> => (await admin.describeConfigs('l', { keys: ['cleanup.policy'] }))[0]?.value;
    await admin.alterConfigs('l', { append: { 'cleanup.policy': 'compact' } });
    expect(await policy()).toBe('delete,compact');
    await admin.alterConfigs('l', { subtract: { 'cleanup.policy': 'delete' } }, { validateOnly: true });
    expect(await policy()).toBe('delete,compact');
    await admin.alterConfigs('l', { subtract: { 'cleanup.policy': 'delete' } });
    expect(await policy()).toBe('compact');
    await expect(admin.alterConfigs('l', { append: { 'retention.ms': '1' } })).rejects.toMatchObject({ errorName: 'INVALID_CONFIG' });
  });

  it('describes the cluster, lists offsets, deletes records and elects preferred leaders', async () => {
    const d = await admin.describeCluster();
    expect(d.brokers.map((b) => [b.id, b.state])).toEqual([[1, 'running'], [2, 'running'], [3, 'running']]);
    expect(d.controllers[0]).toMatchObject({ id: 1001, role: 'leader' });
    await admin.createTopic({ name: 't', numPartitions: 2, replicationFactor: 3 });
    const p = new Producer({ 'bootstrap.servers': mem.bootstrap });
    await p.sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 't', partition: 0, value: `${i}`, timestamp: 1000 + i })));
    await p.close();
    expect((await admin.listOffsets('t', 'latest')).map((o) => o.offset)).toEqual([5, 0]);
    expect((await admin.listOffsets('t', { timestamp: 1003 }))[0]?.offset).toBe(3);
    // KIP-734: the record with the largest timestamp; none in the empty partition 1.
    expect((await admin.listOffsets('t', 'max-timestamp')).map((o) => [o.offset, o.timestamp])).toEqual([[4, 1004], [-1, -1]]);
    await expect(admin.listOffsets('t', { timestamp: -3 })).rejects.toMatchObject({ errorName: 'INVALID_REQUEST' });
    expect(await admin.deleteRecords('t', new Map([[0, 2]]))).toEqual([{ topic: 't', partition: 0, lowWatermark: 2 }]);
    expect((await admin.listOffsets('t', 'earliest'))[0]?.offset).toBe(2);
    mem.moveLeader('t', 1, 3);
    const results = await admin.electLeaders('preferred', [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    expect(results.map((r) => [r.partition, r.error?.errorName])).toEqual([[0, 'ELECTION_NOT_NEEDED'], [1, undefined]]);
    expect(mem.partition('t', 1).leaderId).toBe(2);
  });

  it('deletes records per partition: one partition succeeds while another fails, as Kafka\'s DeleteRecordsResult.lowWatermarks()', async () => {
    await admin.createTopic({ name: 't', numPartitions: 2 }); // leaders on brokers 1 and 2: one request each
    const p = new Producer({ 'bootstrap.servers': mem.bootstrap });
    await p.sendBatch([...Array.from({ length: 5 }, (_, i) => ({ topic: 't', partition: 0, value: `${i}` })), ...Array.from({ length: 3 }, (_, i) => ({ topic: 't', partition: 1, value: `${i}` }))]);
    await p.close();
    // Partition 1 has 3 records: offset 10 is beyond its high watermark.
    const results = await admin.deleteRecords('t', new Map([[1, 10], [0, 2]]));
    expect(results.map((r) => [r.topic, r.partition, r.lowWatermark, r.error?.errorName])).toEqual([
      ['t', 0, 2, undefined],
      ['t', 1, -1, 'OFFSET_OUT_OF_RANGE'],
    ]);
    expect(results[1]?.error?.message).toMatch(/t-1/);
    expect((await admin.listOffsets('t', 'earliest')).map((o) => o.offset)).toEqual([2, 0]);
    // A partition the topic does not have fails alone too; -1 deletes up to the high watermark.
    const more = await admin.deleteRecords('t', new Map([[7, 1], [1, -1]]));
    expect(more.map((r) => [r.partition, r.lowWatermark, r.error?.errorName])).toEqual([
      [1, 3, undefined],
      [7, -1, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ]);
    expect((await admin.listOffsets('t', 'earliest')).map((o) => o.offset)).toEqual([2, 3]);
    // A leader's request failing as a whole with a leadership error is retried with fresh
    // metadata (Kafka's admin client); past `retries` its partitions keep that error.
    mem.callFailures.set('deleteRecords', { code: ErrorCode.NOT_LEADER_OR_FOLLOWER, count: 1 });
    expect(await admin.deleteRecords('t', new Map([[0, 4]]))).toEqual([{ topic: 't', partition: 0, lowWatermark: 4 }]);
    mem.callFailures.set('deleteRecords', { code: ErrorCode.NOT_LEADER_OR_FOLLOWER, count: 6 }); // retries (5) + 1 attempts
    const lost = await admin.deleteRecords('t', new Map([[0, 5]]));
    expect(lost.map((r) => [r.partition, r.lowWatermark, r.error?.errorName])).toEqual([[0, -1, 'NOT_LEADER_OR_FOLLOWER']]);
    expect((await admin.listOffsets('t', 'earliest')).map((o) => o.offset)).toEqual([4, 3]);

    // With Kafka's defaults (retries unbounded), the call ends at default.api.timeout.ms, each
    // request waiting at most request.timeout.ms.
    const bounded = new Admin({ 'bootstrap.servers': mem.bootstrap, 'retry.backoff.ms': 5, 'retry.backoff.max.ms': 50, 'request.timeout.ms': 200, 'default.api.timeout.ms': 800 });
    try {
      mem.callFailures.set('deleteRecords', { code: ErrorCode.NOT_LEADER_OR_FOLLOWER, count: 1_000_000 });
      const t0 = performance.now();
      const timedOut = await bounded.deleteRecords('t', new Map([[0, 5]]));
      const took = performance.now() - t0;
      // The last round's error: the broker's, or REQUEST_TIMED_OUT when that round's request had
      // only what was left of the call (a loaded machine answers too late for it).
      expect(['NOT_LEADER_OR_FOLLOWER', 'REQUEST_TIMED_OUT']).toContain(timedOut[0]?.error?.errorName);
      expect(timedOut).toHaveLength(1);
      expect(took).toBeGreaterThanOrEqual(700); // retried until the deadline's last backoff
      expect(took).toBeLessThan(5_000);
      mem.callFailures.delete('deleteRecords');
    } finally {
      await bounded.close();
    }
    expect(() => new Admin({ 'bootstrap.servers': mem.bootstrap, 'request.timeout.ms': 1000, 'default.api.timeout.ms': 999 })).toThrow(/default.api.timeout.ms \(999\) should be equal to or larger than request.timeout.ms \(1000\)/);
    expect(new Admin({ 'bootstrap.servers': mem.bootstrap, 'request.timeout.ms': 90_000 }).config['default.api.timeout.ms']).toBe(90_000);
  });

  it('describes log dirs per broker: replicas with sizes, a topic filter, and per-broker errors for unknown and unreachable brokers', async () => {
    await admin.createTopic({ name: 'a', numPartitions: 3, replicationFactor: 2 }); // [1,2] [2,3] [3,1]
    await admin.createTopic({ name: 'b' }); // [1]
    const p = new Producer({ 'bootstrap.servers': mem.bootstrap });
    await p.sendBatch(Array.from({ length: 5 }, (_, i) => ({ topic: 'a', partition: 0, value: `v${i}` })));
    await p.close();
    const size = mem.partition('a', 0).batches.reduce((n, b) => n + b.bytes.length, 0);
    expect(size).toBeGreaterThan(0);

    const all = await admin.describeLogDirs();
    expect(all.map((b) => [b.brokerId, b.error, b.logDirs.map((d) => d.path)])).toEqual([
      [1, undefined, ['/memory/broker-1/logs']],
      [2, undefined, ['/memory/broker-2/logs']],
      [3, undefined, ['/memory/broker-3/logs']],
    ]);
    const held = (id: number): [string, number][] => (all.find((b) => b.brokerId === id)?.logDirs[0]?.replicas ?? []).map((r) => [`${r.topic}-${r.partition}`, r.sizeBytes]);
    expect(held(1)).toEqual([['a-0', size], ['a-2', 0], ['b-0', 0]]);
    expect(held(2)).toEqual([['a-0', size], ['a-1', 0]]);
    expect(held(3)).toEqual([['a-1', 0], ['a-2', 0]]);
    expect(all[0]?.logDirs[0]).toMatchObject({ totalBytes: 2 ** 40, usableBytes: 400 * 2 ** 30 });
    expect(all[0]?.logDirs[0]?.replicas[0]).toEqual({ topic: 'a', partition: 0, sizeBytes: size, offsetLag: 0, isFuture: false });

    // Named brokers only (sorted, once each); topics filter the replicas; an unregistered id is
    // that broker's error, the others still answer.
    const some = await admin.describeLogDirs([3, 9, 1, 3], { topics: ['b'] });
    expect(some.map((b) => [b.brokerId, b.error?.errorName, b.logDirs[0]?.replicas.map((r) => `${r.topic}-${r.partition}`)])).toEqual([
      [1, undefined, ['b-0']],
      [3, undefined, []],
      [9, 'BROKER_NOT_AVAILABLE', undefined],
    ]);
    expect(some[2]?.error?.message).toMatch(/registered brokers: 1,2,3/);
    // A topic name the broker refuses is each broker's error; a bad broker id fails the call.
    expect((await admin.describeLogDirs([2], { topics: ['no good'] }))[0]?.error?.errorName).toBe('INVALID_TOPIC_EXCEPTION');
    await expect(admin.describeLogDirs([-1])).rejects.toMatchObject({ errorName: 'INVALID_REQUEST' });

    // A broker that cannot be reached: its error, after the retries; the others answer.
    mem.killNode(3);
    const partial = await admin.describeLogDirs();
    expect(partial.map((b) => [b.brokerId, b.error?.errorName, b.logDirs.length])).toEqual([
      [1, undefined, 1],
      [2, undefined, 1],
      [3, 'NETWORK_EXCEPTION', 0],
    ]);
    expect(partial[2]?.error?.message).toMatch(/broker 3 \(127\.0\.0\.1:\d+\)/);
  });

  it('retries a retriable whole-call failure and surfaces a fatal one', async () => {
    mem.callFailures.set('createTopics', { code: ErrorCode.NOT_CONTROLLER, count: 2 });
    await admin.createTopic({ name: 'r' });
    expect(mem.calls.get('createTopics')).toBe(3);
    mem.callFailures.set('deleteTopics', { code: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, count: 1 });
    await expect(admin.deleteTopics(['r'])).rejects.toMatchObject({ errorName: 'CLUSTER_AUTHORIZATION_FAILED' });
  });

  it('lists, describes, resets and deletes consumer groups, with lag', async () => {
    await admin.createTopic({ name: 't', numPartitions: 2 });
    const p = new Producer({ 'bootstrap.servers': mem.bootstrap });
    await p.sendBatch(Array.from({ length: 6 }, (_, i) => ({ topic: 't', partition: i % 2, value: `${i}` })));
    await p.close();
    const c = new Consumer({ 'bootstrap.servers': mem.bootstrap, 'group.id': 'g1', 'auto.offset.reset': 'earliest', 'fetch.max.wait.ms': 20, 'heartbeat.interval.ms': 50 });
    c.subscribe(['t']);
    let got = 0;
    const deadline = performance.now() + 10_000;
    while (got < 6 && performance.now() < deadline) got += (await c.poll(100)).length;
    await c.commit([{ topic: 't', partition: 0, offset: 2 }]);
    expect((await admin.listGroups()).map((g) => [g.groupId, g.state])).toEqual([['g1', 'Stable']]);
    const desc = await admin.describeGroup('g1');
    expect(desc.members[0]?.subscription).toEqual(['t']);
    expect(desc.members[0]?.assignment.map((tp) => tp.partition).sort()).toEqual([0, 1]);
    await expect(admin.setGroupOffsets('g1', [{ topic: 't', partition: 0, offset: 0 }])).rejects.toMatchObject({ errorName: 'NON_EMPTY_GROUP' });
    expect((await admin.deleteGroups(['g1']))[0]?.error?.errorName).toBe('NON_EMPTY_GROUP');
    await c.close();
    const offsets = await admin.groupOffsets('g1', ['t']);
    expect(offsets.find((o) => o.partition === 0)).toMatchObject({ committedOffset: 3, logEndOffset: 3, lag: 0 });
    await admin.setGroupOffsets('g1', [{ topic: 't', partition: 0, offset: 1 }]);
    expect((await admin.groupOffsets('g1')).find((o) => o.partition === 0)).toMatchObject({ committedOffset: 1, lag: 2 });
    // A coordinator that moved or is loading answers per item: retried, not the item's result.
    mem.deleteGroupErrors.set('g1', [ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS]);
    expect(await admin.deleteGroups(['g1'])).toEqual([{ name: 'g1' }]);
    expect((await admin.deleteGroups(['g1']))[0]?.error?.errorName).toBe('GROUP_ID_NOT_FOUND');
  });

  it('deletes a group\'s offsets per partition: not those of a topic its members consume; group errors are thrown, a moved coordinator retried', async () => {
    await admin.createTopic({ name: 't', numPartitions: 2 });
    await admin.createTopic({ name: 'u', numPartitions: 1 });
    await admin.setGroupOffsets('g1', [{ topic: 't', partition: 0, offset: 1 }, { topic: 'u', partition: 0, offset: 1 }]);
    // No auto commit: the offsets stay those set above, whatever the consumer's positions.
    const c = new Consumer({ 'bootstrap.servers': mem.bootstrap, 'group.id': 'g1', 'enable.auto.commit': false, 'fetch.max.wait.ms': 20, 'heartbeat.interval.ms': 50 });
    c.subscribe(['t']);
    const deadline = performance.now() + 10_000;
    while (mem.groups.get('g1')?.state !== 'Stable' && performance.now() < deadline) await c.poll(50);
    const results = await admin.deleteConsumerGroupOffsets('g1', [{ topic: 'u', partition: 0 }, { topic: 't', partition: 0 }, { topic: 'nosuch', partition: 0 }, { topic: 'u', partition: 0 }]);
    expect(results.map((r) => [r.topic, r.partition, r.error?.errorName ?? null])).toEqual([
      ['nosuch', 0, 'UNKNOWN_TOPIC_OR_PARTITION'],
      ['t', 0, 'GROUP_SUBSCRIBED_TO_TOPIC'],
      ['u', 0, null],
    ]);
    expect(results.find((r) => r.topic === 't')?.error?.message).toMatch(/g1 on t-0/);
    expect((await admin.groupOffsets('g1')).map((o) => [o.topic, o.partition])).toEqual([['t', 0]]);
    await c.close();
    // Empty now: the topic's offset can go. A coordinator that moved or is loading is asked again.
    mem.offsetDeleteErrors.set('g1', [ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS]);
    const before = mem.calls.get('offsetDelete') ?? 0;
    expect(await admin.deleteConsumerGroupOffsets('g1', [{ topic: 't', partition: 0 }])).toEqual([{ topic: 't', partition: 0 }]);
    expect((mem.calls.get('offsetDelete') ?? 0) - before).toBe(3);
    expect(await admin.groupOffsets('g1')).toEqual([]);
    await expect(admin.deleteConsumerGroupOffsets('none', [{ topic: 't', partition: 0 }])).rejects.toMatchObject({ errorName: 'GROUP_ID_NOT_FOUND' });
  });
});
