/**
 * The controller's decisions, as pure functions of the metadata image: given an image and a
 * request, which records to commit and what to answer. No I/O, no clock, no randomness (topic ids
 * and time come in as arguments), so every rule is unit-testable and the quorum controller only
 * sequences operations, commits their records and answers once they are applied.
 *
 * Election rules (DESIGN.md, SCENARIOS.md 1 and 5):
 * - a leader is always chosen from the ISR, among active brokers (registered, unfenced, not in
 *   controlled shutdown), in replica order (the first replica is the preferred leader);
 * - a fenced or shutting-down broker leaves every ISR, except that an ISR does not become empty:
 *   the last member stays (the "last replica standing" holds the committed data, and with the
 *   fsync default it holds it durably), and the partition goes offline (leader -1) until it
 *   returns; only a broker back with another log directory (its logs are gone) leaves even
 *   then, and the partition waits for an unclean election;
 * - an out-of-sync replica is elected only when the topic sets unclean.leader.election.enable
 *   (or does not set it and the cluster-wide dynamic default does), and then the ISR restarts as
 *   that leader alone;
 * - every change bumps the partition epoch; a leader change bumps the leader epoch (in apply).
 */
import assert from 'node:assert/strict';
import {
  AlterConfigOp,
  ConfigResourceType,
  DYNAMIC_BROKER_CONFIG,
  ErrorCode,
  StrandError,
  TOPIC_CONFIG,
  hasCompressionCodec,
  validateDynamicBrokerConfigs,
  type AlterPartitionItem,
  type AlterPartitionResult,
  type AlterableConfig,
  type ConfigSpec,
  type CreatableTopic,
  type CreatePartitionsTopic,
  type CreateTopicResult,
  type ErrorName,
  type MetadataRecord,
  type RegisterBrokerRequest,
} from '@strand/protocol';
import type { ControllerConfig } from './controller-config';
import { topicIdToBytes, type MetadataImage, type PartitionState, type TopicId, type TopicState } from './metadata-image';

/** Records to commit and an answer computed from the image after they are applied. */
export interface Operation<T> {
  readonly records: MetadataRecord[];
  readonly finish: (after: MetadataImage) => T;
  /**
   * False: the records may be committed in several Raft entries when they do not fit one (Kafka's
   * non-atomic ControllerResult), e.g. fencing a broker that holds 40,000 partitions. Such an
   * operation orders its records so that any prefix of them, once committed, leaves a state from
   * which the same trigger builds the rest: the partition changes first, the broker's own record
   * (registration, fence, unfence, controlled shutdown) last. Default true: all or nothing.
   */
  readonly atomic?: boolean;
}

export interface ErrorInfo {
  errorCode: number;
  errorMessage: string;
}

export const NO_ERROR: ErrorInfo = { errorCode: 0, errorMessage: '' };

export function errorInfo(name: ErrorName, message: string): ErrorInfo {
  return { errorCode: ErrorCode[name], errorMessage: message };
}

function fromError(e: unknown): ErrorInfo {
  if (e instanceof StrandError) return { errorCode: e.code, errorMessage: e.message };
  throw e;
}

function done<T>(result: T, records: MetadataRecord[] = [], atomic = true): Operation<T> {
  return { records, finish: () => result, atomic };
}

// ---------------------------------------------------------------------------------------------
// elections

interface ElectionContext {
  /** Brokers to treat as inactive regardless of the image (being fenced or shut down). */
  readonly inactive?: ReadonlySet<number>;
  /** Brokers to treat as active regardless of the image (being unfenced). */
  readonly active?: ReadonlySet<number>;
  /**
   * Brokers (also in `inactive`) back without their logs (another log directory id): they leave
   * every ISR, even one they alone held. That ISR is then empty and the partition offline until
   * an unclean election. (Kafka keeps the last ISR member, so a wiped broker returns as the leader
   * with no data and the other replicas truncate to nothing.)
   */
  readonly storageLost?: ReadonlySet<number>;
}

function isActive(image: MetadataImage, id: number, ctx: ElectionContext): boolean {
  if (ctx.inactive?.has(id)) return false;
  if (ctx.active?.has(id)) return true;
  return image.isActiveBroker(id);
}

/**
 * A stored boolean config value as Kafka's ConfigDef reads it: 'true' in any case. Values are
 * stored as given (trimmed), so 'TRUE' passed validation and must count as true here too.
 */
function isTrue(v: string | undefined): boolean {
  return v !== undefined && v.trim().toLowerCase() === 'true';
}

/** The topic's unclean.leader.election.enable, else the cluster-wide dynamic default (KRaft's controller reads the same two). */
function uncleanAllowed(image: MetadataImage, topic: TopicState): boolean {
  return isTrue(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_TOPIC, topic.name).get('unclean.leader.election.enable') ?? image.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, '').get('unclean.leader.election.enable'));
}

/**
 * An unclean election's choice: the first replica in replica order on an active broker, taking a
 * broker back from a replaced log directory only when there is no other (it may hold nothing).
 */
