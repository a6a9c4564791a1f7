/**
 * kafka-topics options of `strand topics`: create's --replica-assignment (parsed as a function,
 * usage errors naming the bad partition) and describe's partition filters
 * (--under-replicated-partitions, --under-min-isr-partitions, --at-min-isr-partitions,
 * --unavailable-partitions) and --exclude-internal, decided as kafka-topics decides them, then the
 * built binary against the in-memory twin, whose ISR and leaders the test sets, printing
 * kafka-topics --describe's layout (a topic line, then a tab-indented line per partition; no
 * topic line under a filter), and topics delete refusing __consumer_offsets as kafka-topics does.
 */
import { parseReplicaAssignment, partitionMatches } from '../../src/commands/topics';
import { useTwinCluster } from '../support/twin-cluster';
import { usage } from '../support/usage';

describe('parseReplicaAssignment', () => {
  it("reads Kafka's partitions-by-commas, replicas-by-colons form", () => {
    expect(parseReplicaAssignment('1:2, 2:3 ,3:1')).toEqual([
      { partition: 0, brokerIds: [1, 2] },
      { partition: 1, brokerIds: [2, 3] },
      { partition: 2, brokerIds: [3, 1] },
    ]);
    expect(parseReplicaAssignment('3')).toEqual([{ partition: 0, brokerIds: [3] }]);
    expect(usage(() => parseReplicaAssignment('1:2,3'))).toMatch(/partition 1 has 1 replicas, partition 0 has 2/);
    expect(usage(() => parseReplicaAssignment('1:1'))).toMatch(/partition 0 names a broker twice/);
    expect(usage(() => parseReplicaAssignment('1:x'))).toMatch(/--replica-assignment partition 0 broker id must be an integer/);
    expect(usage(() => parseReplicaAssignment('1,,2'))).toMatch(/partition 1 broker id/);
  });
});

describe('partitionMatches', () => {
  const live = new Set([1, 2, 3]);
  const p = (leader: number, isr: number[]): { leader: number; replicas: number[]; isr: number[] } => ({ leader, replicas: [1, 2, 3], isr });
  it('decides each filter as kafka-topics does', () => {
    expect([partitionMatches('under-replicated', p(1, [1, 2]), 2, live), partitionMatches('under-replicated', p(1, [1, 2, 3]), 2, live)]).toEqual([true, false]);
    expect([partitionMatches('under-min-isr', p(1, [1]), 2, live), partitionMatches('under-min-isr', p(1, [1, 2]), 2, live)]).toEqual([true, false]);
    expect([partitionMatches('at-min-isr', p(1, [1, 2]), 2, live), partitionMatches('at-min-isr', p(1, [1, 2, 3]), 2, live)]).toEqual([true, false]);
    expect([partitionMatches('unavailable', p(-1, []), 2, live), partitionMatches('unavailable', p(4, [4]), 2, live), partitionMatches('unavailable', p(1, [1]), 2, live)]).toEqual([true, true, false]);
  });

  it('counts a partition being reassigned as under-replicated by its replicas less the adding ones (kafka-topics)', () => {
    // Replicas 1,2,3 moving to 2,3,4: the replica set is 1,2,3,4 until 4 joins the ISR.
    const moving = { leader: 1, replicas: [1, 2, 3, 4], isr: [1, 2, 3] };
    expect([partitionMatches('under-replicated', moving, 2, live, [4]), partitionMatches('under-replicated', { ...moving, isr: [1, 2] }, 2, live, [4]), partitionMatches('under-replicated', moving, 2, live)]).toEqual([false, true, true]);
  });

  it('counts a partition without a leader as under min ISR, whatever its ISR (kafka-topics: !hasLeader || isr < min)', () => {
    // Leader lost with the ISR kept at its last member(s): no acks=all write can succeed.
    expect([partitionMatches('under-min-isr', p(-1, [1, 2]), 2, live), partitionMatches('under-min-isr', p(-1, [1, 2, 3]), 1, live)]).toEqual([true, true]);
  });
});

