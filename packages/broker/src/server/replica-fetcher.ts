/**
 * Follower-side replication I/O: one gRPC bidi stream per leader broker (DESIGN.md: follower
 * pull, the follower is the gRPC client so the leader's bytes flow server -> client, the fast
 * direction). Each link keeps at most one fetch in flight covering every partition this broker
 * follows on that leader; the leader long-polls it. After appending, the link waits until the
 * appended bytes are durable (flush.policy=fsync) before fetching again, so the next fetch
 * reports a durable end offset the leader can count toward the high watermark at once.
 *
 * A fetch in flight is lost when its stream fails (keepalive included) or when it stays
 * unanswered past `replicaFetchTimeoutMs` (replica.socket.timeout.ms); either way the link drops
 * its connection, backs off and reconnects.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerClient, type ReplicaFetchRequest, type ReplicaFetchResponse, type ReplicaFetchTopic } from '@strand/protocol';
import { FETCH_MAX_PARTITIONS, IDLE_REPLICA_FETCH_HOLD_MS } from './broker-config';
import type { Partition } from './partition';
import { topicIdToBytes, topicIdFromBytes } from '@strand/controller';

export interface FetcherOptions {
  brokerId: number;
  brokerEpoch: () => number;
  /** Address of a broker's BROKER listener, from metadata. */
  addressOf: (brokerId: number) => string | undefined;
  /** Partitions this broker follows (with a follower core). */
  followed: () => Partition[];
  maxWaitMs: number;
  partitionMaxBytes: number;
  responseMaxBytes: number;
  backoffMs: number;
  /** replica.socket.timeout.ms: how long past the leader's longest hold a fetch may go unanswered. */
  socketTimeoutMs: number;
  /**
   * HTTP/2 keepalive of the link's connection (ms between pings while a fetch is held, and how
   * long a ping may go unanswered). Defaults 10 000 / 5 000, as the Raft transport's.
   */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  logger: { warn(fields: Record<string, unknown>, msg: string): void };
}

/**
 * How long a fetch may go unanswered before it counts as lost (the link's connection is dropped):
 * the longest a live leader may hold it — the wait, plus IDLE_REPLICA_FETCH_HOLD_MS when it has
 * nothing to tell — and replica.socket.timeout.ms beyond. Kafka counts its socket timeout from
 * the send and needs it to be at least the wait; a Strand leader may hold an idle fetch 4.5 s
 * past the wait, so the timeout is counted from the end of the longest hold instead, and a held
 * idle fetch is never taken for a dead leader. (The leader holds at most min(its own wait, the
 * fetch's maxWaitMs), so the follower's own wait bounds it.)
 */
export function replicaFetchTimeoutMs(maxWaitMs: number, socketTimeoutMs: number): number {
  return maxWaitMs + IDLE_REPLICA_FETCH_HOLD_MS + socketTimeoutMs;
}

interface InFlightPart {
  partition: Partition;
  correlationId: number;
  fetchOffset: number;
}

class LeaderLink {
  private client: BrokerClient | null = null;
  private stream: grpc.ClientDuplexStream<ReplicaFetchRequest, ReplicaFetchResponse> | null = null;
  private inFlight: { correlationId: number; parts: InFlightPart[] } | null = null;
  private nextCorrelation = 1;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Armed while fetches are in flight: it times out the one in flight when it fires. */
  private fetchTimer: NodeJS.Timeout | null = null;
  /** When the fetch in flight was sent (monotonic ms). */
  private inFlightSentAt = 0;
  private waitingDurable = false;
  /** Where the next fetch starts in `followed()` after one that stopped at FETCH_MAX_PARTITIONS. */
  private resumeAt: number | null = null;
  private closed = false;
  private address: string | undefined;

  constructor(
    readonly leaderId: number,
    private readonly opts: FetcherOptions,
  ) {}

