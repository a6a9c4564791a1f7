/**
 * Consumer-group lag, computed on demand (a metrics scrape), for the groups this broker
 * coordinates: per group and partition, the partition's high watermark minus the group's
 * committed offset (what Kafka exporters publish as kafka_consumergroup_lag). Partitions led here
 * are read locally; the others are asked of their leaders with one ListOffsets(LATEST) per leader
 * broker, over the inter-broker listener, bounded by a deadline. A partition whose end offset is
 * unknown (no leader, the leader did not answer in time, the topic is gone) gets no series rather
 * than a wrong one. Nothing runs between scrapes: no timers, no per-group state.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerClient, IsolationLevel, type ListOffsetsRequest, type ListOffsetsResponse } from '@strand/protocol';
import { LATEST_TIMESTAMP } from '@strand/storage';

export interface ConsumerGroupLag {
  group: string;
  topic: string;
  partition: number;
  committedOffset: number;
  /** The partition's high watermark (the offset the next consumed record would get). */
  endOffset: number;
  /** endOffset - committedOffset, at least 0. */
  lag: number;
}

export interface GroupLagHost {
  /** Committed offsets of the groups coordinated here. */
  committedOffsets(): { groupId: string; topic: string; partition: number; offset: number }[];
  /** The high watermark when this broker leads the partition, else undefined. */
  localHighWatermark(topic: string, partition: number): number | undefined;
  /** The leader's inter-broker address (`host:port`), or undefined when there is none. */
  leaderAddress(topic: string, partition: number): string | undefined;
}

export class GroupLagReader {
  private readonly clients = new Map<string, BrokerClient>();
  private closed = false;

  constructor(private readonly host: GroupLagHost) {}

  async read(timeoutMs = 2000): Promise<ConsumerGroupLag[]> {
    const committed = this.host.committedOffsets();
    if (committed.length === 0 || this.closed) return [];
    const ends = new Map<string, number>();
    const key = (topic: string, partition: number): string => `${partition}:${topic}`;
    // Partitions led elsewhere, by leader address.
    const remote = new Map<string, Map<string, Set<number>>>();
    for (const c of committed) {
      const k = key(c.topic, c.partition);
      if (ends.has(k)) continue;
      const local = this.host.localHighWatermark(c.topic, c.partition);
      if (local !== undefined) {
        ends.set(k, local);
        continue;
      }
      const address = this.host.leaderAddress(c.topic, c.partition);
      if (address === undefined) continue;
      let topics = remote.get(address);
      if (topics === undefined) remote.set(address, (topics = new Map()));
      let parts = topics.get(c.topic);
      if (parts === undefined) topics.set(c.topic, (parts = new Set()));
      parts.add(c.partition);
    }
    await Promise.all(
      [...remote].map(async ([address, topics]) => {
        const req: ListOffsetsRequest = {
          isolationLevel: IsolationLevel.READ_UNCOMMITTED,
          topics: [...topics].map(([name, parts]) => ({ name, partitions: [...parts].map((partition) => ({ partition, timestamp: LATEST_TIMESTAMP, currentLeaderEpoch: -1 })) })),
        };
        try {
          const res = await this.listOffsets(address, req, timeoutMs);
          for (const t of res.topics) for (const p of t.partitions) if (p.errorCode === 0 && p.offset >= 0) ends.set(key(t.name, p.partition), p.offset);
        } catch {
          // No answer in time: these partitions get no series in this scrape.
        }
      }),
    );
    const out: ConsumerGroupLag[] = [];
    for (const c of committed) {
      const end = ends.get(key(c.topic, c.partition));
      if (end === undefined) continue;
      out.push({ group: c.groupId, topic: c.topic, partition: c.partition, committedOffset: c.offset, endOffset: end, lag: Math.max(0, end - c.offset) });
    }
    return out;
  }

  private listOffsets(address: string, req: ListOffsetsRequest, timeoutMs: number): Promise<ListOffsetsResponse> {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new BrokerClient(address, grpc.credentials.createInsecure());
      this.clients.set(address, client);
    }
    const c = client;
    return new Promise((resolve, reject) => {
      c.listOffsets(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err || res === undefined ? reject(err ?? new Error('empty response')) : resolve(res)));
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
