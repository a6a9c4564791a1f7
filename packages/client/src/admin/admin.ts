/**
 * Admin: topics, partitions, configs, cluster, offsets, leader elections and consumer groups.
 *
 * Topic, config, election and cluster RPCs may go to any broker (brokers forward them to the
 * active controller, as Kafka brokers do); group RPCs go to the group's coordinator
 * (FindCoordinator); offset listings go to partition leaders. Every call is retried with backoff
 * for retriable errors only (`retries`, `retry.backoff.ms`), and per-item errors of batched
 * calls are returned per item (or thrown by the single-item helpers) as StrandErrors.
 */
import { AlterConfigOp, ConfigResourceType, ConfigSource, CoordinatorType, ElectionType, ErrorCode, StrandError } from '@strand/protocol';
import type {
  AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsResponse,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteGroupsRequest,
  DeleteGroupsResponse,
  DeleteRecordsRequest,
  DeleteRecordsResponse,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeClusterRequest,
  DescribeClusterResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  DescribeLogDirsRequest,
  DescribeLogDirsResponse,
  DescribeQuorumRequest,
  DescribeQuorumResponse,
  ElectLeadersRequest,
  ElectLeadersResponse,
  FindCoordinatorRequest,
  FindCoordinatorResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  ListPartitionReassignmentsRequest,
  ListPartitionReassignmentsResponse,
  ListOffsetsRequest,
  ListOffsetsResponse,
  MetadataResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetDeleteRequest,
  OffsetDeleteResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
} from '@strand/protocol';
import { Cluster } from '../cluster/cluster';
import type { BrokerConnection, UnaryMethod } from '../cluster/connection';
import { defaultClientId, parseAdminConfig } from '../config';
import type { AdminConfig, ClientConfigInput } from '../config';
import { toStrandError } from '../errors';
import { backoffMs, monotonicMs, sleep, withRetries } from '../retry';
import { decodeAssignment, decodeSubscription } from '../consumer/assignors';
import type { TopicPartition } from '../consumer/assignors';


/** Per-partition errors `deleteRecords` retries: the partition is there, its leader is not (yet) reachable. */
/** The ListOffsets timestamp for `spec` (-2 earliest, -1 latest, -3 max-timestamp, or the time). */
function offsetSpecTimestamp(topic: string, spec: OffsetSpec): number {
  if (typeof spec === 'object' && !(Number.isSafeInteger(spec.timestamp) && spec.timestamp >= 0)) throw new StrandError('INVALID_REQUEST', `list offsets of ${topic}: timestamp must be an integer >= 0, got ${spec.timestamp}`);
  return spec === 'earliest' ? -2 : spec === 'latest' ? -1 : spec === 'max-timestamp' ? -3 : spec.timestamp;
}