describe('strand topics create --replica-assignment, describe filters, and delete of an internal topic', () => {
  const twin = useTwinCluster();

  it('creates with the named replicas, shows only the partitions a filter selects, and refuses to delete __consumer_offsets', async () => {
    let r = await twin.strand(['topics', 'create', 'a', '--replica-assignment', '2:3,3:1,1:2']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(twin.mem.topics.get('a')?.partitions.map((p) => [p.leaderId, ...p.replicas])).toEqual([
      [2, 2, 3],
      [3, 3, 1],
      [1, 1, 2],
    ]);
    r = await twin.strand(['topics', 'create', 'b', '-p', '2', '--replica-assignment', '1']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/without --partitions and --replication-factor/)]);

    twin.mem.createTopic('m', 2, 3, { 'min.insync.replicas': '2' });
    twin.mem.createTopic('__consumer_offsets', 1, 3);
    const a = twin.mem.topics.get('a');
    const m = twin.mem.topics.get('m');
    if (a === undefined || m === undefined) throw new Error('topics missing');
    Object.assign(a.partitions[1] ?? {}, { isr: [3] });
    Object.assign(m.partitions[0] ?? {}, { isr: [1, 2] });
    Object.assign(m.partitions[1] ?? {}, { isr: [], leaderId: -1 });

    r = await twin.strand(['topics', 'describe', '--under-replicated-partitions', '--exclude-internal']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    // As kafka-topics: a filter prints only the selected partitions' lines, no topic line; a
    // partition without a leader reads 'none'.
    expect(r.stdout.split('\n')).toEqual([
      '\tTopic: a\tPartition: 1\tLeader: 3\tReplicas: 3,1\tIsr: 3\tElr: N/A\tLastKnownElr: N/A',
      '\tTopic: m\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2\tElr: N/A\tLastKnownElr: N/A',
      '\tTopic: m\tPartition: 1\tLeader: none\tReplicas: 2,3,1\tIsr: \tElr: N/A\tLastKnownElr: N/A',
      '',
    ]);
    // Without a filter, the topic line comes first: the whole topic's shape, and the configs
    // set on it.
    r = await twin.strand(['topics', 'describe', 'm']);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([expect.stringMatching(/^Topic: m\tTopicId: \w+\tPartitionCount: 2\tReplicationFactor: 3\tConfigs: min\.insync\.replicas=2$/), '\tTopic: m\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2\tElr: N/A\tLastKnownElr: N/A']);

    const partitionsOf = async (flag: string): Promise<string[]> => {
      const j = await twin.strand(['topics', 'describe', flag, '--json']);
      return (JSON.parse(j.stdout) as { name: string; partitions: { partition: number }[] }[]).flatMap((t) => t.partitions.map((p) => `${t.name}-${p.partition}`));
    };
    expect(await partitionsOf('--under-min-isr-partitions')).toEqual(['m-1']);
    expect(await partitionsOf('--at-min-isr-partitions')).toEqual(['a-1', 'm-0']); // a: min.insync.replicas 1, its partition 1 down to one replica
    expect(await partitionsOf('--unavailable-partitions')).toEqual(['m-1']);
    r = await twin.strand(['topics', 'describe', '--under-replicated-partitions', '--unavailable-partitions']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/give at most one of/)]);

    // kafka-topics' refusal of an internal topic (Kafka's Topic.isInternal names), before any
    // request: exit 1, the topic kept. A user topic that merely starts with __ can go.
    for (const args of [['__consumer_offsets'], ['__consumer_offsets', '--if-exists']]) {
      r = await twin.strand(['topics', 'delete', ...args]);
      expect([args, r.code, r.stdout, r.stderr]).toEqual([args, 1, '', 'strand topics delete: Topic __consumer_offsets is a kafka internal topic and is not allowed to be marked for deletion.\n']);
    }
    expect(twin.mem.topics.get('__consumer_offsets')?.partitions).toHaveLength(1);
    twin.mem.createTopic('__mine', 1);
    r = await twin.strand(['topics', 'delete', '__mine']);
    expect([r.code, r.stdout]).toEqual([0, 'Deleted topic __mine.\n']);
  }, 60_000);
});
