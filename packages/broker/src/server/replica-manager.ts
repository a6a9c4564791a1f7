/**
 * The replicas this broker hosts. It follows the metadata image: creates (or reopens) the log of
 * every partition that names this broker as a replica, makes it leader or follower as the image
 * says, deletes partitions of removed topics and of reassignments away from this broker, and
 * checkpoints high watermarks (`replication-offset-checkpoint`, Kafka's format) so they survive
 * a restart.
 *
 * Partition directories are `<log.dir>/<topic>-<partition>` with a `partition.metadata` file
 * holding the topic id: a directory left by a deleted topic of the same name is recognised by
 * its id and removed rather than reused.
 *
 * A directory is removed by first renaming it, atomically, to `<topic>-<partition>.<id>-delete`
 * (or `-stray`), as Kafka's LogManager does, then deleting that in the background: a crash
 * halfway through a recursive delete could otherwise leave segments without their
 * `partition.metadata`, which a same-name topic would adopt. Renamed directories left by a crash
 * are removed at the next start.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigResourceType, StrandError, effectiveTopicDefaults, type BrokerTopicDefault, type EffectiveTopicDefault, type RawConfig } from '@strand/protocol';
import { PartitionLog, compactLog, fsyncDir, readFileIfExists, writeFileAtomicAsync, type CompactionOptions, type DurableSegmentPosition } from '@strand/storage';
import type { MetadataImage, PartitionState as PartitionMetadata, TopicState } from '@strand/controller';
import type { PartitionState } from '../replication/types';
import { Partition, type PartitionHost } from './partition';

export const HW_CHECKPOINT_FILE = 'replication-offset-checkpoint';
const PARTITION_METADATA_FILE = 'partition.metadata';
/** `<topic>-<partition>`, with a topic name as the controller allows it (Kafka's log directory name). */
const PARTITION_DIR = /^([a-zA-Z0-9._-]+)-(\d+)$/;
/** A partition directory renamed away for removal (Kafka's `-delete` and `-stray` directories). */
const REMOVED_DIR = /^[a-zA-Z0-9._-]+-\d+\.[0-9a-f]{32}-(?:delete|stray)$/;
/** Longest file name most file systems take (Kafka caps its renamed directories' names at it). */
const MAX_DIR_NAME = 255;
/**
 * Leaderships taken up (each records its epoch in the leader-epoch checkpoint with an fsync) per
 * event-loop turn when applying metadata.
 */
const OPENS_PER_TURN = 16;
/**
 * Partition logs being opened at once when applying metadata (Kafka's
 * num.recovery.threads.per.data.dir, here async opens): their fsyncs run in libuv's thread pool
 * (4 threads unless UV_THREADPOOL_SIZE says otherwise), where the disk takes several at a time
 * (ext4 commits concurrent directory fsyncs in one journal transaction), and so do an unclean
 * open's recovery reads (4 MiB chunks, storage's LogSegment.recoverAsync), whose CRC checks run
 * on the event loop between them; more in flight only queue.
 */
const LOG_OPENS_IN_FLIGHT = 16;
/**
 * Partition logs being closed at once at a clean shutdown (Kafka closes a log directory's logs
 * on a pool of num.recovery.threads.per.data.dir threads): each close's fsyncs run in libuv's
 * thread pool, so a broker with thousands of partitions stops within its grace period
 * (Kubernetes' 30 s) and keeps its event loop meanwhile.
 */
const LOG_CLOSES_IN_FLIGHT = 16;

export interface ReplicaManagerLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** A partition replica held in the log directory, as DescribeLogDirs reports it. */
export interface LogDirReplica {
  topic: string;
  partition: number;
  /** Bytes of its segment files (what retention.bytes counts). */
  sizeBytes: number;
  /**
   * Kafka's offset lag of a current replica (ReplicaManager.getLogEndOffsetLag): max(0, high
   * watermark - log end offset) as this broker knows them. A leader's high watermark never
   * passes its log end, and a follower's is capped at its own, so this is 0 in practice, as in
   * Kafka; how far a follower trails its leader shows in the ISR, not here.
   */
  offsetLag: number;
}

