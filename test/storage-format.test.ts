/**
 * `strand storage` (Kafka's kafka-storage) against a real node: a node formatted with a cluster
 * id from `storage random-uuid` starts a cluster with that id (the controller writes it, the
 * broker registers with it), `format --ignore-formatted` leaves it alone, and a log directory
 * formatted for another cluster keeps the broker out (INCONSISTENT_CLUSTER_ID) instead of joining.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runStrand } from '../packages/cli/test/support/run-strand';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { until } from './support/until';

jest.setTimeout(120_000);

test('a formatted node starts the cluster with the formatted id, and a directory of another cluster is refused', async () => {
  const cluster = await ProcessCluster.create({ controllers: 1, combined: true, overrides: ['broker.heartbeat.interval.ms=300'] });
  try {
    const id = (await runStrand(['storage', 'random-uuid'])).stdout.trim();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const n = cluster.node(1);
    const logs = path.join(n.dataDir, 'logs');
    const meta = path.join(n.dataDir, 'meta');
    const format = await runStrand(['storage', 'format', '-t', id, ...cluster.overrideArgs(1)]);
    expect([format.code, format.stderr]).toEqual([0, '']);
    expect(format.stdout).toBe(`Formatting ${logs} with cluster.id ${id}.\nFormatting ${meta} with cluster.id ${id}.\n`);
    const again = await runStrand(['storage', 'format', '-t', id, ...cluster.overrideArgs(1)]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is already formatted\. Use --ignore-formatted/);

    cluster.start(1);
    const address = cluster.brokerAddresses()[0] as string;
    const described = await until('the cluster', async () => {
      const r = await cli(['cluster', 'describe', '--json'], address);
      const d = r.code === 0 ? (JSON.parse(r.stdout) as { clusterId: string; brokers: unknown[] }) : undefined;
      return d !== undefined && d.brokers.length === 1 ? d : undefined;
    }, 60_000);
    expect(described.clusterId).toBe(id);
    const info = await runStrand(['storage', 'info', ...cluster.overrideArgs(1)]);
    expect(info.stdout).toMatch(new RegExp(`^${logs}: cluster.id=${id} node.id=1 directory.id=\\S+\n${meta}: cluster.id=${id} node.id=1 directory.id=\\S+\n$`));
    await cluster.stop(1);
    const ignored = await runStrand(['storage', 'format', '-t', id, '--ignore-formatted', ...cluster.overrideArgs(1)]);
    expect([ignored.code, ignored.stdout]).toEqual([0, 'All of the log directories are already formatted.\n']);

    // The broker's disk is replaced by one formatted for another cluster: it must not join this one.
    fs.rmSync(logs, { recursive: true, force: true });
    const other = (await runStrand(['storage', 'random-uuid'])).stdout.trim();
    const formatOther = await runStrand(['storage', 'format', '-t', other, ...cluster.overrideArgs(1), '--override', `metadata.log.dir=${logs}`]);
    expect(formatOther.code).toBe(0);
    cluster.start(1);
    await until('the node to give up', async () => (cluster.isRunning(1) ? undefined : true), 60_000);
    expect(cluster.logOf(1)).toMatch(/INCONSISTENT_CLUSTER_ID/);
  } finally {
    await cluster.close();
  }
});
