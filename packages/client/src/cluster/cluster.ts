/**
 * The client's view of the cluster: bootstrap addresses, a metadata cache, and one connection
 * per broker.
 *
 * Metadata is refreshed (a) when a caller reports a stale-metadata error (`requestRefresh`), (b)
 * when it is older than `metadata.max.age.ms`, and (c) when a topic it has not seen is asked for.
 * Concurrent refreshes coalesce into one request (single flight). A refresh never moves a
 * partition's leader epoch backwards (KIP-320): a lagging broker's answer cannot undo a newer
 * leader we already learnt from another broker. Connections are created on first use, replaced if
 * a broker's address changes, closed when a broker leaves, and all closed by close().
 */
import { setMaxListeners } from 'node:events';
import { StrandError } from '@strand/protocol';
import type { BrokerEndpoint, MetadataResponse } from '@strand/protocol';
import type { CommonConfig } from '../config';
import { parseHostPort } from '../config';
import { BrokerConnection } from './connection';
import type { UnaryMethod } from './connection';
import { monotonicMs, sleep, backoffMs } from '../retry';
import { abortError } from '../errors';

export interface PartitionInfo {
  partition: number;
  /** -1 while the partition has no leader. */
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
  errorCode: number;
}

export interface TopicInfo {
  name: string;
  topicId: Uint8Array;
  errorCode: number;
  /** Indexed by partition number. */
  partitions: PartitionInfo[];
}

export interface ClusterOptions {
  /** Largest response a connection accepts (bytes). */
  maxReceiveBytes?: number;
  maxSendBytes?: number;
  /** Metadata requests may auto-create topics (producers and consumers; not admin lookups). */
  allowAutoTopicCreation?: boolean;
}

const NO_LEADER = -1;

export class Cluster {
  readonly brokers = new Map<number, BrokerEndpoint>();
  readonly topics = new Map<string, TopicInfo>();
  clusterId = '';
  controllerId = -1;

  private readonly bootstrap: { host: string; port: number }[];
  private readonly connections = new Map<number, BrokerConnection>();
  /** Topics whose metadata this client keeps fresh (empty: every topic). */
  private readonly interest = new Set<string>();
  private inflight: Promise<void> | undefined;
  private lastRefreshMs = -Infinity;
  private staleRequested = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private nextBroker = 0;
  private nextAny = 0;
  private closed = false;
  private readonly closeController = new AbortController();

  constructor(
    readonly config: CommonConfig,
    private readonly options: ClusterOptions = {},
  ) {
    this.bootstrap = config['bootstrap.servers'].map((s) => {
      const hp = parseHostPort(s);
      if (hp === undefined) throw new StrandError('INVALID_CONFIG', `bootstrap.servers: '${s}' is not host:port`);
      return hp;
    });
    // Every call in flight listens for close(); their number is bounded by the in-flight limits.
    setMaxListeners(0, this.closeController.signal);
    const age = config['metadata.max.age.ms'];
    if (age > 0) {
      this.refreshTimer = setInterval(() => {
        if (monotonicMs() - this.lastRefreshMs >= age) this.refresh().catch(() => undefined);
      }, Math.min(age, 2_147_483_647));
      this.refreshTimer.unref();
    }
  }

