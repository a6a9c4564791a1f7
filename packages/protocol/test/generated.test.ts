/**
 * The code generated from proto/: messages round-trip through protobuf bytes with 64-bit fields
 * as numbers and bytes as Buffers, absent fields decode to defaults, and a typed gRPC service and
 * client talk over a real loopback server.
 */
import * as grpc from '@grpc/grpc-js';
import { Acks, BrokerClient, BrokerService, StrandError, decodeFetchPartitionResponse, decodeProduceRequest, encodeFetchPartitionResponse, encodeProduceRequest, type BrokerServer, type MetadataResponse } from '../src';

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
      const res = await new Promise<MetadataResponse>((resolve, reject) => client.metadata({ topics: ['t'] }, new grpc.Metadata(), {}, (err, r) => (err || !r ? reject(err) : resolve(r))));
      expect(res.clusterId).toBe('c1');
      expect(res.brokers[0]!.rack).toBeUndefined();
      expect(res.topics.map((t) => [t.name, t.errorCode])).toEqual([['t', 3]]);
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});
