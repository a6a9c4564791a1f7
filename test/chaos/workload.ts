/**
 * Chaos workloads and their recorded history. Producers: one idempotent producer id per worker,
 * one worker per partition, acks=all, one record per request with a unique value
 * (`<topic>/<partition>/<producerId>/<seq>`); an unacknowledged send is retried with the same
 * sequence number until acknowledged or the run ends (so the broker deduplicates). Every attempt
 * and outcome is recorded. Readers: one per partition, polling the leader below the high
 * watermark during the run and recording every record it sees. Final reads happen after healing.
 * Times are monotonic milliseconds since the run started.
 */
import { Acks, decodeRecordBatch, encodeRecordBatch, validateBatches, type FetchRequest, type FetchResponse, type InitProducerIdRequest, type InitProducerIdResponse, type MetadataResponse, type ProduceRequest, type ProduceResponse } from '@strand/protocol';
import { TestBrokers } from '../support/test-producer';

export interface SendRecord {
  topic: string;
  partition: number;
  producerId: number;
  seq: number;
  value: string;
  start: number;
  end: number;
  /** ok: acknowledged at `offset`; info: never acknowledged (indeterminate: may or may not be stored). */
  outcome: 'ok' | 'info';
  offset: number;
  attempts: number;
  lastError: string;
}

export interface PollRecord {
  reader: string;
  topic: string;
  partition: number;
  time: number;
  /** Offset the reader asked from. */
  fetchOffset: number;
  records: [number, string][];
}

export interface History {
  sends: SendRecord[];
  polls: PollRecord[];
  /** Final reads after healing: per `topic/partition`, [offset, value] in offset order. */
  finalReads: Record<string, [number, string][]>;
  /** The consumer-group workload, when it ran. */
  group?: GroupHistory;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Bootstrap-rotating metadata and leader cache over TestBrokers. */
export class ChaosClient {
  readonly brokers: TestBrokers;
  private rr = 0;
  private readonly leaders = new Map<string, string>();

  constructor(private readonly bootstrap: string[]) {
    this.brokers = new TestBrokers(bootstrap);
  }

  async metadata(topics: string[], timeoutMs = 1500): Promise<MetadataResponse> {
    let last: unknown = new Error('no brokers');
    for (let i = 0; i < this.bootstrap.length; i++) {
      const a = this.bootstrap[(this.rr++) % this.bootstrap.length] as string;
      try {
        return await this.brokers.call<{ topics: string[]; allowAutoTopicCreation: boolean }, MetadataResponse>(a, (c, r, m, o, cb) => c.metadata(r, m, o, cb), { topics, allowAutoTopicCreation: false }, timeoutMs);
      } catch (e: unknown) {
        last = e;
      }
    }
    throw last;
  }

  async leader(topic: string, partition: number, refresh: boolean): Promise<string | undefined> {
    const key = `${topic}/${partition}`;
    if (!refresh) {
      const known = this.leaders.get(key);
      if (known !== undefined) return known;
    }
    const md = await this.metadata([topic]);
    const p = md.topics[0]?.partitions.find((x) => x.partition === partition);
    const b = md.brokers.find((x) => x.nodeId === p?.leaderId);
    if (p === undefined || b === undefined) {
      this.leaders.delete(key);
      return undefined;
    }
    const addr = `${b.host}:${b.port}`;
    this.leaders.set(key, addr);
    return addr;
  }

  async initProducerId(): Promise<{ id: number; epoch: number }> {
    for (let i = 0; i < 50; i++) {
      const a = this.bootstrap[(this.rr++) % this.bootstrap.length] as string;
      try {
        const r = await this.brokers.call<InitProducerIdRequest, InitProducerIdResponse>(a, (c, q, m, o, cb) => c.initProducerId(q, m, o, cb), { transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1 }, 3000);
        if (r.errorCode === 0) return { id: r.producerId, epoch: r.producerEpoch };
      } catch {
        // try the next broker
      }
      await sleep(200);
    }
    throw new Error('InitProducerId failed 50 times');
  }