  /** Aborts on close(): long waits in the client listen to it. */
  get closeSignal(): AbortSignal {
    return this.closeController.signal;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Keeps `topics` in every metadata refresh from now on. */
  addInterest(topics: Iterable<string>): void {
    for (const t of topics) this.interest.add(t);
  }

  /** Marks metadata stale (after NOT_LEADER_OR_FOLLOWER etc.); the next refresh() fetches. */
  requestRefresh(): void {
    this.staleRequested = true;
  }

  get needsRefresh(): boolean {
    return this.staleRequested || monotonicMs() - this.lastRefreshMs >= this.config['metadata.max.age.ms'];
  }

  /** Fetches metadata for the topics of interest (coalescing concurrent calls). */
  refresh(extraTopics: readonly string[] = []): Promise<void> {
    if (this.closed) return Promise.reject(new StrandError('NETWORK_EXCEPTION', 'client is closed'));
    for (const t of extraTopics) this.interest.add(t);
    if (this.inflight !== undefined) {
      // A refresh already running may not cover the new topics: chain one more after it.
      if (extraTopics.length === 0) return this.inflight;
      return this.inflight.then(
        () => this.refresh(),
        () => this.refresh(),
      );
    }
    const p = this.doRefresh().finally(() => {
      this.inflight = undefined;
    });
    this.inflight = p;
    return p;
  }

  /** Refreshes only if stale; returns at once otherwise. */
  async refreshIfNeeded(): Promise<void> {
    if (this.needsRefresh) await this.refresh();
  }

  private async doRefresh(): Promise<void> {
    const candidates = this.candidateConnections();
    let lastError: unknown;
    this.staleRequested = false;
    for (const conn of candidates) {
      try {
        const res = await conn.unary(conn.client.metadata as UnaryMethod<{ topics: string[]; allowAutoTopicCreation: boolean }, MetadataResponse>, { topics: [...this.interest], allowAutoTopicCreation: this.options.allowAutoTopicCreation === true }, this.config['request.timeout.ms'], 'Metadata', this.closeSignal);
        this.apply(res);
        this.lastRefreshMs = monotonicMs();
        return;
      } catch (e: unknown) {
        lastError = e;
        if (this.closed) throw e;
      }
    }
    this.staleRequested = true;
    throw lastError instanceof StrandError ? lastError : new StrandError('NETWORK_EXCEPTION', `no broker answered a metadata request: ${String(lastError)}`);
  }

  /** Known brokers first (rotating, so one dead broker is not always asked first), then bootstrap. */
  private candidateConnections(): BrokerConnection[] {
    const out: BrokerConnection[] = [];
    const ids = [...this.brokers.keys()];
    for (let i = 0; i < ids.length; i++) out.push(this.connection(ids[(this.nextBroker + i) % ids.length] as number));
    this.nextBroker++;
    this.bootstrap.forEach((_, i) => out.push(this.bootstrapConnection(i)));
    return out;
  }

  private bootstrapConnection(i: number): BrokerConnection {
    const id = -1 - i;
    let conn = this.connections.get(id);
    if (conn === undefined) {
      const hp = this.bootstrap[i] as { host: string; port: number };
      conn = this.newConnection(id, hp.host, hp.port);
    }
    return conn;
  }

  private newConnection(id: number, host: string, port: number): BrokerConnection {
    if (this.connections.size >= this.config['connections.max.count']) {
      throw new StrandError('BROKER_NOT_AVAILABLE', `connections.max.count (${this.config['connections.max.count']}) reached`);
    }
    const conn = new BrokerConnection(id, host, port, {
      maxReceiveBytes: this.options.maxReceiveBytes ?? 64 * 1024 * 1024,
      maxSendBytes: this.options.maxSendBytes ?? 64 * 1024 * 1024,
      clientId: this.config['client.id'],
    });
    this.connections.set(id, conn);
    return conn;
  }

  /** Applies a metadata response to the cache. Exposed for tests of the merge rules. */
  apply(res: MetadataResponse): void {
    this.clusterId = res.clusterId;
    this.controllerId = res.controllerId;
    const seen = new Set<number>();
    for (const b of res.brokers) {
      seen.add(b.nodeId);
      const old = this.brokers.get(b.nodeId);
      if (old !== undefined && (old.host !== b.host || old.port !== b.port)) {
        this.connections.get(b.nodeId)?.close();
        this.connections.delete(b.nodeId);
      }
      this.brokers.set(b.nodeId, b);
    }
    for (const id of [...this.brokers.keys()]) {
      if (!seen.has(id)) {
        this.brokers.delete(id);
        this.connections.get(id)?.close();
        this.connections.delete(id);
      }
    }
    for (const t of res.topics) {
      if (t.errorCode === 3 /* UNKNOWN_TOPIC_OR_PARTITION */) {
        this.topics.delete(t.name);
        continue;
      }
      const cached = this.topics.get(t.name);
      // A topic deleted and re-created under the same name has a new id and epochs from 0 again:
      // the old topic's epochs must not shadow it (Kafka resets them on a topic id change).
      const old = cached !== undefined && sameTopicId(cached.topicId, t.topicId) ? cached : undefined;
      const partitions: PartitionInfo[] = [];
      for (const p of t.partitions) {
        const prev = old?.partitions[p.partition];
        // KIP-320: never go back to an older leader epoch.
        if (prev !== undefined && prev.leaderEpoch > p.leaderEpoch) partitions[p.partition] = prev;
        else partitions[p.partition] = { partition: p.partition, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr, offlineReplicas: p.offlineReplicas, errorCode: p.errorCode };
      }
      this.topics.set(t.name, { name: t.name, topicId: t.topicId, errorCode: t.errorCode, partitions });
    }
  }

  /**
   * Updates one partition's leader from an error response that named it (NOT_LEADER_OR_FOLLOWER
   * with current_leader_id, KIP-951), so the retry need not wait for a metadata round trip.
   */
  updateLeader(topic: string, partition: number, leaderId: number, leaderEpoch: number): void {
    const p = this.topics.get(topic)?.partitions[partition];
    if (p !== undefined && leaderEpoch > p.leaderEpoch && this.brokers.has(leaderId)) {
      p.leaderId = leaderId;
      p.leaderEpoch = leaderEpoch;
    }
  }

  /** The leader broker of a partition, or undefined while unknown. */
  leaderOf(topic: string, partition: number): number | undefined {
    const p = this.topics.get(topic)?.partitions[partition];
    if (p === undefined || p.leaderId === NO_LEADER || !this.brokers.has(p.leaderId)) return undefined;
    return p.leaderId;
  }

  /**
   * The metadata of `topic`, fetching it when unknown; waits (refreshing with backoff) until the
   * topic exists and every partition has a leader, or throws when `deadlineMs` passes.
   *
   * A non-retriable topic error in a metadata answer (INVALID_TOPIC_EXCEPTION,
   * TOPIC_AUTHORIZATION_FAILED...) ends the wait at once with that error, as Kafka's
   * `Metadata.maybeThrowExceptionForTopic` does in the producer's and consumer's waits: no
   * refresh would change it before the deadline. Retriable ones (LEADER_NOT_AVAILABLE while a
   * topic is auto-created, UNKNOWN_TOPIC_OR_PARTITION) keep the wait going.
   */
  async topic(topic: string, deadlineMs: number, signal?: AbortSignal): Promise<TopicInfo> {
    this.interest.add(topic);
    for (let attempt = 0; ; attempt++) {
      const t = this.topics.get(topic);
      if (t !== undefined && t.partitions.length > 0 && !this.staleRequested) return t;
      let lastError: unknown;
      try {
        // A metadata request may hang up to request.timeout.ms per broker asked: the deadline
        // (the producer's max.block.ms) ends the wait, not the request.
        await withinDeadline(this.refresh([topic]), deadlineMs);
      } catch (e: unknown) {
        lastError = e;
      }
      const after = this.topics.get(topic);
      if (after !== undefined && after.partitions.length > 0) return after;
      if (lastError === undefined && after !== undefined && after.errorCode !== 0) {
        const err = StrandError.fromCode(after.errorCode);
        if (!err.retriable) throw new StrandError(err.errorName, `metadata of topic ${topic}: ${err.message}`);
      }
      if (signal?.aborted) throw abortError(signal, `metadata of ${topic}`);
      if (this.closed) throw new StrandError('NETWORK_EXCEPTION', 'client is closed');
      const wait = backoffMs(attempt, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] });
      if (monotonicMs() + wait >= deadlineMs) {
        if (lastError instanceof StrandError) throw lastError;
        throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} not present in metadata`);
      }
      await sleep(wait, signal ?? this.closeSignal);
    }
  }

  /** The connection to broker `nodeId`, created on first use. */
  connection(nodeId: number): BrokerConnection {
    if (this.closed) throw new StrandError('NETWORK_EXCEPTION', 'client is closed');
    let conn = this.connections.get(nodeId);
    if (conn !== undefined) return conn;
    const b = this.brokers.get(nodeId);
    if (b === undefined) throw new StrandError('LEADER_NOT_AVAILABLE', `broker ${nodeId} is not in the metadata`);
    conn = this.newConnection(nodeId, b.host, b.port);
    return conn;
  }

  /**
   * A connection to some broker: known brokers and bootstrap addresses in turn, so a retry after
   * a failure goes to another one (a dead first bootstrap address must not be asked forever).
   */
  anyConnection(): BrokerConnection {
    const c = this.candidateConnections();
    return c[this.nextAny++ % c.length] as BrokerConnection;
  }

  /** A connection to host:port (e.g. a group coordinator returned by FindCoordinator). */
  connectionTo(nodeId: number, host: string, port: number): BrokerConnection {
    const known = this.brokers.get(nodeId);
    if (known !== undefined && known.host === host && known.port === port) return this.connection(nodeId);
    // A coordinator not (yet) in our metadata: key it away from broker and bootstrap ids.
    const id = -1_000_000 - nodeId;
    const existing = this.connections.get(id);
    if (existing !== undefined && existing.host === host && existing.port === port) return existing;
    existing?.close();
    return this.newConnection(id, host, port);
  }

  /** Closes every connection and stops the refresh timer; in-flight calls fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeController.abort(new StrandError('NETWORK_EXCEPTION', 'client is closed'));
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer);
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }
}

/** Settles as `p` does, or resolves once `deadlineMs` (monotonic) passes first; `p` then runs on unobserved. */
function withinDeadline(p: Promise<void>, deadlineMs: number): Promise<void> {
  p.catch(() => undefined);
  const leftMs = deadlineMs - monotonicMs();
  if (leftMs <= 0) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.ceil(leftMs))));
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Whether two topic ids name the same topic (an empty id, from an older broker, matches any). */
function sameTopicId(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length === 0 || b.length === 0) return true;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