const RETRIED_PER_PARTITION: ReadonlySet<string> = new Set(['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'NETWORK_EXCEPTION', 'REQUEST_TIMED_OUT', 'BROKER_NOT_AVAILABLE', 'NOT_ENOUGH_REPLICAS']);
export interface NewTopic {
  name: string;
  /** Default: the cluster's `num.partitions`. */
  numPartitions?: number;
  /** Default: the cluster's `default.replication.factor`. */
  replicationFactor?: number;
  configs?: Readonly<Record<string, string>>;
  /** Explicit replica placement: partition -> broker ids (overrides the counts). */
  assignments?: readonly { partition: number; brokerIds: number[] }[];
}

export interface ItemResult {
  name: string;
  error?: StrandError;
}

export interface PartitionDescription {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
  error?: StrandError;
}

export interface TopicDescription {
  name: string;
  topicId: string;
  internal: boolean;
  partitions: PartitionDescription[];
}

export interface ClusterDescription {
  clusterId: string;
  activeControllerId: number;
  metadataOffset: number;
  raftTerm: number;
  brokers: { id: number; epoch: number; host: string; port: number; rack?: string; state: 'running' | 'fenced' | 'shutting-down'; lastHeartbeatAgeMs: number }[];
  controllers: { id: number; host: string; port: number; role: string; lag: number }[];
}

export interface ConfigDescription {
  name: string;
  value: string;
  /**
   * dynamic: set on the topic; dynamic-broker: a dynamic broker config of this broker;
   * dynamic-default: the cluster-wide dynamic broker default; static: set in the broker's own
   * configuration; default: none of these (Kafka's DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG,
   * DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG).
   */
  source: 'dynamic' | 'dynamic-broker' | 'dynamic-default' | 'static' | 'default' | 'unknown';
  isDefault: boolean;
  documentation: string;
}

const CONFIG_SOURCES: Readonly<Partial<Record<number, ConfigDescription['source']>>> = {
  [ConfigSource.CONFIG_SOURCE_DYNAMIC]: 'dynamic',
  [ConfigSource.CONFIG_SOURCE_DYNAMIC_BROKER]: 'dynamic-broker',
  [ConfigSource.CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER]: 'dynamic-default',
  [ConfigSource.CONFIG_SOURCE_STATIC_BROKER]: 'static',
  [ConfigSource.CONFIG_SOURCE_DEFAULT]: 'default',
};

/** One partition's outcome of deleteRecords: its new log start, or the error that partition got. */
export interface DeletedRecords {
  topic: string;
  partition: number;
  /** The partition's log start offset after the deletion; -1 when `error` is set. */
  lowWatermark: number;
  error?: StrandError;
}

/** A partition replica held in a broker's log directory (describeLogDirs). */
export interface LogDirReplica {
  topic: string;
  partition: number;
  /** Bytes of the replica's segment files. */
  sizeBytes: number;
  /** Kafka's offset lag of a current replica: max(0, high watermark - log end offset) on that broker (0 in practice). */
  offsetLag: number;
  /** A replica being moved between directories of one broker: always false (one directory per broker). */
  isFuture: boolean;
}

/** One log directory of a broker (describeLogDirs). */
export interface LogDirDescription {
  /** Absolute path on the broker. */
  path: string;
  /** Set when the broker cannot read the directory (KAFKA_STORAGE_ERROR); `replicas` is then empty. */
  error?: StrandError;
  /** Sorted by topic, then partition. */
  replicas: LogDirReplica[];
  /** Bytes of the volume holding the directory, and those still writable by the broker (KIP-827); -1 when unknown. */
  totalBytes: number;
  usableBytes: number;
}

/** A broker's answer to describeLogDirs, or why there is none. */
export interface BrokerLogDirs {
  brokerId: number;
  /** One per directory (a Strand broker has one); empty when `error` is set. */
  logDirs: LogDirDescription[];
  /**
   * The broker could not be asked or refused: BROKER_NOT_AVAILABLE (not registered, or not
   * reachable on the listener this client uses), NETWORK_EXCEPTION / REQUEST_TIMED_OUT (not
   * answering), INVALID_TOPIC_EXCEPTION (an illegal name in `topics`), ...
   */
  error?: StrandError;
}

/** A partition's target replica list for alterPartitionReassignments; `null` cancels. */
export interface ReassignmentTarget {
  topic: string;
  partition: number;
  replicas: readonly number[] | null;
}

/** A reassignment in progress: the replica set during the move and who joins or leaves. */
export interface PartitionReassignment {
  topic: string;
  partition: number;
  /** The target replicas followed by those being removed. */
  replicas: number[];
  addingReplicas: number[];
  removingReplicas: number[];
}

/**
 * What `Admin.listOffsets` looks up per partition: the log start (`earliest`), the high watermark
 * (`latest`), the record with the largest timestamp (`max-timestamp`, KIP-734; offset -1 in an
 * empty partition), or the first record whose timestamp is >= `timestamp` (ms since the epoch;
 * offset -1 when there is none).
 */
export type OffsetSpec = 'earliest' | 'latest' | 'max-timestamp' | { timestamp: number };

export interface PartitionOffset {
  partition: number;
  offset: number;
  timestamp: number;
  leaderEpoch: number;
  /** listPartitionOffsets only: why this partition has no answer (offset, timestamp and leaderEpoch -1). */
  error?: StrandError;
}

export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId?: string;
  clientId: string;
  clientHost: string;
  subscription: string[];
  assignment: TopicPartition[];
}

export interface GroupDescription {
  groupId: string;
  /** The broker that coordinates the group (it answered the description). */
  coordinator: { id: number; host: string; port: number };
  state: string;
  protocolType: string;
  protocol: string;
  generationId: number;
  members: GroupMemberDescription[];
  error?: StrandError;
}

export interface GroupOffset {
  topic: string;
  partition: number;
  committedOffset: number;
  logEndOffset: number;
  /** logEndOffset - committedOffset (-1 when nothing is committed). */
  lag: number;
  metadata: string;
}

/** One replica of the metadata log in describeMetadataQuorum (Kafka's QuorumInfo.ReplicaState). */
export interface QuorumReplica {
  replicaId: number;
  /** As the leader knows it; a broker's is the metadata offset it last reported applied (-1 unknown). */
  logEndOffset: number;
  /** Wall-clock ms of the leader's last contact with it; undefined: none since the leader was elected. */
  lastFetchTimestamp?: number;
  /** Wall-clock ms when it was last caught up (a voter: at the leader's log end; a broker: at the leader's applied offset). */
  lastCaughtUpTimestamp?: number;
}

/** The metadata quorum as its leader (the active controller) sees it (Kafka's QuorumInfo). */
export interface QuorumInfo {
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  voters: QuorumReplica[];
  observers: QuorumReplica[];
}

/** A member to remove from a group: a static member by its instance id (Kafka's MemberToRemove), or any member by its id. */
export type MemberToRemove = { groupInstanceId: string; memberId?: string } | { memberId: string; groupInstanceId?: undefined };

/** One member's outcome of removeMembersFromConsumerGroup: no error, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID. */
export interface RemovedMember {
  memberId: string;
  groupInstanceId?: string;
  error?: StrandError;
}

const code = (c: number, what: string, message?: string): StrandError | undefined => (c === 0 ? undefined : StrandError.fromCode(c, message !== undefined && message !== '' ? `${what}: ${message}` : `${what}: ${StrandError.fromCode(c).message}`));

export class Admin {
  readonly config: AdminConfig;
  readonly cluster: Cluster;

  constructor(config: ClientConfigInput = {}) {
    this.config = parseAdminConfig(config);
    if (this.config['client.id'] === '') this.config['client.id'] = defaultClientId('adminclient');
    this.cluster = new Cluster(this.config);
  }

  /** One call to any broker, retried for retriable errors. */
  private async any<Req, Res>(pick: (c: BrokerConnection) => UnaryMethod<Req, Res>, request: Req, what: string, deadline = this.callDeadline()): Promise<Res> {
    return this.retry(async (timeoutMs) => {
      const conn = this.cluster.anyConnection();
      return conn.unary(pick(conn), request, timeoutMs, what, this.cluster.closeSignal);
    }, deadline);
  }

  /** A new call's deadline (monotonic): default.api.timeout.ms from now, as Kafka's admin calls. */
  private callDeadline(): number {
    return monotonicMs() + this.config['default.api.timeout.ms'];
  }

  /** How long one request may wait: request.timeout.ms, or less when the call has less left (at least 1 ms). */
  private requestTimeout(deadline: number): number {
    return Math.max(1, Math.min(this.config['request.timeout.ms'], Math.round(deadline - monotonicMs())));
  }

  /**
   * Runs `fn` (given the time its request may take) until it succeeds or fails for good: a
   * retriable failure is retried with backoff up to `retries` times while the call's deadline
   * (default.api.timeout.ms) leaves time for another attempt.
   */
  private retry<T>(fn: (timeoutMs: number) => Promise<T>, deadline = this.callDeadline()): Promise<T> {
    return withRetries(
      async () => {
        try {
          return await fn(this.requestTimeout(deadline));
        } catch (e: unknown) {
          throw toStrandError(e, 'admin');
        }
      },
      {
        retries: this.config.retries,
        initialMs: this.config['retry.backoff.ms'],
        maxMs: this.config['retry.backoff.max.ms'],
        deadlineMs: deadline,
        signal: this.cluster.closeSignal,
        onRetry: () => this.cluster.requestRefresh(),
      },
    );
  }

  // ---- topics ------------------------------------------------------------------------------

  async createTopics(topics: readonly NewTopic[], options: { validateOnly?: boolean } = {}): Promise<ItemResult[]> {
    const req: CreateTopicsRequest = {
      validateOnly: options.validateOnly ?? false,
      // Omitted counts are -1: the cluster's num.partitions / default.replication.factor (Kafka).
      topics: topics.map((t) => ({ name: t.name, numPartitions: t.assignments !== undefined ? -1 : (t.numPartitions ?? -1), replicationFactor: t.assignments !== undefined ? -1 : (t.replicationFactor ?? -1), assignments: t.assignments?.map((a) => ({ partition: a.partition, brokerIds: a.brokerIds })) ?? [], configs: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })) })),
    };
    const res = await this.any((c) => c.client.createTopics as UnaryMethod<CreateTopicsRequest, CreateTopicsResponse>, req, 'CreateTopics');
    return res.topics.map((t) => ({ name: t.name, ...(t.errorCode !== 0 ? { error: code(t.errorCode, `create topic ${t.name}`, t.errorMessage) } : {}) }));
  }

  /** Creates one topic; throws its error. */
  async createTopic(topic: NewTopic): Promise<void> {
    const [r] = await this.createTopics([topic]);
    if (r?.error !== undefined) throw r.error;
  }

  async deleteTopics(names: readonly string[]): Promise<ItemResult[]> {
    const res = await this.any((c) => c.client.deleteTopics as UnaryMethod<DeleteTopicsRequest, DeleteTopicsResponse>, { names: [...names] }, 'DeleteTopics');
    return res.topics.map((t) => ({ name: t.name, ...(t.errorCode !== 0 ? { error: code(t.errorCode, `delete topic ${t.name}`, t.errorMessage) } : {}) }));
  }

  /**
   * Grows `topic` to `totalCount` partitions (Kafka's createPartitions with
   * NewPartitions.increaseTo): INVALID_PARTITIONS unless larger than the current count.
   * `assignments` places the new partitions, one broker id list per new partition in order
   * (the topic's replication factor each, registered brokers, at least one of them active;
   * INVALID_REPLICA_ASSIGNMENT otherwise); by default the controller places them.
   * `validateOnly` checks the request and changes nothing.
   */
  async createPartitions(topic: string, totalCount: number, options: { assignments?: readonly (readonly number[])[]; validateOnly?: boolean } = {}): Promise<void> {
    // The new partitions are the last assignments.length ones; a count that does not match the
    // partitions added is the controller's INVALID_REPLICA_ASSIGNMENT.
    const assignments = (options.assignments ?? []).map((brokerIds, i, all) => ({ partition: totalCount - all.length + i, brokerIds: [...brokerIds] }));
    const res = await this.any((c) => c.client.createPartitions as UnaryMethod<CreatePartitionsRequest, CreatePartitionsResponse>, { topics: [{ name: topic, count: totalCount, assignments }], validateOnly: options.validateOnly ?? false }, 'CreatePartitions');
    const r = res.topics[0];
    if (r !== undefined && r.errorCode !== 0) throw code(r.errorCode, `create partitions of ${topic}`, r.errorMessage);
  }

  private async metadata(topics: readonly string[]): Promise<MetadataResponse> {
    const res = await this.any((c) => c.client.metadata as UnaryMethod<{ topics: string[] }, MetadataResponse>, { topics: [...topics] }, 'Metadata');
    this.cluster.apply(res);
    return res;
  }

  /** Topic names, sorted (internal `__` topics only with `includeInternal`). */
  async listTopics(options: { includeInternal?: boolean } = {}): Promise<string[]> {
    const res = await this.metadata([]);
    return res.topics.filter((t) => t.errorCode === 0 && (options.includeInternal || !t.name.startsWith('__'))).map((t) => t.name).sort();
  }

  /** Leaders, replicas and ISR per partition; every topic when `names` is empty. */
  async describeTopics(names: readonly string[] = []): Promise<TopicDescription[]> {
    const res = await this.metadata(names);
    return res.topics
      .map((t) => {
        if (t.errorCode !== 0) throw code(t.errorCode, `describe topic ${t.name}`);
        return {
          name: t.name,
          topicId: Buffer.from(t.topicId).toString('hex'),
          internal: t.name.startsWith('__'),
          partitions: [...t.partitions].sort((a, b) => a.partition - b.partition).map((p) => ({ partition: p.partition, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr, offlineReplicas: p.offlineReplicas, ...(p.errorCode !== 0 ? { error: code(p.errorCode, `${t.name}-${p.partition}`) } : {}) })),
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async describeCluster(): Promise<ClusterDescription> {
    const r = await this.any((c) => c.client.describeCluster as UnaryMethod<DescribeClusterRequest, DescribeClusterResponse>, {}, 'DescribeCluster');
    return {
      clusterId: r.clusterId,
      activeControllerId: r.activeControllerId,
      metadataOffset: r.metadataOffset,
      raftTerm: r.raftTerm,
      brokers: r.brokers
        .map((b) => ({ id: b.brokerId, epoch: b.brokerEpoch, host: b.endpoints[0]?.host ?? '', port: b.endpoints[0]?.port ?? 0, ...(b.rack !== undefined && b.rack !== '' ? { rack: b.rack } : {}), state: (b.inControlledShutdown ? 'shutting-down' : b.fenced ? 'fenced' : 'running') as 'running' | 'fenced' | 'shutting-down', lastHeartbeatAgeMs: b.lastHeartbeatAgeMs }))
        .sort((a, b) => a.id - b.id),
      controllers: r.controllers.map((c) => ({ id: c.nodeId, host: c.host, port: c.port, role: c.role, lag: c.lag })).sort((a, b) => a.id - b.id),
    };
  }

  // ---- configs -----------------------------------------------------------------------------

  /**
   * Configs of a topic, or with `type: 'broker'` of the broker whose id is `name` (its own
   * settings, dynamic ones over static ones: asked of that broker, as Kafka's admin client
   * does), or with `name` '' the cluster-wide dynamic broker defaults (only those set); all keys
   * when `keys` is empty.
   */
  async describeConfigs(name: string, options: { type?: 'topic' | 'broker'; keys?: string[] } = {}): Promise<ConfigDescription[]> {
    const broker = options.type === 'broker';
    if (broker && name !== '' && !/^\d+$/.test(name)) throw new StrandError('INVALID_REQUEST', `a broker is named by its id (or '' for the cluster-wide defaults), not '${name}'`);
    const type = broker ? ConfigResourceType.CONFIG_RESOURCE_BROKER : ConfigResourceType.CONFIG_RESOURCE_TOPIC;
    const request: DescribeConfigsRequest = { resources: [{ type, name, keys: options.keys ?? [] }] };
    const pick = (c: BrokerConnection): UnaryMethod<DescribeConfigsRequest, DescribeConfigsResponse> => c.client.describeConfigs as UnaryMethod<DescribeConfigsRequest, DescribeConfigsResponse>;
    const res = broker && name !== ''
      ? await this.retry(async (timeoutMs) => {
          await this.cluster.refreshIfNeeded();
          const conn = this.cluster.connection(Number(name));
          return conn.unary(pick(conn), request, timeoutMs, 'DescribeConfigs', this.cluster.closeSignal);
        })
      : await this.any(pick, request, 'DescribeConfigs');
    const r = res.results[0];
    if (r === undefined) throw new StrandError('UNKNOWN_SERVER_ERROR', 'DescribeConfigs returned no result');
    if (r.errorCode !== 0) throw code(r.errorCode, `describe configs of ${broker ? 'broker ' : ''}${name}`, r.errorMessage);
    return r.configs.map((c) => ({ name: c.name, value: c.value, source: CONFIG_SOURCES[c.source] ?? 'unknown', isDefault: c.isDefault, documentation: c.documentation }));
  }

  /**
   * Changes config keys (IncrementalAlterConfigs) of a topic, or with `type: 'broker'` the
   * dynamic broker configs of the broker whose id is `name`, or with `name` '' the cluster-wide
   * ones (Kafka's --entity-default). Dynamic broker keys: DYNAMIC_BROKER_CONFIG. Kafka's four
   * operations: `set` a value, `delete` a key (back to its default), and for list keys
   * (`cleanup.policy`, `log.cleanup.policy`) `append` the comma-separated items not yet in the
   * current value (the key's default when unset) or `subtract` them (KIP-339); append or subtract
   * on another key is INVALID_CONFIG. A key may appear once across them (INVALID_REQUEST).
   * All changes apply together or none does.
   */
  async alterConfigs(
    name: string,
    changes: { set?: Readonly<Record<string, string>>; delete?: readonly string[]; append?: Readonly<Record<string, string>>; subtract?: Readonly<Record<string, string>> },
    options: { type?: 'topic' | 'broker'; validateOnly?: boolean } = {},
  ): Promise<void> {
    const type = options.type === 'broker' ? ConfigResourceType.CONFIG_RESOURCE_BROKER : ConfigResourceType.CONFIG_RESOURCE_TOPIC;
    const configs = [
      ...Object.entries(changes.set ?? {}).map(([n, value]) => ({ name: n, op: AlterConfigOp.ALTER_CONFIG_SET, value })),
      ...(changes.delete ?? []).map((n) => ({ name: n, op: AlterConfigOp.ALTER_CONFIG_DELETE, value: '' })),
      ...Object.entries(changes.append ?? {}).map(([n, value]) => ({ name: n, op: AlterConfigOp.ALTER_CONFIG_APPEND, value })),
      ...Object.entries(changes.subtract ?? {}).map(([n, value]) => ({ name: n, op: AlterConfigOp.ALTER_CONFIG_SUBTRACT, value })),
    ];
    const res = await this.any((c) => c.client.incrementalAlterConfigs as UnaryMethod<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>, { resources: [{ type, name, configs }], validateOnly: options.validateOnly ?? false }, 'IncrementalAlterConfigs');
    const r = res.results[0];
    if (r !== undefined && r.errorCode !== 0) throw code(r.errorCode, `alter configs of ${name}`, r.errorMessage);
  }

  // ---- offsets, records, elections -----------------------------------------------------------

  /**
   * Offsets of every partition of `topic` for `spec` (earliest, latest, max-timestamp, or by
   * timestamp), sorted by partition. A timestamp must be >= 0 (negative ones are the sentinels).
   */
  async listOffsets(topic: string, spec: OffsetSpec = 'latest'): Promise<PartitionOffset[]> {
    const ts = offsetSpecTimestamp(topic, spec);
    return this.retry(async (timeoutMs) => {
      const info = await this.cluster.topic(topic, monotonicMs() + timeoutMs, this.cluster.closeSignal);
      const byNode = new Map<number, number[]>();
      for (const p of info.partitions) {
        const leader = this.cluster.leaderOf(topic, p.partition);
        if (leader === undefined) throw new StrandError('LEADER_NOT_AVAILABLE', `${topic}-${p.partition} has no leader`);
        byNode.set(leader, [...(byNode.get(leader) ?? []), p.partition]);
      }
      const out: PartitionOffset[] = [];
      await Promise.all(
        [...byNode].map(async ([node, parts]) => {
          const conn = this.cluster.connection(node);
          const res = await conn.unary(conn.client.listOffsets as UnaryMethod<ListOffsetsRequest, ListOffsetsResponse>, { isolationLevel: 0, topics: [{ name: topic, partitions: parts.map((partition) => ({ partition, timestamp: ts, currentLeaderEpoch: -1 })) }] }, timeoutMs, 'ListOffsets', this.cluster.closeSignal);
          for (const t of res.topics) {
            for (const p of t.partitions) {
              if (p.errorCode !== 0) throw code(p.errorCode, `list offsets of ${topic}-${p.partition}`);
              out.push({ partition: p.partition, offset: p.offset, timestamp: p.timestamp, leaderEpoch: p.leaderEpoch });
            }
          }
        }),
      );
      return out.sort((a, b) => a.partition - b.partition);
    });
  }

  /**
   * As listOffsets, but each partition answered on its own, as Kafka's
   * `ListOffsetsResult.partitionResult()`: a partition without a leader, or whose leader answers
   * with an error, gets `error` (offset -1) while the others are answered. Leadership and
   * connection errors are retried per partition, with fresh metadata and backoff, up to
   * `retries` times within default.api.timeout.ms. Sorted by partition. Throws only when the topic's metadata cannot be had
   * (e.g. an unknown topic: UNKNOWN_TOPIC_OR_PARTITION) or for an invalid `spec`.
   */
  async listPartitionOffsets(topic: string, spec: OffsetSpec = 'latest'): Promise<PartitionOffset[]> {
    const ts = offsetSpecTimestamp(topic, spec);
    return this.perPartitionRounds(topic, (pending, deadline) => this.listPartitionOffsetsOnce(topic, ts, pending, deadline));
  }

  /**
   * Runs `round` over the partitions still pending (undefined: all) until each has an answer not
   * worth asking again: a partition failing with a leadership or connection error
   * (RETRIED_PER_PARTITION) is asked again, with fresh metadata and backoff, up to `retries`
   * times while the call's deadline (default.api.timeout.ms) leaves time for another round.
   * Sorted by partition.
   */
  private async perPartitionRounds<R extends { partition: number; error?: StrandError }>(topic: string, round: (pending: readonly number[] | undefined, deadline: number) => Promise<R[]>): Promise<R[]> {
    const deadline = this.callDeadline();
    const done: R[] = [];
    let pending: readonly number[] | undefined;
    for (let attempt = 0; ; attempt++) {
      const results = await round(pending, deadline);
      const again = results.filter((r) => r.error !== undefined && RETRIED_PER_PARTITION.has(r.error.errorName));
      done.push(...results.filter((r) => !again.includes(r)));
      const wait = backoffMs(attempt, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] });
      if (again.length === 0 || attempt >= this.config.retries || monotonicMs() + wait >= deadline) {
        done.push(...again);
        return done.sort((a, b) => a.partition - b.partition);
      }
      pending = again.map((r) => r.partition);
      await sleep(wait, this.cluster.closeSignal);
      await this.cluster.refresh([topic]).catch(() => undefined);
    }
  }

  /** One round of listPartitionOffsets over `partitions` (default: every partition of the topic). */
  private async listPartitionOffsetsOnce(topic: string, ts: number, partitions: readonly number[] | undefined, deadline: number): Promise<PartitionOffset[]> {
    const info = await this.cluster.topic(topic, monotonicMs() + this.requestTimeout(deadline), this.cluster.closeSignal);
    const timeoutMs = this.requestTimeout(deadline);
    const out: PartitionOffset[] = [];
    await this.leaderRound(
      topic,
      partitions ?? info.partitions.map((p) => p.partition),
      'list offsets',
      (conn, parts) => conn.unary(conn.client.listOffsets as UnaryMethod<ListOffsetsRequest, ListOffsetsResponse>, { isolationLevel: 0, topics: [{ name: topic, partitions: parts.map((partition) => ({ partition, timestamp: ts, currentLeaderEpoch: -1 })) }] }, timeoutMs, 'ListOffsets', this.cluster.closeSignal),
      (p) => void out.push({ partition: p.partition, offset: p.offset, timestamp: p.timestamp, leaderEpoch: p.leaderEpoch }),
      (partition, error) => void out.push({ partition, offset: -1, timestamp: -1, leaderEpoch: -1, error }),
    );
    return out;
  }

  /**
   * One request per leader for `partitions` of `topic` (`send`), each partition answered on its
   * own: `ok` with its answer, or `failed` with why (no leader: LEADER_NOT_AVAILABLE; the call
   * failed as a whole: its error; an error code; no answer for it). Stale metadata is refreshed.
   */
  private async leaderRound<A extends { partition: number; errorCode: number }>(
    topic: string,
    partitions: Iterable<number>,
    what: string,
    send: (conn: BrokerConnection, parts: number[]) => Promise<{ topics: { name: string; partitions: A[] }[] }>,
    ok: (answer: A) => void,
    failed: (partition: number, error: StrandError) => void,
  ): Promise<void> {
    const byNode = new Map<number, number[]>();
    for (const partition of partitions) {
      const leader = this.cluster.leaderOf(topic, partition);
      if (leader === undefined) {
        failed(partition, new StrandError('LEADER_NOT_AVAILABLE', `${what} of ${topic}-${partition}: no leader`));
        continue;
      }
      byNode.set(leader, [...(byNode.get(leader) ?? []), partition]);
    }
    await Promise.all(
      [...byNode].map(async ([node, parts]) => {
        let res: { topics: { name: string; partitions: A[] }[] };
        try {
          res = await send(this.cluster.connection(node), parts);
        } catch (e: unknown) {
          const error = toStrandError(e, 'admin');
          if (error.hasStaleMetadata || error.errorName === 'NETWORK_EXCEPTION') this.cluster.requestRefresh();
          for (const partition of parts) failed(partition, new StrandError(error.errorName, `${what} of ${topic}-${partition}: ${error.message}`));
          return;
        }
        const answered = new Set<number>();
        for (const t of res.topics) {
          if (t.name !== topic) continue;
          for (const p of t.partitions) {
            if (!parts.includes(p.partition) || answered.has(p.partition)) continue;
            answered.add(p.partition);
            const error = code(p.errorCode, `${what} of ${topic}-${p.partition}`);
            if (error === undefined) ok(p);
            else {
              if (error.hasStaleMetadata) this.cluster.requestRefresh();
              failed(p.partition, error);
            }
          }
        }
        for (const partition of parts) if (!answered.has(partition)) failed(partition, new StrandError('UNKNOWN_SERVER_ERROR', `${what} of ${topic}-${partition}: broker ${node} did not answer for it`));
      }),
    );
  }

  /**
   * Moves log start offsets forward (records before them become unreadable): `beforeOffsets`
   * maps a partition to the offset that becomes its log start (-1: its high watermark). Each
   * partition is answered on its own, as Kafka's `DeleteRecordsResult.lowWatermarks()`: its new
   * log start (`lowWatermark`), or an `error` (lowWatermark -1) such as OFFSET_OUT_OF_RANGE (past
   * the high watermark), NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION (a partition the topic
   * does not have) or LEADER_NOT_AVAILABLE, while the other partitions are still deleted. A
   * request to one leader that fails as a whole fails that leader's partitions with its error.
   * Partitions failing with a leadership or connection error (NOT_LEADER_OR_FOLLOWER,
   * LEADER_NOT_AVAILABLE, NETWORK_EXCEPTION, REQUEST_TIMED_OUT, ...) are retried, with fresh
   * metadata and backoff, within default.api.timeout.ms, as Kafka's admin client does; deleting before an
   * offset twice is harmless. Sorted by partition. Throws only when the topic's metadata cannot
   * be had (e.g. an unknown topic: UNKNOWN_TOPIC_OR_PARTITION).
   */
  async deleteRecords(topic: string, beforeOffsets: ReadonlyMap<number, number>): Promise<DeletedRecords[]> {
    return this.perPartitionRounds(topic, (pending, deadline) => this.deleteRecordsOnce(topic, pending === undefined ? beforeOffsets : new Map(pending.map((p) => [p, beforeOffsets.get(p) as number])), deadline));
  }

  private async deleteRecordsOnce(topic: string, beforeOffsets: ReadonlyMap<number, number>, deadline: number): Promise<DeletedRecords[]> {
    const info = await this.cluster.topic(topic, monotonicMs() + this.requestTimeout(deadline), this.cluster.closeSignal);
    const timeoutMs = this.requestTimeout(deadline);
    const out: DeletedRecords[] = [];
    const failed = (partition: number, error: StrandError): void => void out.push({ topic, partition, lowWatermark: -1, error });
    const known: number[] = [];
    for (const partition of beforeOffsets.keys()) {
      if (Number.isInteger(partition) && partition >= 0 && partition < info.partitions.length) known.push(partition);
      else failed(partition, new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `delete records of ${topic}-${partition}: the topic has ${info.partitions.length} partitions`));
    }
    await this.leaderRound(
      topic,
      known,
      'delete records',
      (conn, parts) => conn.unary(conn.client.deleteRecords as UnaryMethod<DeleteRecordsRequest, DeleteRecordsResponse>, { topics: [{ name: topic, partitions: parts.map((partition) => ({ partition, offset: beforeOffsets.get(partition) as number })) }], timeoutMs }, timeoutMs, 'DeleteRecords', this.cluster.closeSignal),
      (p) => void out.push({ topic, partition: p.partition, lowWatermark: p.lowWatermark }),
      failed,
    );
    return out.sort((a, b) => a.partition - b.partition);
  }

  // ---- log directories ---------------------------------------------------------------------

  /**
   * The log directories of brokers and the partition replicas held in them, with their sizes
   * (Kafka's `describeLogDirs`, KIP-113; volume total and usable bytes, KIP-827). Asks each of
   * `brokerIds` (default: every registered broker, fenced ones included, from DescribeCluster)
   * directly, all at once; `topics` limits the replicas reported to those topics' (default: all).
   * Each broker is answered on its own, sorted by id: one that is not registered, cannot be
   * reached within `request.timeout.ms` (after `retries` for retriable failures) or refuses gets
   * an `error` and no directories, while the others are still reported. Throws only when the
   * cluster cannot be asked at all (DescribeCluster fails) or for a broker id that is not an
   * integer >= 0 (INVALID_REQUEST).
   */
  async describeLogDirs(brokerIds?: readonly number[], options: { topics?: readonly string[] } = {}): Promise<BrokerLogDirs[]> {
    const bad = brokerIds?.find((id) => !Number.isSafeInteger(id) || id < 0);
    if (bad !== undefined) throw new StrandError('INVALID_REQUEST', `describe log dirs: a broker id is an integer >= 0, not ${bad}`);
    const registered = (await this.describeCluster()).brokers;
    const ids = brokerIds === undefined ? registered.map((b) => b.id) : [...new Set(brokerIds)].sort((a, b) => a - b);
    const request: DescribeLogDirsRequest = { topics: [...new Set(options.topics ?? [])].map((topic) => ({ topic, partitions: [] })) };
    return Promise.all(
      ids.map(async (brokerId): Promise<BrokerLogDirs> => {
        const b = registered.find((r) => r.id === brokerId);
        if (b === undefined) return { brokerId, logDirs: [], error: new StrandError('BROKER_NOT_AVAILABLE', `describe log dirs of broker ${brokerId}: not registered with the cluster (registered brokers: ${registered.map((r) => r.id).join(',') || 'none'})`) };
        try {
          const res = await this.retry(async (timeoutMs) => {
            const conn = this.cluster.connectionTo(b.id, b.host, b.port);
            return conn.unary(conn.client.describeLogDirs as UnaryMethod<DescribeLogDirsRequest, DescribeLogDirsResponse>, request, timeoutMs, 'DescribeLogDirs', this.cluster.closeSignal);
          });
          return {
            brokerId,
            logDirs: res.results.map((d) => ({
              path: d.logDir,
              ...(d.errorCode !== 0 ? { error: code(d.errorCode, `log directory ${d.logDir} of broker ${brokerId}`, d.errorMessage) } : {}),
              replicas: d.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, sizeBytes: p.sizeBytes, offsetLag: p.offsetLag, isFuture: p.isFuture }))).sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : x.partition - y.partition)),
              totalBytes: d.totalBytes,
              usableBytes: d.usableBytes,
            })),
          };
        } catch (e: unknown) {
          const error = toStrandError(e, 'admin');
          return { brokerId, logDirs: [], error: new StrandError(error.errorName, `describe log dirs of broker ${brokerId} (${b.host}:${b.port}): ${error.message}`) };
        }
      }),
    );
  }

  /** Preferred (default) or unclean leader election; every partition when `partitions` is empty. */
  async electLeaders(type: 'preferred' | 'unclean' = 'preferred', partitions: readonly TopicPartition[] = []): Promise<{ topic: string; partition: number; error?: StrandError }[]> {
    const byTopic = new Map<string, number[]>();
    for (const tp of partitions) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
    const res = await this.any((c) => c.client.electLeaders as UnaryMethod<ElectLeadersRequest, ElectLeadersResponse>, { type: type === 'unclean' ? ElectionType.ELECTION_UNCLEAN : ElectionType.ELECTION_PREFERRED, topics: [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })) }, 'ElectLeaders');
    return res.results.map((r) => ({ topic: r.topic, partition: r.partition, ...(r.errorCode !== 0 ? { error: code(r.errorCode, `elect leader of ${r.topic}-${r.partition}`, r.errorMessage) } : {}) }));
  }

  // ---- reassignments -----------------------------------------------------------------------

  /**
   * Starts moving partitions to target replica lists (or cancels a move with `replicas: null`).
   * The controller adds the new replicas, waits for them to join the ISR, then drops the old
   * ones; this call returns once the move has started. Per-partition errors are returned (e.g.
   * INVALID_REPLICA_ASSIGNMENT, REASSIGNMENT_IN_PROGRESS, NO_REASSIGNMENT_IN_PROGRESS).
   */
  async alterPartitionReassignments(targets: readonly ReassignmentTarget[]): Promise<{ topic: string; partition: number; error?: StrandError }[]> {
    const byTopic = new Map<string, AlterPartitionReassignmentsRequest['topics'][number]>();
    for (const t of targets) {
      let topic = byTopic.get(t.topic);
      if (topic === undefined) {
        topic = { name: t.topic, partitions: [] };
        byTopic.set(t.topic, topic);
      }
      topic.partitions.push({ partition: t.partition, replicas: t.replicas === null ? null : { values: [...t.replicas] } });
    }
    const res = await this.any((c) => c.client.alterPartitionReassignments as UnaryMethod<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>, { topics: [...byTopic.values()] }, 'AlterPartitionReassignments');
    return res.results.map((r) => ({ topic: r.topic, partition: r.partition, ...(r.errorCode !== 0 ? { error: code(r.errorCode, `reassign ${r.topic}-${r.partition}`, r.errorMessage) } : {}) }));
  }

  /** Reassignments in progress, of `partitions` or of every partition when empty; sorted. */
  async listPartitionReassignments(partitions: readonly TopicPartition[] = []): Promise<PartitionReassignment[]> {
    const byTopic = new Map<string, number[]>();
    for (const tp of partitions) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
    const res = await this.any((c) => c.client.listPartitionReassignments as UnaryMethod<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>, { topics: [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps })) }, 'ListPartitionReassignments');
    return res.reassignments
      .map((r) => ({ topic: r.topic, partition: r.partition, replicas: [...r.replicas], addingReplicas: [...r.addingReplicas], removingReplicas: [...r.removingReplicas] }))
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /**
   * The metadata quorum (Kafka's describeMetadataQuorum, KIP-595 / KIP-836), answered by the active
   * controller through any broker: leader, its Raft term (epoch), the committed offset (high
   * watermark), and per voter and observer (Raft learners, brokers) the log end offset and the
   * leader's last contact and caught-up times. What kafka-metadata-quorum describe prints.
   */
  async describeMetadataQuorum(): Promise<QuorumInfo> {
    const r = await this.any((c) => c.client.describeQuorum as UnaryMethod<DescribeQuorumRequest, DescribeQuorumResponse>, {}, 'DescribeQuorum');
    if (r.errorCode !== 0) throw code(r.errorCode, 'describe the metadata quorum', r.errorMessage);
    const replica = (q: DescribeQuorumResponse['currentVoters'][number]): QuorumReplica => ({
      replicaId: q.replicaId,
      logEndOffset: q.logEndOffset,
      ...(q.lastFetchTimestamp >= 0 ? { lastFetchTimestamp: q.lastFetchTimestamp } : {}),
      ...(q.lastCaughtUpTimestamp >= 0 ? { lastCaughtUpTimestamp: q.lastCaughtUpTimestamp } : {}),
    });
    return { leaderId: r.leaderId, leaderEpoch: r.leaderEpoch, highWatermark: r.highWatermark, voters: r.currentVoters.map(replica), observers: r.observers.map(replica) };
  }

  // ---- groups ------------------------------------------------------------------------------

  private async coordinator(groupId: string, deadline: number): Promise<{ conn: BrokerConnection; node: GroupDescription['coordinator'] }> {
    const r = await this.any((c) => c.client.findCoordinator as UnaryMethod<FindCoordinatorRequest, FindCoordinatorResponse>, { key: groupId, keyType: CoordinatorType.COORDINATOR_GROUP }, 'FindCoordinator', deadline);
    if (r.errorCode !== 0) throw code(r.errorCode, `find coordinator of ${groupId}`, r.errorMessage);
    return { conn: this.cluster.connectionTo(r.nodeId, r.host, r.port), node: { id: r.nodeId, host: r.host, port: r.port } };
  }

  /**
   * Calls the group's coordinator, rediscovering it on NOT_COORDINATOR and retrying. `errorOf`
   * picks the error to retry on: top-level, or a per-item coordinator error (coordinatorMoved),
   * which OffsetCommit and DeleteGroups report per item.
   */
  private async onCoordinator<Req, Res>(groupId: string, pick: (c: BrokerConnection) => UnaryMethod<Req, Res>, request: Req, what: string, errorOf: (res: Res) => number, deadline = this.callDeadline()): Promise<Res> {
    return (await this.onCoordinatorWith(groupId, pick, request, what, errorOf, deadline)).res;
  }

  /** onCoordinator, also telling which broker (the coordinator) answered. */
  private onCoordinatorWith<Req, Res>(groupId: string, pick: (c: BrokerConnection) => UnaryMethod<Req, Res>, request: Req, what: string, errorOf: (res: Res) => number, deadline: number): Promise<{ res: Res; node: GroupDescription['coordinator'] }> {
    return this.retry(async () => {
      const { conn, node } = await this.coordinator(groupId, deadline);
      const res = await conn.unary(pick(conn), request, this.requestTimeout(deadline), what, this.cluster.closeSignal);
      const c = errorOf(res);
      if (c !== 0) throw code(c, `${what}(${groupId})`);
      return { res, node };
    }, deadline);
  }

  /**
   * Every group in the cluster, or those in one of `states` (Kafka's ListGroups states filter,
   * KIP-518: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead; case-insensitive).
   * Groups live on their coordinators, so every broker is asked and the answers merged.
   */
  async listGroups(options: { states?: readonly string[] } = {}): Promise<GroupListing[]> {
    await this.metadata([]);
    const seen = new Map<string, GroupListing>();
    for (const id of this.cluster.brokers.keys()) {
      const conn = this.cluster.connection(id);
      // Inside the retry: a broker whose offsets shard is still loading answers
      // COORDINATOR_LOAD_IN_PROGRESS, retriable, not a reason to fail the whole listing.
      const res = await this.retry(async (timeoutMs) => {
        const r = await conn.unary(conn.client.listGroups as UnaryMethod<ListGroupsRequest, ListGroupsResponse>, { statesFilter: [...(options.states ?? [])] }, timeoutMs, 'ListGroups', this.cluster.closeSignal);
        if (r.errorCode !== 0) throw code(r.errorCode, 'list groups');
        return r;
      });
      for (const g of res.groups) seen.set(g.groupId, { groupId: g.groupId, protocolType: g.protocolType, state: g.groupState });
    }
    return [...seen.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    return this.describeGroupBefore(groupId, this.callDeadline());
  }

  /** describeGroup within `deadline` (monotonic), for a call of which it is one step. */
  private async describeGroupBefore(groupId: string, deadline: number): Promise<GroupDescription> {
    const { res, node } = await this.onCoordinatorWith(groupId, (c) => c.client.describeGroups as UnaryMethod<DescribeGroupsRequest, DescribeGroupsResponse>, { groups: [groupId] }, 'DescribeGroups', (r) => r.groups[0]?.errorCode ?? 0, deadline);
    const g = res.groups[0];
    if (g === undefined) throw new StrandError('GROUP_ID_NOT_FOUND', `group ${groupId} not found`);
    return {
      groupId: g.groupId,
      coordinator: node,
      state: g.groupState,
      protocolType: g.protocolType,
      protocol: g.protocolData,
      generationId: g.generationId,
      members: g.members.map((m) => {
        let subscription: string[] = [];
        let assignment: TopicPartition[] = [];
        try {
          if (g.protocolType === 'consumer') {
            subscription = decodeSubscription(Buffer.from(m.memberMetadata)).topics;
            assignment = decodeAssignment(Buffer.from(m.memberAssignment));
          }
        } catch {
          // Metadata of a non-consumer protocol: shown without subscription and assignment.
        }
        return { memberId: m.memberId, ...(m.groupInstanceId !== undefined && m.groupInstanceId !== '' ? { groupInstanceId: m.groupInstanceId } : {}), clientId: m.clientId, clientHost: m.clientHost, subscription, assignment };
      }),
    };
  }

  async deleteGroups(groupIds: readonly string[]): Promise<ItemResult[]> {
    const out: ItemResult[] = [];
    for (const id of groupIds) {
      const res = await this.onCoordinator(id, (c) => c.client.deleteGroups as UnaryMethod<DeleteGroupsRequest, DeleteGroupsResponse>, { groups: [id] }, 'DeleteGroups', (r) => coordinatorMoved(r.results[0]?.errorCode ?? 0));
      const r = res.results[0];
      out.push({ name: id, ...(r !== undefined && r.errorCode !== 0 ? { error: code(r.errorCode, `delete group ${id}`) } : {}) });
    }
    return out;
  }

  /**
   * Removes members from a group (Kafka's removeMembersFromConsumerGroup, KIP-345): the group
   * rebalances without them, as if they had left. Static members are named by their instance id
   * (their member id changes with each restart); `members` empty or omitted removes every member
   * the group has now (KIP-571). One result per member, in order: no error, UNKNOWN_MEMBER_ID (not
   * in the group) or FENCED_INSTANCE_ID (the instance id belongs to another member id now). A
   * coordinator that moved or is loading is looked up again and asked again, up to `retries`
   * times; other group-level errors (INVALID_GROUP_ID, INVALID_REQUEST) are thrown.
   */
  async removeMembersFromConsumerGroup(groupId: string, members: readonly MemberToRemove[] = [], options: { reason?: string } = {}): Promise<RemovedMember[]> {
    const reason = `member was removed by an admin${options.reason === undefined || options.reason === '' ? '' : `: ${options.reason}`}`;
    // One deadline for both steps (describing the group, then leaving), as one Kafka admin call.
    const deadline = this.callDeadline();
    const targets =
      members.length > 0
        ? members.map((m) => ({ memberId: m.memberId ?? '', ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }) }))
        : (await this.describeGroupBefore(groupId, deadline)).members.map((m) => ({ memberId: m.memberId, ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }) }));
    if (targets.length === 0) return [];
    const req: LeaveGroupRequest = { groupId, members: targets.map((t) => ({ ...t, reason })) };
    const res = await this.onCoordinator(groupId, (c) => c.client.leaveGroup as UnaryMethod<LeaveGroupRequest, LeaveGroupResponse>, req, 'LeaveGroup', (r) => r.errorCode, deadline);
    return targets.map((t, i) => {
      // The coordinator answers each member, in the request's order.
      const c = res.members[i]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
      const who = t.groupInstanceId === undefined ? t.memberId : `instance ${t.groupInstanceId}`;
      return { ...t, ...(c !== 0 ? { error: code(c, `remove ${who} from ${groupId}`) } : {}) };
    });
  }

  /**
   * Deletes a group's committed offsets of `partitions` (Kafka's deleteConsumerGroupOffsets,
   * KIP-496), so that its consumers start those partitions over by `auto.offset.reset`. One
   * result per partition (each once, sorted): no error (deleted, or there was none), or
   * GROUP_SUBSCRIBED_TO_TOPIC (the group has members subscribed to the topic: stop them first),
   * or UNKNOWN_TOPIC_OR_PARTITION. Group-level errors are thrown: GROUP_ID_NOT_FOUND,
   * NON_EMPTY_GROUP (members of a protocol other than `consumer`), INVALID_GROUP_ID. A coordinator
   * that moved, is loading or could not write (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
   * COORDINATOR_NOT_AVAILABLE) is looked up again and asked again, up to `retries` times.
   */
  async deleteConsumerGroupOffsets(groupId: string, partitions: readonly TopicPartition[]): Promise<{ topic: string; partition: number; error?: StrandError }[]> {
    const byTopic = new Map<string, Set<number>>();
    for (const tp of partitions) byTopic.set(tp.topic, (byTopic.get(tp.topic) ?? new Set<number>()).add(tp.partition));
    const req: OffsetDeleteRequest = { groupId, topics: [...byTopic].map(([name, ps]) => ({ name, partitions: [...ps] })) };
    const res = await this.onCoordinator(groupId, (c) => c.client.offsetDelete as UnaryMethod<OffsetDeleteRequest, OffsetDeleteResponse>, req, 'OffsetDelete', (r) => r.errorCode);
    return res.topics
      .flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, ...(p.errorCode !== 0 ? { error: code(p.errorCode, `delete the offset of ${groupId} on ${t.name}-${p.partition}`) } : {}) })))
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /** Committed offsets of a group with each partition's log end offset and lag. */
  async groupOffsets(groupId: string, topics: readonly string[] = []): Promise<GroupOffset[]> {
    const req: OffsetFetchRequest = { groupId, topics: [], requireStable: false };
    if (topics.length > 0) {
      for (const t of topics) {
        const info = await this.cluster.topic(t, monotonicMs() + this.config['request.timeout.ms']);
        req.topics.push({ name: t, partitions: info.partitions.map((p) => p.partition) });
      }
    }
    const res = await this.onCoordinator(groupId, (c) => c.client.offsetFetch as UnaryMethod<OffsetFetchRequest, OffsetFetchResponse>, req, 'OffsetFetch', (r) => r.errorCode);
    const out: GroupOffset[] = [];
    const ends = new Map<string, Map<number, number>>();
    for (const t of res.topics) {
      if (!ends.has(t.name)) {
        const offs = await this.listOffsets(t.name, 'latest').catch(() => [] as PartitionOffset[]);
        ends.set(t.name, new Map(offs.map((o) => [o.partition, o.offset])));
      }
      for (const p of t.partitions) {
        const end = ends.get(t.name)?.get(p.partition) ?? -1;
        out.push({ topic: t.name, partition: p.partition, committedOffset: p.committedOffset, logEndOffset: end, lag: p.committedOffset >= 0 && end >= 0 ? Math.max(0, end - p.committedOffset) : -1, metadata: p.metadata });
      }
    }
    return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /**
   * Sets a group's committed offsets (kafka-consumer-groups --reset-offsets). The group must be
   * empty: the coordinator refuses standalone commits while members are active.
   */
  async setGroupOffsets(groupId: string, offsets: readonly { topic: string; partition: number; offset: number }[]): Promise<void> {
    const byTopic = new Map<string, OffsetCommitRequest['topics'][number]>();
    for (const o of offsets) {
      const t = byTopic.get(o.topic) ?? { name: o.topic, partitions: [] };
      t.partitions.push({ partition: o.partition, committedOffset: o.offset, committedLeaderEpoch: -1, metadata: '' });
      byTopic.set(o.topic, t);
    }
    const res = await this.onCoordinator(groupId, (c) => c.client.offsetCommit as UnaryMethod<OffsetCommitRequest, OffsetCommitResponse>, { groupId, generationId: -1, memberId: '', topics: [...byTopic.values()] }, 'OffsetCommit', (r) => r.errorCode || coordinatorMoved(r.topics[0]?.partitions[0]?.errorCode ?? 0));
    for (const t of res.topics) for (const p of t.partitions) {
      if (p.errorCode === 25 /* UNKNOWN_MEMBER_ID */) throw new StrandError('NON_EMPTY_GROUP', `group ${groupId} has active members: stop its consumers before resetting offsets`);
      if (p.errorCode !== 0) throw code(p.errorCode, `reset offsets of ${groupId} ${t.name}-${p.partition}`);
    }
  }

  async close(): Promise<void> {
    this.cluster.close();
  }
}

/** A per-item error meaning "ask the coordinator again" (it moved, is loading, or is not up): retried; others are the item's result. */
function coordinatorMoved(errorCode: number): number {
  return errorCode === 14 /* COORDINATOR_LOAD_IN_PROGRESS */ || errorCode === 15 /* COORDINATOR_NOT_AVAILABLE */ || errorCode === 16 /* NOT_COORDINATOR */ ? errorCode : 0;
}
