/**
 * The HTTP endpoints of real nodes (three combined nodes): /healthz answers, /readyz is 200 once a
 * node's broker is registered, unfenced and caught up and its controller is in a quorum with a
 * leader, /metrics carries the documented metric names with values that follow what happened
 * (records produced, exactly one active controller, partitions per role). When two nodes stop,
 * the survivor's controller loses its quorum and /readyz turns 503 with the reason.
 */
import * as http from 'node:http';
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
    for (const name of ['strand_broker_topic_bytes_in_total', 'strand_broker_topic_bytes_out_total', 'strand_request_duration_seconds_bucket', 'strand_broker_under_replicated_partitions', 'strand_broker_offline_partitions', 'strand_broker_log_size_bytes', 'strand_controller_raft_term', 'strand_process_resident_memory_bytes']) {
      expect(text).toContain(name);
    }
    expect(metric(text, 'strand_broker_topic_messages_in_total', 'topic="m"')).toBe(10);
    expect(metric(text, 'strand_broker_partitions', 'role="leader"')).toBeGreaterThanOrEqual(1);
    let active = 0;
    for (const n of cluster.nodes) active += metric((await get(n.httpPort, '/metrics')).body, 'strand_controller_active_count');
    expect(active).toBe(1);
    expect((await get(leaderHttp, '/nope')).status).toBe(404);

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
