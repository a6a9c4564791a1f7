/**
 * The follower's replica fetcher over real gRPC: broker 1's ReplicaFetch service (addBrokerService
 * over its ReplicaManager) and broker 2's ReplicaFetcherManager, connected through a TCP proxy
 * that can stop forwarding on the connections it holds, as a connection does whose other end
 * vanished without a FIN or RST (a host that lost power, a dropped NAT entry). The fetch in
 * flight on it is never answered and the stream never fails by itself: only the keepalive makes
 * the link notice, reconnect and fetch again.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeRecordBatch, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { BROKER_CONFIG } from '../../src/server/broker-config';
import { NO_METRICS } from '../../src/server/broker-metrics';
import { addBrokerService, type BrokerServiceContext } from '../../src/server/broker-service';
import { ReplicaFetcherManager } from '../../src/server/replica-fetcher';
import { ReplicaManager } from '../../src/server/replica-manager';
import type { Partition, PartitionHost } from '../../src/server/partition';

const quiet = { info: () => undefined, warn: () => undefined };
const topicId = '0123456789abcdef0123456789abcdef';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function image(): MetadataImage {
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  return MetadataImage.fromRecords(10, [
    { cluster: { clusterId: 'c' } },
    broker(1),
    broker(2),
    { topic: { name: 't', topicId: topicIdToBytes(topicId) } },
    { partition: { topicId: topicIdToBytes(topicId), partition: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 10, addingReplicas: [], removingReplicas: [] } },
  ]);
}

async function replicaManager(id: number): Promise<ReplicaManager> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strand-fetcher-${id}-`));
  const host: PartitionHost = { brokerId: id, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet);
  cleanups.push(async () => {
    await rm.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await rm.applyImage(image());
  return rm;
}

/** Broker 1's broker service (only ReplicaFetch is used here) on a free port. */
async function serveReplicaFetch(rm: ReplicaManager): Promise<number> {
  const server = new grpc.Server();
  const ctx = {
    brokerId: 1,
    config: BROKER_CONFIG.parse({ 'replica.fetch.wait.max.ms': 200 }),
    replicas: rm,
    controllers: {},
    listenerName: 'BROKER',
    interBrokerListenerName: 'BROKER',
    image: () => rm.metadataImage,
    nextProducerId: () => Promise.resolve(0),
    groups: {},
    logger: quiet,
    metrics: NO_METRICS,
    nodeConfigs: () => [],
  } as unknown as BrokerServiceContext;
  addBrokerService(server, ctx);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  cleanups.push(() => server.forceShutdown());
  return port;
}

/** A TCP proxy to `port`; `blackhole()` stops forwarding on the connections open now, without closing them. */
async function proxy(port: number): Promise<{ port: number; blackhole(): void }> {
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    blackhole: () => {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
  };
}

/** Resolves true once `cond` holds (checked at each change of `p`), false after `ms`. */
async function until(p: Partition, cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const timer = setTimeout(done, left);
      const off = p.onNextChange(done);
    });
  }
  return true;
}

const batch = (from: number, n: number): Buffer => encodeRecordBatch({ baseTimestamp: 1, records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`v${from + i}`) })) });

test('a follower whose connection to the leader went silent reconnects and fetches again (keepalive)', async () => {
  const one = await replicaManager(1);
  const two = await replicaManager(2);
  const leader = one.partitionByName('t', 0)!;
  const follower = two.partitionByName('t', 0)!;
  const link = await proxy(await serveReplicaFetch(one));
  const fetcher = new ReplicaFetcherManager({
    brokerId: 2,
    brokerEpoch: () => 1,
    addressOf: (id) => (id === 1 ? `127.0.0.1:${link.port}` : undefined),
    followed: () => two.all().filter((p) => p.follower !== null),
    maxWaitMs: 200,
    partitionMaxBytes: 1 << 20,
    responseMaxBytes: 1 << 20,
    backoffMs: 50,
    keepaliveTimeMs: 200,
    keepaliveTimeoutMs: 200,
    logger: quiet,
  });
  cleanups.push(() => fetcher.close());
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  fetcher.update();
  expect(await until(follower, () => follower.log.logEndOffset === 3, 5000)).toBe(true);
  // The connection goes silent with the follower's next fetch held on the leader; the leader's
  // answer to it (the new records) never arrives.
  link.blackhole();
  expect((await leader.produce(batch(3, 2), 1, 5000)).errorCode).toBe(0);
  expect(await until(follower, () => follower.log.logEndOffset === 5, 5000)).toBe(true);
});
