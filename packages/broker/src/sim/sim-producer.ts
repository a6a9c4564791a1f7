// The simulator's acks=all producer (plain or idempotent); see the class comment.

import type { ReplicaId } from '../replication/types';
import type { SeededRng } from './rng';
import { PRODUCER_ID, type SimNetwork } from './sim-network';

/**
 * The acks=all producer. Plain mode: unique values, a bounded window of requests, no retries (a
 * retry would be a new write). Idempotent mode (producer id 1, epoch 0): one batch in flight,
 * re-sent with the same value and sequence after a timeout or a retriable error until it is
 * acknowledged — the Kafka client's behaviour; the broker must deduplicate across leader changes.
 */
export class SimProducer {
  private leader: ReplicaId | null = null;
  private leaderEpoch = -1;
  private readonly inFlight = new Map<number, { value: string; sentStep: number }>();
  private nextRequestId = 1;
  writes = 0;
  acks = 0;
  errors = 0;
  enabled = true;
  /** Step of the last acknowledgement, -1 if none. */
  lastAckStep = -1;
  /** value -> 'ok' or the error name; absent while pending or after a timeout. Bounded by maxWrites. */
  readonly outcomes = new Map<string, string>();
  /** Idempotent mode: the batch being sent until acknowledged. */
  private current: { value: string; sequence: number; sentStep: number; retryAtStep: number } | null = null;
  private nextSequence = 0;
  /** Set for idempotent mode; receives errors that mean the broker broke idempotence. */
  idempotent: { onFatal: (error: string, value: string) => void } | null = null;
  retries = 0;

  constructor(
    private readonly net: SimNetwork,
    private readonly rng: SeededRng,
    private readonly maxInFlight: number,
    public rate: number,
    private readonly timeoutSteps: number,
    private readonly maxWrites: number,
    private readonly onAck: (offset: number, value: string, step: number) => void,
  ) {}

  onMetadata(leader: ReplicaId | null, leaderEpoch: number): void {
    if (leaderEpoch < this.leaderEpoch) return;
    this.leader = leader;
    this.leaderEpoch = leaderEpoch;
  }

  /** Sends a write now if a leader is known and the window allows; returns its value or null. */
  produce(step: number): string | null {
    if (this.leader === null || this.inFlight.size >= this.maxInFlight || this.writes >= this.maxWrites) return null;
    const value = `w${this.writes++}`;
    const requestId = this.nextRequestId++;
    this.inFlight.set(requestId, { value, sentStep: step });
    this.net.send(PRODUCER_ID, this.leader, { type: 'produce', requestId, value }, step);
    return value;
  }

  tick(step: number): void {
    if (this.idempotent !== null) {
      this.tickIdempotent(step);
      return;
    }
    for (const [id, r] of this.inFlight) if (step - r.sentStep > this.timeoutSteps) this.inFlight.delete(id);
    if (this.enabled && this.rng.chance(this.rate)) this.produce(step);
  }

  private tickIdempotent(step: number): void {
    const c = this.current;
    if (c === null) {
      if (!this.enabled || this.leader === null || this.writes >= this.maxWrites || !this.rng.chance(this.rate)) return;
      this.current = { value: `w${this.writes++}`, sequence: this.nextSequence, sentStep: step, retryAtStep: step + this.timeoutSteps };
      this.sendCurrent(step);
      return;
    }
    if (step >= c.retryAtStep && this.leader !== null) {
      this.retries++;
      this.sendCurrent(step);
    }
  }

  private sendCurrent(step: number): void {
    const c = this.current;
    if (c === null || this.leader === null) return;
    c.sentStep = step;
    c.retryAtStep = step + this.timeoutSteps;
    const requestId = this.nextRequestId++;
    // Earlier attempts stay answerable (bounded: attempts of one batch within the timeout window).
    if (this.inFlight.size >= 64) this.inFlight.clear();
    this.inFlight.set(requestId, { value: c.value, sentStep: step });
    this.net.send(PRODUCER_ID, this.leader, { type: 'produce', requestId, value: c.value, producerId: 1, sequence: c.sequence }, step);
  }

  onResponse(requestId: number, error: string | null, offset: number, step: number): void {
    const r = this.inFlight.get(requestId);
    if (r === undefined) return; // timed out already: the outcome stays unknown to this client
    this.inFlight.delete(requestId);
    if (this.idempotent !== null) {
      this.onIdempotentResponse(r.value, error, offset, step);
      return;
    }
    this.outcomes.set(r.value, error ?? 'ok');
    if (error !== null) {
      this.errors++;
      return;
    }
    this.acks++;
    this.lastAckStep = step;
    this.onAck(offset, r.value, step);
  }

  private onIdempotentResponse(value: string, error: string | null, offset: number, step: number): void {
    const c = this.current;
    if (error === null) {
      // Any attempt's acknowledgement acknowledges the batch (a late one for an earlier batch too).
      this.acks++;
      this.lastAckStep = step;
      this.outcomes.set(value, 'ok');
      this.onAck(offset, value, step);
      if (c !== null && c.value === value) {
        this.current = null;
        this.nextSequence++;
        this.inFlight.clear();
      }
      return;
    }
    this.errors++;
    if (error === 'OUT_OF_ORDER_SEQUENCE_NUMBER' || error === 'UNKNOWN_PRODUCER_ID' || error === 'DUPLICATE_SEQUENCE_NUMBER' || error === 'INVALID_PRODUCER_EPOCH') {
      (this.idempotent as { onFatal: (error: string, value: string) => void }).onFatal(error, value);
      return;
    }
    // Retriable (not leader, not enough replicas, timed out): try again soon.
    if (c !== null && c.value === value) c.retryAtStep = Math.min(c.retryAtStep, step + 3);
  }
}
