/**
 * A starting broker is unfenced as soon as it has caught up with the metadata up to its own
 * registration (and opened its replicas), not at its next periodic heartbeat: the controller
 * unfences only on a heartbeat that reports the broker caught up, and the first heartbeat goes
 * out right after registering, before any metadata has arrived. With broker.heartbeat.interval.ms
 * at 10 minutes, a broker that waited for its next periodic heartbeat would stay fenced (not
 * ready, serving nothing) that long; it must become ready well within the test's time. Kafka's
 * broker heartbeats every 10 ms until it has caught up, for the same reason.
 *
 * One combined node (controller + broker) as separate `strand server` process; the check is that
 * it becomes ready (/readyz), leads a new partition and acknowledges a write.
 */
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(90_000);

test('a broker is unfenced once caught up with its registration, without waiting a heartbeat interval', async () => {
  const cluster = await ProcessCluster.create({ controllers: 1, combined: true, overrides: ['broker.heartbeat.interval.ms=600000', 'broker.session.timeout.ms=1200000'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    await until('the broker ready (registered, unfenced, caught up)', async () => ((await cluster.httpStatus(1, '/readyz')) === 200 ? true : undefined), 45_000);
    // Unfenced means electable: a new topic gets this broker as its leader.
    const res = await brokers.createTopics({ topics: [{ name: 'u', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], validateOnly: false });
    expect(res.topics[0]?.errorCode).toBe(0);
    const leader = await until('a leader for u-0', async () => brokers.leaderOf('u', 0), 20_000);
    expect(leader.id).toBe(1);
    const offset = await brokers.sendIdempotent('u', 0, 'v0', { id: 1, epoch: 0 }, 0, performance.now() + 20_000);
    expect(offset).toBe(0);
  } finally {
    brokers.close();
    await cluster.close();
  }
});
