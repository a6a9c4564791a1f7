/**
 * The broker's side of the controller API: the metadata stream carries whole images (a
 * snapshot delta, one message), which outgrow grpc-js's default 4 MiB receive limit in a large
 * cluster (~1.5 MB per 40,000 partitions). Only the active controller serves the stream, so a
 * broker never stays on one cut off from the quorum. A delta handled over several turns (a
 * promise) pauses the stream: deltas are still handled one at a time, in order.
 */
import * as grpc from '@grpc/grpc-js';
import { CONTROLLER_CONFIG, MetadataImage, QuorumController, addControllerService } from '@strand/controller';
import { ConfigResourceType, ControllerService, ErrorCode, type BrokerHeartbeatRequest, type BrokerHeartbeatResponse, type MetadataDelta, type MetadataRecordSpans } from '@strand/protocol';
import { MemoryNetwork, MemoryStorage } from '@strand/raft';
import { ControllerChannel } from '../../src/server/controller-channel';

const servers: grpc.Server[] = [];
const channels: ControllerChannel[] = [];

afterEach(async () => {
  for (const c of channels.splice(0)) c.close();
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.tryShutdown(() => resolve()));
});

/**
 * A controller whose metadata stream sends `delta` and stays open. It answers heartbeats when
 * `heartbeats` is 'answer', never when 'hang' (a paused process).
 */
async function fakeController(delta: MetadataDelta | MetadataDelta[], heartbeats: 'answer' | 'hang' | 'unimplemented' = 'unimplemented'): Promise<number> {
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  const unimplemented = (_call: unknown, callback: (e: grpc.ServiceError) => void): void => callback(Object.assign(new Error('not in this fake'), { code: grpc.status.UNIMPLEMENTED, details: 'not in this fake', metadata: new grpc.Metadata() }));
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(ControllerService)) impl[name] = unimplemented;
  impl['fetchMetadata'] = (call: grpc.ServerWritableStream<unknown, MetadataDelta>) => {
    for (const d of Array.isArray(delta) ? delta : [delta]) call.write(d);
  };
  if (heartbeats === 'answer') impl['brokerHeartbeat'] = (_call: unknown, callback: (e: null, r: BrokerHeartbeatResponse) => void) => callback(null, { errorCode: 0, errorMessage: '', isCaughtUp: true, isFenced: false, shouldShutDown: false });
  if (heartbeats === 'hang') impl['brokerHeartbeat'] = () => undefined;
  server.addService(ControllerService, impl);
  servers.push(server);
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))));
}