/** The broker's log directory (log.dirs; a Strand broker has one), for DescribeLogDirs. */
export interface LogDirDescription {
  /** Absolute path. */
  path: string;
  /** Sorted by topic, then partition; empty when `error` is set. */
  replicas: LogDirReplica[];
  /** Bytes of the volume holding the directory, and those this process may still write (statfs); -1 when `error` is set. */
  totalBytes: number;
  usableBytes: number;
  /** KAFKA_STORAGE_ERROR: the directory's volume cannot be queried (Kafka then reports no replicas). */
  error?: StrandError;
}

export class ReplicaManager {
  /** Keyed by `${topicId}:${partition}`. */
  private readonly partitions = new Map<string, Partition>();
  private readonly byName = new Map<string, Partition>();
  private checkpointed = new Map<string, number>();
  private image: MetadataImage | null = null;
  /** What every partition's role depends on beyond its own state, as of the last image (see applyImage). */
  private lastBrokerView = '';
  /** Hosted replicas the last image could not open or re-role, by key: retried with each image. */
  private readonly offline = new Map<string, { topicId: string; partition: number }>();
  private readonly onPartitionsChanged = new Set<() => void>();
  /** Directories renamed away and being deleted in the background. */
  private readonly removals = new Set<Promise<void>>();

  constructor(
    private readonly logDir: string,
    private readonly host: PartitionHost,
    private readonly logger: ReplicaManagerLogger,
    /** `log.test.durable.positions.file` (tests only; empty: off). */
    private readonly durablePositionsFile = '',
    /** Broker-level defaults of topic configs (a topic's own setting wins), e.g. from message.max.bytes. */
    private readonly topicDefaults: RawConfig = {},
    /**
     * The topic defaults this node's static settings give (log.retention.hours...); the dynamic
     * broker configs of each image (cluster-wide and this broker's) win over them, see topicDefaultsIn.
     */
    private readonly staticTopicDefaults: ReadonlyMap<string, BrokerTopicDefault> = new Map(),
  ) {
    fs.mkdirSync(logDir, { recursive: true });
    this.checkpointed = readHwCheckpoint(path.join(logDir, HW_CHECKPOINT_FILE));
    // Directories renamed for removal before a crash or stop: already decided, finish them.
    for (const e of fs.readdirSync(logDir, { withFileTypes: true })) {
      if (e.isDirectory() && REMOVED_DIR.test(e.name)) this.removeLater(path.join(logDir, e.name), {});
    }
  }

  get metadataImage(): MetadataImage | null {
    return this.image;
  }

  partition(topicId: string, partition: number): Partition | undefined {
    return this.partitions.get(`${topicId}:${partition}`);
  }

  partitionByName(topic: string, partition: number): Partition | undefined {
    return this.byName.get(`${topic}-${partition}`);
  }

  all(): Partition[] {
    return [...this.partitions.values()];
  }

  /** Listens for partitions being created, removed or changing role (the fetcher re-plans). */
  onChange(listener: () => void): () => void {
    this.onPartitionsChanged.add(listener);
    return () => this.onPartitionsChanged.delete(listener);
  }

