/**
 * A broker killed with SIGKILL and restarted at once, while its previous incarnation's session
 * is still alive: it must wait for that session to expire (not give up on
 * DUPLICATE_BROKER_REGISTRATION), re-register, ignore stale metadata that still names it leader,
 * and be serving again (ready, back in every ISR). Writes acknowledged before and after the
 * restart are all readable.
 */
import * as http from 'node:http';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

function status(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

test('kill -9 and immediate restart of a leader broker', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=300', 'replica.lag.time.max.ms=3000'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const res = await brokers.createTopics({ topics: [{ name: 'r', numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] }], validateOnly: false });
    expect(res.topics[0]?.errorCode).toBe(0);
    const producer = { id: 5, epoch: 0 };
    let seq = 0;
    const values: string[] = [];
    const send = async (): Promise<void> => {
      const v = `v${seq}`;
      await brokers.sendIdempotent('r', 0, v, producer, seq++, performance.now() + 60_000);
      values.push(v);
    };
    for (let i = 0; i < 10; i++) await send();
    const leader = (await brokers.leaderOf('r', 0))!;
    await cluster.kill(leader.id);
    cluster.start(leader.id);
    for (let i = 0; i < 10; i++) await send();
    await until('restarted broker ready', async () => ((await status(cluster.node(leader.id).httpPort, '/readyz')) === 200 ? true : undefined), 60_000);
    await until('full ISR', async () => ((await brokers.metadata(['r'])).topics[0]?.partitions[0]?.isr.length === 3 ? true : undefined), 60_000);
    expect((await brokers.readAll('r', 0)).map((r) => r.value)).toEqual(values);
  } finally {
    brokers.close();
    await cluster.close();
  }
});
