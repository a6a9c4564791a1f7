/**
 * The broker role: registers with the controller quorum (a new incarnation each start), follows
 * the metadata log into a local image and applies it to the hosted replicas, heartbeats (being
 * unfenced once caught up), replicates from leaders, sends AlterPartition for its leaderships,
 * and serves the broker gRPC API. Controlled shutdown (SIGTERM) asks the controller to move
 * leadership away first, then closes everything cleanly (a clean-shutdown marker tells the
 * controller on the next registration that no unflushed data was lost, KIP-966).
 */
import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import {
  ErrorCode,
  StrandError,
  type AlterPartitionRequest as AlterPartitionRpc,
  type AlterPartitionResponse as AlterPartitionRpcResponse,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type MetadataRecordSpans,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
  type AllocateProducerIdsRequest,
  type AllocateProducerIdsResponse,
  type BrokerTopicDefault,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
} from '@strand/protocol';
import { MetadataImage, topicIdFromBytes, topicIdToBytes } from '@strand/controller';
import { DirectoryLock } from '@strand/storage';
import { GroupCoordinator } from '../group/group-coordinator';
import { GroupLagReader, type ConsumerGroupLag } from '../group/group-lag';
import type { AlterPartitionRequest, AlterPartitionResponse } from '../replication/types';
import { BROKER_CONFIG, checkBrokerConfig, type BrokerConfig } from './broker-config';
import { NO_METRICS, type BrokerMetricsSink, type ReplicaSummary } from './broker-metrics';
import { HeldFetches, addBrokerService } from './broker-service';
import { ControllerChannel, type ControllerAddress } from './controller-channel';
import { LogDirMeta } from './log-dir-meta';
import type { Partition, PartitionHost } from './partition';
import { ReplicaFetcherManager } from './replica-fetcher';
import { ReplicaManager } from './replica-manager';
import { SNAPSHOT_RECORDS_PER_TURN, imageFromSnapshot } from './snapshot-image';

export interface BrokerLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** One broker listener: its name and the address it is advertised at. */
export interface BrokerListenerOptions {
  name: string;
  advertisedHost: string;
  /** The advertised port; resolved after binding when the listener port is 0. */
  advertisedPort: () => number;
}

export interface BrokerServerOptions {
  brokerId: number;
  /** The first of log.dirs (more than one directory is not supported yet). */
  logDir: string;
  controllers: readonly ControllerAddress[];
  /**
   * Every broker listener (Kafka's listeners minus the controller's), all registered with the
   * controller; Metadata answers a client with the endpoints of the listener it connected to.
   */
  listeners: readonly BrokerListenerOptions[];
  /** inter.broker.listener.name: the listener whose endpoints replica fetchers connect to. */
  interBrokerListenerName: string;
  config: BrokerConfig;
  logger: BrokerLogger;
  metrics?: BrokerMetricsSink;
  /**
   * This node's settings as DescribeConfigs answers them for its broker resource (`strand server`
   * passes every server key, with whether it was set). Default: the broker keys of `config`,
   * each counted as set when it differs from its default.
   */
  nodeConfigs?: () => readonly NodeConfigEntry[];
  /**
   * Topic configs this node's settings give a default (Kafka's broker-level synonyms, e.g.
   * log.retention.hours for retention.ms), by topic key: a topic that does not set the key takes
   * this value, and DescribeConfigs of a topic shows it as STATIC_BROKER_CONFIG. Dynamic broker
   * configs in the metadata (cluster-wide, or for this broker) win over these.
   */
  topicDefaults?: ReadonlyMap<string, BrokerTopicDefault>;
  /**
   * The broker cannot go on: a partition log's fdatasync failed, and the log refuses writes for
   * good (its dirty pages may be lost). With a single log directory Kafka halts the broker, so
   * that the controller fences it and moves its leaderships; `strand server` exits with 1 (no
   * controlled shutdown). Without this the broker keeps running, that partition refusing writes.
   */
  onFatal?: (error: Error) => void;
}

/** One setting of this node, for DescribeConfigs of its broker resource. */
export interface NodeConfigEntry {
  name: string;
  value: string;
  /** Not set by the config file, an override or the environment: the built-in default applies. */
  isDefault: boolean;
  doc: string;
}

