/**
 * The follower's replica fetcher over real gRPC: broker 1's ReplicaFetch service (addBrokerService
 * over its ReplicaManager) and broker 2's ReplicaFetcherManager, connected through a TCP proxy
 * that can stop forwarding on the connections it holds, as a connection does whose other end
 * vanished without a FIN or RST (a host that lost power, a dropped NAT entry). The fetch in
 * flight on it is never answered and the stream never fails by itself: the keepalive, or the
 * fetch timeout (replica.socket.timeout.ms), makes the link notice, reconnect and fetch again.
 * The leader's service can also accept a stream and never answer it (a leader whose connection
 * is alive, pings answered, but whose fetch handling is stuck): only the fetch timeout helps.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeRecordBatch, type MetadataRecord, type ReplicaFetchRequest, type ReplicaFetchResponse } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { IDLE_REPLICA_FETCH_HOLD_MS } from '../../src/server/broker-config';
import { addBrokerService } from '../../src/server/broker-service';
import { ReplicaFetcherManager, replicaFetchTimeoutMs, type FetcherOptions } from '../../src/server/replica-fetcher';
import { serviceContext } from '../support/service-context';
import { ReplicaManager } from '../../src/server/replica-manager';
import type { Partition, PartitionHost } from '../../src/server/partition';

const quiet = { info: () => undefined, warn: () => undefined };
const topicId = '0123456789abcdef0123456789abcdef';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function image(replicas: number[]): MetadataImage {
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  return MetadataImage.fromRecords(10, [
    { cluster: { clusterId: 'c' } },
    ...replicas.map(broker),
    { topic: { name: 't', topicId: topicIdToBytes(topicId) } },
    { partition: { topicId: topicIdToBytes(topicId), partition: 0, replicas, isr: replicas, leader: 1, leaderEpoch: 0, partitionEpoch: 10, addingReplicas: [], removingReplicas: [] } },
  ]);
}

async function replicaManager(id: number, replicas = [1, 2]): Promise<ReplicaManager> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strand-fetcher-${id}-`));
  const host: PartitionHost = { brokerId: id, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet);
  cleanups.push(async () => {
    await rm.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await rm.applyImage(image(replicas));
  return rm;
}

/** What broker 1's ReplicaFetch service saw of one stream. */
interface SeenStream {
  /** Arrival time of each fetch on it. */
  requests: number[];
  cancelledAt?: number;
}

/** The leader's view of its ReplicaFetch streams; `changed` fires on every fetch and cancel. */
interface LeaderService {
  port: number;
  streams: SeenStream[];
  /** Streams still to be accepted and never answered, as a stuck leader would. */
  stallStreams: number;
  changed: EventEmitter;
}

/** Broker 1's broker service (only ReplicaFetch is used here) on a free port. */
async function serveReplicaFetch(rm: ReplicaManager): Promise<LeaderService> {
  const server = new grpc.Server();
  const ctx = serviceContext(rm, { 'replica.fetch.wait.max.ms': 200 });
  const service: LeaderService = { port: 0, streams: [], stallStreams: 0, changed: new EventEmitter() };
  // The real service, with its ReplicaFetch handler wrapped to watch the streams (or stall them).
  addBrokerService(
    {
      addService: (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) => {
        const real = impl['replicaFetch'] as grpc.handleBidiStreamingCall<ReplicaFetchRequest, ReplicaFetchResponse>;
        const replicaFetch = (call: grpc.ServerDuplexStream<ReplicaFetchRequest, ReplicaFetchResponse>): void => {
          const seen: SeenStream = { requests: [] };
          service.streams.push(seen);
          call.on('data', () => {
            seen.requests.push(performance.now());
            service.changed.emit('change');
          });
          call.on('cancelled', () => {
            seen.cancelledAt = performance.now();
            service.changed.emit('change');
          });
          if (service.stallStreams > 0) {
            service.stallStreams--;
            return; // read and never answered
          }
          real(call);
        };
        server.addService(def, { ...impl, replicaFetch });
      },
    } as unknown as grpc.Server,
    ctx,
  );
  service.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  cleanups.push(() => server.forceShutdown());
  return service;
}

