/**
 * GroupLagReader: lag = high watermark - committed offset (never negative), local partitions read
 * locally, and no series (rather than a wrong one) for a partition without a leader or whose
 * leader does not answer.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerService, type ListOffsetsRequest, type ListOffsetsResponse } from '@strand/protocol';
import { GroupLagReader } from '../../src/group/group-lag';

test('computes lag from local and remote high watermarks and leaves out unknown end offsets', async () => {
  // A stand-in leader answering ListOffsets(LATEST) with a high watermark of 50 for t-1.
  const server = new grpc.Server();
  const asked: ListOffsetsRequest[] = [];
  server.addService(BrokerService, {
    listOffsets: (call: grpc.ServerUnaryCall<ListOffsetsRequest, ListOffsetsResponse>, cb: grpc.sendUnaryData<ListOffsetsResponse>) => {
      asked.push(call.request);
      cb(null, { topics: call.request.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: p.partition === 1 ? 0 : 6, timestamp: -1, offset: p.partition === 1 ? 50 : -1, leaderEpoch: 0 })) })) });
    },
  } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const reader = new GroupLagReader({
    committedOffsets: () => [
      { groupId: 'a', topic: 't', partition: 0, offset: 7 }, // local, hw 10
      { groupId: 'b', topic: 't', partition: 0, offset: 12 }, // committed past the hw: lag 0
      { groupId: 'a', topic: 't', partition: 1, offset: 20 }, // remote, hw 50
      { groupId: 'a', topic: 't', partition: 2, offset: 1 }, // the leader answers with an error
      { groupId: 'a', topic: 't', partition: 3, offset: 1 }, // no leader
      { groupId: 'a', topic: 'gone', partition: 0, offset: 1 }, // a leader that does not answer
    ],
    localHighWatermark: (topic, partition) => (topic === 't' && partition === 0 ? 10 : undefined),
    leaderAddress: (topic, partition) => (topic === 'gone' ? '127.0.0.1:1' : partition === 3 ? undefined : `127.0.0.1:${port}`),
  });
  try {
    const lag = await reader.read(2000);
    expect(lag).toEqual([
      { group: 'a', topic: 't', partition: 0, committedOffset: 7, endOffset: 10, lag: 3 },
      { group: 'b', topic: 't', partition: 0, committedOffset: 12, endOffset: 10, lag: 0 },
      { group: 'a', topic: 't', partition: 1, committedOffset: 20, endOffset: 50, lag: 30 },
    ]);
    // One request for the leader, for its partitions only.
    expect(asked.map((r) => r.topics.map((t) => [t.name, t.partitions.map((p) => p.partition)]))).toEqual([[['t', [1, 2]]]]);
  } finally {
    reader.close();
    server.forceShutdown();
  }
});