/** Config values as DescribeConfigs shows them: lists comma-separated, as in a properties file. */
export function configValueString(v: unknown): string {
  return Array.isArray(v) ? v.join(',') : String(v);
}

/** Period of the leader housekeeping tick (ms). */
const LEADER_TICK_MS = 250;
/** Largest number of partitions in one AlterPartition RPC. */
const MAX_ALTER_PARTITION_ITEMS = 2000;
/** How long registration is retried while an earlier incarnation's session is still alive. */
const REGISTRATION_RETRY_MS = 5 * 60_000;

/**
 * The controller's answer for one partition of an AlterPartition, as the leader core takes it, or
 * null for an error the core must not act on. The core falls back to the committed ISR on
 * INELIGIBLE_REPLICA and INVALID_REQUEST, which the controller returns only after checking the
 * partition epoch ("current epoch, not applied"). Every other error (STALE_BROKER_EPOCH,
 * UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_LEADER_EPOCH, or one this broker does not
 * know) comes before that check, so it does not tell whether an earlier copy of the proposal,
 * whose answer was lost, was applied: the proposal keeps counting in the maximal ISR and the core
 * sends it again after alterPartitionRetryMs, as Kafka's Partition.handleAlterPartitionError
 * retries unexpected errors. (Mapping them to INVALID_REQUEST let the high watermark pass a member
 * the controller may have added.)
 */
export function alterPartitionAnswer(r: { errorCode: number; leaderEpoch: number; partitionEpoch: number; isr: readonly number[] }): AlterPartitionResponse | null {
  if (r.errorCode === 0) return { error: null, leaderEpoch: r.leaderEpoch, partitionEpoch: r.partitionEpoch, isr: [...r.isr] };
  const name = StrandError.fromCode(r.errorCode).errorName;
  const known = ['FENCED_LEADER_EPOCH', 'INVALID_UPDATE_VERSION', 'NOT_LEADER_OR_FOLLOWER', 'INELIGIBLE_REPLICA', 'INVALID_REQUEST'] as const;
  const error = known.find((k) => k === name);
  return error === undefined ? null : { error };
}

export class BrokerServer {
  readonly config: BrokerConfig;
  private readonly channel: ControllerChannel;
  private readonly replicas: ReplicaManager;
  private readonly fetcher: ReplicaFetcherManager;
  /** Consumer fetches held across every listener's service (fetch.max.held.requests). */
  private readonly heldFetches = new HeldFetches();
  private readonly groups: GroupCoordinator;
  private readonly lag: GroupLagReader;
  private readonly lock: DirectoryLock;
  private image: MetadataImage = MetadataImage.EMPTY;
  private brokerEpoch = -1;
  private stopMetadata: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** A heartbeat is waiting for its answer (which schedules the next one). */
  private heartbeatInFlight = false;
  /** Send the next heartbeat as soon as the one in flight is answered, not an interval later. */
  private heartbeatSoon = false;
  /** The registration (broker epoch) whose catch-up was already reported at once (see onMetadata). */
  private catchUpReported = -1;
  private applying: Promise<void> = Promise.resolve();
  /** The log cleaner's pass in progress, if any. */
  private cleaning: Promise<void> | null = null;
  private stopped = false;
  private fenced = true;
  private producerIds = { next: 0, end: 0 };
  private producerIdsLoading: Promise<void> | null = null;
  private readonly alterInFlight = new Set<string>();
  private readonly alterQueue: { key: string; partition: Partition; req: AlterPartitionRequest }[] = [];
  /** meta.properties and the clean-shutdown marker. */
  private readonly meta: LogDirMeta;

