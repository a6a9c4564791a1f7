// The leader's view of one follower (etcd's tracker.Progress; Raft §5.3 nextIndex/matchIndex).
//
// Invariant: 0 <= match < next. `match` is the highest index known to be replicated on the
// follower; `next` is the next index to send.
//
// States:
// - Probe: we do not know where the follower's log matches ours. Send one append at a time
//   (`probeSent` pauses until a response or a heartbeat response), backing off on rejects.
// - Replicate: the follower matched; stream appends optimistically, advancing `next` on send,
//   up to `inflights.capacity` unacknowledged appends.
// - Snapshot: the entries the follower needs are compacted; send the snapshot in chunks and
//   nothing else until the follower reports an index at or past `pendingSnapshot`.

import { Inflights } from './inflights';

export enum ProgressState {
  Probe = 'probe',
  Replicate = 'replicate',
  Snapshot = 'snapshot',
}

export class Progress {
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** Probe: an append was sent and not yet answered. */
  probeSent = false;
  /** Snapshot: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Snapshot: next byte offset to send, and whether a chunk is awaiting its ack. */
  snapshotOffset = 0;
  snapshotChunkSent = false;
  /** Heard from since the last check-quorum round (Raft thesis §6.2). */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, public isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.checkInvariant();
  }

  private checkInvariant(): void {
    if (!(this.match >= 0 && this.match < this.next)) {
      throw new Error(`progress invariant 0 <= match < next broken: match=${this.match} next=${this.next}`);
    }
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotOffset = 0;
    this.snapshotChunkSent = false;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot the follower has at least the snapshot's index: probe from there.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
    this.checkInvariant();
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
    this.checkInvariant();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * The follower acknowledged everything up to `index`. Returns false if the ack is stale
   * (an older, reordered response), so the caller does not act on it twice.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    this.checkInvariant();
    return updated;
  }

  /** Replicate state: an append up to `last` left; pipeline the next one right after it. */
  sentEntries(last: number): void {
    if (this.state === ProgressState.Replicate) {
      this.next = last + 1;
      this.inflights.add(last);
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
    this.checkInvariant();
  }

  /**
   * The follower rejected an append at `rejected`; `hint` is the highest index at which the
   * leader thinks the logs may match (already refined by term, see RaftLog.findConflictByTerm).
   * Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // A rejection at or below match is a reordered old response.
      if (rejected <= this.match) return false;
      // We sent optimistically past the divergence: restart from just after what matched.
      this.next = this.match + 1;
      this.checkInvariant();
      return true;
    }
    // Probe: only the response to the probe we sent (at next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    this.checkInvariant();
    return true;
  }

  /** Whether the leader should hold back appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