/** A TCP proxy to `port`; `blackhole()` stops forwarding on the connections open now, without closing them. */
async function proxy(port: number): Promise<{ port: number; connections(): number; blackhole(): void }> {
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
    connections: () => pairs.length,
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

/**
 * Resolves true once `cond` holds, checked again each time `subscribe`'s event fires (it returns
 * an unsubscribe function), false after `ms`.
 */
async function untilEvent(subscribe: (listener: () => void) => () => void, cond: () => boolean, ms: number): Promise<boolean> {
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
      const off = subscribe(done);
    });
  }
  return true;
}

/** untilEvent on each change of partition `p`. */
function until(p: Partition, cond: () => boolean, ms: number): Promise<boolean> {
  return untilEvent((listener) => p.onNextChange(listener), cond, ms);
}

/** untilEvent on each event of `service.changed`. */
function untilSeen(service: LeaderService, cond: () => boolean, ms: number): Promise<boolean> {
  return untilEvent((listener) => {
    service.changed.on('change', listener);
    return () => void service.changed.off('change', listener);
  }, cond, ms);
}

/** Broker 2's fetcher from broker 1 at `port`; `warnings` collects its log messages. */
function startFetcher(two: ReplicaManager, port: number, warnings: string[], opts: Partial<FetcherOptions> = {}): ReplicaFetcherManager {
  const fetcher = new ReplicaFetcherManager({
    brokerId: 2,
    brokerEpoch: () => 1,
    addressOf: (id) => (id === 1 ? `127.0.0.1:${port}` : undefined),
    followed: () => two.all().filter((p) => p.follower !== null),
    maxWaitMs: 200,
    partitionMaxBytes: 1 << 20,
    responseMaxBytes: 1 << 20,
    backoffMs: 50,
    socketTimeoutMs: 300,
    logger: { warn: (_fields, msg) => warnings.push(msg) },
    ...opts,
  });
  cleanups.push(() => fetcher.close());
  return fetcher;
}

const batch = (from: number, n: number): Buffer => encodeRecordBatch({ baseTimestamp: 1, records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`v${from + i}`) })) });

test('a follower whose connection to the leader went silent reconnects and fetches again (keepalive)', async () => {
  const one = await replicaManager(1);
  const two = await replicaManager(2);
  const leader = one.partitionByName('t', 0)!;
  const follower = two.partitionByName('t', 0)!;
  const link = await proxy((await serveReplicaFetch(one)).port);
  // The fetch timeout is far off: the keepalive alone must notice.
  const fetcher = startFetcher(two, link.port, [], { socketTimeoutMs: 60_000, keepaliveTimeMs: 200, keepaliveTimeoutMs: 200 });
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  fetcher.update();
  expect(await until(follower, () => follower.log.logEndOffset === 3, 5000)).toBe(true);
  // The connection goes silent with the follower's next fetch held on the leader; the leader's
  // answer to it (the new records) never arrives.
  link.blackhole();
  expect((await leader.produce(batch(3, 2), 1, 5000)).errorCode).toBe(0);
  expect(await until(follower, () => follower.log.logEndOffset === 5, 5000)).toBe(true);
});