function uncleanCandidate(image: MetadataImage, p: PartitionState, active: (id: number) => boolean): number | undefined {
  const live = p.replicas.filter(active);
  return live.find((r) => image.brokers.get(r)?.logDirReplaced !== true) ?? live[0];
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The partition's state once the brokers in `ctx.inactive` are out (and `ctx.active` in):
 * inactive brokers leave the ISR (never emptying it, unless `ctx.storageLost` says their logs are
 * gone), the leader stays if still valid, else the first active ISR member in replica order, else
 * (unclean only) the first active replica (see `uncleanCandidate`).
 * Returns null when nothing changes.
 */
export function electPartition(image: MetadataImage, topic: TopicState, p: PartitionState, ctx: ElectionContext): MetadataRecord | null {
  let isr = p.isr.filter((r) => isActive(image, r, ctx));
  if (isr.length === 0) {
    // Last replica standing: keep who held the data last (at most the current ISR), unless its
    // logs are gone.
    isr = p.isr.filter((r) => !ctx.storageLost?.has(r));
  }
  let leader = p.leader;
  if (leader === -1 || !isActive(image, leader, ctx) || !isr.includes(leader)) {
    // KIP-966: among the ISR, a broker whose current incarnation follows an unclean shutdown (it
    // may have lost unflushed bytes) is chosen only when no cleanly restarted member is there.
    const eligible = p.replicas.filter((r) => isr.includes(r) && isActive(image, r, ctx));
    leader = eligible.find((r) => image.brokers.get(r)?.previousShutdownClean !== false) ?? eligible[0] ?? -1;
    if (leader === -1 && uncleanAllowed(image, topic)) {
      leader = uncleanCandidate(image, p, (r) => isActive(image, r, ctx)) ?? -1;
      if (leader !== -1) isr = [leader];
    }
  }
  if (leader === p.leader && sameMembers(isr, p.isr)) return null;
  return {
    partitionChange: {
      topicId: topicIdToBytes(topic.id),
      partition: p.partition,
      ...(leader !== p.leader ? { leader } : {}),
      isr: sameMembers(isr, p.isr) ? null : { values: isr },
      replicas: null,
      addingReplicas: null,
      removingReplicas: null,
    },
  };
}

/** Partition changes for every partition touched by `ctx` (brokers leaving or joining). */
export function electAffected(image: MetadataImage, ctx: ElectionContext): MetadataRecord[] {
  const out: MetadataRecord[] = [];
  const touched = new Set<number>([...(ctx.inactive ?? []), ...(ctx.active ?? [])]);
  for (const [t, p] of image.allPartitions()) {
    const relevant = p.leader === -1 || p.isr.some((r) => touched.has(r)) || touched.has(p.leader);
    if (!relevant) continue;
    const change = electPartition(image, t, p, ctx);
    if (change) out.push(change);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// brokers

export interface RegisterResult extends ErrorInfo {
  brokerEpoch: number;
  clusterId: string;
}

/**
 * Registers a broker incarnation. It starts fenced (unfenced once its heartbeats show it caught
 * up with the metadata); the previous incarnation's leaderships move away at once, and it leaves
 * every ISR but those it alone holds. A broker whose log directory id changed has lost its logs
 * and leaves those too (see `ElectionContext.storageLost`). `sessionAlive(id)` tells whether the
 * broker id currently has a live session (another process using the same id is refused with
 * DUPLICATE_BROKER_REGISTRATION).
 */
export function registerBroker(image: MetadataImage, req: RegisterBrokerRequest, sessionAlive: (id: number) => boolean): Operation<RegisterResult> {
  const fail = (name: ErrorName, msg: string): Operation<RegisterResult> => done({ ...errorInfo(name, msg), brokerEpoch: -1, clusterId: image.clusterId });
  if (req.brokerId < 0) return fail('INVALID_REQUEST', `broker id ${req.brokerId} must be >= 0`);
  if (req.clusterId !== '' && image.clusterId !== '' && req.clusterId !== image.clusterId) {
    return fail('INCONSISTENT_CLUSTER_ID', `broker ${req.brokerId} belongs to cluster ${req.clusterId}, this is ${image.clusterId}`);
  }
  if (req.endpoints.length === 0) return fail('INVALID_REQUEST', 'a broker must register at least one endpoint');
  // One endpoint per listener (Kafka's advertised.listeners): Metadata answers pick by name.
  const listeners = new Set<string>();
  for (const e of req.endpoints) {
    if (e.listener === '' || e.host === '' || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535) return fail('INVALID_REQUEST', `broker ${req.brokerId}: endpoint ${e.listener}://${e.host}:${e.port} needs a listener name, a host and a port in 1-65535`);
    if (listeners.has(e.listener)) return fail('INVALID_REQUEST', `broker ${req.brokerId}: listener ${e.listener} registered twice`);
    listeners.add(e.listener);
  }
  const existing = image.brokers.get(req.brokerId);
  const lost = existing !== undefined && existing.logDirId !== '' && req.logDirId !== undefined && req.logDirId !== existing.logDirId;
  if (existing && existing.incarnationId !== req.incarnationId && !existing.fenced && sessionAlive(req.brokerId)) {
    return fail('DUPLICATE_BROKER_REGISTRATION', `broker id ${req.brokerId} is in use by a live incarnation ${existing.incarnationId}`);
  }
  // The partition changes come before the registration (see Operation.atomic): until that is
  // committed a retried registration finds the old directory id again and rebuilds the rest.
  const records: MetadataRecord[] = existing === undefined ? [] : electAffected(image, { inactive: new Set([req.brokerId]), ...(lost ? { storageLost: new Set([req.brokerId]) } : {}) });
  records.push(
    {
      registerBroker: {
        brokerId: req.brokerId,
        incarnationId: req.incarnationId,
        brokerEpoch: 0,
        endpoints: req.endpoints,
        ...(req.rack === undefined ? {} : { rack: req.rack }),
        fenced: true,
        inControlledShutdown: false,
        previousShutdownClean: req.previousShutdownClean,
        ...(req.logDirId === undefined ? {} : { logDirId: req.logDirId }),
        // Sticky while the directory stays the same: a second registration (a retry, a restart)
        // does not bring back what the replaced disk held.
        ...(lost || (existing?.logDirReplaced === true && existing.logDirId === req.logDirId) ? { logDirReplaced: true } : {}),
      },
    },
  );
  return {
    records,
    finish: (after) => ({ ...NO_ERROR, brokerEpoch: after.brokers.get(req.brokerId)?.epoch ?? -1, clusterId: after.clusterId }),
    atomic: false,
  };
}

export interface HeartbeatResult extends ErrorInfo {
  isCaughtUp: boolean;
  isFenced: boolean;
  shouldShutDown: boolean;
}

/** Whether `brokerId` still leads any partition. */
function leadsAnything(image: MetadataImage, brokerId: number): boolean {
  for (const [, p] of image.allPartitions()) if (p.leader === brokerId) return true;
  return false;
}

/**
 * A heartbeat: checks the epoch, unfences a caught-up broker (electing it where partitions were
 * offline waiting for it), and runs controlled shutdown: the broker is marked, its leaderships
 * move to other ISR members, and it may stop once it leads nothing.
 */
export function brokerHeartbeat(image: MetadataImage, brokerId: number, brokerEpoch: number, metadataOffset: number, wantShutDown: boolean): Operation<HeartbeatResult> {
  const b = image.brokers.get(brokerId);
  const fail = (name: ErrorName, msg: string): Operation<HeartbeatResult> => done({ ...errorInfo(name, msg), isCaughtUp: false, isFenced: true, shouldShutDown: false });
  if (b === undefined) return fail('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered`);
  if (b.epoch !== brokerEpoch) return fail('STALE_BROKER_EPOCH', `broker ${brokerId} epoch ${brokerEpoch} is not the registered epoch ${b.epoch}`);
  const caughtUp = metadataOffset >= b.epoch;
  // The broker's own record last (see Operation.atomic).
  const records: MetadataRecord[] = [];
  if (wantShutDown) {
    if (!b.fenced) {
      if (!b.inControlledShutdown) {
        records.push(...electAffected(image, { inactive: new Set([brokerId]) }));
        records.push({ controlledShutdown: { brokerId, brokerEpoch } });
      }
      // Once it leads nothing the shutdown is complete and the broker is fenced, as Kafka's
      // controller does (handleBrokerShutdown): it may stop, and its restart registers at once
      // instead of being refused as a duplicate until this incarnation's session expires.
      const after = records.length === 0 ? image : image.apply(image.offset, records);
      if (!leadsAnything(after, brokerId)) {
        records.push(...electAffected(after, { inactive: new Set([brokerId]) }));
        records.push({ fenceBroker: { brokerId, brokerEpoch } });
      }
    }
  } else if (b.fenced && caughtUp && !b.inControlledShutdown) {
    records.push(...electAffected(image, { active: new Set([brokerId]) }));
    records.push({ unfenceBroker: { brokerId, brokerEpoch } });
  }
  return {
    atomic: false,
    records,
    finish: (after) => {
      const now = after.brokers.get(brokerId);
      const fenced = now?.fenced ?? true;
      const shuttingDown = now?.inControlledShutdown ?? false;
      return { ...NO_ERROR, isCaughtUp: caughtUp, isFenced: fenced, shouldShutDown: wantShutDown && (fenced || (shuttingDown && !leadsAnything(after, brokerId))) };
    },
  };
}

/** Fences brokers whose sessions expired, moving their leaderships and removing them from ISRs. */
export function fenceBrokers(image: MetadataImage, brokerIds: readonly number[]): Operation<void> {
  const ids = brokerIds.filter((id) => {
    const b = image.brokers.get(id);
    return b !== undefined && !b.fenced;
  });
  if (ids.length === 0) return done(undefined);
  // The fence records last (see Operation.atomic): a broker fenced with some of its partitions
  // still to move would never be fenced again to move them.
  const records = electAffected(image, { inactive: new Set(ids) });
  for (const id of ids) records.push({ fenceBroker: { brokerId: id, brokerEpoch: (image.brokers.get(id) as { epoch: number }).epoch } });
  return done(undefined, records, false);
}

// ---------------------------------------------------------------------------------------------
// AlterPartition

/**
 * ISR changes proposed by a partition leader. Rejected when the request is stale (broker epoch,
 * leader epoch: FENCED_LEADER_EPOCH; partition epoch: INVALID_UPDATE_VERSION), when the sender is
 * not the leader, or when the new ISR holds a broker that is not an active replica
 * (INELIGIBLE_REPLICA). A zombie leader's AlterPartition therefore never commits (SCENARIOS 6).
 */
export function alterPartition(image: MetadataImage, brokerId: number, brokerEpoch: number, topicId: TopicId, items: readonly AlterPartitionItem[]): Operation<AlterPartitionResult[]> {
  const b = image.brokers.get(brokerId);
  const topic = image.topics.get(topicId);
  const records: MetadataRecord[] = [];
  const immediate: (AlterPartitionResult | null)[] = items.map((item) => {
    const fail = (name: ErrorName, msg: string): AlterPartitionResult => ({ partition: item.partition, ...errorInfo(name, msg), leader: -1, leaderEpoch: -1, isr: [], partitionEpoch: -1 });
    if (b === undefined || b.epoch !== brokerEpoch) return fail('STALE_BROKER_EPOCH', `broker ${brokerId} epoch ${brokerEpoch} is not registered`);
    if (topic === undefined) return fail('UNKNOWN_TOPIC_ID', `unknown topic id ${topicId}`);
    const p = topic.partitions.get(item.partition);
    if (p === undefined) return fail('UNKNOWN_TOPIC_OR_PARTITION', `${topic.name}-${item.partition} does not exist`);
    // The leader epoch first, as Kafka's validateAlterPartitionData: a deposed leader (its
    // epoch is older) is told FENCED_LEADER_EPOCH, whoever leads now.
    if (item.leaderEpoch < p.leaderEpoch) return fail('FENCED_LEADER_EPOCH', `leader epoch ${item.leaderEpoch} is older than ${p.leaderEpoch}`);
    if (item.leaderEpoch > p.leaderEpoch) return fail('UNKNOWN_LEADER_EPOCH', `leader epoch ${item.leaderEpoch} is newer than ${p.leaderEpoch}`);
    if (p.leader !== brokerId) return fail('NOT_LEADER_OR_FOLLOWER', `broker ${brokerId} is not the leader of ${topic.name}-${item.partition} (leader ${p.leader})`);
    if (item.partitionEpoch !== p.partitionEpoch) return fail('INVALID_UPDATE_VERSION', `partition epoch ${item.partitionEpoch} is not the current ${p.partitionEpoch}`);
    const isr = [...new Set(item.newIsr)];
    if (isr.length !== item.newIsr.length || !isr.includes(brokerId)) return fail('INVALID_REQUEST', 'the new ISR must hold the leader and no duplicates');
    for (const r of isr) {
      if (!p.replicas.includes(r)) return fail('INELIGIBLE_REPLICA', `broker ${r} is not a replica of ${topic.name}-${item.partition}`);
      if (!image.isActiveBroker(r) && !p.isr.includes(r)) return fail('INELIGIBLE_REPLICA', `broker ${r} is fenced or shutting down and cannot join the ISR`);
    }
    // KIP-903: the leader saw a member's fetches under a broker epoch; a broker registered again
    // since may have lost what those fetches showed (a wiped disk, lost page cache).
    for (const m of item.newIsrWithEpochs) {
      const registered = image.brokers.get(m.brokerId)?.epoch;
      if (isr.includes(m.brokerId) && m.brokerEpoch >= 0 && registered !== m.brokerEpoch) {
        return fail('INELIGIBLE_REPLICA', `broker ${m.brokerId} has registered again (epoch ${registered ?? 'none'}) since the leader saw it at epoch ${m.brokerEpoch}`);
      }
    }
    if (sameMembers(isr, p.isr)) return null; // nothing to change: answer with the current state
    records.push({ partitionChange: { topicId: topicIdToBytes(topicId), partition: item.partition, isr: { values: isr }, replicas: null, addingReplicas: null, removingReplicas: null } });
    // An expansion may complete a reassignment: every adding replica is now in sync.
    const completion = completeReassignment(image, topic, { ...p, isr });
    if (completion !== null) records.push(completion);
    return null;
  });
  return {
    records,
    finish: (after) =>
      immediate.map((res, i) => {
        if (res !== null) return res;
        const p = after.partition(topicId, (items[i] as AlterPartitionItem).partition) as PartitionState;
        return { partition: p.partition, ...NO_ERROR, leader: p.leader, leaderEpoch: p.leaderEpoch, isr: [...p.isr], partitionEpoch: p.partitionEpoch };
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// topics

const TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;
export const MAX_TOPIC_NAME_LENGTH = 249;

/** Kafka's topic name rules; throws INVALID_TOPIC_EXCEPTION. */
export function validateTopicName(name: string): void {
  if (name === '' || name === '.' || name === '..') throw new StrandError('INVALID_TOPIC_EXCEPTION', `topic name '${name}' is illegal`);
  if (name.length > MAX_TOPIC_NAME_LENGTH) throw new StrandError('INVALID_TOPIC_EXCEPTION', `topic name is longer than ${MAX_TOPIC_NAME_LENGTH} characters`);
  if (!TOPIC_NAME.test(name)) throw new StrandError('INVALID_TOPIC_EXCEPTION', `topic name '${name}' has characters other than ASCII alphanumerics, '.', '_' and '-'`);
}

/** Topics whose names differ only by '.' vs '_' collide in metric names; Kafka refuses them. */
function collidingTopic(image: MetadataImage, name: string): string | undefined {
  const norm = name.replace(/\./g, '_');
  for (const other of image.topicIdsByName.keys()) if (other !== name && other.replace(/\./g, '_') === norm) return other;
  return undefined;
}

interface Load {
  replicas: Map<number, number>;
  leaders: Map<number, number>;
}

function currentLoad(image: MetadataImage): Load {
  const load: Load = { replicas: new Map(), leaders: new Map() };
  for (const [, p] of image.allPartitions()) {
    for (const r of p.replicas) load.replicas.set(r, (load.replicas.get(r) ?? 0) + 1);
    const preferred = p.replicas[0];
    if (preferred !== undefined) load.leaders.set(preferred, (load.leaders.get(preferred) ?? 0) + 1);
  }
  return load;
}

/**
 * Places `count` new partitions of `rf` replicas on the active brokers: each partition's
 * preferred leader is the broker with the fewest preferred leaderships, each follower the broker
 * with the fewest replicas, preferring racks not yet used by the partition. Load is counted
 * across the whole cluster, so topics spread too. Deterministic (ties break by broker id).
 */
export function placeReplicas(image: MetadataImage, count: number, rf: number): number[][] {
  const brokers = [...image.brokers.values()].filter((b) => !b.fenced && !b.inControlledShutdown).sort((a, b) => a.id - b.id);
  if (rf > brokers.length) throw new StrandError('INVALID_REPLICATION_FACTOR', `replication factor ${rf} is larger than the ${brokers.length} available brokers`);
  const load = currentLoad(image);
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    const byLeaders = [...brokers].sort((a, b) => (load.leaders.get(a.id) ?? 0) - (load.leaders.get(b.id) ?? 0) || (load.replicas.get(a.id) ?? 0) - (load.replicas.get(b.id) ?? 0) || a.id - b.id);
    const first = byLeaders[0] as (typeof brokers)[number];
    const chosen = [first];
    while (chosen.length < rf) {
      const racks = new Set(chosen.map((b) => b.rack).filter((r) => r !== undefined));
      const candidates = brokers.filter((b) => !chosen.includes(b));
      candidates.sort((a, b) => {
        const ra = a.rack !== undefined && racks.has(a.rack) ? 1 : 0;
        const rb = b.rack !== undefined && racks.has(b.rack) ? 1 : 0;
        return ra - rb || (load.replicas.get(a.id) ?? 0) - (load.replicas.get(b.id) ?? 0) || a.id - b.id;
      });
      chosen.push(candidates[0] as (typeof brokers)[number]);
    }
    for (const b of chosen) load.replicas.set(b.id, (load.replicas.get(b.id) ?? 0) + 1);
    load.leaders.set(first.id, (load.leaders.get(first.id) ?? 0) + 1);
    out.push(chosen.map((b) => b.id));
  }
  return out;
}

function validateAssignment(image: MetadataImage, assignments: readonly { partition: number; brokerIds: readonly number[] }[], firstPartition: number): number[][] {
  const sorted = [...assignments].sort((a, b) => a.partition - b.partition);
  const rf = sorted[0]?.brokerIds.length ?? 0;
  return sorted.map((a, i) => {
    if (a.partition !== firstPartition + i) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', `partitions must be numbered consecutively from ${firstPartition}`);
    if (a.brokerIds.length === 0 || a.brokerIds.length !== rf) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', 'every partition needs the same, non-zero number of replicas');
    if (new Set(a.brokerIds).size !== a.brokerIds.length) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', `partition ${a.partition} lists a broker twice`);
    for (const id of a.brokerIds) if (!image.brokers.has(id)) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', `broker ${id} is not registered`);
    // As Kafka's ReplicationControlManager: a partition must start with a leader, so with at
    // least one replica on an active broker (its ISR is the active replicas).
    if (!a.brokerIds.some((id) => image.isActiveBroker(id))) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', `All brokers specified in the manual partition assignment for partition ${a.partition} are fenced or in controlled shutdown.`);
    return [...a.brokerIds];
  });
}

/**
 * A topic's replication factor: its partition 0's replica count, less the replicas a reassignment
 * in progress is removing (while it runs, replicas are target + removing: a move of three
 * replicas has six).
 */
function replicationFactor(t: TopicState): number {
  const p = t.partitions.get(0) as PartitionState;
  return p.replicas.length - p.removingReplicas.length;
}

/**
 * Initial state of a new partition: ISR = the active replicas, leader = the first of them. Callers
 * place on active brokers only (placeReplicas, validateAssignment), so there is one.
 */
function partitionRecord(image: MetadataImage, topicId: TopicId, partition: number, replicas: number[]): MetadataRecord {
  const isr = replicas.filter((r) => image.isActiveBroker(r));
  assert(isr.length > 0, `new partition ${partition} has no replica on an active broker: ${replicas.join(',')}`);
  return {
    partition: {
      topicId: topicIdToBytes(topicId),
      partition,
      replicas,
      isr,
      leader: isr[0] as number,
      leaderEpoch: 0,
      partitionEpoch: 0,
      addingReplicas: [],
      removingReplicas: [],
    },
  };
}

/**
 * A compression.type the leaders must apply needs its codec built in. Checked when the key is
 * set (create, alter), never when configs are read back: a topic set to another codec before
 * this check existed must still open.
 */
function checkCompressionCodec(entries: readonly { name: string; value?: string | undefined }[]): void {
  for (const e of entries) {
    if (e.name !== 'compression.type' || e.value === undefined) continue;
    const v = e.value.trim();
    if (v !== 'producer' && !hasCompressionCodec(v === 'uncompressed' ? 'none' : v)) {
      throw new StrandError('INVALID_CONFIG', `Invalid value ${v} for configuration compression.type: codec '${v}' is not built into this broker (built in: producer, uncompressed, none, gzip)`);
    }
  }
}

/** Validates topic configs with Kafka's rules; returns them as name -> canonical string. */
function validateTopicConfigs(entries: readonly { name: string; value: string }[]): Map<string, string> {
  const raw: Record<string, string> = {};
  for (const e of entries) {
    if (Object.prototype.hasOwnProperty.call(raw, e.name)) throw new StrandError('INVALID_CONFIG', `configuration ${e.name} is given twice`);
    raw[e.name] = e.value;
  }
  const parsed = TOPIC_CONFIG.parse(raw); // throws INVALID_CONFIG naming the key
  // Kafka's LogConfig.validateValues (defaults count: 0 and Long.MAX_VALUE).
  const [minLag, maxLag] = [parsed['min.compaction.lag.ms'], parsed['max.compaction.lag.ms']];
  if (minLag > maxLag) throw new StrandError('INVALID_CONFIG', `conflict topic config setting min.compaction.lag.ms (${minLag}) > max.compaction.lag.ms (${maxLag})`);
  return new Map(Object.entries(raw).map(([k, v]) => [k, v.trim()]));
}

/** Kafka's answer to a topic named twice in one CreateTopics or DeleteTopics request (INVALID_REQUEST). */
const DUPLICATE_TOPIC_NAME = 'Duplicate topic name.';

/** How many times each name appears. */
function timesNamed(names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of names) out.set(n, (out.get(n) ?? 0) + 1);
  return out;
}

/**
 * Creates topics. Each is validated on its own (name, uniqueness, counts or explicit assignment,
 * configs) and fails alone with a typed error; valid ones are created in the same batch.
 */
export function createTopics(image: MetadataImage, topics: readonly CreatableTopic[], validateOnly: boolean, config: ControllerConfig, newTopicId: () => TopicId): Operation<CreateTopicResult[]> {
  const total = topics.reduce((n, t) => n + (t.assignments.length > 0 ? t.assignments.length : t.numPartitions === -1 ? config['num.partitions'] : Math.max(0, t.numPartitions)), 0);
  if (total > MAX_PARTITIONS_PER_REQUEST) {
    const err = tooManyPartitions(total);
    return { records: [], finish: () => topics.map((t) => ({ name: t.name, topicId: Buffer.alloc(0), numPartitions: -1, replicationFactor: -1, ...err })) };
  }
  const records: MetadataRecord[] = [];
  const names = new Set<string>();
  const named = timesNamed(topics.map((t) => t.name));
  // Placement must see the partitions placed earlier in this batch: place on a scratch image.
  let scratch = image;
  const results = topics.map((t): CreateTopicResult => {
    const base = { name: t.name, topicId: Buffer.alloc(0), numPartitions: -1, replicationFactor: -1 };
    try {
      // Kafka's ControllerApis refuses every entry of a name given twice, creating none of them.
      if ((named.get(t.name) ?? 0) > 1) throw new StrandError('INVALID_REQUEST', DUPLICATE_TOPIC_NAME);
      validateTopicName(t.name);
      if (image.topicIdsByName.has(t.name) || names.has(t.name)) throw new StrandError('TOPIC_ALREADY_EXISTS', `topic '${t.name}' already exists`);
      const collision = collidingTopic(scratch, t.name);
      if (collision !== undefined) throw new StrandError('INVALID_TOPIC_EXCEPTION', `topic '${t.name}' collides with existing topic '${collision}' ('.' and '_' are the same in metric names)`);
      let assignment: number[][];
      if (t.assignments.length > 0) {
        if (t.numPartitions !== -1 || t.replicationFactor !== -1) throw new StrandError('INVALID_REQUEST', 'give either assignments or numPartitions/replicationFactor (set them to -1)');
        assignment = validateAssignment(image, t.assignments, 0);
      } else {
        const n = t.numPartitions === -1 ? config['num.partitions'] : t.numPartitions;
        const rf = t.replicationFactor === -1 ? config['default.replication.factor'] : t.replicationFactor;
        if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new StrandError('INVALID_PARTITIONS', `number of partitions ${n} must be between 1 and 100000`);
        if (!Number.isInteger(rf) || rf < 1) throw new StrandError('INVALID_REPLICATION_FACTOR', `replication factor ${rf} must be at least 1`);
        assignment = placeReplicas(scratch, n, rf);
      }
      checkCompressionCodec(t.configs);
      const configs = validateTopicConfigs(t.configs);
      const minIsr = Number(configs.get('min.insync.replicas') ?? '1');
      if (minIsr > (assignment[0] as number[]).length) {
        throw new StrandError('INVALID_CONFIG', `min.insync.replicas ${minIsr} is larger than the replication factor ${(assignment[0] as number[]).length}: acks=all writes could never succeed`);
      }
      names.add(t.name);
      const id = newTopicId();
      const topicRecords: MetadataRecord[] = [{ topic: { name: t.name, topicId: topicIdToBytes(id) } }];
      assignment.forEach((replicas, i) => topicRecords.push(partitionRecord(image, id, i, replicas)));
      for (const [name, value] of configs) topicRecords.push({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: t.name, name, value } });
      scratch = scratch.apply(scratch.offset, topicRecords);
      if (!validateOnly) records.push(...topicRecords);
      return { ...base, topicId: topicIdToBytes(id), ...NO_ERROR, numPartitions: assignment.length, replicationFactor: (assignment[0] as number[]).length };
    } catch (e: unknown) {
      return { ...base, ...fromError(e) };
    }
  });
  return done(results, records);
}

export interface TopicResultInfo extends ErrorInfo {
  name: string;
}

export function deleteTopics(image: MetadataImage, names: readonly string[], config: ControllerConfig): Operation<TopicResultInfo[]> {
  const records: MetadataRecord[] = [];
  const named = timesNamed(names);
  const results = names.map((name): TopicResultInfo => {
    if (!config['delete.topic.enable']) return { name, ...errorInfo('TOPIC_DELETION_DISABLED', 'delete.topic.enable is false') };
    // As Kafka's ControllerApis: every entry of a name given twice is refused, none deleted.
    if ((named.get(name) ?? 0) > 1) return { name, ...errorInfo('INVALID_REQUEST', DUPLICATE_TOPIC_NAME) };
    const t = image.topicByName(name);
    if (t === undefined) return { name, ...errorInfo('UNKNOWN_TOPIC_OR_PARTITION', `topic '${name}' does not exist`) };
    records.push({ removeTopic: { topicId: topicIdToBytes(t.id) } });
    return { name, ...NO_ERROR };
  });
  return done(results, records);
}

/**
 * Partitions one CreateTopics or CreatePartitions request may add (Kafka's MAX_PARTITIONS_PER_BATCH,
 * KAFKA-17870 / KAFKA-19673): each is a record built, proposed and applied in one event-loop turn.
 */
export const MAX_PARTITIONS_PER_REQUEST = 10_000;

function tooManyPartitions(total: number): ErrorInfo {
  return errorInfo('POLICY_VIOLATION', `Excessively large number of partitions per request: ${total} above ${MAX_PARTITIONS_PER_REQUEST}`);
}

/** Grows topics to a new partition count (Kafka never shrinks them). */
export function createPartitions(image: MetadataImage, topics: readonly CreatePartitionsTopic[], validateOnly: boolean): Operation<TopicResultInfo[]> {
  const total = topics.reduce((n, t) => n + Math.max(0, t.count - (image.topicByName(t.name)?.partitions.size ?? 0)), 0);
  if (total > MAX_PARTITIONS_PER_REQUEST) {
    const err = tooManyPartitions(total);
    return { records: [], finish: () => topics.map((t) => ({ name: t.name, ...err })) };
  }
  const records: MetadataRecord[] = [];
  let scratch = image;
  const named = timesNamed(topics.map((t) => t.name));
  const results = topics.map((req): TopicResultInfo => {
    try {
      // Kafka refuses a topic named twice (each entry would place the same new partitions).
      if ((named.get(req.name) ?? 0) > 1) throw new StrandError('INVALID_REQUEST', `topic '${req.name}' appears more than once in the request`);
      const t = image.topicByName(req.name);
      if (t === undefined) throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${req.name}' does not exist`);
      const current = t.partitions.size;
      if (req.count <= current) throw new StrandError('INVALID_PARTITIONS', `topic '${req.name}' has ${current} partitions; the new count ${req.count} must be larger`);
      if (req.count > 100_000) throw new StrandError('INVALID_PARTITIONS', `partition count ${req.count} is above 100000`);
      const rf = replicationFactor(t);
      let assignment: number[][];
      if (req.assignments.length > 0) {
        assignment = validateAssignment(image, req.assignments, current);
        if (assignment.length !== req.count - current) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', `expected assignments for ${req.count - current} new partitions`);
        if ((assignment[0] as number[]).length !== rf) throw new StrandError('INVALID_REPLICA_ASSIGNMENT', `new partitions must have the topic's replication factor ${rf}`);
      } else {
        assignment = placeReplicas(scratch, req.count - current, rf);
      }
      const recs = assignment.map((replicas, i) => partitionRecord(image, t.id, current + i, replicas));
      scratch = scratch.apply(scratch.offset, recs);
      if (!validateOnly) records.push(...recs);
      return { name: req.name, ...NO_ERROR };
    } catch (e: unknown) {
      return { name: req.name, ...fromError(e) };
    }
  });
  return done(results, records);
}

// ---------------------------------------------------------------------------------------------
// configs

export interface ConfigChange {
  name: string;
  /** undefined: delete (back to the default). With `op`: the comma-separated items to add or remove. */
  value: string | undefined;
  /**
   * Kafka's APPEND / SUBTRACT (KIP-339), for list keys only: `value`'s items are added to the
   * key's current value unless already there, or removed from it; an unset key starts from its
   * default (as Kafka's controller, the key's own default, not a broker-level one). Omitted: set
   * `value` (delete when undefined).
   */
  op?: 'append' | 'subtract';
}

/**
 * IncrementalAlterConfigs entries as ConfigChanges. Refused whole with INVALID_REQUEST, as Kafka's
 * broker refuses them before they reach the controller: an operation id that is not SET, DELETE,
 * APPEND or SUBTRACT, and a key named twice in one resource.
 */
export function configChangesFromRequest(configs: readonly AlterableConfig[]): ConfigChange[] {
  const changes = configs.map((c): ConfigChange => {
    switch (c.op) {
      case AlterConfigOp.ALTER_CONFIG_SET:
        return { name: c.name, value: c.value };
      case AlterConfigOp.ALTER_CONFIG_DELETE:
        return { name: c.name, value: undefined };
      case AlterConfigOp.ALTER_CONFIG_APPEND:
        return { name: c.name, op: 'append', value: c.value };
      case AlterConfigOp.ALTER_CONFIG_SUBTRACT:
        return { name: c.name, op: 'subtract', value: c.value };
      default:
        throw new StrandError('INVALID_REQUEST', `Unknown operations type ${String(c.op)}`);
    }
  });
  const names = configs.map((c) => c.name);
  const twice = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
  if (twice.length > 0) throw new StrandError('INVALID_REQUEST', `Error due to duplicate config keys : ${twice.join(',')}`);
  return changes;
}

/**
 * A resource's dynamic configs after `changes` (not yet validated): SET and DELETE as given;
 * APPEND and SUBTRACT (list keys of `spec` only, INVALID_CONFIG otherwise) work on the items of
 * the current value, or of the key's default when it is unset, split at commas and trimmed.
 */
function applyConfigChanges(current: ReadonlyMap<string, string>, changes: readonly ConfigChange[], spec: ConfigSpec): Map<string, string> {
  const next = new Map(current);
  for (const c of changes) {
    if (c.op === undefined) {
      if (c.value === undefined) next.delete(c.name);
      else next.set(c.name, c.value);
      continue;
    }
    const def = Object.prototype.hasOwnProperty.call(spec, c.name) ? spec[c.name] : undefined;
    if (def === undefined || def.type !== 'list') throw new StrandError('INVALID_CONFIG', `Can't ${c.op.toUpperCase()} to key ${c.name} because its type is not LIST.`);
    const items = (v: string): string[] => v.split(',').map((x) => x.trim()).filter((x) => x !== '');
    const was = next.get(c.name);
    const list = was === undefined ? [...def.default] : items(was);
    const given = items(c.value ?? '');
    const result = c.op === 'append' ? [...list, ...given.filter((x, i) => !list.includes(x) && given.indexOf(x) === i)] : list.filter((x) => !given.includes(x));
    next.set(c.name, result.join(','));
  }
  return next;
}

/** One topic config as DescribeConfigs shows it (controller side: set on the topic, or the key's default). */
export interface TopicConfigDescription {
  name: string;
  value: string;
  isDefault: boolean;
  doc: string;
}

/**
 * Topic configs with defaults filled in; `keys` empty means all. As Kafka's DescribeConfigs, the
 * keys filter the topic's configs: a name that is no topic config is left out, not an error.
 */
export function describeTopicConfigs(image: MetadataImage, topic: string, keys: readonly string[]): TopicConfigDescription[] {
  if (image.topicByName(topic) === undefined) throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${topic}' does not exist`);
  const dynamic = image.configsOf(ConfigResourceType.CONFIG_RESOURCE_TOPIC, topic);
  const names = keys.length > 0 ? [...new Set(keys)].filter((k) => TOPIC_CONFIG.has(k)) : TOPIC_CONFIG.names();
  return names.map((name) => {
    const def = TOPIC_CONFIG.spec[name as keyof typeof TOPIC_CONFIG.spec];
    const value = dynamic.get(name);
    const dflt = Array.isArray(def.default) ? def.default.join(',') : String(def.default);
    return { name, value: value ?? dflt, isDefault: value === undefined, doc: def.doc };
  });
}

/**
 * IncrementalAlterConfigs on a topic: the resulting set of dynamic configs must validate as a
 * whole (INVALID_CONFIG otherwise); nothing changes on failure.
 */
export function alterTopicConfigs(image: MetadataImage, topicName: string, changes: readonly ConfigChange[], validateOnly: boolean): Operation<ErrorInfo> {
  try {
    const t = image.topicByName(topicName);
    if (t === undefined) throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${topicName}' does not exist`);
    for (const c of changes) if (!TOPIC_CONFIG.has(c.name)) throw new StrandError('INVALID_CONFIG', `Unknown configuration ${c.name}`);
    const next = applyConfigChanges(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_TOPIC, topicName), changes, TOPIC_CONFIG.spec);
    checkCompressionCodec(changes);
    const validated = validateTopicConfigs([...next].map(([name, value]) => ({ name, value })));
    const rf = replicationFactor(t);
    const minIsr = Number(validated.get('min.insync.replicas') ?? '1');
    if (minIsr > rf) throw new StrandError('INVALID_CONFIG', `min.insync.replicas ${minIsr} is larger than the replication factor ${rf}`);
    const records: MetadataRecord[] = validateOnly
      ? []
      : changes.map((c) => ({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: topicName, name: c.name, ...(c.value === undefined ? {} : { value: validated.get(c.name) as string }) } }));
    // Unclean election just enabled: offline partitions may now get a leader.
    // (or deleted while the cluster-wide default turns it on).
    if (!validateOnly && changes.some((c) => c.name === 'unclean.leader.election.enable')) records.push(...electOffline(image.apply(image.offset, records), [topicName]));
    return done(NO_ERROR, records);
  } catch (e: unknown) {
    return done(fromError(e));
  }
}

/** Elections for the leaderless partitions of `topics` (all topics when omitted) in `after`. */
function electOffline(after: MetadataImage, topics?: readonly string[]): MetadataRecord[] {
  const out: MetadataRecord[] = [];
  const names = topics ?? [...after.topics.values()].map((t) => t.name);
  for (const name of names) {
    const topic = after.topicByName(name);
    if (topic === undefined) continue;
    for (const p of topic.partitions.values()) {
      if (p.leader !== -1) continue;
      const change = electPartition(after, topic, p, {});
      if (change) out.push(change);
    }
  }
  return out;
}

/**
 * IncrementalAlterConfigs on a broker resource (Kafka's dynamic broker configs): `brokerName` ''
 * is the cluster-wide default, a broker id that broker's own. The resource's resulting set must
 * validate as a whole (validateDynamicBrokerConfigs); nothing changes on failure. A broker id
 * need not be registered yet (Kafka's controller checks only that it is an id), so a broker can
 * be configured before it first starts. Turning the cluster-wide unclean election on elects the
 * leaderless partitions of topics that do not turn it off.
 */
export function alterBrokerConfigs(image: MetadataImage, brokerName: string, changes: readonly ConfigChange[], validateOnly: boolean): Operation<ErrorInfo> {
  try {
    if (brokerName !== '' && !/^\d{1,9}$/.test(brokerName)) throw new StrandError('INVALID_REQUEST', `a broker config resource is named by a broker id, or '' for the cluster-wide default, not '${brokerName}'`);
    const next = applyConfigChanges(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, brokerName), changes, DYNAMIC_BROKER_CONFIG.spec);
    // Deleting a key that is not a dynamic one is refused as well: nothing could have set it.
    for (const c of changes) if (c.value === undefined && !DYNAMIC_BROKER_CONFIG.has(c.name)) throw new StrandError('INVALID_CONFIG', `Cannot update configuration ${c.name} dynamically: it is not a dynamic broker config`);
    const validated = validateDynamicBrokerConfigs(next, brokerName === '');
    const records: MetadataRecord[] = validateOnly
      ? []
      : changes.map((c) => ({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_BROKER, resourceName: brokerName, name: c.name, ...(c.value === undefined ? {} : { value: validated.get(c.name) as string }) } }));
    if (!validateOnly && brokerName === '' && validated.get('unclean.leader.election.enable') === 'true') records.push(...electOffline(image.apply(image.offset, records)));
    return done(NO_ERROR, records);
  } catch (e: unknown) {
    return done(fromError(e));
  }
}

// ---------------------------------------------------------------------------------------------
// leader elections on request

export interface PartitionResultInfo extends ErrorInfo {
  topic: string;
  partition: number;
}

/**
 * Preferred election: make the first replica the leader where it is an active ISR member and
 * not already leading (ELECTION_NOT_NEEDED / PREFERRED_LEADER_NOT_AVAILABLE otherwise).
 * Unclean election: give an offline partition an active out-of-sync replica as leader (only on
 * explicit request or where the topic allows it).
 */
export function electLeaders(image: MetadataImage, type: 'preferred' | 'unclean', targets: readonly { topic: string; partition: number }[] | 'all'): Operation<PartitionResultInfo[]> {
  const records: MetadataRecord[] = [];
  const list: { topic: string; partition: number }[] =
    targets === 'all' ? [...image.allPartitions()].map(([t, p]) => ({ topic: t.name, partition: p.partition })) : [...targets];
  const results = list.map((target): PartitionResultInfo => {
    const t = image.topicByName(target.topic);
    const p = t?.partitions.get(target.partition);
    if (t === undefined || p === undefined) return { ...target, ...errorInfo('UNKNOWN_TOPIC_OR_PARTITION', `${target.topic}-${target.partition} does not exist`) };
    if (type === 'preferred') {
      const preferred = p.replicas[0] as number;
      if (p.leader === preferred) return { ...target, ...errorInfo('ELECTION_NOT_NEEDED', 'the preferred replica already leads') };
      if (!p.isr.includes(preferred) || !image.isActiveBroker(preferred)) return { ...target, ...errorInfo('PREFERRED_LEADER_NOT_AVAILABLE', `preferred replica ${preferred} is not an active ISR member`) };
      records.push({ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, leader: preferred, isr: null, replicas: null, addingReplicas: null, removingReplicas: null } });
      return { ...target, ...NO_ERROR };
    }
    if (p.leader !== -1 && image.isActiveBroker(p.leader)) return { ...target, ...errorInfo('ELECTION_NOT_NEEDED', 'the partition has a live leader') };
    const candidate = uncleanCandidate(image, p, (r) => image.isActiveBroker(r));
    if (candidate === undefined) return { ...target, ...errorInfo('ELIGIBLE_LEADERS_NOT_AVAILABLE', 'no replica is on an active broker') };
    const clean = p.replicas.find((r) => p.isr.includes(r) && image.isActiveBroker(r));
    const leader = clean ?? candidate;
    records.push({ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, leader, isr: clean === undefined ? { values: [leader] } : null, replicas: null, addingReplicas: null, removingReplicas: null } });
    return { ...target, ...NO_ERROR };
  });
  return done(results, records, false);
}