  private ensureStream(): grpc.ClientDuplexStream<ReplicaFetchRequest, ReplicaFetchResponse> | null {
    const address = this.opts.addressOf(this.leaderId);
    if (address === undefined) return null;
    if (this.stream !== null && address === this.address) return this.stream;
    this.resetStream();
    this.address = address;
    // Keepalive: a connection that died without a FIN or RST (the leader's host lost power, a
    // dropped NAT or firewall entry), or whose peer process is stopped or its event loop stuck
    // (SIGSTOP: the kernel still ACKs, the pings go unanswered), is closed after an unanswered
    // ping, within keepalive time + timeout; the stream fails and the link reconnects. A leader
    // that answers pings but not the fetch is left to the fetch timeout (armFetchTimer).
    // A local subchannel pool: grpc-js otherwise shares one connection among the clients of a
    // process with the same target and options, and close() ends it only when no other client
    // holds it; while one does (another broker's link in the same process), the client made
    // after a timeout would get the connection that went silent again. With its own pool, each
    // client has its own connection, close() ends it, and the next client dials anew (Kafka's
    // fetcher disconnects on a timed-out request too).
    this.client = new BrokerClient(address, grpc.credentials.createInsecure(), {
      'grpc-node.flow_control_window': 16 * 1024 * 1024,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.keepalive_time_ms': this.opts.keepaliveTimeMs ?? 10_000,
      'grpc.keepalive_timeout_ms': this.opts.keepaliveTimeoutMs ?? 5_000,
      'grpc.use_local_subchannel_pool': 1,
    });
    const s = this.client.replicaFetch();
    this.stream = s;
    s.on('data', (res: ReplicaFetchResponse) => this.onResponse(res));
    const broken = (e?: unknown): void => {
      if (this.stream !== s) return;
      if (e !== undefined && !this.closed) this.opts.logger.warn({ leader: this.leaderId, err: e instanceof Error ? e.message : String(e) }, 'replica fetch stream failed');
      this.resetStream();
      this.scheduleRetry();
    };
    s.on('error', (e: unknown) => broken(e));
    s.on('end', () => broken());
    return s;
  }

  private resetStream(): void {
    this.clearFetchTimer();
    if (this.inFlight) for (const p of this.inFlight.parts) p.partition.follower?.onFetchLost(p.correlationId);
    this.inFlight = null;
    const s = this.stream;
    this.stream = null;
    s?.cancel();
    this.client?.close();
    this.client = null;
  }

  /**
   * Times out the fetch in flight replicaFetchTimeoutMs after it was sent: a leader that keeps the
   * connection alive (answers pings) but never answers the fetch (a wedged handler, or an HTTP/2
   * proxy between the brokers that answers pings itself) would otherwise stall this link until
   * metadata changes. One timer per link, as one fetch is in flight per link. It is not reset per
   * fetch (fetches follow each other at the replication rate): when it fires it checks the fetch
   * then in flight and, if that one still has time, waits for the rest of it.
   */
  private armFetchTimer(): void {
    if (this.fetchTimer !== null) return;
    this.waitForFetchTimeout(replicaFetchTimeoutMs(this.opts.maxWaitMs, this.opts.socketTimeoutMs));
  }

  private waitForFetchTimeout(ms: number): void {
    this.fetchTimer = setTimeout(() => {
      this.fetchTimer = null;
      if (this.inFlight === null || this.closed) return;
      const timeoutMs = replicaFetchTimeoutMs(this.opts.maxWaitMs, this.opts.socketTimeoutMs);
      const left = this.inFlightSentAt + timeoutMs - performance.now();
      if (left > 0) {
        this.waitForFetchTimeout(left);
        return;
      }
      this.opts.logger.warn({ leader: this.leaderId, timeoutMs, partitions: this.inFlight.parts.length }, 'replica fetch timed out; reconnecting');
      this.resetStream();
      this.scheduleRetry();
    }, ms);
  }

