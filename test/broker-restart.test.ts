/**
 * A broker killed with SIGKILL and restarted at once, while its previous incarnation's session
 * is still alive: it must wait for that session to expire (not give up on
 * DUPLICATE_BROKER_REGISTRATION), re-register, ignore stale metadata that still names it leader,
 * and be serving again (ready, back in every ISR). Writes acknowledged before and after the
 * restart are all readable.
 *
 * Then the operator tools on that partition, with the CLI: `strand get-offsets` answers the log
 * start, the high watermark and the record with the largest timestamp (consistent with a lookup
 * by that time); `strand leader-election --election-type preferred` moves leadership back to the
 * restarted preferred replica (automatic rebalancing is off, so only the election can), and a
 * second one finds nothing to do.
 */
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

test('kill -9 and immediate restart of a leader broker', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.session.timeout.ms=3000', 'broker.heartbeat.interval.ms=300', 'replica.lag.time.max.ms=3000', 'auto.leader.rebalance.enable=false'] });
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
    await until('restarted broker ready', async () => ((await cluster.httpStatus(leader.id, '/readyz')) === 200 ? true : undefined), 60_000);
    await until('full ISR', async () => ((await brokers.metadata(['r'])).topics[0]?.partitions[0]?.isr.length === 3 ? true : undefined), 60_000);
    expect((await brokers.readAll('r', 0)).map((r) => r.value)).toEqual(values);

    const bootstrap = cluster.brokerAddresses().join(',');
    const offsets = async (time: string): Promise<string> => {
      const r = await cli(['get-offsets', '--topic', 'r', '--time', time], bootstrap);
      expect([time, r.code, r.stderr]).toEqual([time, 0, '']);
      return r.stdout;
    };
    expect(await offsets('earliest')).toBe('r:0:0\n');
    expect(await offsets('-1')).toBe(`r:0:${values.length}\n`);
    const max = await cli(['get-offsets', '--topic', 'r', '--time', 'max-timestamp', '--json'], bootstrap);
    const [m] = JSON.parse(max.stdout) as { offset: number; timestamp: number }[];
    expect(m?.offset).toBeGreaterThanOrEqual(0);
    expect(m?.offset).toBeLessThan(values.length);
    // No record is later than the largest timestamp, and none before its offset reaches it.
    expect(await offsets(String(m?.timestamp))).toBe(`r:0:${m?.offset}\n`);
    expect(await offsets(String((m?.timestamp as number) + 1))).toBe('');

    // The killed broker was the preferred replica (a new partition's first leader); after its
    // restart another replica leads until a preferred election hands leadership back.
    const replicas = (await brokers.metadata(['r'])).topics[0]?.partitions[0]?.replicas ?? [];
    expect(replicas[0]).toBe(leader.id);
    expect((await brokers.leaderOf('r', 0))?.id).not.toBe(leader.id);
    const elected = await cli(['leader-election', '--election-type', 'preferred', '--topic', 'r', '--partition', '0'], bootstrap);
    expect([elected.code, elected.stdout, elected.stderr]).toEqual([0, 'Successfully completed leader election (PREFERRED) for partitions r-0\n', '']);
    await until('the preferred replica to lead again', async () => ((await brokers.leaderOf('r', 0))?.id === leader.id ? true : undefined), 30_000);
    const again = await cli(['leader-election', '--election-type', 'PREFERRED', '--all-topic-partitions', '--json'], bootstrap);
    expect([again.code, again.stdout]).toEqual([0, '[]\n']);
  } finally {
    brokers.close();
    await cluster.close();
  }
});