/**
 * The automatic preferred-leader rebalance (auto.leader.rebalance.enable): for each broker whose
 * share of preferred partitions led elsewhere exceeds the threshold, elect it where it is an
 * active ISR member.
 */
export function autoRebalance(image: MetadataImage, imbalancePercent: number): MetadataRecord[] {
  const preferredCount = new Map<number, number>();
  const notLeading = new Map<number, [TopicState, PartitionState][]>();
  for (const [t, p] of image.allPartitions()) {
    const preferred = p.replicas[0];
    if (preferred === undefined) continue;
    preferredCount.set(preferred, (preferredCount.get(preferred) ?? 0) + 1);
    if (p.leader === preferred) continue;
    const list = notLeading.get(preferred);
    if (list === undefined) notLeading.set(preferred, [[t, p]]);
    else list.push([t, p]);
  }
  const records: MetadataRecord[] = [];
  for (const [broker, parts] of notLeading) {
    if (!image.isActiveBroker(broker)) continue;
    const ratio = (parts.length * 100) / (preferredCount.get(broker) as number);
    if (ratio <= imbalancePercent) continue;
    for (const [t, p] of parts) {
      if (!p.isr.includes(broker)) continue;
      records.push({ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, leader: broker, isr: null, replicas: null, addingReplicas: null, removingReplicas: null } });
    }
  }
  return records;
}

