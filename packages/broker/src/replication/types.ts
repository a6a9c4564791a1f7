// Shared vocabulary of the pure replication core: replica ids, the log as the core sees it, the
// follower-fetch exchange and the AlterPartition exchange. Nothing here does I/O; a driver (the
// broker's gRPC layer, or the simulator) carries these values between replicas and the controller.
//
// Offsets are JS numbers: exact below 2^53, which a partition will not reach.

import type { ErrorName } from '@strand/protocol';

/** A broker id (Kafka's `node.id`); replicas of a partition are named by their broker id. */
export type ReplicaId = number;

/** Kafka's "no epoch" / "no offset" sentinel. */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_OFFSET = -1;

/** Answer to "where does epoch E end?" (Kafka's OffsetsForLeaderEpoch); same shape as @strand/storage's. */
export interface EpochEndOffset {
  /** The largest epoch <= the requested one this log knows, -1 if none. */
  readonly epoch: number;
  /** The start offset of the next larger epoch, or the log end offset if `epoch` is the latest; -1 if unknown. */
  readonly endOffset: number;
}

/**
 * The log as the replication core reads it. @strand/storage's PartitionLog fits through
 * `partitionLogView()`; the simulator has its own in-memory twin that can lose unflushed bytes.
 *
 * Invariant expected of an implementation: logStartOffset <= countableEndOffset <= logEndOffset,
 * and `latestEpoch` is the latest epoch of the leader-epoch cache: the epoch of the last batch
 * (-1 when empty), or a later one this replica became leader of and recorded at the log end
 * before writing in it (Kafka's makeLeader); a truncation to the log end drops such an entry.
 */
export interface ReplicaLogView {
  readonly logStartOffset: number;
  /** Offset the next appended record gets. */
  readonly logEndOffset: number;
  /**
   * What may count toward the high watermark: the fsynced end with `flush.policy=fsync` (the
   * default), the log end with `page-cache`.
   */
  readonly countableEndOffset: number;
  /** Latest epoch of the leader-epoch cache (the last batch's, or the one led since), -1 if none. */
  readonly latestEpoch: number;
  endOffsetForEpoch(epoch: number): EpochEndOffset;
}

/**
 * What a follower sends on every fetch. Besides Kafka's fetch offset and last fetched epoch it
 * carries the follower's countable (durable) end offset, because the high watermark is the
 * minimum of DURABLE offsets over the ISR, not of log end offsets (DESIGN.md, Storage).
 */
export interface FollowerFetchRequest {
  readonly replicaId: ReplicaId;
  /** The leader epoch the follower believes current (fencing, KIP-320). */
  readonly currentLeaderEpoch: number;
  /** The follower's log end offset: the next offset it wants. */
  readonly fetchOffset: number;
  /** Epoch of the follower's last batch (-1 if its log is empty): the divergence check (KIP-595 style). */
  readonly lastFetchedEpoch: number;
  /** The follower's countable end offset (<= fetchOffset after its own truncation logic). */
  readonly countableEndOffset: number;
  /**
   * The follower's log start offset (Kafka's FetchRequest `log_start_offset`): the leader's low
   * watermark, which DeleteRecords waits for, is the minimum over the live replicas.
   */
  readonly logStartOffset: number;
  /** The follower broker's registration epoch (KIP-903), -1 or absent when not known. */
  readonly brokerEpoch?: number;
}

/** Errors a leader answers a follower fetch with. */
export type FollowerFetchError = Extract<ErrorName, 'FENCED_LEADER_EPOCH' | 'UNKNOWN_LEADER_EPOCH' | 'NOT_LEADER_OR_FOLLOWER' | 'OFFSET_OUT_OF_RANGE'>;

/**
 * The leader core's decision on a follower fetch. `read` tells the driver to read bytes from
 * `fetchOffset` (bounded by its fetch byte limits) and send them with the high watermark and log
 * start offset; the core never touches bytes.
 */
export type FollowerFetchDecision =
  | {
      readonly kind: 'error';
      readonly error: FollowerFetchError;
      readonly leaderEpoch: number;
      readonly logStartOffset: number;
      /** The leader's log end, with OFFSET_OUT_OF_RANGE (a follower past it truncates to it); absent otherwise. */
      readonly logEndOffset?: number;
    }
  | { readonly kind: 'diverging'; readonly divergingEpoch: EpochEndOffset; readonly highWatermark: number; readonly logStartOffset: number }
  | { readonly kind: 'read'; readonly fetchOffset: number; readonly highWatermark: number; readonly logStartOffset: number };

/** A consumer's fetch, as the leader core checks it (bytes and long-polling are the driver's). */
export interface ConsumerFetchRequest {
  /** The leader epoch the consumer believes current; -1 skips the check (old clients). */
  readonly currentLeaderEpoch: number;
  readonly fetchOffset: number;
}

/**
 * The leader core's decision on a consumer fetch: read from `fetchOffset` but never at or above
 * `maxOffset` (the high watermark: consumers only see committed records, SCENARIOS.md 12).
 */
export type ConsumerFetchDecision =
  | { readonly kind: 'error'; readonly error: FollowerFetchError; readonly leaderEpoch: number; readonly logStartOffset: number }
  | { readonly kind: 'read'; readonly fetchOffset: number; readonly maxOffset: number; readonly highWatermark: number; readonly logStartOffset: number };

/** A leader's proposal to the controller to change the ISR (Kafka's AlterPartition). */
export interface AlterPartitionRequest {
  readonly leaderId: ReplicaId;
  readonly leaderEpoch: number;
  /** The partition epoch the proposal is based on; the controller rejects it if it moved (INVALID_UPDATE_VERSION). */
  readonly partitionEpoch: number;
  /** The proposed ISR, sorted, always containing the leader. */
  readonly newIsr: readonly ReplicaId[];
  /**
   * KIP-903: the broker epoch of each follower in `newIsr` as seen in its last accepted fetch,
   * where known; the controller refuses a member registered again since.
   */
  readonly newIsrBrokerEpochs?: readonly { readonly replicaId: ReplicaId; readonly brokerEpoch: number }[];
}

/** The controller's answer to an AlterPartition. */
export type AlterPartitionResponse =
  | { readonly error: null; readonly leaderEpoch: number; readonly partitionEpoch: number; readonly isr: readonly ReplicaId[] }
  | { readonly error: Extract<ErrorName, 'FENCED_LEADER_EPOCH' | 'INVALID_UPDATE_VERSION' | 'NOT_LEADER_OR_FOLLOWER' | 'INELIGIBLE_REPLICA' | 'INVALID_REQUEST'> };

/** A partition's state as the controller's metadata log says (leader, epochs, committed ISR). */
export interface PartitionState {
  readonly leader: ReplicaId | null;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas: readonly ReplicaId[];
  readonly isr: readonly ReplicaId[];
}

/** Sorted copy without duplicates: ISRs are compared and sent in canonical order. */
export function canonicalIsr(ids: Iterable<ReplicaId>): ReplicaId[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

export function sameIds(a: readonly ReplicaId[], b: readonly ReplicaId[]): boolean {
  if (a.length !== b.length) return false;
  const ca = canonicalIsr(a);
  const cb = canonicalIsr(b);
  return ca.every((v, i) => v === cb[i]);
}

/** Programmer errors crash (STYLE.md 8). */
export function invariant(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(`replication invariant violated: ${message}`);
}
