/**
 * A minimal test client over the generated BrokerClient: metadata lookup, an idempotent
 * one-record-per-request producer that follows leadership and retries a failed send with the
 * same sequence number (so the broker deduplicates), and a reader of a partition's records.
 * The real client library lives in packages/client; this one keeps broker tests independent.
 */
import * as grpc from '@grpc/grpc-js';
import { Acks, BrokerClient, decodeRecordBatch, encodeRecordBatch, validateBatches, type CreateTopicsRequest, type CreateTopicsResponse, type FetchRequest, type FetchResponse, type ListOffsetsRequest, type ListOffsetsResponse, type MetadataResponse, type ProduceRequest, type ProduceResponse } from '@strand/protocol';

type Unary<Req, Res> = (c: BrokerClient, req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

export class TestBrokers {
  private readonly clients = new Map<string, BrokerClient>();
  constructor(readonly bootstrap: string[]) {}

  client(address: string): BrokerClient {
    let c = this.clients.get(address);
    if (c === undefined) {
      // Reconnect backoff as the client library's (packages/client, Kafka's reconnect.backoff.ms
      // and reconnect.backoff.max.ms are 50 ms and 1 s): grpc-js's default starts at 1 s and grows
      // 1.6-fold to 2 minutes, and a call on a channel waiting out its backoff fails at once. A
      // broker down for 8 s was then first tried again only ~16 s after it went down (26 s at
      // the next step), which chaos runs counted as the cluster's recovery time.
      c = new BrokerClient(address, grpc.credentials.createInsecure(), { 'grpc-node.flow_control_window': 16 * 1024 * 1024, 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1_000 });
      this.clients.set(address, c);
    }
    return c;
  }

  call<Req, Res>(address: string, method: Unary<Req, Res>, req: Req, timeoutMs = 10_000): Promise<Res> {
    return new Promise((resolve, reject) => method(this.client(address), req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err || res === undefined ? reject(err ?? new Error('empty')) : resolve(res))));
  }

  /** Metadata from the first bootstrap broker that answers. */
  async metadata(topics: string[], allowAutoTopicCreation = false): Promise<MetadataResponse> {
    let last: unknown;
    for (const a of this.bootstrap) {
      try {
        return await this.call<{ topics: string[]; allowAutoTopicCreation: boolean }, MetadataResponse>(a, (c, r, m, o, cb) => c.metadata(r, m, o, cb), { topics, allowAutoTopicCreation }, 2000);
      } catch (e: unknown) {
        last = e;
      }
    }
    throw last;
  }

  /**
   * CreateTopics through whichever bootstrap broker answers (a broker that is still starting, or
   * whose controller is electing, is skipped), until `timeoutMs` (monotonic) passes.
   */
  async createTopics(req: CreateTopicsRequest, timeoutMs = 30_000): Promise<CreateTopicsResponse> {
    const deadline = performance.now() + timeoutMs;
    let last: unknown = new Error('no broker answered');
    for (let i = 0; performance.now() < deadline; i++) {
      const address = this.bootstrap[i % this.bootstrap.length] as string;
      try {
        return await this.call<CreateTopicsRequest, CreateTopicsResponse>(address, (c, r, m, o, cb) => c.createTopics(r, m, o, cb), req, 10_000);
      } catch (e: unknown) {
        last = e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw last;
  }

  /** Address of the partition's leader, or undefined if none is known. */
  async leaderOf(topic: string, partition: number): Promise<{ address: string; id: number; epoch: number } | undefined> {
    const md = await this.metadata([topic]);
    const p = md.topics[0]?.partitions.find((x) => x.partition === partition);
    const b = md.brokers.find((x) => x.nodeId === p?.leaderId);
    return p && b ? { address: `${b.host}:${b.port}`, id: b.nodeId, epoch: p.leaderEpoch } : undefined;
  }

  /**
   * The leader of a partition once it serves it: Metadata names a leader as soon as the broker
   * has the image, but the broker takes the role only once the partition's log is open (opened
   * off the event loop), and until then answers NOT_LEADER_OR_FOLLOWER. A ListOffsets (latest)
   * at the leader answering no error says the role is taken; undefined until then.
   */
  async servingLeaderOf(topic: string, partition: number): Promise<{ address: string; id: number; epoch: number } | undefined> {
    const leader = await this.leaderOf(topic, partition);
    if (leader === undefined) return undefined;
    const res = await this.call<ListOffsetsRequest, ListOffsetsResponse>(leader.address, (c, r, m, o, cb) => c.listOffsets(r, m, o, cb), {
      isolationLevel: 0,
      topics: [{ name: topic, partitions: [{ partition, timestamp: -1, currentLeaderEpoch: -1 }] }],
    }).catch(() => undefined);
    return res?.topics[0]?.partitions[0]?.errorCode === 0 ? leader : undefined;
  }

  /**
   * Sends `value` as one idempotent batch (producer id/epoch, sequence `seq`) with acks=all,
   * retrying on any failure until acknowledged or `deadlineMs` (monotonic) passes. Returns the
   * offset, or throws if never acknowledged.
   */
  async sendIdempotent(topic: string, partition: number, value: string, producer: { id: number; epoch: number }, seq: number, deadlineMs: number): Promise<number> {
    const batch = encodeRecordBatch({ records: [{ value: Buffer.from(value) }], baseTimestamp: Date.now(), producerId: producer.id, producerEpoch: producer.epoch, baseSequence: seq });
    let last: unknown = new Error('not sent');
    while (performance.now() < deadlineMs) {
      try {
        const leader = await this.leaderOf(topic, partition);
        if (leader === undefined) throw new Error('no leader');
        const res = await this.call<ProduceRequest, ProduceResponse>(leader.address, (c, r, m, o, cb) => c.produce(r, m, o, cb), { acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ name: topic, partitions: [{ partition, records: Buffer.from(batch) }] }] }, 8000);
        const p = res.topics[0]?.partitions[0];
        if (p && p.errorCode === 0) return p.baseOffset;
        last = new Error(`produce error ${p?.errorCode}: ${p?.errorMessage}`);
      } catch (e: unknown) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw last;
  }

  /** Every record value of a partition below its high watermark, in offset order, from its leader. */
  async readAll(topic: string, partition: number): Promise<{ offset: number; value: string }[]> {
    const leader = await this.leaderOf(topic, partition);
    if (leader === undefined) throw new Error('no leader');
    const out: { offset: number; value: string }[] = [];
    let offset = 0;
    for (let guard = 0; guard < 100_000; guard++) {
      const res = await this.call<FetchRequest, FetchResponse>(leader.address, (c, r, m, o, cb) => c.fetch(r, m, o, cb), {
        maxWaitMs: 0, minBytes: 0, maxBytes: 4 << 20, isolationLevel: 0, replicaId: -1,
        topics: [{ name: topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
      });
      const p = res.topics[0]?.partitions[0];
      if (p === undefined || p.errorCode !== 0) throw new Error(`fetch error ${p?.errorCode}`);
      if (p.records.length === 0) break;
      for (const v of validateBatches(p.records)) {
        for (const r of decodeRecordBatch(p.records, v.position).records) {
          if (r.offset >= offset) out.push({ offset: r.offset, value: r.value?.toString() ?? '' });
        }
        offset = v.header.baseOffset + v.header.lastOffsetDelta + 1;
      }
    }
    return out;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
