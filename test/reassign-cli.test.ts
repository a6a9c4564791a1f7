/**
 * `strand reassign` across real processes (three combined nodes): a partition written on broker
 * 1 alone is moved to brokers 2 and 3 with the CLI, Kafka-style. --generate proposes a plan over
 * a broker list and prints the current one; --execute prints the rollback JSON and starts the
 * move; --verify exits 5 while it runs and 0 once complete; --list is then empty; the topic's
 * replicas are [2, 3]; every record is still readable (strand consume); strand log-dirs shows the
 * replica on brokers 2 and 3 (same size in each one's log.dirs) and none on broker 1, and a broker
 * refuses DescribeLogDirs of an illegal topic name (INVALID_TOPIC_EXCEPTION); and --cancel of a
 * finished move is refused (exit 1, NO_REASSIGNMENT_IN_PROGRESS). Bounded by monotonic
 * deadlines; the cluster and temp files are removed in finally.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, ErrorCode, type DescribeLogDirsRequest, type DescribeLogDirsResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(180_000);

test('strand reassign moves a partition with its data and verifies completion', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.heartbeat.interval.ms=300', 'auto.leader.rebalance.enable=false'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  const bootstrap = cluster.brokerAddresses().join(',');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-reassign-cli-'));
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const created = await brokers.createTopics({ topics: [{ name: 'mv', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1] }], configs: [] }], validateOnly: false });
    expect(created.topics[0]?.errorCode).toBe(0);
    const values = Array.from({ length: 200 }, (_, i) => `v${i}`);
    const produced = await cli(['produce', 'mv', '--acks', 'all'], bootstrap, `${values.join('\n')}\n`);
    expect([produced.code, produced.stderr]).toEqual([0, '']);

    // --generate: the current assignment and a proposal over brokers 2,3 (same RF), nothing moves.
    const gen = await cli(['reassign', '--generate', '--topics-to-move-json-file', '-', '--broker-list', '2,3', '--json'], bootstrap, '{"version":1,"topics":[{"topic":"mv"}]}');
    expect([gen.code, gen.stderr]).toEqual([0, '']);
    const plan = JSON.parse(gen.stdout) as { current: { partitions: { replicas: number[] }[] }; proposed: { version: number; partitions: { topic: string; partition: number; replicas: number[] }[] } };
    expect(plan.current).toEqual({ version: 1, partitions: [{ topic: 'mv', partition: 0, replicas: [1] }] });
    expect(plan.proposed.version).toBe(1);
    expect(plan.proposed.partitions).toHaveLength(1);
    expect([[2], [3]]).toContainEqual(plan.proposed.partitions[0]?.replicas);

    // --execute: the rollback JSON, then the move starts.
    const file = path.join(dir, 'move.json');
    fs.writeFileSync(file, JSON.stringify({ version: 1, partitions: [{ topic: 'mv', partition: 0, replicas: [2, 3] }] }));
    const exec = await cli(['reassign', '--execute', '--reassignment-json-file', file], bootstrap);
    expect([exec.code, exec.stderr]).toEqual([0, '']);
    expect(exec.stdout).toContain('{"version":1,"partitions":[{"topic":"mv","partition":0,"replicas":[1]}]}');
    expect(exec.stdout).toContain('Successfully started partition reassignment for mv-0');

    // --verify: exit 5 while in progress, 0 once complete; any other answer fails the test.
    const verified = await until(
      'the reassignment to complete (strand reassign --verify)',
      async () => {
        const v = await cli(['reassign', '--verify', '--reassignment-json-file', file, '--json'], bootstrap);
        if (v.code === 5) return undefined;
        return v;
      },
      60_000,
      200,
    );
    expect([verified.code, verified.stderr]).toEqual([0, '']);
    expect(JSON.parse(verified.stdout)).toEqual([{ topic: 'mv', partition: 0, status: 'completed', replicas: [2, 3], target: [2, 3] }]);
    const human = await cli(['reassign', '--verify', '--reassignment-json-file', file], bootstrap);
    expect([human.code, human.stdout]).toEqual([0, 'Status of partition reassignment:\nReassignment of partition mv-0 is completed.\n']);

    const list = await cli(['reassign', '--list', '--json'], bootstrap);
    expect([list.code, list.stdout]).toEqual([0, '[]\n']);
    const described = await cli(['topics', 'describe', 'mv', '--json'], bootstrap);
    const partition = (JSON.parse(described.stdout) as { partitions: { replicas: number[]; isr: number[] }[] }[])[0]?.partitions[0];
    expect(partition?.replicas).toEqual([2, 3]);
    expect([...(partition?.isr ?? [])].sort()).toEqual([2, 3]);

    // The data moved with the partition.
    const consumed = await cli(['consume', 'mv', '--from-beginning', '--max-messages', String(values.length)], bootstrap);
    expect([consumed.code, consumed.stdout]).toEqual([0, `${values.join('\n')}\n`]);

    // strand log-dirs (kafka-log-dirs): the replica is on brokers 2 and 3 now, in each one's
    // log.dirs, the same bytes on the leader and the in-sync follower; none left on broker 1
    // once it has applied the metadata that removed it (asynchronously: waited for).
    type LogDirsJson = { version: number; brokers: { broker: number; logDirs: { logDir: string; error: string | null; totalBytes: number; usableBytes: number; partitions: { partition: string; size: number; offsetLag: number; isFuture: boolean }[] }[] }[] };
    const replicasOn = (doc: LogDirsJson, id: number) => doc.brokers.find((b) => b.broker === id)?.logDirs[0]?.partitions ?? [];
    const dirs = await until(
      'broker 1 to delete its replica of mv-0 (strand log-dirs)',
      async () => {
        const r = await cli(['log-dirs', '--describe', '--topic-list', 'mv'], bootstrap);
        if (r.code === 0 && replicasOn(JSON.parse(r.stdout.split('\n')[2] ?? '') as LogDirsJson, 1).length > 0) return undefined;
        return r;
      },
      30_000,
      200,
    );
    expect([dirs.code, dirs.stderr]).toEqual([0, '']);
    const [querying, received, json] = dirs.stdout.split('\n');
    expect([querying, received]).toEqual(['Querying brokers for log directories information', 'Received log directory information from brokers 1,2,3']);
    const logDirs = JSON.parse(json ?? '') as LogDirsJson;
    expect(logDirs.version).toBe(1);
    expect(logDirs.brokers.map((b) => [b.broker, b.logDirs.map((d) => [d.logDir, d.error])])).toEqual([1, 2, 3].map((id) => [id, [[path.join(cluster.node(id).dataDir, 'logs'), null]]]));
    expect(replicasOn(logDirs, 1)).toEqual([]);
    const size = replicasOn(logDirs, 2)[0]?.size ?? 0;
    expect(size).toBeGreaterThan(values.length * 4); // 200 records of 4+ bytes each, plus batch headers
    for (const id of [2, 3]) expect(replicasOn(logDirs, id)).toEqual([{ partition: 'mv-0', size, offsetLag: 0, isFuture: false }]);
    for (const b of logDirs.brokers) {
      const d = b.logDirs[0];
      expect(d?.usableBytes).toBeGreaterThan(0);
      expect(d?.usableBytes).toBeLessThanOrEqual(d?.totalBytes ?? 0);
    }
    // The broker refuses an illegal topic name with a typed error rather than matching nothing.
    const refused = await brokers.call<DescribeLogDirsRequest, DescribeLogDirsResponse>(cluster.brokerAddresses()[0] as string, (c, r, m, o, cb) => c.describeLogDirs(r, m, o, cb), { topics: [{ topic: 'no good', partitions: [] }] }).then(
      () => undefined,
      (e: grpc.ServiceError) => e.metadata.get(ERROR_CODE_METADATA_KEY)[0],
    );
    expect(refused).toBe(String(ErrorCode.INVALID_TOPIC_EXCEPTION));

    // Nothing left to cancel: refused by the controller, exit 1.
    const cancel = await cli(['reassign', '--cancel', '--reassignment-json-file', file], bootstrap);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toMatch(/mv-0: NO_REASSIGNMENT_IN_PROGRESS/);
  } finally {
    brokers.close();
    await cluster.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