  /**
   * Applies a new metadata image: opens, re-roles and removes replicas. The first image also
   * removes the stray replicas of the log directory (see removeStrayReplicas), so it must be
   * one the broker may trust to be complete: BrokerServer applies none before the metadata
   * includes this incarnation's registration (everything decided while it was down).
   *
   * The work is proportional to what changed since the last image applied (Kafka's brokers act
   * on the MetadataDelta too), not to the cluster: images share every topic and partition state
   * a batch did not touch, so a topic whose state object and dynamic config are the ones of the
   * last image is skipped, and within a changed topic so is every partition whose state object
   * is the same. (It visited every hosted partition on each image before: one ISR change
   * anywhere held the event loop ~160 ms at 10,000 partitions.) Everything is visited again when
   * what every partition depends on changed: the set of fenced or shutting-down brokers, or the
   * broker-level topic defaults. A replica that could not be opened or re-roled is retried with
   * each image until it succeeds.
   */
  async applyImage(image: MetadataImage): Promise<void> {
    const prev = this.image;
    this.image = image;
    const me = this.host.brokerId;
    if (prev === null) this.removeStrayReplicas(image);
    const ineligible = [...image.brokers.values()].filter((b) => b.fenced || b.inControlledShutdown).map((b) => b.id);
    // Kafka's "alive broker" (registered, not fenced): the low watermark DeleteRecords waits for
    // counts the replicas on these only.
    const alive = (id: number): boolean => image.brokers.get(id)?.fenced === false;
    const defaults = { ...this.topicDefaults, ...Object.fromEntries([...topicDefaultsIn(image, me, this.staticTopicDefaults)].map(([k, d]) => [k, d.value])) };
    const brokerView = `${ineligible.sort((a, b) => a - b).join(',')}|${[...image.brokers.values()].filter((b) => !b.fenced).map((b) => b.id).sort((a, b) => a - b).join(',')}|${JSON.stringify(defaults)}`;
    const full = prev === null || brokerView !== this.lastBrokerView;
    this.lastBrokerView = brokerView;
    const wanted = (topicId: string, partition: number): boolean => {
      const p = image.topics.get(topicId)?.partitions.get(partition);
      return p !== undefined && hostsReplica(p, me);
    };
    const configChanged = (t: TopicState): boolean => prev === null || image.configsOf(ConfigResourceType.CONFIG_RESOURCE_TOPIC, t.name) !== prev.configsOf(ConfigResourceType.CONFIG_RESOURCE_TOPIC, t.name);

    // Deletions first: a topic deleted and re-created under the same name in one image reuses
    // the directory path, so the old log must be closed and gone before the new one opens.
    // Only partitions of topics removed or changed since the last image can have stopped being
    // wanted (this.partitions holds only what that image wanted).
    const unwanted: Partition[] = [];
    if (full) {
      for (const part of this.partitions.values()) if (!wanted(part.key.topicId, part.key.partition)) unwanted.push(part);
    } else {
      for (const [id, before] of prev.topics) {
        const after = image.topics.get(id);
        if (after === before) continue;
        for (const [p, state] of before.partitions) {
          if (after?.partitions.get(p) === state) continue;
          const part = this.partitions.get(`${id}:${p}`);
          if (part !== undefined && !wanted(id, p)) unwanted.push(part);
        }
      }
    }
    const renamed: RenamedDir[] = [];
    for (const part of unwanted) {
      const key = `${part.key.topicId}:${part.key.partition}`;
      this.partitions.delete(key);
      this.offline.delete(key);
      if (this.byName.get(part.topicPartition) === part) this.byName.delete(part.topicPartition);
      this.logger.info({ topic: part.key.topic, partition: part.key.partition, topicId: part.key.topicId }, 'deleting replica (topic removed or reassigned)');
      // A deletion that fails (a close or rename error) is logged and left: thrown, it would end
      // this image's application before any other partition took its new role (a demoted leader
      // kept accepting acks=1 writes until the next image). The directory stays; a topic
      // re-created under the name replaces it (its partition.metadata names the old id), and the
      // next start removes it as a stray.
      try {
        await part.close(true);
        renamed.push(this.renameForRemoval(part.log.dir, '-delete', { topic: part.key.topic, partition: part.key.partition, topicId: part.key.topicId }));
      } catch (e: unknown) {
        this.logger.warn({ topic: part.key.topic, partition: part.key.partition, dir: part.log.dir, err: e instanceof Error ? e.message : String(e) }, 'deleting a replica failed; its directory is left');
      }
    }
    this.removeRenamed(renamed);

    // The topics to visit, each with the partitions to visit (null: all of them).
    const visit = new Map<string, Set<number> | null>();
    if (full) {
      this.offline.clear();
      for (const id of image.topics.keys()) visit.set(id, null);
    } else {
      for (const [id, t] of image.topics) {
        const before = prev.topics.get(id);
        if (before === t && !configChanged(t)) continue;
        if (before === undefined || configChanged(t)) {
          visit.set(id, null);
          continue;
        }
        const changed = new Set<number>();
        for (const [p, state] of t.partitions) if (before.partitions.get(p) !== state) changed.add(p);
        visit.set(id, changed);
      }
      for (const { topicId, partition } of this.offline.values()) {
        const ps = visit.get(topicId);
        if (ps === undefined) visit.set(topicId, new Set([partition]));
        else ps?.add(partition);
      }
    }

    let turns = 0;
    const roled = async (part: Partition, topic: TopicState, p: PartitionMetadata, config: RawConfig): Promise<void> => {
      const key = `${topic.id}:${p.partition}`;
      const state: PartitionState = { leader: p.leader >= 0 ? p.leader : null, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, replicas: p.replicas, isr: p.isr };
      const before = part.metadata;
      // A failover can make this broker leader of many partitions in one image: heartbeats
      // and fetches get a turn between the checkpoint fsyncs.
      const takesLeadership = state.leader === me && (!part.isLeader || before === null || before.leaderEpoch !== state.leaderEpoch);
      if (takesLeadership && ++turns % OPENS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      part.applyMetadata(state, config, ineligible, p.replicas.filter((r) => !alive(r)));
      this.offline.delete(key);
      if (before === null || before.leader !== state.leader || before.leaderEpoch !== state.leaderEpoch) {
        this.logger.info({ topic: topic.name, partition: p.partition, leader: p.leader, leaderEpoch: p.leaderEpoch, isr: p.isr, role: p.leader === me ? 'leader' : 'follower' }, 'replica role');
      }
    };
    // One partition that cannot be opened or re-roled stays offline (logged, retried with the
    // next image); the others still follow the metadata.
    const offline = (topic: TopicState, partition: number, e: unknown): void => {
      this.offline.set(`${topic.id}:${partition}`, { topicId: topic.id, partition });
      this.logger.warn({ topic: topic.name, partition, err: e instanceof Error ? e.message : String(e) }, 'replica offline: cannot open or apply metadata');
    };
    const toOpen: Array<{ topic: TopicState; p: PartitionMetadata; config: RawConfig }> = [];
    for (const [id, only] of visit) {
      const topic = image.topics.get(id);
      if (topic === undefined) continue;
      const config = { ...defaults, ...topicConfig(image, topic) };
      for (const p of only === null ? topic.partitions.values() : [...only].map((n) => topic.partitions.get(n))) {
        if (p === undefined || !hostsReplica(p, me)) continue;
        const part = this.partitions.get(`${topic.id}:${p.partition}`);
        if (part === undefined) {
          toOpen.push({ topic, p, config });
          continue;
        }
        try {
          await roled(part, topic, p, config);
        } catch (e: unknown) {
          offline(topic, p.partition, e);
        }
      }
    }
    // Logs to open (a restart: all of them; a new 1,000-partition topic) open LOG_OPENS_IN_FLIGHT
    // at a time with their fsyncs off the event loop, each taking its role as soon as it is open
    // (a partition is reachable only then), one per event-loop turn so heartbeats and
    // replication are not starved.
    await forEachBounded(toOpen, LOG_OPENS_IN_FLIGHT, async ({ topic, p, config }) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        const part = await this.open(topic, p.partition, config);
        this.partitions.set(`${topic.id}:${p.partition}`, part);
        this.byName.set(`${topic.name}-${p.partition}`, part);
        await roled(part, topic, p, config);
      } catch (e: unknown) {
        offline(topic, p.partition, e);
      }
    });
    for (const l of this.onPartitionsChanged) l();
  }

  private async open(topic: TopicState, partition: number, config: RawConfig): Promise<Partition> {
    const dir = path.join(this.logDir, `${topic.name}-${partition}`);
    const metaFile = path.join(dir, PARTITION_METADATA_FILE);
    if (fs.existsSync(metaFile)) {
      const id = parseTopicId(fs.readFileSync(metaFile, 'utf8'));
      // Only a valid id of another topic means the directory is an older topic's. An empty or
      // damaged file (a power loss right after the partition was created) proves nothing:
      // refuse rather than delete what may be this topic's acknowledged data (Kafka raises
      // InconsistentTopicIdException rather than deleting).
      if (id === undefined) throw new StrandError('KAFKA_STORAGE_ERROR', `${metaFile} holds no valid topic id; not opening ${dir} (check it, then remove the file to adopt the directory)`);
      if (id !== topic.id) {
        this.logger.warn({ dir, found: id, expected: topic.id }, 'removing a log of an older topic with the same name');
        this.removeRenamed([this.renameForRemoval(dir, '-delete', { topic: topic.name, partition, topicId: id })]);
      }
    }
    fs.mkdirSync(dir, { recursive: true });
    // Written atomically and synced (temp file, fdatasync, rename, directory fsync), off the event loop.
    if (!fs.existsSync(metaFile)) await writeFileAtomicAsync(metaFile, `version: 0\ntopic_id: ${topic.id}\n`);
    const log = await PartitionLog.openAsync(dir, {
      config,
      onFailure: (e) => this.host.onLogFailure?.(`${topic.name}-${partition}`, e),
      ...(this.durablePositionsFile === '' ? {} : { onDurablePositions: durablePositionsRecorder(this.durablePositionsFile) }),
    });
    const hw = this.checkpointed.get(`${topic.name}-${partition}`) ?? 0;
    try {
      return new Partition({ topic: topic.name, topicId: topic.id, partition }, log, this.host, hw);
    } catch (e: unknown) {
      // Not held by anyone: the next image's retry must find the directory unlocked.
      log.abandon();
      throw e;
    }
  }

  /**
   * Kafka's stray replicas (KAFKA-14616, `LogManager.isStrayKraftReplica` on the first image): a
   * partition directory whose topic id the metadata no longer has (deleted while this broker
   * was down), whose partition no longer lists this broker among its replicas (reassigned away;
   * during a reassignment the replicas include the adding ones), or that has no
   * `partition.metadata` at all. That file is written and synced before a log is opened, so a
   * directory without it holds nothing this broker acknowledged: a partition created just
   * before a crash, or segments an interrupted recursive delete left (open() would adopt those
   * as the log of a same-name topic hosted here). Nothing else ever opens or removes these
   * directories: their disk space leaked for good. Each is renamed to `-stray` and deleted
   * (Kafka keeps `-stray` directories for the operator; here they go, as a deleted topic's do).
   * A `partition.metadata` without a valid id is left for the operator (the partition's open
   * refuses it, see open()); so is any directory not shaped like a partition log (one with
   * subdirectories, say a metadata.log.dir nested here).
   */
  private removeStrayReplicas(image: MetadataImage): void {
    const renamed: RenamedDir[] = [];
    for (const e of fs.readdirSync(this.logDir, { withFileTypes: true })) {
      const m = e.isDirectory() ? PARTITION_DIR.exec(e.name) : null;
      if (m === null || m[1] === undefined) continue;
      const [topic, partition] = [m[1], Number(m[2])];
      const dir = path.join(this.logDir, e.name);
      try {
        const stray = this.strayReason(dir, topic, partition, image);
        if (stray === null) continue;
        this.logger.warn({ topic, partition, topicId: stray.topicId ?? null, dir, reason: stray.reason }, 'removing a stray replica');
        renamed.push(this.renameForRemoval(dir, '-stray', { topic, partition, topicId: stray.topicId ?? null }));
      } catch (err: unknown) {
        this.logger.warn({ topic, partition, dir, err: err instanceof Error ? err.message : String(err) }, 'cannot check or remove a possibly stray replica; its directory is left');
      }
    }
    this.removeRenamed(renamed);
  }

  /** Why the partition directory is stray in `image`, or null if this broker hosts it (or it is not one to judge). */
  private strayReason(dir: string, topic: string, partition: number, image: MetadataImage): { reason: string; topicId?: string } | null {
    const meta = readFileIfExists(path.join(dir, PARTITION_METADATA_FILE));
    if (meta === undefined) {
      if (fs.readdirSync(dir, { withFileTypes: true }).some((f) => f.isDirectory())) return null;
      return { reason: `no ${PARTITION_METADATA_FILE}: never written to, or left by an interrupted delete` };
    }
    const topicId = parseTopicId(meta);
    if (topicId === undefined) {
      this.logger.warn({ topic, partition, dir }, `${PARTITION_METADATA_FILE} holds no valid topic id; the directory is left for the operator`);
      return null;
    }
    const t = image.topics.get(topicId);
    if (t === undefined) return { topicId, reason: 'its topic id is not in the metadata (topic deleted)' };
    const p = t.partitions.get(partition);
    if (t.name !== topic || p === undefined) return { topicId, reason: `the metadata has no partition ${partition} of topic ${t.name} with this id under this name` };
    if (!hostsReplica(p, this.host.brokerId)) return { topicId, reason: `this broker is not among the partition's replicas [${p.replicas.join(', ')}] (reassigned away)` };
    return null;
  }

  /**
   * The first step of removing a partition directory: an atomic rename to
   * `<topic>-<partition>.<uuid><suffix>`, after which no open sees it again.
   */
  private renameForRemoval(dir: string, suffix: '-delete' | '-stray', fields: Record<string, unknown>): RenamedDir {
    const to = path.join(this.logDir, renamedDirName(path.basename(dir), suffix));
    fs.renameSync(dir, to);
    return { dir: to, fields };
  }

  /**
   * The second step: one fsync of the log directory makes the renames durable before any file
   * in them is unlinked (a crash must never persist unlinks without the rename), then the
   * directories are deleted in the background (a large log must not hold up the event loop).
   * If the fsync fails they stay, renamed, for the next start.
   */
  private removeRenamed(renamed: readonly RenamedDir[]): void {
    if (renamed.length === 0) return;
    try {
      fsyncDir(this.logDir);
    } catch (e: unknown) {
      this.logger.warn({ dirs: renamed.map((r) => r.dir), err: e instanceof Error ? e.message : String(e) }, 'cannot fsync the log directory; renamed replica directories are left for the next start');
      return;
    }
    for (const r of renamed) this.removeLater(r.dir, r.fields);
  }

  private removeLater(dir: string, fields: Record<string, unknown>): void {
    const removal: Promise<void> = fs.promises
      .rm(dir, { recursive: true, force: true })
      .catch((e: unknown) => this.logger.warn({ ...fields, dir, err: e instanceof Error ? e.message : String(e) }, 'deleting a removed replica\'s directory failed; the next start retries'))
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  /** Resolves once every directory renamed for removal so far is deleted (or failed to be). */
  async removalsDone(): Promise<void> {
    while (this.removals.size > 0) await Promise.all([...this.removals]);
  }

  /** Every partition's high watermark in Kafka's checkpoint format. */
  private hwCheckpointText(): string {
    const entries = this.all().map((p) => `${p.key.topic} ${p.key.partition} ${p.highWatermark}`);
    return `0\n${entries.length}\n${entries.join('\n')}${entries.length ? '\n' : ''}`;
  }

  private hwCheckpointing: Promise<void> | null = null;
  private producerSnapshotting: Promise<void> | null = null;

  /**
   * Periodic (with the high watermark checkpoint): the producer-state snapshot of every partition
   * that lost batches since its last one, written off the event loop, one at a time. A call while
   * one pass runs returns it.
   */
  snapshotProducersAsync(): Promise<void> {
    if (this.producerSnapshotting !== null) return this.producerSnapshotting;
    this.producerSnapshotting = (async () => {
      for (const p of [...this.partitions.values()]) await p.writeProducerSnapshotIfDirty();
    })().finally(() => {
      this.producerSnapshotting = null;
    });
    return this.producerSnapshotting;
  }

  /**
   * The periodic checkpoint (replica.high.watermark.checkpoint.interval.ms), written off the event
   * loop: the fdatasync runs on libuv's thread pool, so produce and fetch do not stall behind it
   * (a synced write takes milliseconds when brokers share a disk). While one is being written a
   * new call returns it: the next interval writes newer values. Also the last one, at close.
   */
  checkpointHighWatermarksAsync(): Promise<void> {
    if (this.hwCheckpointing !== null) return this.hwCheckpointing;
    const text = this.hwCheckpointText();
    // As Kafka's CheckpointFile: the synced temp file is renamed over the old one and the log
    // directory fsynced, so the rename too survives a power loss (else the older checkpoint
    // could return).
    this.hwCheckpointing = writeFileAtomicAsync(path.join(this.logDir, HW_CHECKPOINT_FILE), text).finally(() => {
      this.hwCheckpointing = null;
    });
    return this.hwCheckpointing;
  }

  /**
   * The log directory and the replicas held in it (those `wanted` accepts; all by default), with
   * the volume's total and usable bytes (KIP-827). Reads no segment file: sizes are the logs' own
   * counts. The replica list is taken after the statfs, so it is one consistent snapshot.
   */
  async describeLogDir(wanted: (topic: string, partition: number) => boolean = () => true): Promise<LogDirDescription> {
    const dir = path.resolve(this.logDir);
    let fsStats: fs.StatsFs;
    try {
      fsStats = await fs.promises.statfs(dir);
    } catch (e: unknown) {
      return { path: dir, replicas: [], totalBytes: -1, usableBytes: -1, error: new StrandError('KAFKA_STORAGE_ERROR', `cannot read the volume of ${dir}: ${e instanceof Error ? e.message : String(e)}`) };
    }
    const replicas = this.all()
      .filter((p) => wanted(p.key.topic, p.key.partition))
      .map((p) => ({ topic: p.key.topic, partition: p.key.partition, sizeBytes: p.log.sizeBytes, offsetLag: Math.max(0, p.highWatermark - p.log.logEndOffset) }))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    return { path: dir, replicas, totalBytes: fsStats.blocks * fsStats.bsize, usableBytes: fsStats.bavail * fsStats.bsize };
  }

  tick(): void {
    for (const p of this.partitions.values()) p.tick();
  }

  /** Retention over every log (deleting only below the high watermark). */
  applyRetention(): void {
    for (const p of this.partitions.values()) {
      try {
        p.applyRetention();
      } catch (e: unknown) {
        this.logger.warn({ topic: p.key.topic, partition: p.key.partition, err: String(e) }, 'retention failed');
      }
    }
  }

  /**
   * One pass of the log cleaner: compacts every hosted log of a compacted topic (cleanup.policy
   * includes compact) below its high watermark, one log at a time; compactLog skips a log whose
   * dirty share is below min.cleanable.dirty.ratio. Passes never overlap (the
   * caller waits for the previous one) and yield to the event loop, so produce/fetch go on.
   */
  async compactLogs(offsetMap: Pick<CompactionOptions, 'offsetMapBytes' | 'offsetMapLoadFactor'> = {}): Promise<void> {
    for (const p of [...this.partitions.values()]) {
      if (!p.log.topicConfig['cleanup.policy'].includes('compact') || !this.partitions.has(`${p.key.topicId}:${p.key.partition}`)) continue;
      try {
        // Only flushed segments are compacted; under flush.policy=page-cache closed segments may
        // still be in the page cache, so flush them first (one fdatasync per log and pass).
        await p.log.flush();
        // A producer's last batch is kept (empty if need be) while its state is tracked here.
        const stats = await compactLog(p.log, { ...offsetMap, upperBoundOffset: p.highWatermark, producerLastOffset: (id) => p.producers.entry(id)?.batches.at(-1)?.lastOffset });
        if (stats.segmentsCleaned > 0) {
          p.onCompacted();
          this.logger.info({ topic: p.key.topic, partition: p.key.partition, ...stats }, stats.aborted ? 'compaction aborted by a truncation or close, after some segments' : 'compacted');
        }
      } catch (e: unknown) {
        this.logger.warn({ topic: p.key.topic, partition: p.key.partition, err: e instanceof Error ? e.message : String(e) }, 'compaction failed');
      }
    }
  }

  /**
   * The clean shutdown: the high watermark checkpoint, then every partition closed (producer
   * snapshot, log made durable and marked clean), LOG_CLOSES_IN_FLIGHT at a time, every fsync off
   * the event loop. A partition whose close fails is logged and the others still close; the
   * first failure is thrown once all are done (the broker then records no clean shutdown).
   */
  async close(): Promise<void> {
    // After a periodic checkpoint still in flight (it uses the same temp file).
    await this.hwCheckpointing?.catch(() => undefined);
    await this.producerSnapshotting;
    await this.checkpointHighWatermarksAsync();
    const partitions = [...this.partitions.values()];
    this.partitions.clear();
    this.byName.clear();
    let failure: { error: unknown } | null = null;
    await forEachBounded(partitions, LOG_CLOSES_IN_FLIGHT, async (p) => {
      try {
        await p.close();
      } catch (e: unknown) {
        failure ??= { error: e };
        this.logger.warn({ topic: p.key.topic, partition: p.key.partition, err: e instanceof Error ? e.message : String(e) }, 'closing a log failed; the next start recovers it');
      }
    });
    await this.removalsDone();
    if (failure !== null) throw (failure as { error: unknown }).error;
  }
}