it('receives a metadata image larger than 4 MiB (one snapshot message)', async () => {
  const value = 'v'.repeat(100_000);
  const records = Array.from({ length: 60 }, (_, i) => ({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: `t${i}`, name: 'x', value } }));
  const port = await fakeController({ snapshot: true, offset: 42, records });
  const channel = new ControllerChannel([{ id: 1, host: '127.0.0.1', port }]);
  channels.push(channel);
  const got = await new Promise<MetadataRecordSpans>((resolve, reject) => {
    const stop = channel.followMetadata(
      () => -1,
      7,
      (d) => {
        stop();
        resolve(d);
      },
      (e) => {
        stop();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
  expect(got.offset).toBe(42);
  expect(got.count).toBe(60);
  expect(got.decode(0, got.count)).toEqual(records);
});

it('hands over the next delta only once the promise of the one before settles (the stream waits)', async () => {
  const deltas = [1, 2, 3, 4].map((offset) => ({ snapshot: offset === 1, offset, records: [{ cluster: { clusterId: `c${offset}` } }] }));
  const port = await fakeController(deltas);
  const channel = new ControllerChannel([{ id: 1, host: '127.0.0.1', port }]);
  channels.push(channel);
  const events: string[] = [];
  let pending = false;
  await new Promise<void>((resolve, reject) => {
    const stop = channel.followMetadata(
      () => -1,
      7,
      (d) => {
        if (pending) reject(new Error(`delta ${d.offset} handed over while the one before was pending`));
        events.push(`start ${d.offset}`);
        if (d.offset === 4) {
          stop();
          resolve();
          return undefined;
        }
        if (d.offset === 3) return undefined; // handled at once
        pending = true;
        // Settles a few turns later, as a large snapshot applied a slice per turn.
        return new Promise<void>((done) => setImmediate(() => setImmediate(() => setImmediate(done)))).then(() => {
          pending = false;
          events.push(`end ${d.offset}`);
        });
      },
      (e) => reject(e instanceof Error ? e : new Error(String(e))),
    );
  });
  expect(events).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'start 4']);
});

it('moves its metadata stream to the controller that answers calls when the one it follows goes silent (paused)', async () => {
  // `paused` served the stream, then stopped: its stream stays open and silent, its calls hang.
  const paused = await fakeController({ snapshot: true, offset: 1, records: [] }, 'hang');
  const active = await fakeController({ snapshot: true, offset: 2, records: [] }, 'answer');
  const channel = new ControllerChannel([paused, active].map((port, i) => ({ id: i + 1, host: '127.0.0.1', port })));
  channels.push(channel);
  const offsets: number[] = [];
  let caughtUp: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (caughtUp = resolve));
  const stop = channel.followMetadata(
    () => offsets.at(-1) ?? -1,
    7,
    (d) => {
      offsets.push(d.offset);
      if (d.offset === 2) caughtUp();
    },
    () => undefined,
  );
  try {
    await new Promise<void>((resolve) => {
      const wait = (): void => void (offsets.length > 0 ? resolve() : setTimeout(wait, 5));
      wait();
    });
    expect(offsets).toEqual([1]);
    // A heartbeat times out on the paused controller; the next is answered by the active one.
    const heartbeat = (timeoutMs: number): Promise<BrokerHeartbeatResponse> => channel.call<BrokerHeartbeatRequest, BrokerHeartbeatResponse>((c, r, m, o, cb) => c.brokerHeartbeat(r, m, o, cb), { brokerId: 7, brokerEpoch: 1, currentMetadataOffset: 1, wantShutDown: false }, timeoutMs);
    await expect(heartbeat(300)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(offsets).toEqual([1]);
    expect((await heartbeat(5000)).errorCode).toBe(0);
    await reached;
    expect(offsets).toEqual([1, 2]);
  } finally {
    stop();
  }
});

describe('the metadata stream follows the active controller', () => {
  const controllers: QuorumController[] = [];
  afterEach(async () => {
    for (const c of controllers.splice(0)) await c.stop();
  });

  async function until<T>(what: string, f: () => T | undefined, timeoutMs = 15_000): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const v = f();
      if (v !== undefined) return v;
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('a broker following a controller that is cut off from the quorum moves to the new active one (no one else serves the stream)', async () => {
    const net = new MemoryNetwork();
    const grpcServers = [1, 2, 3].map(() => new grpc.Server());
    servers.push(...grpcServers);
    const ports = await Promise.all(grpcServers.map((s) => new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))))));
    const voters = new Map(ports.map((port, i) => [i + 1, { host: '127.0.0.1', port }]));
    const config = CONTROLLER_CONFIG.parse({ 'auto.leader.rebalance.enable': 'false' });
    let topicSeq = 0;
    for (const id of [1, 2, 3]) {
      const c = new QuorumController({ nodeId: id, voters, storage: new MemoryStorage(), transport: net.transport(String(id)), config, tickMs: 10, electionTicks: 20, seed: id, clusterId: 'c', newTopicId: () => (++topicSeq).toString(16).padStart(32, '0') });
      controllers.push(c);
      addControllerService(grpcServers[id - 1] as grpc.Server, c, voters);
      await c.start();
    }
    const first = await until('an active controller', () => controllers.find((c) => c.isActive));
    // The broker knows the active controller first, as after its registration.
    const order = [first.nodeId, ...[1, 2, 3].filter((id) => id !== first.nodeId)];
    const channel = new ControllerChannel(order.map((id) => ({ id, ...(voters.get(id) as { host: string; port: number }) })));
    channels.push(channel);
    let image = MetadataImage.EMPTY;
    const stop = channel.followMetadata(
      () => image.offset,
      9,
      (d) => {
        if (d.offset <= image.offset) return;
        const records = d.decode(0, d.count);
        image = d.snapshot ? MetadataImage.fromRecords(d.offset, records) : image.apply(d.offset, records);
      },
      () => undefined,
    );
    try {
      const create = async (c: QuorumController, name: string): Promise<void> => {
        const [r] = await c.createTopics([{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], false);
        expect(r?.errorCode).toBe(ErrorCode.INVALID_REPLICATION_FACTOR); // no brokers: refused, after a read barrier
      };
      await create(first, 'probe');
      await until('the stream delivering', () => (image.offset >= 0 ? true : undefined));
      net.isolate(String(first.nodeId));
      const next = await until('a new active controller', () => controllers.find((c) => c !== first && c.isActive));
      await until('the cut-off controller stepping down', () => (first.isActive ? undefined : true));
      // A change only the new active controller can make (the cut-off one has no quorum).
      const res = await next.registerBroker({ brokerId: 7, incarnationId: 'x', endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9 }], clusterId: '', previousShutdownClean: true });
      expect(res.errorCode).toBe(0);
      await until('the broker seeing what the new active controller wrote', () => (image.brokers.has(7) ? true : undefined));
    } finally {
      stop();
      net.heal();
    }
  });
});
