/**
 * DescribeConfigs of a broker resource on a real node: the broker answers with its own settings
 * (as kafka-configs --describe --entity-type brokers --all), marking those set by the config
 * file, an override or STRAND_* as static and the rest as defaults; a broker asked for another
 * broker's settings refuses with INVALID_REQUEST. `strand cluster configs <id>` prints them.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerClient, ConfigResourceType, ConfigSource, ErrorCode, type DescribeConfigsRequest, type DescribeConfigsResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

function describeConfigs(address: string, req: DescribeConfigsRequest): Promise<DescribeConfigsResponse> {
  const client = new BrokerClient(address, grpc.credentials.createInsecure());
  return new Promise<DescribeConfigsResponse>((resolve, reject) => client.describeConfigs(req, new grpc.Metadata(), {}, (e: grpc.ServiceError | null, res?: DescribeConfigsResponse) => (e ? reject(e) : resolve(res as DescribeConfigsResponse)))).finally(() => client.close());
}

/** One combined node with `overrides`, started, its broker registered. */
async function oneNode(overrides: string[]): Promise<{ cluster: ProcessCluster; address: string; brokers: TestBrokers }> {
  const cluster = await ProcessCluster.create({ controllers: 1, combined: true, overrides: ['broker.heartbeat.interval.ms=300', ...overrides] });
  cluster.startAll();
  const address = cluster.brokerAddresses()[0] as string;
  const brokers = new TestBrokers([address]);
  try {
    await until('the broker', async () => ((await brokers.metadata([])).brokers.length === 1 ? true : undefined), 60_000);
  } catch (e: unknown) {
    brokers.close();
    await cluster.close();
    throw e;
  }
  return { cluster, address, brokers };
}

