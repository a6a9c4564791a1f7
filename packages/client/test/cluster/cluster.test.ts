/**
 * Checks the metadata cache against the in-memory broker: bootstrap from a list with a dead
 * address first, learning every broker, single-flight refreshes, periodic refresh by
 * metadata.max.age.ms (awaited through the twin's call counter, not a sleep), the KIP-320 rule
 * that an older leader epoch never replaces a newer one, leader hints, waiting for a topic with a
 * deadline (through retriable topic errors, failing at once on non-retriable ones), and close()
 * failing further calls.
 */
import { CONSUMER_CONFIG } from '../../src/config';
import { Cluster } from '../../src/cluster/cluster';
import { MemoryCluster } from '../support/memory-broker';
import { ErrorCode } from '@strand/protocol';
import * as net from 'node:net';

let mem: MemoryCluster;
let client: Cluster | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await mem.stop();
});

/** A loopback port with nothing listening (bound, then released). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function make(extra: Record<string, string | number> = {}, bootstrap?: string): Cluster {
  const cfg = CONSUMER_CONFIG.parse({ 'bootstrap.servers': bootstrap ?? mem.bootstrap, 'request.timeout.ms': 2000, 'retry.backoff.ms': 5, ...extra });
  client = new Cluster(cfg);
  return client;
}

describe('Cluster metadata', () => {
  it('bootstraps past a dead address and learns every broker and topic', async () => {
    mem = await MemoryCluster.start({ brokers: 3 });
    mem.createTopic('t', 4, 3);
    const c = make({}, `127.0.0.1:${await deadPort()},127.0.0.1:${mem.nodes[1]?.port}`);
    await c.refresh(['t']);
    expect([...c.brokers.keys()].sort()).toEqual([1, 2, 3]);
    expect(c.topics.get('t')?.partitions.length).toBe(4);
    expect(c.leaderOf('t', 1)).toBe(2);
  });

  it('hands out connections in turn, so retries skip a dead first bootstrap address', async () => {
    mem = await MemoryCluster.start();
    const dead = `127.0.0.1:${await deadPort()}`;
    const c = make({}, `${dead},127.0.0.1:${mem.nodes[0]?.port}`);
    const seen = new Set([c.anyConnection().address, c.anyConnection().address]);
    expect(seen.size).toBe(2);
  });

  it('coalesces concurrent refreshes into one request', async () => {
    mem = await MemoryCluster.start();
    const c = make();
    await Promise.all([c.refresh(), c.refresh(), c.refresh()]);
    expect(mem.calls.get('metadata')).toBe(1);
  });

  it('refreshes periodically (metadata.max.age.ms)', async () => {
    mem = await MemoryCluster.start();
    const c = make({ 'metadata.max.age.ms': 30 });
    await c.refresh();
    await mem.waitForCalls('metadata', 3);
    expect(mem.calls.get('metadata')).toBeGreaterThanOrEqual(3);
  });

  it('never moves a leader epoch backwards, and takes leader hints only forward', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 1, 2);
    const c = make();
    await c.refresh(['t']);
    mem.moveLeader('t', 0, 2);
    mem.moveLeader('t', 0, 1);
    await c.refresh();
    expect(c.topics.get('t')?.partitions[0]).toMatchObject({ leaderId: 1, leaderEpoch: 2 });
    c.apply({ clusterId: 'x', controllerId: 1, brokers: mem.nodes.map((n) => ({ nodeId: n.id, host: '127.0.0.1', port: n.port })), topics: [{ errorCode: 0, name: 't', topicId: Buffer.alloc(0), partitions: [{ errorCode: 0, partition: 0, leaderId: 2, leaderEpoch: 1, replicas: [1, 2], isr: [1, 2], offlineReplicas: [] }] }] });
    expect(c.topics.get('t')?.partitions[0]).toMatchObject({ leaderId: 1, leaderEpoch: 2 });
    c.updateLeader('t', 0, 2, 1);
    expect(c.leaderOf('t', 0)).toBe(1);
    c.updateLeader('t', 0, 2, 3);
    expect(c.leaderOf('t', 0)).toBe(2);
    // The topic deleted and re-created under the same name: a new id, epochs from 0 again.
    const brokers = mem.nodes.map((n) => ({ nodeId: n.id, host: '127.0.0.1', port: n.port }));
    const part = (leaderId: number, leaderEpoch: number) => ({ errorCode: 0, partition: 0, leaderId, leaderEpoch, replicas: [1, 2], isr: [1, 2], offlineReplicas: [] });
    c.apply({ clusterId: 'x', controllerId: 1, brokers, topics: [{ errorCode: 0, name: 'r', topicId: Buffer.alloc(16, 1), partitions: [part(1, 5)] }] });
    c.apply({ clusterId: 'x', controllerId: 1, brokers, topics: [{ errorCode: 0, name: 'r', topicId: Buffer.alloc(16, 2), partitions: [part(2, 0)] }] });
    expect(c.leaderOf('r', 0)).toBe(2);
    c.apply({ clusterId: 'x', controllerId: 1, brokers, topics: [{ errorCode: 0, name: 'r', topicId: Buffer.alloc(16, 2), partitions: [part(1, 0)] }] });
    expect(c.topics.get('r')?.partitions[0]).toMatchObject({ leaderId: 1, leaderEpoch: 0 });
  });

  it('waits for a topic until its deadline, then names it in the error', async () => {
    mem = await MemoryCluster.start();
    const c = make();
    const started = performance.now();
    await expect(c.topic('missing', performance.now() + 80)).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' });
    expect(performance.now() - started).toBeLessThan(2000);
    setImmediate(() => mem.createTopic('late', 2));
    expect((await c.topic('late', performance.now() + 5000)).partitions.length).toBe(2);
  });

  it('fails at once, with the typed error, when the broker answers a topic with a non-retriable error', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('denied', 2);
    mem.metadataTopicErrors.set('bad name!', ErrorCode.INVALID_TOPIC_EXCEPTION);
    mem.metadataTopicErrors.set('denied', ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    const c = make({ 'retry.backoff.ms': 50, 'retry.backoff.max.ms': 50 });
    // A deadline far beyond the test's own timeout: only failing fast lets the test pass.
    await expect(c.topic('bad name!', performance.now() + 600_000)).rejects.toMatchObject({ errorName: 'INVALID_TOPIC_EXCEPTION', message: expect.stringContaining('bad name!') });
    expect(mem.calls.get('metadata')).toBe(1);
    await expect(c.topic('denied', performance.now() + 600_000)).rejects.toMatchObject({ errorName: 'TOPIC_AUTHORIZATION_FAILED' });
    expect(mem.calls.get('metadata')).toBe(2);
    // Not sticky: once the broker answers the topic, the next wait succeeds (Kafka clears the error too).
    mem.metadataTopicErrors.delete('denied');
    expect((await c.topic('denied', performance.now() + 600_000)).partitions.length).toBe(2);
  });

  it('keeps waiting through retriable topic errors (LEADER_NOT_AVAILABLE while auto-creating) until the topic is ready', async () => {
    mem = await MemoryCluster.start();
    mem.metadataTopicErrors.set('auto', ErrorCode.LEADER_NOT_AVAILABLE);
    const c = make();
    const waiting = c.topic('auto', performance.now() + 600_000);
    await mem.waitForCalls('metadata', 3);
    mem.metadataTopicErrors.delete('auto');
    mem.createTopic('auto', 3);
    expect((await waiting).partitions.length).toBe(3);
    // Still retriable at the deadline: the wait ends there, as it does for a missing topic.
    mem.metadataTopicErrors.set('gone', ErrorCode.LEADER_NOT_AVAILABLE);
    await expect(c.topic('gone', performance.now() + 80)).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION', retriable: true });
  });

  it('fails calls after close()', async () => {
    mem = await MemoryCluster.start();
    const c = make();
    await c.refresh();
    c.close();
    await expect(c.refresh()).rejects.toMatchObject({ errorName: 'NETWORK_EXCEPTION' });
  });
});
