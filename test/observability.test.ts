/**
 * The HTTP endpoints of real nodes (three combined nodes): /healthz answers, /readyz is 200 once a
 * node's broker is registered, unfenced and caught up and its controller is in a quorum with a
 * leader, /metrics carries the documented metric names with values that follow what happened
 * (records produced, exactly one active controller, partitions per role). When two nodes stop,
 * the survivor's controller loses its quorum and /readyz turns 503 with the reason.
 * Consumer-group lag: the coordinator of a group (and only it) exports
 * strand_consumergroup_lag{group,topic,partition} = high watermark - committed offset, computed
 * at scrape time both when it leads the partition itself and when it must ask the leader.
 */
import * as http from 'node:http';
import { CoordinatorType, ErrorCode, type FindCoordinatorRequest, type FindCoordinatorResponse, type OffsetCommitRequest, type OffsetCommitResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('health, readiness and metrics of a running cluster', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.heartbeat.interval.ms=300', 'broker.session.timeout.ms=3000', 'controller.quorum.election.timeout.ms=500'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    for (const n of cluster.nodes) {
      expect((await until('healthz', async () => get(n.httpPort, '/healthz'), 30_000)).status).toBe(200);
      await until(`node ${n.id} ready`, async () => ((await get(n.httpPort, '/readyz')).status === 200 ? true : undefined), 60_000);
    }
    const res = await brokers.createTopics({ topics: [{ name: 'm', numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] }], validateOnly: false });
    expect(res.topics[0]?.errorCode).toBe(0);
    const producer = { id: 77, epoch: 0 };
    for (let i = 0; i < 10; i++) await brokers.sendIdempotent('m', 0, `x${i}`, producer, i, performance.now() + 30_000);
    const leader = (await brokers.leaderOf('m', 0))!;
    const leaderHttp = cluster.node(leader.id).httpPort;
    const text = (await get(leaderHttp, '/metrics')).body;
    for (const name of ['strand_broker_topic_bytes_in_total', 'strand_broker_topic_bytes_out_total', 'strand_request_duration_seconds_bucket', 'strand_broker_under_replicated_partitions', 'strand_broker_offline_partitions', 'strand_broker_log_size_bytes', 'strand_controller_raft_term', 'strand_controller_raft_snapshot_index', 'strand_process_resident_memory_bytes', 'strand_nodejs_eventloop_lag_p99_seconds']) {
      expect(text).toContain(name);
    }
    expect(metric(text, 'strand_broker_topic_messages_in_total', 'topic="m"')).toBe(10);
    expect(metric(text, 'strand_broker_partitions', 'role="leader"')).toBeGreaterThanOrEqual(1);
    let active = 0;
    for (const n of cluster.nodes) active += metric((await get(n.httpPort, '/metrics')).body, 'strand_controller_active_count');
    expect(active).toBe(1);
    expect((await get(leaderHttp, '/nope')).status).toBe(404);

    // Consumer-group lag. Pick one group coordinated by the leader of m-0 (lag read locally) and
    // one coordinated by another broker (lag asked of the leader with ListOffsets).
    const address = (id: number): string => `127.0.0.1:${cluster.node(id).brokerPort}`;
    const coordinatorOf = (group: string): Promise<number> =>
      until(`coordinator of ${group}`, async () => {
        const r = await brokers.call<FindCoordinatorRequest, FindCoordinatorResponse>(address(leader.id), (c, q, m, o, cb) => c.findCoordinator(q, m, o, cb), { key: group, keyType: CoordinatorType.COORDINATOR_GROUP }, 5000);
        return r.errorCode === 0 ? r.nodeId : undefined;
      }, 60_000);
    const groups = new Map<'local' | 'remote', { group: string; coordinator: number }>();
    for (let i = 0; groups.size < 2 && i < 200; i++) {
      const group = `lag-${i}`;
      const coordinator = await coordinatorOf(group);
      const kind = coordinator === leader.id ? 'local' : 'remote';
      if (!groups.has(kind)) groups.set(kind, { group, coordinator });
    }
    expect(groups.size).toBe(2);
    // FindCoordinator answers from the metadata image as soon as it names the coordinator; the
    // coordinator itself may still be opening and loading its __consumer_offsets partition
    // (COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR meanwhile): retried, as a client does.
    const retriable = new Set([ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR]);
    const commit = async (group: string, coordinator: number, offset: number): Promise<void> => {
      const code = await until(`commit of ${group}`, async () => {
        const r = await brokers.call<OffsetCommitRequest, OffsetCommitResponse>(address(coordinator), (c, q, m, o, cb) => c.offsetCommit(q, m, o, cb), { groupId: group, generationId: -1, memberId: '', topics: [{ name: 'm', partitions: [{ partition: 0, committedOffset: offset, committedLeaderEpoch: -1, metadata: '' }] }] }, 10_000);
        const errorCode = r.topics[0]?.partitions[0]?.errorCode ?? -1;
        return retriable.has(errorCode) ? undefined : errorCode;
      }, 30_000);
      expect(code).toBe(0);
    };
    const lagOf = async (node: number, group: string, name = 'strand_consumergroup_lag'): Promise<number> => metric((await get(cluster.node(node).httpPort, '/metrics')).body, name, `group="${group}",`);
    const { group: localGroup, coordinator: localCoordinator } = groups.get('local')!;
    const { group: remoteGroup, coordinator: remoteCoordinator } = groups.get('remote')!;
    await commit(localGroup, localCoordinator, 4);
    await commit(remoteGroup, remoteCoordinator, 9);
    expect(await lagOf(localCoordinator, localGroup)).toBe(6);
    expect(await lagOf(localCoordinator, localGroup, 'strand_consumergroup_current_offset')).toBe(4);
    expect(await lagOf(remoteCoordinator, remoteGroup)).toBe(1);
    // Only the coordinator exports a group's series.
    for (const n of cluster.nodes) if (n.id !== remoteCoordinator) expect((await get(n.httpPort, '/metrics')).body).not.toContain(`group="${remoteGroup}"`);
    // More records: the next scrape sees the new high watermark (nothing is cached between scrapes).
    for (let i = 10; i < 15; i++) await brokers.sendIdempotent('m', 0, `x${i}`, producer, i, performance.now() + 30_000);
    expect(await lagOf(localCoordinator, localGroup)).toBe(11);
    expect(await lagOf(remoteCoordinator, remoteGroup)).toBe(6);
    await commit(remoteGroup, remoteCoordinator, 15);
    expect(await lagOf(remoteCoordinator, remoteGroup)).toBe(0);

    // Two nodes stop: the survivor has no quorum and reports it.
    const [a, b, c] = cluster.nodes.map((n) => n.id) as [number, number, number];
    await cluster.kill(a);
    await cluster.kill(b);
    const r = await until('503 from the survivor', async () => {
      const x = await get(cluster.node(c).httpPort, '/readyz');
      return x.status === 503 ? x : undefined;
    }, 30_000);
    expect(r.body).toContain('no quorum leader');
  } finally {
    brokers.close();
    await cluster.close();
  }
});