test("a broker describes its own settings, static ones marked; another broker's are refused", async () => {
  const { cluster, address, brokers } = await oneNode(['replica.lag.time.max.ms=12345']);
  try {
    const broker = ConfigResourceType.CONFIG_RESOURCE_BROKER;
    const res = await describeConfigs(address, {
      resources: [
        { type: broker, name: '1', keys: ['replica.lag.time.max.ms', 'fetch.max.bytes', 'process.roles'] },
        { type: ConfigResourceType.CONFIG_RESOURCE_TOPIC, name: 'nope', keys: [] },
        { type: broker, name: '2', keys: [] },
      ],
    });
    const [own, topic, other] = res.results;
    expect(own?.errorCode).toBe(0);
    const byName = new Map(own?.configs.map((c) => [c.name, c]));
    expect(byName.get('replica.lag.time.max.ms')).toMatchObject({ value: '12345', source: ConfigSource.CONFIG_SOURCE_STATIC_BROKER, isDefault: false });
    expect(byName.get('fetch.max.bytes')).toMatchObject({ value: String(55 * 1024 * 1024), source: ConfigSource.CONFIG_SOURCE_DEFAULT, isDefault: true });
    expect(byName.get('process.roles')?.value).toBe('controller,broker');
    expect(byName.size).toBe(3);
    // The topic resource went to the controller, in its place in the answer.
    expect([topic?.name, topic?.errorCode]).toEqual(['nope', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
    expect([other?.name, other?.errorCode]).toEqual(['2', ErrorCode.INVALID_REQUEST]);

    const json = await cli(['cluster', 'configs', '1', '--json'], address);
    expect(json.code).toBe(0);
    const all = JSON.parse(json.stdout) as Record<string, { value: string; source: string }>;
    expect(all['replica.lag.time.max.ms']).toEqual({ value: '12345', source: 'static' });
    expect(all['node.id']).toEqual({ value: '1', source: 'static' });
    expect(all['fetch.max.bytes']?.source).toBe('default');
    const text = await cli(['cluster', 'configs', '1', '--key', 'replica.lag.time.max.ms'], address);
    expect([text.code, text.stdout]).toEqual([0, 'replica.lag.time.max.ms=12345 (static)\n']);
  } finally {
    brokers.close();
    await cluster.close();
  }
});

test("Kafka's broker-level topic defaults (log.retention.hours, min.insync.replicas, log.segment.bytes) apply to topics that do not set the key, and describe as static", async () => {
  const { cluster, address, brokers } = await oneNode(['log.retention.hours=24', 'min.insync.replicas=2', 'log.segment.bytes=1048576']);
  try {
    const created = await cli(['topics', 'create', 't', '-p', '1', '-r', '1', '-c', 'segment.bytes=2097152'], address);
    expect([created.code, created.stderr]).toEqual([0, '']);
    await until('the leader serving t-0', async () => brokers.servingLeaderOf('t', 0), 30_000);

    // The topic's own setting wins; the broker's defaults fill the rest.
    const json = await cli(['topics', 'describe', 't', '--configs', '--json'], address);
    const configs = (JSON.parse(json.stdout) as { configs: Record<string, string> }[])[0]?.configs;
    expect(configs).toMatchObject({ 'retention.ms': String(24 * 3_600_000), 'min.insync.replicas': '2', 'segment.bytes': '2097152', 'cleanup.policy': 'delete' });
    const text = await cli(['topics', 'describe', 't', '--configs'], address);
    expect(text.stdout).toContain(`  retention.ms=${24 * 3_600_000} (static)\n`);
    expect(text.stdout).toContain('  segment.bytes=2097152 (dynamic)\n');
    expect(text.stdout).toContain('  cleanup.policy=delete\n');

    // min.insync.replicas=2 from the broker: acks=all to the single replica is refused, acks=1 taken.
    const all = await cli(['produce', 't', '--acks', 'all', '-X', 'retries=0', '-X', 'enable.idempotence=false'], address, 'x\n');
    expect(all.code).not.toBe(0);
    expect(all.stderr).toMatch(/NOT_ENOUGH_REPLICAS/);
    const one = await cli(['produce', 't', '--acks', '1'], address, 'y\n');
    expect([one.code, one.stderr]).toEqual([0, '']);
  } finally {
    brokers.close();
    await cluster.close();
  }
});

test('dynamic broker configs (strand configs, kafka-configs): cluster-wide defaults and one broker\'s apply to running topics in that order over static settings, and bad ones are refused', async () => {
  const { cluster, address, brokers } = await oneNode(['log.retention.hours=24']);
  try {
    expect((await cli(['topics', 'create', 't', '-p', '1', '-r', '1'], address)).code).toBe(0);
    await until('the leader serving t-0', async () => brokers.servingLeaderOf('t', 0), 30_000);
    const topicConfigs = async (): Promise<Record<string, { value: string; source: string }>> => {
      const r = await cli(['configs', '--describe', '--topic', 't', '--all', '--json'], address);
      expect([r.code, r.stderr]).toEqual([0, '']);
      return JSON.parse(r.stdout) as Record<string, { value: string; source: string }>;
    };
    const acksAll = async (): Promise<string> => {
      const r = await cli(['produce', 't', '--acks', 'all', '-X', 'retries=0', '-X', 'enable.idempotence=false'], address, 'x\n');
      return r.code === 0 ? 'ok' : /NOT_ENOUGH_REPLICAS/.test(r.stderr) ? 'NOT_ENOUGH_REPLICAS' : r.stderr;
    };
    expect(await acksAll()).toBe('ok');

    const set = await cli(['configs', '--alter', '--broker-defaults', '--add-config', 'log.retention.ms=3600000,min.insync.replicas=2,log.roll.hours=2'], address);
    expect([set.code, set.stdout, set.stderr]).toEqual([0, 'Completed updating default config for brokers in the cluster.\n', '']);
    // The running partition takes the new min.insync.replicas once the broker has the record.
    await until('min.insync.replicas=2 in force', async () => ((await acksAll()) === 'NOT_ENOUGH_REPLICAS' ? true : undefined), 30_000);
    expect(await topicConfigs()).toMatchObject({
      'retention.ms': { value: '3600000', source: 'DYNAMIC_DEFAULT_BROKER_CONFIG' },
      'min.insync.replicas': { value: '2', source: 'DYNAMIC_DEFAULT_BROKER_CONFIG' },
      'segment.ms': { value: String(2 * 3_600_000), source: 'DYNAMIC_DEFAULT_BROKER_CONFIG' },
      'segment.bytes': { source: 'DEFAULT_CONFIG' },
    });

    // This broker's own value wins over the cluster default.
    expect((await cli(['configs', '--alter', '--entity-type', 'brokers', '--entity-name', '1', '--add-config', 'min.insync.replicas=1'], address)).stdout).toBe('Completed updating config for broker 1.\n');
    await until('min.insync.replicas=1 in force', async () => ((await acksAll()) === 'ok' ? true : undefined), 30_000);
    expect((await topicConfigs())['min.insync.replicas']).toEqual({ value: '1', source: 'DYNAMIC_BROKER_CONFIG' });
    const own = await cli(['configs', '--describe', '--broker', '1'], address);
    expect(own.stdout).toBe('Dynamic configs for broker 1 are:\n  min.insync.replicas=1 source=DYNAMIC_BROKER_CONFIG\n');
    const defaults = await cli(['configs', '--describe', '--entity-type', 'brokers', '--entity-default'], address);
    expect(defaults.stdout.split('\n').sort()).toEqual(['', 'Default configs for brokers in the cluster are:', '  log.retention.ms=3600000 source=DYNAMIC_DEFAULT_BROKER_CONFIG', '  log.roll.hours=2 source=DYNAMIC_DEFAULT_BROKER_CONFIG', '  min.insync.replicas=2 source=DYNAMIC_DEFAULT_BROKER_CONFIG'].sort());
    const all = JSON.parse((await cli(['configs', '--describe', '--broker', '1', '--all', '--json'], address)).stdout) as Record<string, { value: string; source: string }>;
    expect(all).toMatchObject({
      'log.retention.hours': { value: '24', source: 'STATIC_BROKER_CONFIG' },
      'log.retention.ms': { value: '3600000', source: 'DYNAMIC_DEFAULT_BROKER_CONFIG' },
      'min.insync.replicas': { value: '1', source: 'DYNAMIC_BROKER_CONFIG' },
    });

    // Refused with the reason (INVALID_CONFIG exits 2, as a usage error), nothing changed: a key
    // that is not dynamic, a bad value, unclean election for one broker.
    for (const [args, reason] of [
      [['--broker-defaults', '--add-config', 'num.io.threads=8'], /INVALID_CONFIG.*num\.io\.threads/],
      [['--broker-defaults', '--add-config', 'log.retention.ms=soon'], /INVALID_CONFIG.*log\.retention\.ms/],
      [['--broker', '1', '--add-config', 'unclean.leader.election.enable=true'], /INVALID_CONFIG.*cluster-wide only/],
    ] as const) {
      const r = await cli(['configs', '--alter', ...args], address);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(reason);
    }
    const usage = await cli(['configs', '--describe', '--topic', 't', '--broker', '1'], address);
    expect(usage.code).toBe(2);

    // Deleting this broker's value falls back to the cluster default; a topic's own key wins over both.
    expect((await cli(['configs', '--alter', '--broker', '1', '--delete-config', 'min.insync.replicas'], address)).code).toBe(0);
    await until('min.insync.replicas=2 again', async () => ((await acksAll()) === 'NOT_ENOUGH_REPLICAS' ? true : undefined), 30_000);
    expect((await cli(['configs', '--alter', '--topic', 't', '--add-config', 'min.insync.replicas=1,retention.ms=5000'], address)).stdout).toBe('Completed updating config for topic t.\n');
    await until('the topic\'s own min.insync.replicas', async () => ((await acksAll()) === 'ok' ? true : undefined), 30_000);
    const topicOwn = await cli(['configs', '--describe', '--topic', 't'], address);
    expect(topicOwn.stdout.split('\n').sort()).toEqual(['', 'Dynamic configs for topic t are:', '  min.insync.replicas=1 source=DYNAMIC_TOPIC_CONFIG', '  retention.ms=5000 source=DYNAMIC_TOPIC_CONFIG'].sort());
  } finally {
    brokers.close();
    await cluster.close();
  }
});
