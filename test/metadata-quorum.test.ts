/**
 * `strand metadata-quorum describe` (Kafka's kafka-metadata-quorum) across real processes (three
 * combined nodes): --status names the active controller as leader with the three voters and the
 * three brokers as observers; --replication shows every replica caught up. A paused follower
 * (SIGSTOP) falls behind while the metadata log moves on (topics are created): its voter row
 * lags with a last contact that stops moving, and once resumed it catches up again. Bounded by
 * monotonic deadlines; the cluster is removed in finally.
 */
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

interface Row {
  nodeId: number;
  logEndOffset: number;
  lag: number;
  lastFetchTimestamp: number;
  lastCaughtUpTimestamp: number;
  status: string;
}

test('strand metadata-quorum describe reports the leader, voters, observers and a paused follower falling behind', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.heartbeat.interval.ms=300'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  const bootstrap = cluster.brokerAddresses().join(',');
  const describe = async (mode: '--status' | '--replication'): Promise<unknown> => {
    const r = await cli(['metadata-quorum', 'describe', mode, '--json'], bootstrap);
    if (r.code !== 0) throw new Error(`metadata-quorum describe ${mode}: exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const replication = async (): Promise<Row[]> => (await describe('--replication')) as Row[];
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    // Every replica caught up, the brokers' heartbeats included.
    const rows = await until('every replica caught up', async () => {
      const r = await replication();
      return r.length === 6 && r.every((x) => x.lag === 0 && x.lastFetchTimestamp > 0) ? r : undefined;
    }, 30_000);
    const leader = rows[0] as Row;
    expect(rows.map((r) => r.status)).toEqual(['Leader', 'Follower', 'Follower', 'Observer', 'Observer', 'Observer']);
    expect(rows.slice(3).map((r) => r.nodeId)).toEqual([1, 2, 3]);
    expect(rows.slice(0, 3).map((r) => r.nodeId).sort()).toEqual([1, 2, 3]);

    const status = (await describe('--status')) as { clusterId: string; leaderId: number; leaderEpoch: number; highWatermark: number; maxFollowerLag: number; currentVoters: number[]; currentObservers: number[] };
    expect(status).toMatchObject({ leaderId: leader.nodeId, currentVoters: [1, 2, 3], currentObservers: [1, 2, 3] });
    expect(status.clusterId).not.toBe('');
    expect(status.leaderEpoch).toBeGreaterThan(0);
    expect(status.highWatermark).toBeGreaterThan(0);

    // A paused follower: the log moves on without it.
    const follower = (rows[1] as Row).nodeId;
    cluster.pause(follower);
    try {
      for (const name of ['q1', 'q2']) {
        const created = await brokers.createTopics({ topics: [{ name, numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [leader.nodeId] }], configs: [] }], validateOnly: false });
        expect(created.topics[0]?.errorCode).toBe(0);
      }
      const behind = await until('the paused follower lagging', async () => {
        const r = await replication();
        const v = r.find((x) => x.status === 'Follower' && x.nodeId === follower);
        return v !== undefined && v.lag > 0 ? v : undefined;
      }, 30_000);
      // Its last contact and caught-up times stay where the pause left them.
      const again = (await replication()).find((x) => x.status === 'Follower' && x.nodeId === follower);
      expect(again).toMatchObject({ lastFetchTimestamp: behind.lastFetchTimestamp, lastCaughtUpTimestamp: behind.lastCaughtUpTimestamp });
      const s = (await describe('--status')) as { maxFollowerLag: number };
      expect(s.maxFollowerLag).toBeGreaterThan(0);
    } finally {
      cluster.resume(follower);
    }
    await until('the resumed follower caught up', async () => {
      const r = await replication();
      return r.find((x) => x.status === 'Follower' && x.nodeId === follower)?.lag === 0 ? true : undefined;
    }, 30_000);
  } catch (e: unknown) {
    for (const n of cluster.nodes) process.stdout.write(`--- node ${n.id} ---\n${cluster.logOf(n.id).split('\n').slice(-20).join('\n')}\n`);
    throw e;
  } finally {
    brokers.close();
    await cluster.close();
  }
});
