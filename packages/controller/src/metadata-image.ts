/**
 * The metadata image: the cluster's state as of one metadata offset, immutable. Applying a batch
 * of records yields a new image that shares everything the batch did not touch (maps are copied
 * on first write within a batch), so readers can hold an image while the next one is built.
 *
 * Applying is deterministic and total over records the controller logic produces; a record that
 * contradicts the image (unknown topic, stale broker epoch...) is a programming error in the
 * logic that produced it, and `apply` throws rather than guess.
 */
import assert from 'node:assert/strict';
import type { BrokerEndpointRecord, MetadataRecord } from '@strand/protocol';
import { ConfigResourceType } from '@strand/protocol';

/** Topic ids are 16 bytes on the wire; in memory, 32 lowercase hex characters. */
export type TopicId = string;

export function topicIdToBytes(id: TopicId): Buffer {
  return Buffer.from(id, 'hex');
}

export function topicIdFromBytes(bytes: Uint8Array): TopicId {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export interface BrokerRegistration {
  readonly id: number;
  readonly incarnationId: string;
  /** The offset of the registration: grows with each new incarnation. */
  readonly epoch: number;
  readonly endpoints: readonly BrokerEndpointRecord[];
  readonly rack: string | undefined;
  readonly fenced: boolean;
  readonly inControlledShutdown: boolean;
  readonly previousShutdownClean: boolean;
  /** The id of the broker's log directory; '' when it did not send one. */
  readonly logDirId: string;
  /** This incarnation came back with another log directory id than the previous one. */
  readonly logDirReplaced: boolean;
}

export interface PartitionState {
  readonly topicId: TopicId;
  readonly partition: number;
  /** Replica order matters: the first is the preferred leader. */
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** -1 when offline. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

export interface TopicState {
  readonly id: TopicId;
  readonly name: string;
  /** Partitions by index, 0..n-1. */
  readonly partitions: ReadonlyMap<number, PartitionState>;
}

/** Key of a config resource in `MetadataImage.configs`. */
export function configKey(type: ConfigResourceType, name: string): string {
  return `${type}:${name}`;
}

export class MetadataImage {
  static readonly EMPTY = new MetadataImage(-1, '', new Map(), new Map(), new Map(), new Map(), 0);

  private constructor(
    /** Offset of the last applied batch (-1: nothing applied). */
    readonly offset: number,
    readonly clusterId: string,
    readonly brokers: ReadonlyMap<number, BrokerRegistration>,
    readonly topics: ReadonlyMap<TopicId, TopicState>,
    readonly topicIdsByName: ReadonlyMap<string, TopicId>,
    /** Dynamic configs by `configKey(type, name)`: only keys set explicitly (not defaults). */
    readonly configs: ReadonlyMap<string, ReadonlyMap<string, string>>,
    /** The next producer id to hand out. */
    readonly nextProducerId: number,
  ) {}

  topicByName(name: string): TopicState | undefined {
    const id = this.topicIdsByName.get(name);
    return id === undefined ? undefined : this.topics.get(id);
  }

  partition(topicId: TopicId, partition: number): PartitionState | undefined {
    return this.topics.get(topicId)?.partitions.get(partition);
  }

  /** Dynamic configs of a resource (empty if none). */
  configsOf(type: ConfigResourceType, name: string): ReadonlyMap<string, string> {
    return this.configs.get(configKey(type, name)) ?? EMPTY_MAP;
  }

  /** Whether `brokerId` can lead or be in an ISR now: registered, unfenced, not shutting down. */
  isActiveBroker(brokerId: number): boolean {
    const b = this.brokers.get(brokerId);
    return b !== undefined && !b.fenced && !b.inControlledShutdown;
  }

  /** Every partition, topic by topic. */
  *allPartitions(): Generator<[TopicState, PartitionState]> {
    for (const t of this.topics.values()) for (const p of t.partitions.values()) yield [t, p];
  }

  /** Applies a batch committed at `offset`. */
  apply(offset: number, records: readonly MetadataRecord[]): MetadataImage {
    const d = new Delta(this);
    for (const r of records) d.apply(offset, r);
    return d.build(offset);
  }

  /** The records that rebuild this image from empty (a snapshot). */
  toRecords(): MetadataRecord[] {
    return [...this.records()];
  }

  /**
   * toRecords() one record at a time, in the same order: a snapshot encoder can stop between any
   * two (the image never changes, so iterating it across event-loop turns is safe).
   */
  *records(): Generator<MetadataRecord> {
    if (this.clusterId !== '') yield { cluster: { clusterId: this.clusterId } };
    for (const b of [...this.brokers.values()].sort((x, y) => x.id - y.id)) {
      yield {
        registerBroker: {
          brokerId: b.id,
          incarnationId: b.incarnationId,
          brokerEpoch: b.epoch,
          endpoints: [...b.endpoints],
          ...(b.rack === undefined ? {} : { rack: b.rack }),
          fenced: b.fenced,
          inControlledShutdown: b.inControlledShutdown,
          previousShutdownClean: b.previousShutdownClean,
          ...(b.logDirId === '' ? {} : { logDirId: b.logDirId }),
          ...(b.logDirReplaced ? { logDirReplaced: true } : {}),
        },
      };
    }
    for (const t of this.topics.values()) {
      // One Buffer per topic, shared by its records (a hex decode per partition was a third of
      // toRecords at 10,000 partitions).
      const topicId = topicIdToBytes(t.id);
      yield { topic: { name: t.name, topicId } };
      for (const p of [...t.partitions.values()].sort((x, y) => x.partition - y.partition)) {
        yield {
          partition: {
            topicId,
            partition: p.partition,
            replicas: [...p.replicas],
            isr: [...p.isr],
            leader: p.leader,
            leaderEpoch: p.leaderEpoch,
            partitionEpoch: p.partitionEpoch,
            addingReplicas: [...p.addingReplicas],
            removingReplicas: [...p.removingReplicas],
          },
        };
      }
    }
    for (const [key, entries] of this.configs) {
      const sep = key.indexOf(':');
      const type = Number(key.slice(0, sep)) as ConfigResourceType;
      const name = key.slice(sep + 1);
      for (const [k, v] of entries) yield { config: { resourceType: type, resourceName: name, name: k, value: v } };
    }
    if (this.nextProducerId > 0) yield { producerIds: { brokerId: -1, brokerEpoch: -1, nextProducerId: this.nextProducerId } };
  }

  /** Builds an image from a snapshot's records. */
  static fromRecords(offset: number, records: readonly MetadataRecord[]): MetadataImage {
    return MetadataImage.EMPTY.apply(offset, records);
  }

  /** @internal used by Delta */
  static make(offset: number, clusterId: string, brokers: ReadonlyMap<number, BrokerRegistration>, topics: ReadonlyMap<TopicId, TopicState>, topicIdsByName: ReadonlyMap<string, TopicId>, configs: ReadonlyMap<string, ReadonlyMap<string, string>>, nextProducerId: number): MetadataImage {
    return new MetadataImage(offset, clusterId, brokers, topics, topicIdsByName, configs, nextProducerId);
  }
}

const EMPTY_MAP: ReadonlyMap<string, string> = new Map();

/**
 * Applies one batch to an image a part at a time, for a batch too large for one event-loop turn
 * (a broker's snapshot of tens of thousands of partitions): the caller applies its records in
 * slices, in order, yielding between them, then builds. The result equals
 * `base.apply(offset, allRecords)`; nothing is visible before build() and `base` never changes
 * (the image is persistent: maps are copied on first write). Applying after build() is a bug.
 */
export class MetadataImageBuilder {
  private readonly delta: Delta;
  private built = false;

  constructor(
    base: MetadataImage,
    /** The offset of the batch (a snapshot's offset). */
    readonly offset: number,
  ) {
    this.delta = new Delta(base);
  }

  apply(records: readonly MetadataRecord[]): void {
    // The built image shares the delta's maps: writing them now would change it.
    assert(!this.built, 'MetadataImageBuilder.apply after build');
    for (const r of records) this.delta.apply(this.offset, r);
  }

  build(): MetadataImage {
    this.built = true;
    return this.delta.build(this.offset);
  }
}

class MetadataError extends Error {
  constructor(offset: number, what: string) {
    super(`invalid metadata record at offset ${offset}: ${what}`);
    this.name = 'MetadataError';
  }
}

/** Copy-on-first-write changes to an image, for one batch. */
class Delta {
  private clusterId: string;
  private brokers: ReadonlyMap<number, BrokerRegistration>;
  private topics: ReadonlyMap<TopicId, TopicState>;
  private topicIdsByName: ReadonlyMap<string, TopicId>;
  private configs: ReadonlyMap<string, ReadonlyMap<string, string>>;
  private nextProducerId: number;
  private brokersCopied = false;
  private topicsCopied = false;
  private namesCopied = false;
  private configsCopied = false;
  /** Topics whose partition map was already copied in this batch. */
  private readonly topicsTouched = new Set<TopicId>();

  constructor(image: MetadataImage) {
    this.clusterId = image.clusterId;
    this.brokers = image.brokers;
    this.topics = image.topics;
    this.topicIdsByName = image.topicIdsByName;
    this.configs = image.configs;
    this.nextProducerId = image.nextProducerId;
  }

  private mutBrokers(): Map<number, BrokerRegistration> {
    if (!this.brokersCopied) {
      this.brokers = new Map(this.brokers);
      this.brokersCopied = true;
    }
    return this.brokers as Map<number, BrokerRegistration>;
  }

  private mutTopics(): Map<TopicId, TopicState> {
    if (!this.topicsCopied) {
      this.topics = new Map(this.topics);
      this.topicsCopied = true;
    }
    return this.topics as Map<TopicId, TopicState>;
  }

  private mutNames(): Map<string, TopicId> {
    if (!this.namesCopied) {
      this.topicIdsByName = new Map(this.topicIdsByName);
      this.namesCopied = true;
    }
    return this.topicIdsByName as Map<string, TopicId>;
  }

  private mutConfigs(): Map<string, ReadonlyMap<string, string>> {
    if (!this.configsCopied) {
      this.configs = new Map(this.configs);
      this.configsCopied = true;
    }
    return this.configs as Map<string, ReadonlyMap<string, string>>;
  }

  /** The partition map of a topic, copied once per batch. */
  private mutPartitions(offset: number, topicId: TopicId): Map<number, PartitionState> {
    const topic = this.topics.get(topicId);
    if (topic === undefined) throw new MetadataError(offset, `unknown topic id ${topicId}`);
    if (!this.topicsTouched.has(topicId)) {
      this.mutTopics().set(topicId, { ...topic, partitions: new Map(topic.partitions) });
      this.topicsTouched.add(topicId);
    }
    return (this.topics.get(topicId) as TopicState).partitions as Map<number, PartitionState>;
  }

  private broker(offset: number, id: number, epoch: number): BrokerRegistration {
    const b = this.brokers.get(id);
    if (b === undefined || b.epoch !== epoch) throw new MetadataError(offset, `broker ${id} with epoch ${epoch} is not registered`);
    return b;
  }

  apply(offset: number, r: MetadataRecord): void {
    if (r.cluster) {
      this.clusterId = r.cluster.clusterId;
    } else if (r.registerBroker) {
      const x = r.registerBroker;
      this.mutBrokers().set(x.brokerId, {
        id: x.brokerId,
        incarnationId: x.incarnationId,
        epoch: x.brokerEpoch > 0 ? x.brokerEpoch : offset,
        endpoints: x.endpoints,
        rack: x.rack,
        fenced: x.fenced,
        inControlledShutdown: x.inControlledShutdown,
        previousShutdownClean: x.previousShutdownClean,
        logDirId: x.logDirId ?? '',
        logDirReplaced: x.logDirReplaced ?? false,
      });
    } else if (r.unregisterBroker) {
      this.broker(offset, r.unregisterBroker.brokerId, r.unregisterBroker.brokerEpoch);
      this.mutBrokers().delete(r.unregisterBroker.brokerId);
    } else if (r.fenceBroker) {
      const b = this.broker(offset, r.fenceBroker.brokerId, r.fenceBroker.brokerEpoch);
      this.mutBrokers().set(b.id, { ...b, fenced: true });
    } else if (r.unfenceBroker) {
      const b = this.broker(offset, r.unfenceBroker.brokerId, r.unfenceBroker.brokerEpoch);
      this.mutBrokers().set(b.id, { ...b, fenced: false });
    } else if (r.controlledShutdown) {
      const b = this.broker(offset, r.controlledShutdown.brokerId, r.controlledShutdown.brokerEpoch);
      this.mutBrokers().set(b.id, { ...b, inControlledShutdown: true });
    } else if (r.topic) {
      const id = topicIdFromBytes(r.topic.topicId);
      if (this.topics.has(id) || this.topicIdsByName.has(r.topic.name)) throw new MetadataError(offset, `topic ${r.topic.name} (${id}) already exists`);
      this.mutTopics().set(id, { id, name: r.topic.name, partitions: new Map() });
      this.mutNames().set(r.topic.name, id);
      this.topicsTouched.add(id); // its (new, empty) partition map is ours to fill
    } else if (r.partition) {
      const x = r.partition;
      const id = topicIdFromBytes(x.topicId);
      this.mutPartitions(offset, id).set(x.partition, {
        topicId: id,
        partition: x.partition,
        replicas: x.replicas,
        isr: x.isr,
        leader: x.leader,
        leaderEpoch: x.leaderEpoch,
        partitionEpoch: x.partitionEpoch,
        addingReplicas: x.addingReplicas,
        removingReplicas: x.removingReplicas,
      });
    } else if (r.partitionChange) {
      const x = r.partitionChange;
      const id = topicIdFromBytes(x.topicId);
      const parts = this.mutPartitions(offset, id);
      const p = parts.get(x.partition);
      if (p === undefined) throw new MetadataError(offset, `unknown partition ${id}-${x.partition}`);
      // A new leader, or a new replica set (reassignment), starts a new leader epoch: brokers then
      // rebuild their replication state with the new replicas.
      const replicasChanged = x.replicas !== null && (x.replicas.values.length !== p.replicas.length || x.replicas.values.some((r, i) => r !== p.replicas[i]));
      const leaderChanged = (x.leader !== undefined && x.leader !== p.leader) || replicasChanged;
      parts.set(x.partition, {
        ...p,
        leader: x.leader ?? p.leader,
        isr: x.isr ? x.isr.values : p.isr,
        replicas: x.replicas ? x.replicas.values : p.replicas,
        addingReplicas: x.addingReplicas ? x.addingReplicas.values : p.addingReplicas,
        removingReplicas: x.removingReplicas ? x.removingReplicas.values : p.removingReplicas,
        leaderEpoch: leaderChanged ? p.leaderEpoch + 1 : p.leaderEpoch,
        partitionEpoch: p.partitionEpoch + 1,
      });
    } else if (r.config) {
      const x = r.config;
      const key = configKey(x.resourceType, x.resourceName);
      const entries = new Map(this.configs.get(key) ?? EMPTY_MAP);
      if (x.value === undefined) entries.delete(x.name);
      else entries.set(x.name, x.value);
      if (entries.size === 0) this.mutConfigs().delete(key);
      else this.mutConfigs().set(key, entries);
    } else if (r.removeTopic) {
      const id = topicIdFromBytes(r.removeTopic.topicId);
      const t = this.topics.get(id);
      if (t === undefined) throw new MetadataError(offset, `unknown topic id ${id}`);
      this.mutTopics().delete(id);
      this.mutNames().delete(t.name);
      this.mutConfigs().delete(configKey(ConfigResourceType.CONFIG_RESOURCE_TOPIC, t.name));
    } else if (r.producerIds) {
      if (r.producerIds.nextProducerId < this.nextProducerId) throw new MetadataError(offset, 'producer ids must only grow');
      this.nextProducerId = r.producerIds.nextProducerId;
    } else {
      throw new MetadataError(offset, 'empty or unknown record');
    }
  }

  build(offset: number): MetadataImage {
    return MetadataImage.make(offset, this.clusterId, this.brokers, this.topics, this.topicIdsByName, this.configs, this.nextProducerId);
  }
}