  constructor(private readonly opts: BrokerServerOptions) {
    checkBrokerConfig(opts.config);
    this.config = opts.config;
    fs.mkdirSync(opts.logDir, { recursive: true });
    this.lock = DirectoryLock.acquire(opts.logDir);
    this.meta = new LogDirMeta(opts.logDir, opts.brokerId);
    this.channel = new ControllerChannel(opts.controllers);
    const host: PartitionHost = {
      brokerId: opts.brokerId,
      nowMs: () => performance.now(),
      sendAlterPartition: (p, req) => this.sendAlterPartition(p, req),
      replicaLagTimeMaxMs: opts.config['replica.lag.time.max.ms'],
      maxPendingProduces: opts.config['queued.max.requests'],
      onLogFailure: (topicPartition, error) => {
        opts.logger.error({ topicPartition, err: error.message }, 'partition log failed; the broker cannot go on');
        opts.onFatal?.(error);
      },
    };
    this.replicas = new ReplicaManager(
      opts.logDir,
      host,
      opts.logger,
      opts.config['log.test.durable.positions.file'],
      // Kafka's broker-level default of the topic's max.message.bytes.
      { 'max.message.bytes': String(opts.config['message.max.bytes']) },
      opts.topicDefaults,
    );
    this.fetcher = new ReplicaFetcherManager({
      brokerId: opts.brokerId,
      brokerEpoch: () => this.brokerEpoch,
      // Followers connect to leaders on the inter-broker listener only (Kafka: a broker without
      // it cannot be replicated from; every broker of a cluster is configured with the same one).
      addressOf: (id) => {
        const ep = this.image.brokers.get(id)?.endpoints.find((e) => e.listener === opts.interBrokerListenerName);
        return ep === undefined ? undefined : `${ep.host}:${ep.port}`;
      },
      followed: () => this.replicas.all().filter((p) => p.follower !== null),
      maxWaitMs: opts.config['replica.fetch.wait.max.ms'],
      partitionMaxBytes: opts.config['replica.fetch.max.bytes'],
      responseMaxBytes: opts.config['replica.fetch.response.max.bytes'],
      backoffMs: opts.config['replica.fetch.backoff.ms'],
      socketTimeoutMs: opts.config['replica.socket.timeout.ms'],
      logger: opts.logger,
    });
    this.replicas.onChange(() => this.fetcher.update());
    this.groups = new GroupCoordinator({
      brokerId: opts.brokerId,
      config: opts.config,
      replicas: this.replicas,
      listenerName: opts.interBrokerListenerName,
      image: () => this.servingImage(),
      createTopics: (req) => this.channel.call<CreateTopicsRequest, CreateTopicsResponse>((c, r, m, o, cb) => c.createTopics(r, m, o, cb), req, 30_000),
      logger: opts.logger,
    });
    // Leadership of __consumer_offsets partitions moves with the metadata: load or drop groups.
    this.replicas.onChange(() => this.groups.reconcile());
    this.lag = new GroupLagReader({
      committedOffsets: () => this.groups.committedOffsets(),
      localHighWatermark: (topic, partition) => {
        const p = this.replicas.partitionByName(topic, partition);
        return p !== undefined && p.isLeader ? p.highWatermark : undefined;
      },
      leaderAddress: (topic, partition) => {
        const leader = this.image.topicByName(topic)?.partitions.get(partition)?.leader ?? -1;
        const ep = this.image.brokers.get(leader)?.endpoints.find((e) => e.listener === opts.interBrokerListenerName);
        return leader < 0 || ep === undefined ? undefined : `${ep.host}:${ep.port}`;
      },
    });
  }

  /**
   * The image clients may be answered from: none until it includes this incarnation's own
   * registration. A restarted broker's first snapshot can come from a lagging controller and show
   * the cluster as it was before the restart (e.g. itself still in ISRs it has since left);
   * answering Metadata from it would mislead clients, so it answers LEADER_NOT_AVAILABLE instead.
   */
  private servingImage(): MetadataImage | null {
    return this.brokerEpoch >= 0 && this.image.offset >= this.brokerEpoch ? this.image : null;
  }

  /**
   * Adds the broker API to `server`, the gRPC server bound for listener `listenerName` (the
   * caller binds it): answers that name endpoints name this listener's addresses.
   */
  private defaultNodeConfigs(): NodeConfigEntry[] {
    return BROKER_CONFIG.names().map((name) => {
      const def = BROKER_CONFIG.spec[name as keyof typeof BROKER_CONFIG.spec];
      const value = configValueString(this.config[name as keyof BrokerConfig]);
      return { name, value, isDefault: value === configValueString(def.default), doc: def.doc };
    });
  }