/** Runs `f` over `items`, at most `limit` at once; `f` must not reject. */
async function forEachBounded<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await f(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A partition directory renamed for removal, and what its log lines carry. */
interface RenamedDir {
  dir: string;
  fields: Record<string, unknown>;
}

/** Whether this broker hosts a replica of the partition: during a reassignment `replicas` includes the adding ones (Kafka's rule). */
function hostsReplica(p: PartitionMetadata, brokerId: number): boolean {
  return p.replicas.includes(brokerId);
}

/** The topic id a `partition.metadata` file names, or undefined if it names none validly. */
function parseTopicId(text: string): string | undefined {
  return /topic_id:\s*([0-9a-f]{32})\s*$/m.exec(text)?.[1];
}

/**
 * Kafka's name for a directory renamed away (`LocalLog.logDirNameWithSuffixCappedLength`):
 * `<topic>-<partition>.<uuid without dashes><suffix>`, the topic cut short if the name would
 * pass 255 characters. Unique, so a same-name topic's new directory never meets it.
 */
function renamedDirName(dirName: string, suffix: string): string {
  const cut = dirName.lastIndexOf('-');
  const fullSuffix = `${dirName.slice(cut)}.${randomUUID().replaceAll('-', '')}${suffix}`;
  return `${dirName.slice(0, Math.min(cut, MAX_DIR_NAME - fullSuffix.length))}${fullSuffix}`;
}

/**
 * The topic defaults in force on broker `brokerId` with `image`'s dynamic broker configs
 * (cluster-wide, resource '', and its own, resource = its id) over its static ones.
 */
export function topicDefaultsIn(image: MetadataImage | null, brokerId: number, staticDefaults: ReadonlyMap<string, BrokerTopicDefault>): Map<string, EffectiveTopicDefault> {
  const none: ReadonlyMap<string, string> = new Map();
  const dynamic = (name: string): ReadonlyMap<string, string> => image?.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, name) ?? none;
  return effectiveTopicDefaults(staticDefaults, dynamic(''), dynamic(String(brokerId)));
}

/** The topic's dynamic configs as raw key/values (defaults come from TOPIC_CONFIG in the log). */
export function topicConfig(image: MetadataImage, topic: TopicState): RawConfig {
  return Object.fromEntries(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_TOPIC, topic.name));
}

function readHwCheckpoint(file: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!fs.existsSync(file)) return out;
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  for (const line of lines.slice(2)) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)$/.exec(line.trim());
    if (m) out.set(`${m[1]}-${m[2]}`, Number(m[3]));
  }
  return out;
}

/**
 * The test-only power-loss hook (`log.test.durable.positions.file`): appends
 * `{"dir":..,"segments":[{"baseOffset":..,"bytes":..}]}` lines synchronously, so the line reaches
 * the page cache before the broker acknowledges anything the flush covered; a kill -9 keeps it.
 */
export function durablePositionsRecorder(file: string): (dir: string, segments: DurableSegmentPosition[]) => void {
  return (dir, segments) => fs.appendFileSync(file, `${JSON.stringify({ dir, segments })}\n`);
}
