/**
 * The code generated from proto/: messages round-trip through protobuf bytes with 64-bit fields
 * as numbers and bytes as Buffers, absent fields decode to defaults, big messages encoded into a
 * buffer sized up front are byte-identical to protobufjs' own encoding, and a typed gRPC service
 * and client talk over a real loopback server.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import { descriptor } from '../src/generated/descriptor';
import { encodedSizeBound } from '../src/proto-runtime';
import { Acks, BrokerClient, BrokerService, StrandError, decodeFetchPartitionResponse, decodeProduceRequest, decodeReplicaFetchResponse, encodeFetchPartitionResponse, encodeProduceRequest, encodeReplicaFetchResponse, type BrokerServer, type MetadataResponse, type ProduceRequest, type ReplicaFetchResponse } from '../src';

describe('generated messages', () => {
  it('round-trip with int64 as number and bytes as Buffer', () => {
    const bytes = encodeFetchPartitionResponse({ partition: 3, errorCode: 0, highWatermark: 2 ** 40 + 5, lastStableOffset: 7, logStartOffset: 0, divergingEpoch: { epoch: 4, endOffset: 99 }, records: Buffer.from('abc') });
    const m = decodeFetchPartitionResponse(bytes);
    expect(m.highWatermark).toBe(2 ** 40 + 5);
    expect(m.divergingEpoch).toEqual({ epoch: 4, endOffset: 99 });
    expect(Buffer.from(m.records).toString()).toBe('abc');
  });
  it('decodes absent fields to defaults (messages to null, optional to undefined)', () => {
    const m = decodeFetchPartitionResponse(new Uint8Array(0));
    expect(m).toMatchObject({ partition: 0, highWatermark: 0, divergingEpoch: null });
    expect(m.records.length).toBe(0);
    const p = decodeProduceRequest(encodeProduceRequest({ acks: Acks.ACKS_ALL, timeoutMs: 100, topics: [] }));
    expect(p.acks).toBe(Acks.ACKS_ALL);
    expect(p.transactionalId).toBeUndefined();
  });
  it('rejects malformed bytes with CORRUPT_MESSAGE', () => {
    expect(() => decodeProduceRequest(Buffer.from([0x1a, 0xff, 0xff, 0xff, 0x0f]))).toThrow(StrandError);
  });
});

describe('encoding big messages into a buffer sized up front', () => {
  const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
  const plain = (name: string, m: object): Uint8Array => root.lookupType(name).encode(m).finish();
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 4000, max: 70_000 }).map((n) => Buffer.alloc(n, n % 251)));

  it('gives the same bytes as protobufjs alone, and the size bound holds', () => {
    const produce = fc.record({
      acks: fc.constantFrom(Acks.ACKS_NONE, Acks.ACKS_LEADER, Acks.ACKS_ALL),
      timeoutMs: fc.nat(),
      topics: fc.array(fc.record({ name: fc.string({ unit: 'grapheme', maxLength: 20 }), partitions: fc.array(fc.record({ partition: fc.nat(), records: bytes }), { maxLength: 4 }) }), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(produce, (m) => {
        const req = m as ProduceRequest;
        const ours = encodeProduceRequest(req);
        expect(Buffer.from(ours).equals(Buffer.from(plain('strand.broker.ProduceRequest', req)))).toBe(true);
        expect(encodedSizeBound(req)).toBeGreaterThanOrEqual(ours.length);
        expect(decodeProduceRequest(ours).topics.map((t) => t.partitions.map((p) => p.records.length))).toEqual(req.topics.map((t) => t.partitions.map((p) => p.records.length)));
      }),
      { numRuns: 60 },
    );
  });

  it('round-trips a replica fetch answer of several hundred KiB', () => {
    const res: ReplicaFetchResponse = {
      correlationId: 7,
      errorCode: 0,
      topics: [{ topicId: Buffer.alloc(16, 1), partitions: [0, 1].map((partition) => ({ partition, errorCode: 0, highWatermark: 2 ** 40, logStartOffset: 3, leaderEpoch: 5, divergingEpoch: null, records: Buffer.alloc(300_000, partition + 1) })) }],
    };
    const out = encodeReplicaFetchResponse(res);
    expect(Buffer.from(out).equals(Buffer.from(plain('strand.broker.ReplicaFetchResponse', res)))).toBe(true);
    expect(decodeReplicaFetchResponse(out)).toMatchObject({ correlationId: 7, topics: [{ partitions: [{ partition: 0, highWatermark: 2 ** 40 }, { partition: 1, logStartOffset: 3 }] }] });
  });
});

describe('generated gRPC service and client', () => {
  it('serve and call a unary method over loopback', async () => {
    const server = new grpc.Server();
    const impl: Partial<BrokerServer> = {
      metadata: (call, callback) => {
        const res: MetadataResponse = { clusterId: 'c1', controllerId: 1, brokers: [{ nodeId: 1, host: '127.0.0.1', port: 9093 }], topics: call.request.topics.map((name) => ({ errorCode: 3, name, topicId: Buffer.alloc(0), partitions: [] })) };
        callback(null, res);
      },
    };
    // grpc-js answers UNIMPLEMENTED for methods a server leaves out.
    server.addService(BrokerService, impl as BrokerServer);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const client = new BrokerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const res = await new Promise<MetadataResponse>((resolve, reject) => client.metadata({ topics: ['t'], allowAutoTopicCreation: false }, new grpc.Metadata(), {}, (err, r) => (err || !r ? reject(err) : resolve(r))));
      expect(res.clusterId).toBe('c1');
      expect(res.brokers[0]!.rack).toBeUndefined();
      expect(res.topics.map((t) => [t.name, t.errorCode])).toEqual([['t', 3]]);
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});
