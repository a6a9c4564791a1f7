// The follower side of one partition's replication, as a pure state machine. It builds the next
// fetch from the local log (fetch offset = log end, last fetched epoch = the log's latest epoch,
// countable end offset for the leader's high watermark) and turns each answer into one action for
// the driver: append these bytes, truncate to this offset, back off, or wait for metadata.
//
// The lesson it encodes (KIP-101, KIP-279): a follower truncates by LEADER EPOCH, never by its
// local high watermark. On a diverging-epoch answer {epoch E, endOffset X} it truncates to
// min(X, its own end of E) when it knows E; when it does not, it truncates to its own end of the
// largest epoch below E and asks again (each round removes at least one epoch, so this ends).
//
// Invariants: at most one fetch in flight (answers are matched by `correlationId`, so a late or
// duplicated answer is ignored); the high watermark a follower holds never exceeds its log end.

import type { FollowerFetchDecision, FollowerFetchRequest, ReplicaId, ReplicaLogView } from './types';

export interface PartitionFollowerInit {
  readonly localReplicaId: ReplicaId;
  readonly leaderId: ReplicaId;
  readonly leaderEpoch: number;
  readonly log: ReplicaLogView;
  /** What this replica knew of the high watermark (checkpoint or previous role); clamped to the log. */
  readonly highWatermark: number;
  /** Wait after UNKNOWN_LEADER_EPOCH or a lost answer before fetching again, ms. Default 100. */
  readonly retryBackoffMs?: number;
  /**
   * First correlation id (default 1). A driver that replaces follower objects on one connection
   * gives each a distinct range, so a late answer meant for a predecessor is never taken as ours.
   */
  readonly firstCorrelationId?: number;
}

/** A fetch to send to the leader; the answer must carry `correlationId` back. */
export interface OutgoingFetch {
  readonly correlationId: number;
  readonly leaderId: ReplicaId;
  readonly request: FollowerFetchRequest;
}

/** What the driver must do with an answer. */
export type FollowerAction =
  /** Append the answer's bytes with appendAsFollower (if any), then call `onAppended()`. */
  | { readonly kind: 'append' }
  /** Truncate the log to `offset` (removing every offset >= it), then fetch again. */
  | { readonly kind: 'truncate'; readonly offset: number }
  /** Our log is entirely below the leader's log start: empty it and restart at `offset`. */
  | { readonly kind: 'truncate-fully'; readonly offset: number }
  /** The leader fenced us: do nothing until metadata names a newer epoch. */
  | { readonly kind: 'await-metadata' }
  /** Transient: fetch again after the backoff. */
  | { readonly kind: 'backoff' }
  /** The answer was stale (not for our in-flight fetch): ignore. */
  | { readonly kind: 'ignore' };

export type FollowerState = 'fetching' | 'awaiting-metadata';

export class PartitionFollower {
  readonly localReplicaId: ReplicaId;
  readonly leaderId: ReplicaId;
  readonly leaderEpoch: number;
  readonly retryBackoffMs: number;
  private readonly log: ReplicaLogView;
  private hw: number;
  private _state: FollowerState = 'fetching';
  private inFlight: number | null = null;
  /** The last answer taken (its fetch was ours): a failure applying it is still ours to back off for. */
  private lastTaken: number | null = null;
  private inFlightSentMs = 0;
  private nextCorrelationId = 1;
  private notBeforeMs = -Infinity;

  constructor(init: PartitionFollowerInit) {
    this.localReplicaId = init.localReplicaId;
    this.leaderId = init.leaderId;
    this.leaderEpoch = init.leaderEpoch;
    this.log = init.log;
    this.retryBackoffMs = init.retryBackoffMs ?? 100;
    this.nextCorrelationId = init.firstCorrelationId ?? 1;
    this.hw = this.clampHw(init.highWatermark);
  }

  get highWatermark(): number {
    return this.hw;
  }

  get state(): FollowerState {
    return this._state;
  }

  /**
   * The next fetch to send, or null (one is in flight, we are backing off, or we await metadata).
   * A fetch unanswered for `requestTimeoutMs` counts as lost and is replaced.
   */
  pollFetch(nowMs: number, requestTimeoutMs: number): OutgoingFetch | null {
    if (this._state !== 'fetching' || nowMs < this.notBeforeMs) return null;
    if (this.inFlight !== null && nowMs - this.inFlightSentMs < requestTimeoutMs) return null;
    const correlationId = this.nextCorrelationId++;
    this.inFlight = correlationId;
    this.inFlightSentMs = nowMs;
    return {
      correlationId,
      leaderId: this.leaderId,
      request: {
        replicaId: this.localReplicaId,
        currentLeaderEpoch: this.leaderEpoch,
        fetchOffset: this.log.logEndOffset,
        lastFetchedEpoch: this.log.latestEpoch,
        countableEndOffset: this.log.countableEndOffset,
        logStartOffset: this.log.logStartOffset,
      },
    };
  }

