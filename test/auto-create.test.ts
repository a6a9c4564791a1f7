/**
 * auto.create.topics.enable on a real node (one combined process): a Metadata request naming an
 * unknown topic creates it with the cluster's num.partitions and default.replication.factor
 * (answered LEADER_NOT_AVAILABLE meantime, as Kafka does), so `strand produce` to a new name
 * succeeds; internal-looking and invalid names are not created.
 */
import { ErrorCode } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

test('a Metadata request for an unknown topic creates it when auto.create.topics.enable=true', async () => {
  const cluster = await ProcessCluster.create({ controllers: 1, combined: true, overrides: ['broker.heartbeat.interval.ms=300', 'auto.create.topics.enable=true', 'num.partitions=2'] });
  try {
    cluster.startAll();
    const brokers = new TestBrokers(cluster.brokerAddresses());
    await until('the broker', async () => ((await brokers.metadata([])).brokers.length === 1 ? true : undefined), 60_000);
    // An admin lookup (allow_auto_topic_creation unset) does not create it.
    expect((await brokers.metadata(['auto-a'])).topics[0]?.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const first = await brokers.metadata(['auto-a'], true);
    expect(first.topics[0]?.errorCode).toBe(ErrorCode.LEADER_NOT_AVAILABLE);
    const created = await until('auto-a created with leaders', async () => {
      const t = (await brokers.metadata(['auto-a'])).topics[0];
      return t !== undefined && t.errorCode === 0 && t.partitions.every((p) => p.leaderId >= 0) ? t : undefined;
    }, 30_000);
    expect(created.partitions.map((p) => [p.partition, p.replicas.length])).toEqual([[0, 1], [1, 1]]);
    // Names that are not created: an internal one is unknown, an illegal one invalid (Kafka).
    const refused = await brokers.metadata(['__internal', 'bad name'], true);
    expect(refused.topics.map((t) => t.errorCode)).toEqual([ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.INVALID_TOPIC_EXCEPTION]);
    // The CLI producer to a new name: the client waits through LEADER_NOT_AVAILABLE.
    const bootstrap = cluster.brokerAddresses().join(',');
    const produced = await cli(['produce', 'auto-b'], bootstrap, 'hello\n');
    expect([produced.code, produced.stderr]).toEqual([0, '']);
    const consumed = await cli(['consume', 'auto-b', '--from-beginning', '--max-messages', '1'], bootstrap);
    expect([consumed.code, consumed.stdout.trim()]).toEqual([0, 'hello']);
    // `strand topics describe` is an admin lookup: a typo is not created.
    expect((await cli(['topics', 'describe', 'typo'], bootstrap)).code).not.toBe(0);
    expect((await brokers.metadata(['typo'])).topics[0]?.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  } finally {
    await cluster.close();
  }
});