  /** One fetch from the partition's leader: records at or above `offset` (below the HW). */
  async fetch(topic: string, partition: number, offset: number, maxWaitMs: number, refresh: boolean): Promise<[number, string][]> {
    const leader = await this.leader(topic, partition, refresh);
    if (leader === undefined) throw new Error('no leader');
    const res = await this.brokers.call<FetchRequest, FetchResponse>(leader, (c, r, m, o, cb) => c.fetch(r, m, o, cb), {
      maxWaitMs, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, replicaId: -1,
      topics: [{ name: topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
    }, maxWaitMs + 3000);
    const p = res.topics[0]?.partitions[0];
    if (p === undefined || p.errorCode !== 0) throw new Error(`fetch error ${p?.errorCode ?? res.errorCode}`);
    const out: [number, string][] = [];
    for (const v of validateBatches(p.records)) {
      for (const r of decodeRecordBatch(p.records, v.position).records) if (r.offset >= offset) out.push([r.offset, r.value?.toString() ?? '']);
    }
    return out;
  }

  close(): void {
    this.brokers.close();
  }
}

export interface WorkloadOptions {
  topics: string[];
  partitions: number;
  /** Pause between one worker's acknowledged sends (ms), to keep a busy machine responsive. */
  sendIntervalMs: number;
  /** When set, run-time readers poll every partition. */
  readers: boolean;
  now: () => number;
  /** Called on every acknowledged send (recovery measurement). */
  onAck?: (topic: string, partition: number, time: number) => void;
}

/** Producers and readers running until `stop()`. */
export class Workload {
  readonly history: History = { sends: [], polls: [], finalReads: {} };
  private stopping = false;
  private stopProducersAt = Infinity;
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly client: ChaosClient, private readonly opts: WorkloadOptions) {}

  async start(): Promise<void> {
    for (const topic of this.opts.topics) {
      for (let p = 0; p < this.opts.partitions; p++) {
        const producer = await this.client.initProducerId();
        this.loops.push(this.produce(topic, p, producer));
        if (this.opts.readers) this.loops.push(this.read(topic, p));
      }
    }
  }

  private async produce(topic: string, partition: number, producer: { id: number; epoch: number }): Promise<void> {
    for (let seq = 0; !this.stopping; seq++) {
      const value = `${topic}/${partition}/${producer.id}/${seq}`;
      const rec: SendRecord = { topic, partition, producerId: producer.id, seq, value, start: this.opts.now(), end: -1, outcome: 'info', offset: -1, attempts: 0, lastError: '' };
      this.history.sends.push(rec);
      const batch = Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(value) }], baseTimestamp: Date.now(), producerId: producer.id, producerEpoch: producer.epoch, baseSequence: seq }));
      let refresh = false;
      // Retry the same sequence until acknowledged; give up only when the run is over.
      while (this.opts.now() < this.stopProducersAt) {
        rec.attempts++;
        try {
          const leader = await this.client.leader(topic, partition, refresh);
          if (leader === undefined) throw new Error('no leader');
          const res = await this.client.brokers.call<ProduceRequest, ProduceResponse>(leader, (c, r, m, o, cb) => c.produce(r, m, o, cb), { acks: Acks.ACKS_ALL, timeoutMs: 4000, topics: [{ name: topic, partitions: [{ partition, records: batch }] }] }, 6000);
          const pr = res.topics[0]?.partitions[0];
          if (pr !== undefined && pr.errorCode === 0) {
            rec.outcome = 'ok';
            rec.offset = pr.baseOffset;
            rec.end = this.opts.now();
            this.opts.onAck?.(topic, partition, rec.end);
            break;
          }
          rec.lastError = `produce error ${pr?.errorCode}: ${pr?.errorMessage}`;
        } catch (e: unknown) {
          rec.lastError = e instanceof Error ? e.message.slice(0, 200) : String(e);
        }
        refresh = true;
        await sleep(100);
      }
      if (rec.outcome !== 'ok') {
        rec.end = this.opts.now();
        return;
      }
      if (this.opts.sendIntervalMs > 0) await sleep(this.opts.sendIntervalMs);
    }
  }

  private async read(topic: string, partition: number): Promise<void> {
    let next = 0;
    let refresh = false;
    while (!this.stopping) {
      try {
        const records = await this.client.fetch(topic, partition, next, 500, refresh);
        refresh = false;
        if (records.length > 0) {
          this.history.polls.push({ reader: `run-${topic}-${partition}`, topic, partition, time: this.opts.now(), fetchOffset: next, records });
          next = (records[records.length - 1] as [number, string])[0] + 1;
        }
        await sleep(200);
      } catch {
        refresh = true;
        await sleep(300);
      }
    }
  }

  /**
   * Stops: producers get `graceMs` more to have their in-flight sends acknowledged (the cluster
   * is healed by then), then everything ends.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopProducersAt = this.opts.now() + graceMs;
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** Reads every partition from its leader to the HW (retrying until `timeoutMs`). */
  async finalRead(timeoutMs: number): Promise<string[]> {
    const problems: string[] = [];
    for (const topic of this.opts.topics) {
      for (let p = 0; p < this.opts.partitions; p++) {
        const deadline = this.opts.now() + timeoutMs;
        const out: [number, string][] = [];
        let next = 0;
        let refresh = true;
        for (;;) {
          try {
            const records = await this.client.fetch(topic, p, next, 0, refresh);
            refresh = false;
            if (records.length === 0) break;
            out.push(...records);
            next = (records[records.length - 1] as [number, string])[0] + 1;
          } catch (e: unknown) {
            if (this.opts.now() > deadline) {
              problems.push(`final read of ${topic}/${p} stopped at offset ${next}: ${e instanceof Error ? e.message : String(e)}`);
              break;
            }
            refresh = true;
            await sleep(300);
          }
        }
        this.history.finalReads[`${topic}/${p}`] = out;
      }
    }
    return problems;
  }
}