  addTo(server: grpc.Server, listenerName: string): void {
    if (!this.opts.listeners.some((l) => l.name === listenerName)) throw new Error(`${listenerName} is not a listener of this broker`);
    addBrokerService(server, {
      brokerId: this.opts.brokerId,
      config: this.config,
      replicas: this.replicas,
      controllers: this.channel,
      listenerName,
      interBrokerListenerName: this.opts.interBrokerListenerName,
      image: () => this.servingImage(),
      nextProducerId: () => this.nextProducerId(),
      groups: this.groups,
      logger: this.opts.logger,
      metrics: this.opts.metrics ?? NO_METRICS,
      nodeConfigs: this.opts.nodeConfigs ?? (() => this.defaultNodeConfigs()),
      topicDefaults: this.opts.topicDefaults ?? new Map(),
      heldFetches: this.heldFetches,
    });
  }

  get id(): number {
    return this.opts.brokerId;
  }

  get metadataOffset(): number {
    return this.image.offset;
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  /**
   * Ready to serve: registered, unfenced by the controller, and caught up with the metadata up
   * to its own registration. Returns the reason when not.
   */
  readiness(): { ready: boolean; reason: string } {
    if (this.brokerEpoch < 0) return { ready: false, reason: 'not registered with the controller' };
    if (this.image.offset < this.brokerEpoch) return { ready: false, reason: `metadata at offset ${this.image.offset}, behind the registration at ${this.brokerEpoch}` };
    if (this.fenced) return { ready: false, reason: 'fenced by the controller' };
    return { ready: true, reason: 'registered, unfenced, caught up' };
  }

  /** Every hosted replica, for metrics. */
  replicaSummaries(): ReplicaSummary[] {
    return this.replicas.all().map((p) => {
      const meta = this.image.partition(p.key.topicId, p.key.partition);
      return {
        topic: p.key.topic,
        partition: p.key.partition,
        isLeader: p.isLeader,
        replicas: meta?.replicas.length ?? 0,
        isr: meta?.isr.length ?? 0,
        offline: meta === undefined || meta.leader < 0,
        logSizeBytes: p.log.sizeBytes,
        logEndOffset: p.log.logEndOffset,
        highWatermark: p.highWatermark,
      };
    });
  }

  /**
   * Lag of every partition with a committed offset in the groups this broker coordinates
   * (high watermark minus committed offset), computed now: for a metrics scrape.
   */
  consumerGroupLag(timeoutMs?: number): Promise<ConsumerGroupLag[]> {
    return this.lag.read(timeoutMs);
  }

  /** Partitions without a leader in this broker's metadata (cluster-wide). */
  offlinePartitionCount(): number {
    let n = 0;
    for (const [, p] of this.image.allPartitions()) if (p.leader < 0) n++;
    return n;
  }

  /** Registers, starts following metadata and heartbeating. Resolves once registered. */
  async start(): Promise<void> {
    await this.register();
    this.stopMetadata = this.channel.followMetadata(
      () => this.image.offset,
      this.opts.brokerId,
      (d) => this.onMetadata(d),
      (e) => this.opts.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'metadata stream interrupted'),
    );
    this.scheduleHeartbeat(0);
    this.groups.start();
    // Leader housekeeping (ISR shrink after replica.lag.time.max.ms, produce timeouts, AlterPartition
    // retries) needs no finer clock than this; every tick walks every hosted partition.
    this.timers.push(setInterval(() => this.replicas.tick(), LEADER_TICK_MS));
    this.timers.push(
      setInterval(() => {
        this.replicas.checkpointHighWatermarksAsync().catch((e: unknown) => this.opts.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'high watermark checkpoint failed'));
        void this.replicas.snapshotProducersAsync();
      }, this.config['replica.high.watermark.checkpoint.interval.ms']),
    );
    this.timers.push(setInterval(() => this.replicas.applyRetention(), this.config['log.retention.check.interval.ms']));
    this.timers.push(
      setInterval(() => {
        if (this.cleaning !== null) return; // the previous pass is still running
        const offsetMap = { offsetMapBytes: this.config['log.cleaner.dedupe.buffer.size'], offsetMapLoadFactor: this.config['log.cleaner.io.buffer.load.factor'] };
        this.cleaning = this.replicas.compactLogs(offsetMap).finally(() => {
          this.cleaning = null;
        });
      }, this.config['log.cleaner.backoff.ms']),
    );
  }

  private async register(): Promise<void> {
    const req: RegisterBrokerRequest = {
      brokerId: this.opts.brokerId,
      incarnationId: randomUUID(),
      endpoints: this.opts.listeners.map((l) => ({ listener: l.name, host: l.advertisedHost, port: l.advertisedPort() })),
      ...(this.config['broker.rack'] === '' ? {} : { rack: this.config['broker.rack'] }),
      clusterId: this.meta.clusterId,
      previousShutdownClean: this.meta.previousShutdownClean,
      logDirId: this.meta.directoryId,
    };
    // A previous incarnation killed moments ago still holds a live session: Kafka's brokers retry
    // until the controller fences it (broker.session.timeout.ms), and so do we.
    const deadline = performance.now() + REGISTRATION_RETRY_MS;
    let res = await this.channel.call<RegisterBrokerRequest, RegisterBrokerResponse>((c, r, m, o, cb) => c.registerBroker(r, m, o, cb), req, 60_000);
    while (res.errorCode === ErrorCode.DUPLICATE_BROKER_REGISTRATION && !this.stopped && performance.now() < deadline) {
      this.opts.logger.warn({ error: res.errorMessage }, 'waiting for the previous incarnation\'s session to expire');
      await new Promise((r) => setTimeout(r, 500));
      res = await this.channel.call<RegisterBrokerRequest, RegisterBrokerResponse>((c, r, m, o, cb) => c.registerBroker(r, m, o, cb), req, 60_000);
    }
    if (res.errorCode !== 0) throw StrandError.fromCode(res.errorCode, `registration refused: ${res.errorMessage}`);
    this.brokerEpoch = res.brokerEpoch;
    this.meta.registered(res.clusterId);
    this.opts.logger.info({ brokerEpoch: res.brokerEpoch, clusterId: res.clusterId, logDirId: this.meta.directoryId }, 'registered with the controller');
  }

  private onMetadata(d: MetadataRecordSpans): void | Promise<void> {
    // Metadata never goes backwards. After a reconnect the stream may come from a controller
    // that has applied less than this broker has (it answers with a snapshot at its own offset,
    // then the batches as it applies them): acting on that older image would drop topics created
    // since, deleting their replicas. What this broker already has is skipped (not even
    // decoded); the stream continues from the first batch past it.
    if (d.offset <= this.image.offset) return;
    if (!d.snapshot) return this.adoptImage(this.image.apply(d.offset, d.decode(0, d.count)));
    if (d.count <= SNAPSHOT_RECORDS_PER_TURN) return this.adoptImage(MetadataImage.fromRecords(d.offset, d.decode(0, d.count)));
    // A large snapshot is built over several event-loop turns (the stream waits meanwhile), so
    // produce, fetch and heartbeats keep being served.
    return imageFromSnapshot(d).then((image) => this.adoptImage(image));
  }

  /** Makes `image` current and acts on it (unless it is no newer than the current one: see onMetadata). */
  private adoptImage(image: MetadataImage): void {
    // A snapshot built over several turns may have been overtaken meanwhile (by a stream that
    // replaced the one it came on), and a stopped broker acts on nothing.
    if (image.offset <= this.image.offset || this.stopped) return;
    this.image = image;
    // Act on metadata only once it includes this incarnation's registration: before that it may
    // still name this broker leader of partitions its previous incarnation led (the registration
    // moves them away), and a restarted broker must not lead on stale metadata. The first image
    // applied also removes stray replicas (topics deleted, partitions reassigned away while this
    // broker was down): it must hold every decision made before this incarnation registered.
    if (image.offset < this.brokerEpoch) return;
    // Images are applied in order, one at a time (opening logs is synchronous; closing is not).
    this.applying = this.applying
      .then(async () => {
        await this.replicas.applyImage(image);
        // Offsets of deleted (or re-created) topics go, as Kafka's onPartitionsDeleted.
        this.groups.onMetadataImage(image);
        // Caught up with this incarnation's registration, its replicas opened (logs recovered):
        // the controller unfences a broker, and elects it where partitions wait for it, only on
        // a heartbeat that reports it caught up, so send one now rather than up to
        // broker.heartbeat.interval.ms (2 s by default) later. A restart of every broker waits
        // for this twice in a row (the leader's unfencing, then a follower's to rejoin the ISR).
        // Kafka's broker likewise heartbeats every 10 ms until it has caught up.
        if (this.fenced && this.catchUpReported !== this.brokerEpoch && image.offset >= this.brokerEpoch) {
          this.catchUpReported = this.brokerEpoch;
          this.heartbeatNow();
        }
      })
      .catch((e: unknown) => {
        this.opts.logger.error({ err: e instanceof Error ? (e.stack ?? e.message) : String(e) }, 'applying metadata failed');
      });
  }

  private scheduleHeartbeat(delayMs: number, wantShutDown = false): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(wantShutDown), delayMs);
  }

  /** A heartbeat now, or right after the answer to the one in flight (it may carry an older metadata offset). */
  private heartbeatNow(): void {
    if (this.stopped) return;
    if (this.heartbeatInFlight) this.heartbeatSoon = true;
    else this.scheduleHeartbeat(0);
  }

  private async heartbeat(wantShutDown: boolean, timeoutMs = this.config['broker.heartbeat.interval.ms'] * 2): Promise<BrokerHeartbeatResponse | null> {
    if (this.stopped && !wantShutDown) return null;
    let answer: BrokerHeartbeatResponse | null = null;
    this.heartbeatInFlight = true;
    try {
      const res = await this.channel.call<BrokerHeartbeatRequest, BrokerHeartbeatResponse>(
        (c, r, m, o, cb) => c.brokerHeartbeat(r, m, o, cb),
        { brokerId: this.opts.brokerId, brokerEpoch: this.brokerEpoch, currentMetadataOffset: this.image.offset, wantShutDown },
        timeoutMs,
      );
      if (res.errorCode === ErrorCode.STALE_BROKER_EPOCH || res.errorCode === ErrorCode.BROKER_ID_NOT_REGISTERED) {
        this.opts.logger.warn({ error: res.errorMessage }, 're-registering with the controller');
        await this.register();
      } else if (res.errorCode === 0) {
        if (this.fenced !== res.isFenced) this.opts.logger.info({ fenced: res.isFenced }, res.isFenced ? 'fenced' : 'unfenced');
        this.fenced = res.isFenced;
      }
      answer = res;
    } catch (e: unknown) {
      if (!this.stopped) this.opts.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'heartbeat failed');
    } finally {
      this.heartbeatInFlight = false;
    }
    if (!this.stopped) {
      const soon = this.heartbeatSoon;
      this.heartbeatSoon = false;
      this.scheduleHeartbeat(soon ? 0 : this.config['broker.heartbeat.interval.ms']);
    }
    return answer;
  }

  /**
   * Queues an ISR change for the controller. Proposals made in one event-loop turn go out as ONE
   * AlterPartition RPC (one Raft entry on the controller): a broker leading many partitions would
   * otherwise send one RPC per partition, each a separate metadata commit, and a burst (a broker
   * returning to 1,000 ISRs) would time out and retry in a storm.
   */
  private sendAlterPartition(p: Partition, req: AlterPartitionRequest): void {
    const key = `${p.key.topicId}:${p.key.partition}`;
    if (this.alterInFlight.has(key)) return; // the core re-proposes after alterPartitionRetryMs
    this.alterInFlight.add(key);
    this.opts.logger.info({ topic: p.key.topic, partition: p.key.partition, leaderEpoch: req.leaderEpoch, partitionEpoch: req.partitionEpoch, newIsr: req.newIsr }, 'proposing ISR change');
    (this.opts.metrics ?? NO_METRICS).isrChange(req.newIsr.length < (p.leader?.isr.length ?? 0) ? 'shrink' : 'expand');
    this.alterQueue.push({ key, partition: p, req });
    if (this.alterQueue.length === 1) setImmediate(() => this.flushAlterPartitions());
  }

  private flushAlterPartitions(): void {
    const batch = this.alterQueue.splice(0, MAX_ALTER_PARTITION_ITEMS);
    if (this.alterQueue.length > 0) setImmediate(() => this.flushAlterPartitions());
    if (batch.length === 0) return;
    const topics = new Map<string, { topicId: Buffer; partitions: AlterPartitionRpc['topics'][number]['partitions'] }>();
    for (const { partition: p, req } of batch) {
      let t = topics.get(p.key.topicId);
      if (t === undefined) {
        t = { topicId: topicIdToBytes(p.key.topicId), partitions: [] };
        topics.set(p.key.topicId, t);
      }
      t.partitions.push({ partition: p.key.partition, leaderEpoch: req.leaderEpoch, partitionEpoch: req.partitionEpoch, newIsr: [...req.newIsr], newIsrWithEpochs: (req.newIsrBrokerEpochs ?? []).map((m) => ({ brokerId: m.replicaId, brokerEpoch: m.brokerEpoch })) });
    }
    const rpc: AlterPartitionRpc = { brokerId: this.opts.brokerId, brokerEpoch: this.brokerEpoch, topics: [...topics.values()] };
    const byKey = new Map(batch.map((b) => [`${b.partition.key.topicId}:${b.partition.key.partition}`, b]));
    this.channel
      .call<AlterPartitionRpc, AlterPartitionRpcResponse>((c, r, m, o, cb) => c.alterPartition(r, m, o, cb), rpc, 15_000)
      .then((res) => {
        for (const t of res.topics) {
          const topicId = topicIdFromBytes(t.topicId);
          for (const r of t.partitions) {
            const item = byKey.get(`${topicId}:${r.partition}`);
            if (item === undefined) continue;
            if (r.errorCode !== 0) this.opts.logger.warn({ topic: item.partition.key.topic, partition: r.partition, error: StrandError.fromCode(r.errorCode).errorName, message: r.errorMessage }, 'ISR change refused');
            const resp = alterPartitionAnswer(r);
            if (resp !== null) item.partition.onAlterPartitionResponse(item.req, resp);
          }
        }
      })
      .catch((e: unknown) => this.opts.logger.warn({ partitions: batch.length, err: e instanceof Error ? e.message : String(e) }, 'AlterPartition failed; will retry'))
      .finally(() => {
        for (const b of batch) this.alterInFlight.delete(b.key);
      });
  }

  private async nextProducerId(): Promise<number> {
    while (this.producerIds.next >= this.producerIds.end) {
      this.producerIdsLoading ??= this.channel
        .call<AllocateProducerIdsRequest, AllocateProducerIdsResponse>((c, r, m, o, cb) => c.allocateProducerIds(r, m, o, cb), { brokerId: this.opts.brokerId, brokerEpoch: this.brokerEpoch }, 10_000)
        .then((res) => {
          if (res.errorCode !== 0) throw StrandError.fromCode(res.errorCode, res.errorMessage);
          this.producerIds = { next: res.producerIdStart, end: res.producerIdStart + res.producerIdLen };
        })
        .finally(() => {
          this.producerIdsLoading = null;
        });
      await this.producerIdsLoading;
    }
    return this.producerIds.next++;
  }

  /**
   * Controlled shutdown: the controller moves this broker's leaderships away (bounded wait), then
   * everything closes and the clean-shutdown marker is written.
   */
  async stop(controlled = true, maxWaitMs = 10_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    if (controlled && this.brokerEpoch >= 0) {
      // Give up early when no controller answers (e.g. the whole cluster is stopping): without a
      // quorum nobody can move leadership, and waiting would only delay the stop.
      const deadline = performance.now() + maxWaitMs;
      let failures = 0;
      while (performance.now() < deadline && failures < 3) {
        const res = await this.heartbeat(true, 1000);
        if (res?.shouldShutDown) break;
        failures = res === null ? failures + 1 : 0;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.stopMetadata?.();
    this.groups.close();
    this.lag.close();
    this.fetcher.close();
    await this.applying;
    if (this.cleaning !== null) await this.cleaning;
    await this.replicas.close();
    this.channel.close();
    this.meta.markCleanShutdown();
    this.lock.release();
  }
}

export { BROKER_CONFIG };
