/**
 * The metadata image travels through Raft snapshots: with a small snapshot interval, a controller
 * restarted on its own storage restores its image from the snapshot (the log before it is
 * compacted) plus the entries after it, and ends with exactly the image of the other controllers;
 * a broker following the metadata stream of that restarted controller gets a snapshot first.
 * Subscribers that need a snapshot of the same image (brokers reconnecting together after a
 * failover) share one snapshot delta, which the gRPC service encodes once.
 */
import { MemoryNetwork, MemoryStorage } from '@strand/raft';
import { decodeMetadataDelta, type MetadataDelta } from '@strand/protocol';
import { CONTROLLER_CONFIG, MetadataImage, QuorumController, type ControllerEndpoint } from '../src';
import { serializeMetadataDelta } from '../src/controller-service';

const config = CONTROLLER_CONFIG.parse({ 'broker.session.timeout.ms': '60000', 'auto.leader.rebalance.enable': 'false', 'controller.metadata.retained.batches': '10' });

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve(f()).catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a restarted controller restores its image from a Raft snapshot', async () => {
  const net = new MemoryNetwork();
  const voters = new Map<number, ControllerEndpoint>([1, 2, 3].map((i) => [i, { host: '127.0.0.1', port: 9190 + i }]));
  const storages = new Map([1, 2, 3].map((i) => [i, new MemoryStorage()]));
  let seq = 0;
  // A snapshot every 10 applied entries, by the server's key.
  const snapConfig = { ...config, 'controller.snapshot.interval.entries': 10 };
  const make = (i: number): QuorumController =>
    new QuorumController({ nodeId: i, voters, storage: storages.get(i)!, transport: net.transport(String(i)), config: snapConfig, tickMs: 10, electionTicks: 10, seed: i, newTopicId: () => (++seq).toString(16).padStart(32, '0'), clusterId: 'snap' });
  const controllers = new Map([1, 2, 3].map((i) => [i, make(i)]));
  try {
    for (const c of controllers.values()) await c.start();
    const active = async (): Promise<QuorumController | undefined> => {
      for (const c of controllers.values()) {
        try {
          await c.read(() => true);
          return c;
        } catch {
          // not active
        }
      }
      return undefined;
    };
    let leader = await until('an active controller', active);
    const reg = await leader.registerBroker({ brokerId: 7, incarnationId: 'b7', endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 1 }], clusterId: '', previousShutdownClean: true });
    await leader.brokerHeartbeat({ brokerId: 7, brokerEpoch: reg.brokerEpoch, currentMetadataOffset: reg.brokerEpoch, wantShutDown: false });
    for (let i = 0; i < 30; i++) {
      leader = await until('an active controller', active);
      const res = await leader.createTopics([{ name: `t${i}`, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: String(1000 + i) }] }], false);
      expect(res[0]!.errorCode).toBe(0);
    }
    const follower = [...controllers.entries()].find(([, c]) => c !== leader)!;
    expect(follower[1].raftStatus().snapshotIndex).toBeGreaterThan(0);
    await follower[1].stop();
    const restarted = make(follower[0]);
    controllers.set(follower[0], restarted);
    await restarted.start();
    const target = leader.metadata.offset;
    await until('the restarted controller caught up', () => (restarted.metadata.offset >= target ? true : undefined));
    expect(restarted.metadata.toRecords()).toEqual(leader.metadata.toRecords());
    // Its retained batches start after the snapshot: a broker from offset 0 gets a snapshot first.
    const deltas: boolean[] = [];
    const stop = restarted.subscribe(0, (d) => deltas.push(d.snapshot));
    stop();
    expect(deltas[0]).toBe(true);
    const rebuilt = MetadataImage.fromRecords(restarted.metadata.offset, restarted.metadata.toRecords());
    expect(rebuilt.topicByName('t29')).toBeDefined();
  } finally {
    for (const c of controllers.values()) await c.stop().catch(() => undefined);
  }
});

test('subscribers needing a snapshot of the same image share one delta, encoded once', async () => {
  const net = new MemoryNetwork();
  const voters = new Map<number, ControllerEndpoint>([[1, { host: '127.0.0.1', port: 9191 }]]);
  let seq = 0;
  const c = new QuorumController({ nodeId: 1, voters, storage: new MemoryStorage(), transport: net.transport('1'), config, tickMs: 10, electionTicks: 10, seed: 1, newTopicId: () => (++seq).toString(16).padStart(32, '0'), clusterId: 'memo' });
  try {
    await c.start();
    await until('active', () => c.read(() => true));
    const reg = await c.registerBroker({ brokerId: 7, incarnationId: 'b7', endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 1 }], clusterId: '', previousShutdownClean: true });
    expect(reg.errorCode).toBe(0);
    const first = (): MetadataDelta => {
      let got: MetadataDelta | undefined;
      c.subscribe(-1, (d) => (got ??= d))();
      if (got === undefined) throw new Error('no snapshot delta');
      return got;
    };
    const a = first();
    const b = first();
    expect(a.snapshot).toBe(true);
    expect(b).toBe(a);
    expect(serializeMetadataDelta(b)).toBe(serializeMetadataDelta(a));
    expect(decodeMetadataDelta(serializeMetadataDelta(a))).toEqual(decodeMetadataDelta(serializeMetadataDelta({ ...a })));
    expect(MetadataImage.fromRecords(a.offset, decodeMetadataDelta(serializeMetadataDelta(a)).records).toRecords()).toEqual(c.metadata.toRecords());
    // A new image: a new snapshot delta.
    const reg8 = await c.registerBroker({ brokerId: 8, incarnationId: 'b8', endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 2 }], clusterId: '', previousShutdownClean: true });
    expect(reg8.errorCode).toBe(0);
    const next = first();
    expect(next).not.toBe(a);
    expect(next.offset).toBe(c.metadata.offset);
    expect(MetadataImage.fromRecords(next.offset, next.records).brokers.has(8)).toBe(true);
  } finally {
    await c.stop();
  }
});