// ---------------------------------------------------------------------------------------------
// producer ids

export interface ProducerIdBlock extends ErrorInfo {
  producerIdStart: number;
  producerIdLen: number;
}

export function allocateProducerIds(image: MetadataImage, brokerId: number, brokerEpoch: number, blockSize: number): Operation<ProducerIdBlock> {
  const b = image.brokers.get(brokerId);
  if (b === undefined || b.epoch !== brokerEpoch) return done({ ...errorInfo('STALE_BROKER_EPOCH', `broker ${brokerId} epoch ${brokerEpoch} is not registered`), producerIdStart: -1, producerIdLen: 0 });
  const start = image.nextProducerId;
  return done({ ...NO_ERROR, producerIdStart: start, producerIdLen: blockSize }, [{ producerIds: { brokerId, brokerEpoch, nextProducerId: start + blockSize } }]);
}

// ---------------------------------------------------------------------------------------------
// partition reassignment

/**
 * Completes a reassignment once every target replica is in the ISR (in `p`, the state after a
 * change), as Kafka's KIP-455 rule: the replica set becomes the target (adding replicas in,
 * removing ones out), removed replicas leave the ISR, and leadership moves within the ISR if
 * the leader was removed. Null if not ready. A pure removal waits too while a target replica
 * lags: completing it would leave only out-of-sync replicas (an unclean election) and delete
 * the in-sync ones.
 */
