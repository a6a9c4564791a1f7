// The simulator's consumer, reading below the HW with its leader epoch; see the class comment.

import type { ConsumerFetchDecision, ReplicaId } from '../replication/types';
import { SafetyViolation } from './checker';
import type { SimRecord } from './sim-log';
import { CONSUMER_ID, type SimNetwork } from './sim-network';

/**
 * A consumer reading the partition from offset 0 through the leader it learns from metadata,
 * sending its leader epoch with each fetch (KIP-320). What it reads is checked as Jepsen's queue
 * checker would: each offset shows one value forever (inconsistent-offsets), the position only
 * moves forward without gaps (nonmonotonic-poll, poll-skip), and a fetch offset is never beyond a
 * current leader's log (that would mean committed records were lost).
 */
export class SimConsumer {
  private leader: ReplicaId | null = null;
  private leaderEpoch = -1;
  position = 0;
  private inFlight: { correlationId: number; sentStep: number } | null = null;
  private nextCorrelationId = 1;
  private notBeforeStep = 0;
  /** offset -> value read (bounded by the log bound: offsets are dense from 0). */
  readonly read = new Map<number, string>();

  constructor(
    private readonly net: SimNetwork,
    private readonly timeoutSteps: number,
    private readonly committed: ReadonlyMap<number, SimRecord>,
  ) {}

  onMetadata(leader: ReplicaId | null, leaderEpoch: number): void {
    if (leaderEpoch < this.leaderEpoch) return;
    this.leader = leader;
    this.leaderEpoch = leaderEpoch;
  }

  tick(step: number): void {
    if (this.inFlight !== null && step - this.inFlight.sentStep > this.timeoutSteps) this.inFlight = null;
    if (this.inFlight !== null || this.leader === null || step < this.notBeforeStep) return;
    const correlationId = this.nextCorrelationId++;
    this.inFlight = { correlationId, sentStep: step };
    this.net.send(CONSUMER_ID, this.leader, { type: 'consumer-fetch', correlationId, request: { currentLeaderEpoch: this.leaderEpoch, fetchOffset: this.position } }, step);
  }

  onResponse(correlationId: number, decision: ConsumerFetchDecision, records: readonly SimRecord[], step: number): void {
    if (this.inFlight?.correlationId !== correlationId) return;
    this.inFlight = null;
    if (decision.kind === 'error') {
      if (decision.error === 'OFFSET_OUT_OF_RANGE') {
        throw new SafetyViolation('ACKS', `consumer at offset ${this.position} (epoch ${this.leaderEpoch}) is beyond the leader's log: committed records were lost`);
      }
      this.notBeforeStep = step + 3; // stale metadata on one side: try again shortly
      return;
    }
    if (decision.fetchOffset !== this.position) return; // an answer for an older position
    for (const r of records) {
      if (r.offset !== this.position) throw new SafetyViolation('CONSISTENT-OFFSETS', `consumer expected offset ${this.position} but got ${r.offset} (poll-skip)`);
      if (r.offset >= decision.maxOffset) throw new SafetyViolation('CONSISTENT-OFFSETS', `consumer got offset ${r.offset} at or above the HW ${decision.maxOffset}`);
      const before = this.read.get(r.offset);
      if (before !== undefined && before !== r.value) throw new SafetyViolation('CONSISTENT-OFFSETS', `consumer read ${before} and later ${r.value} at offset ${r.offset}`);
      const c = this.committed.get(r.offset);
      if (c !== undefined && c.value !== r.value) throw new SafetyViolation('CONSISTENT-OFFSETS', `consumer read ${r.value}@${r.offset} but ${c.value} was committed there`);
      this.read.set(r.offset, r.value);
      this.position++;
    }
  }
}