export interface GroupPollRecord {
  member: string;
  time: number;
  records: [string, number, number, string][];
}

export interface GroupCommitRecord {
  member: string;
  start: number;
  end: number;
  topic: string;
  partition: number;
  offset: number;
  ok: boolean;
  error: string;
}

export interface GroupEvent {
  member: string;
  time: number;
  kind: 'assigned' | 'revoked' | 'lost';
  partitions: string[];
}

export interface GroupHistory {
  polls: GroupPollRecord[];
  commits: GroupCommitRecord[];
  events: GroupEvent[];
}

/**
 * Consumers in one group (the client library's Consumer, subscribe + explicit commits after
 * each poll), recording every poll, every commit attempt with its outcome, and every
 * assignment change. Stops when asked or, in `drain`, once every partition's final end is
 * consumed by the group (bounded).
 */
export class GroupWorkload {
  readonly history: GroupHistory = { polls: [], commits: [], events: [] };
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private readonly consumed = new Map<string, number>();

  constructor(private readonly bootstrap: string[], private readonly topics: string[], private readonly members: number, private readonly now: () => number, private readonly log: (line: string) => void) {}

  async start(): Promise<void> {
    // Loaded at run time: the client package is another engineer's and may change shape.
    const { Consumer } = await import('@strand/client');
    for (let i = 0; i < this.members; i++) {
      const member = `member-${i}`;
      const consumer = new Consumer({
        'bootstrap.servers': this.bootstrap.join(','),
        'group.id': 'chaos-group',
        'enable.auto.commit': 'false',
        'auto.offset.reset': 'earliest',
        'session.timeout.ms': '6000',
        'heartbeat.interval.ms': '1000',
      });
      const event = (kind: GroupEvent['kind']) => (ps: { topic: string; partition: number }[]): void => {
        this.history.events.push({ member, time: this.now(), kind, partitions: ps.map((p) => `${p.topic}/${p.partition}`) });
      };
      consumer.subscribe(this.topics, { onPartitionsAssigned: event('assigned'), onPartitionsRevoked: event('revoked'), onPartitionsLost: event('lost') });
      this.loops.push(this.loop(member, consumer));
    }
  }

  private async loop(member: string, consumer: { poll(ms: number): Promise<{ topic: string; partition: number; offset: number; value: Buffer | null }[]>; commit(o: { topic: string; partition: number; offset: number }[]): Promise<void>; close(): Promise<void> }): Promise<void> {
    let lastError = '';
    while (!this.stopping) {
      try {
        const records = await consumer.poll(500);
        if (records.length === 0) continue;
        this.history.polls.push({ member, time: this.now(), records: records.map((r) => [r.topic, r.partition, r.offset, r.value?.toString() ?? '']) });
        const next = new Map<string, { topic: string; partition: number; offset: number }>();
        for (const r of records) {
          next.set(`${r.topic}/${r.partition}`, { topic: r.topic, partition: r.partition, offset: r.offset + 1 });
          this.consumed.set(`${r.topic}/${r.partition}`, Math.max(this.consumed.get(`${r.topic}/${r.partition}`) ?? 0, r.offset + 1));
        }
        const offsets = [...next.values()];
        const start = this.now();
        try {
          await consumer.commit(offsets);
          for (const o of offsets) this.history.commits.push({ member, start, end: this.now(), ...o, ok: true, error: '' });
        } catch (e: unknown) {
          const error = e instanceof Error ? e.message.slice(0, 200) : String(e);
          for (const o of offsets) this.history.commits.push({ member, start, end: this.now(), ...o, ok: false, error });
        }
      } catch (e: unknown) {
        const msg = e instanceof Error ? e.message.slice(0, 200) : String(e);
        if (msg !== lastError) this.log(`  ${member}: poll failed: ${msg}`);
        lastError = msg;
        await sleep(300);
      }
    }
    await consumer.close().catch(() => undefined);
  }

  /** Waits (bounded) until the group consumed every partition up to `ends` (`topic/p` -> end offset), then stops. */
  async drainAndStop(ends: Map<string, number>, timeoutMs: number): Promise<boolean> {
    const deadline = this.now() + timeoutMs;
    let done = false;
    while (this.now() < deadline) {
      done = [...ends].every(([k, end]) => end === 0 || (this.consumed.get(k) ?? 0) >= end);
      if (done) break;
      await sleep(200);
    }
    this.stopping = true;
    await Promise.all(this.loops);
    return done;
  }
}