export function completeReassignment(image: MetadataImage, topic: TopicState, p: PartitionState): MetadataRecord | null {
  if (p.addingReplicas.length === 0 && p.removingReplicas.length === 0) return null;
  const target = p.replicas.filter((r) => !p.removingReplicas.includes(r));
  if (target.length === 0 || !target.every((r) => p.isr.includes(r))) return null;
  const isr = p.isr.filter((r) => target.includes(r));
  let leader = p.leader;
  if (!target.includes(leader)) leader = target.find((r) => isr.includes(r) && image.isActiveBroker(r)) ?? -1;
  return {
    partitionChange: {
      topicId: topicIdToBytes(topic.id),
      partition: p.partition,
      ...(leader !== p.leader ? { leader } : {}),
      isr: { values: isr },
      replicas: { values: target },
      addingReplicas: { values: [] },
      removingReplicas: { values: [] },
    },
  };
}

/**
 * AlterPartitionReassignments: moves partitions to target replica lists (Kafka's protocol: the
 * replica set grows to target + removing while the adding replicas catch up and join the ISR,
 * then shrinks to the target). `replicas: null` cancels a reassignment in progress.
 */
export function alterReassignments(image: MetadataImage, targets: readonly { topic: string; partition: number; replicas: readonly number[] | null }[]): Operation<PartitionResultInfo[]> {
  const records: MetadataRecord[] = [];
  const results = targets.map((target): PartitionResultInfo => {
    const base = { topic: target.topic, partition: target.partition };
    const t = image.topicByName(target.topic);
    const p = t?.partitions.get(target.partition);
    if (t === undefined || p === undefined) return { ...base, ...errorInfo('UNKNOWN_TOPIC_OR_PARTITION', `${target.topic}-${target.partition} does not exist`) };
    const inProgress = p.addingReplicas.length > 0 || p.removingReplicas.length > 0;
    if (target.replicas === null) {
      if (!inProgress) return { ...base, ...errorInfo('NO_REASSIGNMENT_IN_PROGRESS', `no reassignment of ${target.topic}-${target.partition} is in progress`) };
      const original = p.replicas.filter((r) => !p.addingReplicas.includes(r));
      const isr = p.isr.filter((r) => original.includes(r));
      // Only adding replicas in sync: reverting would drop every in-sync copy (Kafka then picks an
      // original replica uncleanly). Refused instead; the reassignment can complete, or be
      // cancelled once an original replica is back in the ISR.
      if (isr.length === 0) return { ...base, ...errorInfo('INVALID_REPLICA_ASSIGNMENT', `cannot cancel the reassignment of ${target.topic}-${target.partition}: none of its original replicas (${original.join(',')}) is in the ISR (${p.isr.join(',')}), so reverting would lose acknowledged records`) };
      const leader = original.includes(p.leader) ? p.leader : (original.find((r) => isr.includes(r) && image.isActiveBroker(r)) ?? -1);
      records.push({ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, ...(leader !== p.leader ? { leader } : {}), isr: { values: isr }, replicas: { values: original }, addingReplicas: { values: [] }, removingReplicas: { values: [] } } });
      return { ...base, ...NO_ERROR };
    }
    const wanted = [...target.replicas];
    if (wanted.length === 0 || new Set(wanted).size !== wanted.length) return { ...base, ...errorInfo('INVALID_REPLICA_ASSIGNMENT', 'the target replica list must be non-empty without duplicates') };
    for (const r of wanted) if (!image.brokers.has(r)) return { ...base, ...errorInfo('INVALID_REPLICA_ASSIGNMENT', `broker ${r} is not registered`) };
    if (inProgress) return { ...base, ...errorInfo('REASSIGNMENT_IN_PROGRESS', `${target.topic}-${target.partition} is already being reassigned; cancel it first`) };
    const current = p.replicas;
    if (sameMembers(wanted, current)) return { ...base, ...NO_ERROR };
    const adding = wanted.filter((r) => !current.includes(r));
    const removing = current.filter((r) => !wanted.includes(r));
    const replicas = [...wanted, ...removing];
    const staged: PartitionState = { ...p, replicas, addingReplicas: adding, removingReplicas: removing };
    records.push({ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, isr: null, replicas: { values: replicas }, addingReplicas: { values: adding }, removingReplicas: { values: removing } } });
    // Nothing to catch up (a reorder or a pure removal): complete at once.
    const done2 = completeReassignment(image, t, staged);
    if (done2 !== null && adding.length === 0) records.push(done2);
    return { ...base, ...NO_ERROR };
  });
  return done(results, records);
}