test('a fetch the leader accepts but never answers times out replica.socket.timeout.ms after its longest hold; the link reconnects and replication resumes', async () => {
  const one = await replicaManager(1);
  const two = await replicaManager(2);
  const leader = one.partitionByName('t', 0)!;
  const replica = two.partitionByName('t', 0)!;
  const service = await serveReplicaFetch(one);
  service.stallStreams = 1;
  const warnings: string[] = [];
  // Keepalive is left on (its defaults): the connection is alive and answers pings.
  const fetcher = startFetcher(two, service.port, warnings);
  const timeoutMs = replicaFetchTimeoutMs(200, 300);
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  fetcher.update();
  const first = (): SeenStream | undefined => service.streams[0];
  expect(await untilSeen(service, () => first()?.cancelledAt !== undefined, timeoutMs + 10_000)).toBe(true);
  const held = (first()!.cancelledAt as number) - (first()!.requests[0] as number);
  expect(held).toBeGreaterThanOrEqual(timeoutMs - 100);
  expect(held).toBeLessThan(timeoutMs + 3_000);
  expect(warnings).toEqual(['replica fetch timed out; reconnecting']);
  expect(await until(replica, () => replica.log.logEndOffset === 3, 5000)).toBe(true);
  expect(service.streams.length).toBe(2);
});

test('a held idle fetch (leader alive, nothing to send) is not timed out, however short replica.socket.timeout.ms', async () => {
  const one = await replicaManager(1);
  const two = await replicaManager(2);
  const leader = one.partitionByName('t', 0)!;
  const replica = two.partitionByName('t', 0)!;
  const service = await serveReplicaFetch(one);
  const warnings: string[] = [];
  // 300 ms is far below the leader's idle hold (replica.fetch.wait.max.ms 200 + 4.5 s).
  const fetcher = startFetcher(two, service.port, warnings, { socketTimeoutMs: 300 });
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  fetcher.update();
  expect(await until(replica, () => replica.log.logEndOffset === 3, 5000)).toBe(true);
  // Wait until a fetch held for the whole idle hold was answered and the next one sent.
  const heldIdle = (): boolean => {
    const r = service.streams[0]?.requests ?? [];
    return r.some((t, i) => i > 0 && t - (r[i - 1] as number) >= IDLE_REPLICA_FETCH_HOLD_MS);
  };
  expect(await untilSeen(service, heldIdle, 2 * (200 + IDLE_REPLICA_FETCH_HOLD_MS) + 5_000)).toBe(true);
  expect(warnings).toEqual([]);
  expect(service.streams.length).toBe(1);
  expect(service.streams[0]?.cancelledAt).toBeUndefined();
});

test('after a timed-out fetch the follower dials a new connection, even while another client of the process holds the silent one', async () => {
  const replicas = [1, 2, 3];
  const one = await replicaManager(1, replicas);
  const two = await replicaManager(2, replicas);
  const three = await replicaManager(3, replicas);
  const leader = one.partitionByName('t', 0)!;
  const replica = two.partitionByName('t', 0)!;
  const other = three.partitionByName('t', 0)!;
  const link = await proxy((await serveReplicaFetch(one)).port);
  const warnings: string[] = [];
  // Keepalive far off: only the fetch timeout can notice the silent connection.
  const keepaliveOff = { keepaliveTimeMs: 600_000, keepaliveTimeoutMs: 600_000 };
  const fetcher = startFetcher(two, link.port, warnings, keepaliveOff);
  // Broker 3's fetcher in the same process, with the same channel options and its fetch timeout
  // far off: grpc-js's shared subchannel pool would put both links on one connection and keep it
  // open for this one after broker 2's link closed its client.
  const otherFetcher = startFetcher(three, link.port, [], { ...keepaliveOff, brokerId: 3, socketTimeoutMs: 60_000 });
  expect((await leader.produce(batch(0, 3), 1, 5000)).errorCode).toBe(0);
  fetcher.update();
  otherFetcher.update();
  expect(await until(replica, () => replica.log.logEndOffset === 3, 5000)).toBe(true);
  expect(await until(other, () => other.log.logEndOffset === 3, 5000)).toBe(true);
  link.blackhole();
  expect((await leader.produce(batch(3, 2), 1, 5000)).errorCode).toBe(0);
  expect(await until(replica, () => replica.log.logEndOffset === 5, replicaFetchTimeoutMs(200, 300) + 10_000)).toBe(true);
  expect(warnings).toContain('replica fetch timed out; reconnecting');
  // One connection per link, and broker 2's new one.
  expect(link.connections()).toBe(3);
});
