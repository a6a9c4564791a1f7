/**
 * Several named broker listeners (Kafka's listeners / advertised.listeners /
 * inter.broker.listener.name), across real processes: one controller and three brokers; brokers
 * 101 and 102 listen on INTERNAL (advertised 127.0.0.1:<port>) and EXTERNAL (advertised
 * localhost:<other port>), broker 103 on INTERNAL only. Every broker registers all its
 * endpoints, and Metadata, DescribeCluster and FindCoordinator name each broker by its endpoint
 * for the listener the request arrived on, leaving out brokers that lack it (103 on EXTERNAL).
 * Replication runs over INTERNAL (acks=all with an ISR of three, 103 included), and the client
 * library, bootstrapped on EXTERNAL, produces and consumes through EXTERNAL addresses only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { Admin, Consumer, Producer, type ConsumerRecord } from '@strand/client';
import { CoordinatorType, ErrorCode, type DescribeClusterRequest, type DescribeClusterResponse, type FindCoordinatorRequest, type FindCoordinatorResponse, type MetadataResponse } from '@strand/protocol';
import { freePorts } from './support/free-port';
import { ProcessCluster, STRAND_BIN } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(180_000);

interface BrokerProc {
  id: number;
  internal: number;
  external: number | null;
  proc: ChildProcess;
  log: string[];
}

const sortById = <T extends { nodeId: number }>(xs: T[]): T[] => [...xs].sort((a, b) => a.nodeId - b.nodeId);

test('a broker answers Metadata, DescribeCluster and FindCoordinator with the addresses of the listener the request arrived on', async () => {
  const cluster = await ProcessCluster.create({ controllers: 1, overrides: ['broker.heartbeat.interval.ms=300', 'broker.session.timeout.ms=3000', 'controller.quorum.election.timeout.ms=300'] });
  const brokers: BrokerProc[] = [];
  const tb = new TestBrokers([]);
  const closers: (() => Promise<void>)[] = [];
  try {
    cluster.startAll();
    const ports = await freePorts(5);
    const specs = [
      { id: 101, internal: ports[0] as number, external: ports[1] as number },
      { id: 102, internal: ports[2] as number, external: ports[3] as number },
      { id: 103, internal: ports[4] as number, external: null },
    ];
    for (const s of specs) {
      const listeners = [`INTERNAL://127.0.0.1:${s.internal}`, ...(s.external === null ? [] : [`EXTERNAL://127.0.0.1:${s.external}`])];
      const advertised = [`INTERNAL://127.0.0.1:${s.internal}`, ...(s.external === null ? [] : [`EXTERNAL://localhost:${s.external}`])];
      const dir = path.join(cluster.root, `broker-${s.id}`);
      const args = [
        STRAND_BIN, 'server',
        '-o', 'process.roles=broker',
        '-o', `node.id=${s.id}`,
        '-o', `controller.quorum.voters=${cluster.quorumVoters}`,
        '-o', `listeners=${listeners.join(',')}`,
        '-o', `advertised.listeners=${advertised.join(',')}`,
        '-o', 'inter.broker.listener.name=INTERNAL',
        '-o', `listener.security.protocol.map=${s.external === null ? 'INTERNAL:PLAINTEXT' : 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT'}`,
        '-o', `log.dirs=${dir}`,
        '-o', 'http.listener=',
        '-o', 'broker.heartbeat.interval.ms=300',
        '-o', 'offsets.topic.num.partitions=3',
      ];
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STRAND_')));
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
      const log: string[] = [];
      const keep = (c: Buffer): void => {
        log.push(c.toString());
        if (log.length > 500) log.splice(0, log.length - 500);
      };
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      brokers.push({ ...s, proc, log });
    }
    const internalOf = (b: { internal: number }): string => `127.0.0.1:${b.internal}`;
    const metadataVia = (address: string, topics: string[] = []): Promise<MetadataResponse> => tb.call<{ topics: string[]; allowAutoTopicCreation: boolean }, MetadataResponse>(address, (c, r, m, o, cb) => c.metadata(r, m, o, cb), { topics, allowAutoTopicCreation: false }, 2000);
    const b101 = brokers[0] as BrokerProc;

    // Over INTERNAL: all three brokers, at their INTERNAL addresses.
    const expectInternal = brokers.map((b) => ({ nodeId: b.id, host: '127.0.0.1', port: b.internal }));
    await until('three brokers in the INTERNAL metadata', async () => {
      const md = await metadataVia(internalOf(b101));
      return JSON.stringify(sortById(md.brokers)) === JSON.stringify(expectInternal) ? true : undefined;
    }, 60_000);
    for (const b of brokers) expect(sortById((await metadataVia(internalOf(b))).brokers)).toEqual(expectInternal);

    // Over EXTERNAL: the same cluster, at the EXTERNAL addresses; 103 has no EXTERNAL listener.
    const expectExternal = brokers.filter((b) => b.external !== null).map((b) => ({ nodeId: b.id, host: 'localhost', port: b.external as number }));
    for (const b of brokers.filter((x) => x.external !== null)) expect(sortById((await metadataVia(`127.0.0.1:${b.external as number}`)).brokers)).toEqual(expectExternal);

    // DescribeCluster: each broker described with the endpoint of the listener used.
    const describe = async (address: string): Promise<{ id: number; endpoints: string[] }[]> => {
      const r = await tb.call<DescribeClusterRequest, DescribeClusterResponse>(address, (c, q, m, o, cb) => c.describeCluster(q, m, o, cb), {});
      return r.brokers.map((b) => ({ id: b.brokerId, endpoints: b.endpoints.map((e) => `${e.listener}://${e.host}:${e.port}`) })).sort((a, b) => a.id - b.id);
    };
    expect(await describe(internalOf(b101))).toEqual(brokers.map((b) => ({ id: b.id, endpoints: [`INTERNAL://127.0.0.1:${b.internal}`] })));
    expect(await describe(`127.0.0.1:${b101.external as number}`)).toEqual(expectExternal.map((e) => ({ id: e.nodeId, endpoints: [`EXTERNAL://localhost:${e.port}`] })));

    // FindCoordinator: the coordinator's address for the listener used (none on EXTERNAL for 103).
    const findVia = (address: string, key: string): Promise<FindCoordinatorResponse> => tb.call<FindCoordinatorRequest, FindCoordinatorResponse>(address, (c, r, m, o, cb) => c.findCoordinator(r, m, o, cb), { key, keyType: CoordinatorType.COORDINATOR_GROUP });
    for (const group of ['g-a', 'g-b', 'g-c', 'g-d']) {
      const internal = await until(`coordinator of ${group}`, async () => {
        const r = await findVia(internalOf(b101), group);
        return r.errorCode === 0 ? r : undefined;
      }, 60_000);
      const owner = brokers.find((b) => b.id === internal.nodeId) as BrokerProc;
      expect({ host: internal.host, port: internal.port }).toEqual({ host: '127.0.0.1', port: owner.internal });
      const external = await findVia(`127.0.0.1:${b101.external as number}`, group);
      if (owner.external === null) expect(external).toMatchObject({ errorCode: 15 /* COORDINATOR_NOT_AVAILABLE */, nodeId: -1 });
      else expect(external).toMatchObject({ errorCode: 0, nodeId: owner.id, host: 'localhost', port: owner.external });
    }

    // Replication over INTERNAL (103 has nothing else) and clients on EXTERNAL only: partitions led
    // by 101 and 102 with 103 in every ISR; acks=all needs all three.
    const external = `localhost:${b101.external as number}`;
    const admin = new Admin({ 'bootstrap.servers': external, 'retry.backoff.ms': 50 });
    closers.push(() => admin.close());
    await admin.createTopic({ name: 'two-listeners', configs: { 'min.insync.replicas': '3' }, assignments: [{ partition: 0, brokerIds: [101, 102, 103] }, { partition: 1, brokerIds: [102, 101, 103] }] });
    await until('full ISRs', async () => ((await admin.describeTopics(['two-listeners']))[0]?.partitions.every((p) => p.leader >= 0 && p.isr.length === 3) ? true : undefined), 60_000);
    const producer = new Producer({ 'bootstrap.servers': external, acks: 'all', 'linger.ms': 1, 'retry.backoff.ms': 50 });
    closers.push(() => producer.close());
    const values = Array.from({ length: 40 }, (_, i) => `v${i}`);
    const mds = await producer.sendBatch(values.map((v, i) => ({ topic: 'two-listeners', partition: i % 2, value: v })));
    expect(mds.map((m) => m.partition)).toEqual(values.map((_, i) => i % 2));
    const consumer = new Consumer({ 'bootstrap.servers': external, 'auto.offset.reset': 'earliest', 'fetch.max.wait.ms': 100 });
    closers.push(() => consumer.close());
    consumer.assign([{ topic: 'two-listeners', partition: 0 }, { topic: 'two-listeners', partition: 1 }]);
    const read: ConsumerRecord[] = [];
    const deadline = performance.now() + 30_000;
    while (read.length < values.length && performance.now() < deadline) read.push(...(await consumer.poll(500)));
    expect(read.map((r) => r.value?.toString()).sort()).toEqual([...values].sort());
    // Every follower replica is at the end of the log: replication over INTERNAL works.
    for (const partition of [0, 1]) {
      const md = await metadataVia(internalOf(b101), ['two-listeners']);
      expect(md.topics[0]?.partitions.find((p) => p.partition === partition)?.isr.length).toBe(3);
    }
    // A client on EXTERNAL cannot pose as a follower: ReplicaFetch is served on INTERNAL only.
    const onExternal = brokers.find((b) => b.external !== null) as BrokerProc;
    const refused = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = tb.client(`127.0.0.1:${onExternal.external}`).replicaFetch();
      s.on('error', (e: grpc.ServiceError) => resolve(e));
      s.on('data', () => resolve(null));
      s.on('end', () => resolve(null));
      s.write({ correlationId: 1, replicaId: onExternal.id === 101 ? 102 : 101, brokerEpoch: 0, maxWaitMs: 0, minBytes: 1, maxBytes: 1024, topics: [] });
    });
    expect(refused?.metadata.get('strand-error-code')[0]).toBe(String(ErrorCode.CLUSTER_AUTHORIZATION_FAILED));
  } catch (e: unknown) {
    for (const b of brokers) console.log(`--- broker ${b.id} (last output) ---\n${b.log.join('').slice(-3000)}`);
    throw e;
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    tb.close();
    for (const b of brokers) {
      if (b.proc.exitCode === null && b.proc.signalCode === null) {
        const exited = new Promise((resolve) => b.proc.once('exit', resolve));
        b.proc.kill('SIGKILL');
        await exited;
      }
    }
    await cluster.close();
  }
});