  /**
   * The leader's answer to fetch `correlationId`. The driver calls this before touching the log;
   * on `append` it appends the answer's bytes and then calls `onAppended(hw)`, on `truncate` it
   * truncates and calls `onTruncated()`.
   */
  onFetchResponse(correlationId: number, decision: FollowerFetchDecision, nowMs: number): FollowerAction {
    if (this._state !== 'fetching' || correlationId !== this.inFlight) return { kind: 'ignore' };
    this.inFlight = null;
    this.lastTaken = correlationId;
    switch (decision.kind) {
      case 'read':
        // The answer must be for our current log end; if the log moved meanwhile, refetch.
        if (decision.fetchOffset !== this.log.logEndOffset) return { kind: 'ignore' };
        return { kind: 'append' };
      case 'diverging': {
        const leader = decision.divergingEpoch;
        if (leader.epoch < 0 || leader.endOffset < 0) {
          // The leader has no epoch at or below ours: nothing of our log is known to match. If
          // its log starts at or past our end, start over there (truncating to our end would
          // change nothing and the same fetch would get the same answer forever).
          if (decision.logStartOffset >= this.log.logEndOffset) return { kind: 'truncate-fully', offset: decision.logStartOffset };
          return { kind: 'truncate', offset: Math.max(this.log.logStartOffset, decision.logStartOffset) };
        }
        const own = this.log.endOffsetForEpoch(leader.epoch);
        if (own.epoch < 0) return { kind: 'truncate', offset: this.log.logStartOffset };
        // Same epoch: both logs agree up to the smaller end of it. We lack that epoch: cut
        // everything after our largest smaller epoch and ask again about that one.
        const offset = own.epoch === leader.epoch ? Math.min(leader.endOffset, own.endOffset) : own.endOffset;
        return { kind: 'truncate', offset: Math.min(offset, this.log.logEndOffset) };
      }
      case 'error':
        switch (decision.error) {
          case 'FENCED_LEADER_EPOCH':
            // Our epoch is stale: only metadata naming a newer one can help (a new follower object).
            this._state = 'awaiting-metadata';
            return { kind: 'await-metadata' };
          case 'UNKNOWN_LEADER_EPOCH':
          case 'NOT_LEADER_OR_FOLLOWER':
            // The leader has not learned of our epoch yet (KIP-279's fast leader changes), or has
            // not taken up leadership yet: retry after a backoff (as Kafka's fetcher does). Waiting
            // for metadata here could wait forever, since no newer epoch may ever come.
            this.notBeforeMs = nowMs + this.retryBackoffMs;
            return { kind: 'backoff' };
          case 'OFFSET_OUT_OF_RANGE': {
            // Kafka's fetchOffsetAndTruncate. Past the leader's log end (an unclean election
            // chose a leader with less; with a last fetched epoch the leader would have answered a
            // divergence, so our log holds no epoch, i.e. no batch): truncate to its end, fully
            // when that is below our log start (truncateTo never goes below it), or every fetch
            // would be out of range again.
            const leaderEnd = decision.logEndOffset;
            if (leaderEnd !== undefined && leaderEnd >= 0 && this.log.logEndOffset > leaderEnd) {
              return leaderEnd < this.log.logStartOffset ? { kind: 'truncate-fully', offset: leaderEnd } : { kind: 'truncate', offset: leaderEnd };
            }
            // Below the leader's log start (its retention or DeleteRecords passed us): start over there.
            if (this.log.logEndOffset < decision.logStartOffset) return { kind: 'truncate-fully', offset: decision.logStartOffset };
            this.notBeforeMs = nowMs + this.retryBackoffMs;
            return { kind: 'backoff' };
          }
        }
    }
  }

  /** After appending the answer's bytes (or none): adopt the leader's high watermark, capped by our log. */
  onAppended(leaderHighWatermark: number): void {
    const next = this.clampHw(leaderHighWatermark);
    // The HW a follower knows only moves forward within one leader epoch, except that it is
    // always capped by the log end (a truncation below it lowers it).
    this.hw = Math.max(next, Math.min(this.hw, this.log.logEndOffset));
  }

  /** After the driver truncated the log: the HW is capped by the new log end. */
  onTruncated(): void {
    this.hw = Math.min(this.hw, this.log.logEndOffset);
  }

  /**
   * Applying the leader's answer to fetch `correlationId` failed (a batch the log refused, a disk
   * error), or the leader answered it with an error other than a leadership or range one (a
   * storage error reading its log): fetch again only after the retry backoff, so a failure that
   * repeats is not a hot loop. An answer to a fetch that is not ours (a predecessor's, late) is
   * ignored, as in `onFetchResponse`: it must not cancel our own fetch in flight, whose answer
   * would then be dropped.
   */
  onApplyFailed(correlationId: number, nowMs: number): void {
    if (correlationId !== this.inFlight && correlationId !== this.lastTaken) return;
    if (correlationId === this.inFlight) this.inFlight = null;
    this.notBeforeMs = nowMs + this.retryBackoffMs;
  }

  /**
   * Fetch `correlationId` is known lost (connection reset, or the leader left it unanswered):
   * allow the next one now. Ignored unless it is the fetch in flight (a predecessor's fetch, lost
   * on another connection, says nothing about ours).
   */
  onFetchLost(correlationId: number): void {
    if (correlationId === this.inFlight) this.inFlight = null;
  }

  private clampHw(hw: number): number {
    return Math.max(this.log.logStartOffset, Math.min(hw, this.log.logEndOffset));
  }
}