  private clearFetchTimer(): void {
    if (this.fetchTimer === null) return;
    clearTimeout(this.fetchTimer);
    this.fetchTimer = null;
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick();
    }, this.opts.backoffMs);
  }

  /** Sends the next fetch if none is in flight and some partition wants one. */
  kick(): void {
    if (this.closed || this.waitingDurable) return;
    // A fetch in flight ends with its answer, its stream's failure or its timeout.
    if (this.inFlight !== null) return;
    const now = performance.now();
    const parts: InFlightPart[] = [];
    const topics: ReplicaFetchTopic[] = [];
    let retryLater = false;
    // Each fetch starts one partition further on: the leader fills its answer in request order
    // up to replica.fetch.response.max.bytes, so a fixed order could keep the last partitions
    // waiting while the first ones have much to send (Kafka's fetch sessions rotate likewise).
    // The request keeps that order across topics: a topic's entry is repeated when the rotation
    // wraps through it, rather than grouping a topic's partitions where the topic first came.
    const followed = this.opts.followed();
    // A leader answers INVALID_REQUEST to a fetch naming more than FETCH_MAX_PARTITIONS: past
    // it, a fetch stops there and the next one starts where it stopped.
    const start = followed.length === 0 ? 0 : (this.resumeAt ?? this.nextCorrelation) % followed.length;
    this.resumeAt = null;
    let lastTopicId: string | undefined;
    for (let k = 0; k < followed.length; k++) {
      if (parts.length >= FETCH_MAX_PARTITIONS) {
        this.resumeAt = start + k;
        break;
      }
      const p = followed[(start + k) % followed.length] as Partition;
      const f = p.follower;
      if (f === null || f.leaderId !== this.leaderId) continue;
      const out = f.pollFetch(now, replicaFetchTimeoutMs(this.opts.maxWaitMs, this.opts.socketTimeoutMs));
      if (out === null) {
        if (f.state === 'fetching') retryLater = true;
        continue;
      }
      parts.push({ partition: p, correlationId: out.correlationId, fetchOffset: out.request.fetchOffset });
      let t = topics[topics.length - 1];
      if (t === undefined || lastTopicId !== p.key.topicId) {
        t = { topicId: topicIdToBytes(p.key.topicId), partitions: [] };
        lastTopicId = p.key.topicId;
        topics.push(t);
      }
      t.partitions.push({
        partition: p.key.partition,
        currentLeaderEpoch: out.request.currentLeaderEpoch,
        fetchOffset: out.request.fetchOffset,
        lastFetchedEpoch: out.request.lastFetchedEpoch,
        countableEndOffset: out.request.countableEndOffset,
        partitionMaxBytes: this.opts.partitionMaxBytes,
        logStartOffset: out.request.logStartOffset,
      });
    }
    if (parts.length === 0) {
      if (retryLater) this.scheduleRetry();
      return;
    }
    const stream = this.ensureStream();
    if (stream === null) {
      for (const p of parts) p.partition.follower?.onFetchLost(p.correlationId);
      this.scheduleRetry();
      return;
    }
    const correlationId = this.nextCorrelation++;
    this.inFlight = { correlationId, parts };
    this.inFlightSentAt = now;
    this.armFetchTimer();
    stream.write({ correlationId, replicaId: this.opts.brokerId, brokerEpoch: this.opts.brokerEpoch(), maxWaitMs: this.opts.maxWaitMs, minBytes: 1, maxBytes: this.opts.responseMaxBytes, topics });
  }

  private onResponse(res: ReplicaFetchResponse): void {
    const inFlight = this.inFlight;
    if (inFlight === null || res.correlationId !== inFlight.correlationId) return;
    this.inFlight = null;
    if (res.errorCode !== 0) {
      // The whole fetch refused (INVALID_REQUEST): ask again after the backoff, not at once.
      this.opts.logger.warn({ leader: this.leaderId, error: res.errorCode, partitions: inFlight.parts.length }, 'replica fetch refused');
      const now = performance.now();
      for (const p of inFlight.parts) p.partition.follower?.onApplyFailed(p.correlationId, now);
      this.scheduleRetry();
      return;
    }
    const byKey = new Map(inFlight.parts.map((p) => [`${p.partition.key.topicId}:${p.partition.key.partition}`, p]));
    const appended: Partition[] = [];
    for (const t of res.topics) {
      const topicId = topicIdFromBytes(t.topicId);
      for (const r of t.partitions) {
        const part = byKey.get(`${topicId}:${r.partition}`);
        if (part === undefined) continue;
        byKey.delete(`${topicId}:${r.partition}`);
        const before = part.partition.log.logEndOffset;
        try {
          part.partition.applyFetchResponse(part.correlationId, part.fetchOffset, r);
        } catch (e: unknown) {
          this.opts.logger.warn({ topic: part.partition.key.topic, partition: r.partition, err: e instanceof Error ? e.message : String(e) }, 'applying replicated data failed');
          part.partition.follower?.onApplyFailed(part.correlationId, performance.now());
        }
        if (part.partition.log.logEndOffset > before) appended.push(part.partition);
      }
    }
    // Partitions the leader did not answer: their fetch is lost; ask again.
    for (const p of byKey.values()) p.partition.follower?.onFetchLost(p.correlationId);
    const pending = appended.filter((p) => p.log.durableEndOffset < p.log.logEndOffset && p.log.topicConfig['flush.policy'] === 'fsync');
    if (pending.length === 0) {
      this.kick();
      return;
    }
    this.waitingDurable = true;
    void Promise.allSettled(pending.map((p) => p.log.waitForDurable(p.log.logEndOffset - 1))).then(() => {
      this.waitingDurable = false;
      this.kick();
    });
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.resetStream();
  }
}

/** All leader links of this broker. */
export class ReplicaFetcherManager {
  private readonly links = new Map<number, LeaderLink>();
  private closed = false;

  constructor(private readonly opts: FetcherOptions) {}

  /** Re-plans links after metadata changed (new followers, new leaders) and kicks them. */
  update(): void {
    if (this.closed) return;
    const leaders = new Set<number>();
    for (const p of this.opts.followed()) {
      const f = p.follower;
      if (f !== null) leaders.add(f.leaderId);
    }
    for (const [id, link] of this.links) {
      if (!leaders.has(id)) {
        link.close();
        this.links.delete(id);
      }
    }
    for (const id of leaders) {
      let link = this.links.get(id);
      if (link === undefined) {
        link = new LeaderLink(id, this.opts);
        this.links.set(id, link);
      }
      link.kick();
    }
  }

  close(): void {
    this.closed = true;
    for (const l of this.links.values()) l.close();
    this.links.clear();
  }
}
