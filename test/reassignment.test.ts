/**
 * Partition reassignment across real processes (three combined nodes): a partition with data on
 * broker 1 alone is moved to brokers 2 and 3 with AlterPartitionReassignments (sent to a broker,
 * forwarded to the controller). The new replicas catch up, join the ISR, the reassignment
 * completes (ListPartitionReassignments is empty, replicas are [2, 3]), broker 1's copy is
 * deleted, and every record is still readable from the new leader.
 *
 * Then, while broker 1 is stopped, a partition it hosts is reassigned away from it and a topic
 * it hosts is deleted and re-created under the same name on other brokers: when it starts again,
 * its first metadata image (after its registration) removes both stray directories.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, DeleteTopicsRequest, DeleteTopicsResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

test('moves a partition with its data to other brokers', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.heartbeat.interval.ms=300', 'auto.leader.rebalance.enable=false'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const created = await brokers.createTopics({ topics: [{ name: 'mv', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1] }], configs: [] }], validateOnly: false });
    expect(created.topics[0]?.errorCode).toBe(0);
    const producer = { id: 11, epoch: 0 };
    const values: string[] = [];
    for (let i = 0; i < 50; i++) {
      await brokers.sendIdempotent('mv', 0, `m${i}`, producer, i, performance.now() + 30_000);
      values.push(`m${i}`);
    }
    const oldDir = path.join(cluster.node(1).dataDir, 'logs', 'mv-0');
    expect(fs.existsSync(oldDir)).toBe(true);
    const address = cluster.brokerAddresses()[1] as string;
    const res = await brokers.call<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(address, (c, r, m, o, cb) => c.alterPartitionReassignments(r, m, o, cb), {
      topics: [{ name: 'mv', partitions: [{ partition: 0, replicas: { values: [2, 3] } }] }],
    });
    expect(res.results[0]?.errorCode).toBe(0);
    await until('the reassignment to complete', async () => {
      const ongoing = await brokers.call<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>(address, (c, r, m, o, cb) => c.listPartitionReassignments(r, m, o, cb), { topics: [] });
      const p = (await brokers.metadata(['mv'])).topics[0]?.partitions[0];
      return ongoing.reassignments.length === 0 && p && [...p.replicas].sort().join() === '2,3' && p.isr.length === 2 ? true : undefined;
    }, 60_000);
    await until('the old replica deleted', async () => (!fs.existsSync(oldDir) ? true : undefined), 30_000);
    expect((await brokers.readAll('mv', 0)).map((r) => r.value)).toEqual(values);

    // Stray replicas: changed while broker 1 is down, removed when it is back.
    const assigned = (name: string, brokerIds: number[]): Parameters<TestBrokers['createTopics']>[0] => ({ topics: [{ name, numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds }], configs: [] }], validateOnly: false });
    expect((await brokers.createTopics(assigned('away', [1, 2]))).topics[0]?.errorCode).toBe(0);
    expect((await brokers.createTopics(assigned('gone', [1]))).topics[0]?.errorCode).toBe(0);
    for (const t of ['away', 'gone']) await brokers.sendIdempotent(t, 0, 'x', { id: t === 'away' ? 12 : 13, epoch: 0 }, 0, performance.now() + 30_000);
    const logs = path.join(cluster.node(1).dataDir, 'logs');
    expect(['away-0', 'gone-0'].map((d) => fs.existsSync(path.join(logs, d)))).toEqual([true, true]);
    await cluster.stop(1);
    const moved = await brokers.call<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(address, (c, r, m, o, cb) => c.alterPartitionReassignments(r, m, o, cb), {
      topics: [{ name: 'away', partitions: [{ partition: 0, replicas: { values: [2, 3] } }] }],
    });
    expect(moved.results[0]?.errorCode).toBe(0);
    const deleted = await brokers.call<DeleteTopicsRequest, DeleteTopicsResponse>(address, (c, r, m, o, cb) => c.deleteTopics(r, m, o, cb), { names: ['gone'] });
    expect(deleted.topics[0]?.errorCode).toBe(0);
    expect((await brokers.createTopics(assigned('gone', [2, 3]))).topics[0]?.errorCode).toBe(0);
    await until('away moved to brokers 2 and 3', async () => {
      const p = (await brokers.metadata(['away'])).topics[0]?.partitions[0];
      return p && [...p.replicas].sort().join() === '2,3' ? true : undefined;
    }, 60_000);
    cluster.start(1);
    await until('the stray replicas removed', async () => (fs.readdirSync(logs).every((d) => !/^(away|gone)-0/.test(d)) ? true : undefined), 60_000);
    expect(cluster.logOf(1)).toContain('removing a stray replica');
  } finally {
    brokers.close();
    await cluster.close();
  }
});
