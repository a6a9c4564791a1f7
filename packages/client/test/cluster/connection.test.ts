/**
 * Checks that client.id reaches the broker: the in-memory broker twin records the `client-id`
 * metadata entry of every call it serves (unary and stream), and its JoinGroup keeps it for
 * DescribeGroups as the real broker does (broker-service.ts). A producer, a group consumer and an
 * admin client each with its own client.id must send it on every call they make, over
 * ProduceStream/FetchStream and over the unary Produce/Fetch fallback; a group member's
 * description shows it; without client.id each client gets Kafka's default (producer-N,
 * consumer-<group>-N, consumer-N, adminclient-N); values a metadata entry cannot carry are
 * refused as INVALID_CONFIG.
 */
import { Admin } from '../../src/admin/admin';
import { Consumer } from '../../src/consumer/consumer';
import { Producer } from '../../src/producer/producer';
import { MemoryCluster } from '../support/memory-broker';

let mem: MemoryCluster;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await mem.stop();
});

function clients(ids: { producer?: string; consumer?: string; admin?: string }, group = 'g'): { producer: Producer; consumer: Consumer; admin: Admin } {
  const fast = { 'bootstrap.servers': mem.bootstrap, 'retry.backoff.ms': 5, 'retry.backoff.max.ms': 50 };
  const producer = new Producer({ ...fast, 'linger.ms': 0, ...(ids.producer === undefined ? {} : { 'client.id': ids.producer }) });
  const consumer = new Consumer({ ...fast, 'group.id': group, 'auto.offset.reset': 'earliest', 'fetch.max.wait.ms': 50, 'session.timeout.ms': 3000, 'heartbeat.interval.ms': 50, ...(ids.consumer === undefined ? {} : { 'client.id': ids.consumer }) });
  const admin = new Admin({ ...fast, ...(ids.admin === undefined ? {} : { 'client.id': ids.admin }) });
  closers.push(() => admin.close(), () => consumer.close(), () => producer.close());
  return { producer, consumer, admin };
}

/** Produces `n` records to t, reads them in the group, commits; the admin client describes topic and group: the member client ids. */
async function roundTrip(c: { producer: Producer; consumer: Consumer; admin: Admin }, n: number, group = 'g'): Promise<string[]> {
  await c.producer.sendBatch(Array.from({ length: n }, (_, i) => ({ topic: 't', value: `v${i}` })));
  c.consumer.subscribe(['t']);
  let got = 0;
  const deadline = performance.now() + 10_000;
  while (got < n && performance.now() < deadline) got += (await c.consumer.poll(50)).length;
  expect(got).toBe(n);
  await c.consumer.commit();
  expect((await c.admin.describeTopics(['t']))[0]?.name).toBe('t');
  expect((await c.admin.groupOffsets(group, ['t'])).map((o) => o.lag)).not.toContain(undefined);
  return (await c.admin.describeGroup(group)).members.map((m) => m.clientId);
}

describe('client.id', () => {
  for (const streams of [true, false]) {
    it(`is sent on every call of a producer, a consumer and an admin client (${streams ? 'ProduceStream/FetchStream' : 'unary Produce/Fetch'})`, async () => {
      mem = await MemoryCluster.start({ brokers: 2 });
      mem.createTopic('t', 2);
      mem.produceStreamEnabled = streams;
      mem.fetchStreamEnabled = streams;
      const c = clients({ producer: 'app-producer', consumer: 'app-consumer', admin: 'app-admin' });
      expect(await roundTrip(c, 20)).toEqual(['app-consumer']);

      const seen = Object.fromEntries([...mem.clientIds].map(([rpc, ids]) => [rpc, [...ids].sort()]));
      // Nothing arrived without a client id, or with another one.
      for (const [rpc, ids] of Object.entries(seen)) for (const id of ids) expect({ rpc, id, known: ['app-producer', 'app-consumer', 'app-admin'].includes(id) }).toEqual({ rpc, id, known: true });
      expect(seen).toMatchObject({
        metadata: ['app-admin', 'app-consumer', 'app-producer'],
        initProducerId: ['app-producer'],
        findCoordinator: expect.arrayContaining(['app-admin', 'app-consumer']),
        joinGroup: ['app-consumer'],
        syncGroup: ['app-consumer'],
        offsetCommit: ['app-consumer'],
        describeGroups: ['app-admin'],
        offsetFetch: ['app-admin', 'app-consumer'],
        listOffsets: ['app-admin', 'app-consumer'],
      });
      // The streams were opened with it (the unary fallbacks counted when the streams are off).
      expect(seen[streams ? 'produceStream' : 'produce']).toEqual(['app-producer']);
      expect(seen[streams ? 'fetchStream' : 'fetch']).toEqual(['app-consumer']);
    });
  }

  it("defaults to Kafka's producer-N, consumer-<group>-N, consumer-N and adminclient-N", async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const c = clients({}, 'orders');
    const [member] = await roundTrip(c, 3, 'orders');
    const n = (id: string, prefix: string): number => {
      expect(id).toMatch(new RegExp(`^${prefix}-[1-9][0-9]*$`));
      return Number(id.slice(prefix.length + 1));
    };
    expect(member).toBe(c.consumer.config['client.id']);
    const consumerN = n(member ?? '', 'consumer-orders');
    const producerN = n(c.producer.config['client.id'], 'producer');
    const adminN = n(c.admin.config['client.id'], 'adminclient');
    expect([...(mem.clientIds.get('metadata') ?? [])].sort()).toEqual([c.admin.config['client.id'], member, c.producer.config['client.id']].sort());
    // One sequence per kind of client, counting on; a consumer without a group has none in its id;
    // a group id a metadata value cannot carry is percent-encoded (UTF-8).
    const more = [new Producer({ 'bootstrap.servers': mem.bootstrap }), new Consumer({ 'bootstrap.servers': mem.bootstrap }), new Consumer({ 'bootstrap.servers': mem.bootstrap, 'group.id': 'grüppe' }), new Admin({ 'bootstrap.servers': mem.bootstrap })];
    closers.push(...more.map((x) => () => x.close()));
    expect(more.map((x) => x.config['client.id'])).toEqual([`producer-${producerN + 1}`, `consumer-${consumerN + 1}`, `consumer-gr%C3%BCppe-${consumerN + 2}`, `adminclient-${adminN + 1}`]);
  });

  it('refuses values a gRPC metadata entry cannot carry, naming the key', async () => {
    mem = await MemoryCluster.start();
    expect(() => new Producer({ 'bootstrap.servers': mem.bootstrap, 'client.id': 'prodücer' })).toThrow(/Invalid value prodücer for configuration client.id: printable ASCII only/);
    expect(() => new Consumer({ 'bootstrap.servers': mem.bootstrap, 'client.id': 'a\nb' })).toThrow(/configuration client.id: printable ASCII only/);
    expect(() => new Admin({ 'bootstrap.servers': mem.bootstrap, 'client.id': 'x'.repeat(256) })).toThrow(/configuration client.id: at most 255 characters/);
    const ok = new Admin({ 'bootstrap.servers': mem.bootstrap, 'client.id': 'x'.repeat(255) });
    await ok.close();
  });
});
