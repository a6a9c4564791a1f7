// The simulator's safety checker, run after every step (and on the events that matter between
// steps). Each property is one the replication design promises (DESIGN.md, SCENARIOS.md 1–6, 12):
//
// - EPOCHS: the controller's leader epoch and partition epoch never decrease, nor does the leader
//   epoch any broker incarnation has seen; at most one broker ever leads a given epoch.
// - HW-DURABLE: the current leader's high watermark never passes an offset that is durable, and
//   identical to the leader's, on every member of the ISR (the controller's and the leader's
//   maximal one) — checked at the record just below the HW, which pins the whole prefix because
//   records are stamped with epochs and values are unique.
// - CONSISTENT-OFFSETS: whatever any leader (current or zombie) exposes below its high watermark
//   — what a consumer may read — is one history: an offset never shows two values over time.
//   Checked incrementally: each broker's verified prefix shrinks when its log is cut.
// - ACKS: an acknowledged acks=all write is at its offset in that history, with its value, and
//   the leader of every epoch holds every write acknowledged before that epoch's election
//   (nothing acknowledged is lost).
// - DUPLICATE: no value sits at two offsets of that history (idempotent retries are deduplicated
//   across leader changes), and an idempotent producer is never told its sequence is broken.

import type { ReplicaId } from '../replication/types';
import type { SimBroker } from './sim-broker';
import type { SimController } from './sim-controller';
import type { SimRecord } from './sim-log';

/** How often (in steps) the HW-DURABLE check compares whole prefixes rather than one record. */
const FULL_CHECK_EVERY = 50;

export class SafetyViolation extends Error {
  constructor(
    readonly property: 'EPOCHS' | 'HW-DURABLE' | 'CONSISTENT-OFFSETS' | 'ACKS' | 'DUPLICATE' | 'LIVENESS',
    message: string,
  ) {
    super(`${property}: ${message}`);
    this.name = 'SafetyViolation';
  }
}

export class ReplicationChecker {
  /** offset -> record: the one history exposed below any leader's HW. */
  readonly committed = new Map<number, SimRecord>();
  /** offset -> value of acknowledged writes. */
  readonly acked = new Map<number, string>();
  /** value -> offset in that history: a value at two offsets is a duplicate. */
  private readonly offsetOfValue = new Map<string, number>();
  private readonly leaderOfEpoch = new Map<number, ReplicaId>();
  /** Acknowledged writes in acknowledgement order (first acknowledgement of each). */
  private readonly ackOrder: Array<[number, string]> = [];
  /** epoch -> how many writes had been acknowledged when the controller elected its leader. */
  private readonly ackCountAtElection = new Map<number, number>();
  private readonly verifiedBelow = new Map<ReplicaId, number>();
  private readonly seenEpoch = new Map<string, number>();
  private lastLeaderEpoch = -1;
  private lastPartitionEpoch = -1;
  checks = 0;

  constructor(
    private readonly brokers: ReadonlyMap<ReplicaId, SimBroker>,
    private readonly controller: SimController,
  ) {}

  /** The controller elected a leader for `epoch`: every write acknowledged so far must survive in it. */
  onElection(epoch: number): void {
    this.ackCountAtElection.set(epoch, this.ackOrder.length);
  }

  onBecomeLeader(b: SimBroker, epoch: number): void {
    const prev = this.leaderOfEpoch.get(epoch);
    if (prev !== undefined && prev !== b.id) throw new SafetyViolation('EPOCHS', `brokers ${prev} and ${b.id} both led epoch ${epoch}`);
    this.leaderOfEpoch.set(epoch, b.id);
    // Only writes acknowledged before this epoch's election: b may be a leader elected long ago
    // (paused since) that only now acts on the news, and later leaders may have committed more.
    const n = this.ackCountAtElection.get(epoch) ?? (epoch === 0 ? 0 : this.ackOrder.length);
    for (const [offset, value] of this.ackOrder.slice(0, n)) {
      const r = b.log.at(offset);
      if (r?.value !== value) {
        throw new SafetyViolation('ACKS', `broker ${b.id} became leader of epoch ${epoch} without acknowledged ${value}@${offset} (has ${r?.value ?? 'nothing'}; log end ${b.log.logEndOffset})`);
      }
    }
  }

  /** Checked the moment a leader's HW moves too: it may resign later in the same step. */
  onLeaderHighWatermark(b: SimBroker): void {
    if (b.leader !== null) this.checkHistory(b, b.highWatermark);
  }

  onLogCut(b: SimBroker, offset: number): void {
    this.verifiedBelow.set(b.id, Math.min(this.verifiedBelow.get(b.id) ?? 0, offset));
  }

  onAck(offset: number, value: string): void {
    const prev = this.acked.get(offset);
    if (prev !== undefined && prev !== value) throw new SafetyViolation('ACKS', `offset ${offset} acknowledged twice, as ${prev} and ${value}`);
    const at = this.offsetOfValue.get(value);
    if (at !== undefined && at !== offset) throw new SafetyViolation('DUPLICATE', `${value} acknowledged at offset ${offset} but it sits at ${at}`);
    const c = this.committed.get(offset)?.value;
    if (c !== value) throw new SafetyViolation('ACKS', `acknowledged ${value}@${offset} but the history below the HW holds ${c ?? 'nothing'} there`);
    if (prev === undefined) this.ackOrder.push([offset, value]);
    this.acked.set(offset, value);
  }

  afterStep(): void {
    this.checks++;
    const st = this.controller.state;
    if (st.leaderEpoch < this.lastLeaderEpoch || st.partitionEpoch < this.lastPartitionEpoch) {
      throw new SafetyViolation('EPOCHS', `controller epochs went back: leader ${this.lastLeaderEpoch} -> ${st.leaderEpoch}, partition ${this.lastPartitionEpoch} -> ${st.partitionEpoch}`);
    }
    this.lastLeaderEpoch = st.leaderEpoch;
    this.lastPartitionEpoch = st.partitionEpoch;
    for (const b of this.brokers.values()) {
      if (!b.up) continue;
      if (b.metadata !== null) {
        const key = `${b.id}/${b.incarnation}`;
        const seen = this.seenEpoch.get(key) ?? -1;
        if (b.metadata.leaderEpoch < seen) throw new SafetyViolation('EPOCHS', `broker ${b.id} went back from leader epoch ${seen} to ${b.metadata.leaderEpoch}`);
        this.seenEpoch.set(key, b.metadata.leaderEpoch);
      }
      const epoch = b.leaderEpoch;
      if (epoch === null) continue;
      const hw = b.highWatermark;
      if (hw > b.log.logEndOffset) throw new SafetyViolation('HW-DURABLE', `broker ${b.id}'s HW ${hw} is past its log end ${b.log.logEndOffset}`);
      this.checkHistory(b, hw);
      if (st.leader === b.id && st.leaderEpoch === epoch && hw > 0) this.checkDurableOnIsr(b, hw);
    }
  }

  private checkHistory(b: SimBroker, hw: number): void {
    const from = this.verifiedBelow.get(b.id) ?? 0;
    for (let o = from; o < hw; o++) {
      const r = b.log.at(o) as SimRecord;
      const c = this.committed.get(o);
      if (c === undefined) {
        this.committed.set(o, r);
        const seen = this.offsetOfValue.get(r.value);
        if (seen !== undefined && seen !== o) throw new SafetyViolation('DUPLICATE', `${r.value} is exposed at offsets ${seen} and ${o}`);
        this.offsetOfValue.set(r.value, o);
      } else if (c.value !== r.value || c.epoch !== r.epoch) {
        throw new SafetyViolation('CONSISTENT-OFFSETS', `leader ${b.id} (epoch ${String(b.leaderEpoch)}) exposes ${r.value}@${o} (epoch ${r.epoch}) below its HW ${hw}, but ${c.value} (epoch ${c.epoch}) was exposed there before`);
      }
    }
    if (hw > from) this.verifiedBelow.set(b.id, hw);
  }

  private checkDurableOnIsr(b: SimBroker, hw: number): void {
    const leader = b.leader;
    if (leader === null) return;
    const members = new Set([...this.controller.state.isr, ...leader.maximalIsr]);
    const mine = b.log.at(hw - 1);
    // Every FULL_CHECK_EVERY checks, compare whole prefixes too: that the record just below the
    // HW pins the prefix is the log-matching property, which this verifies instead of assuming.
    const full = this.checks % FULL_CHECK_EVERY === 0;
    for (const r of members) {
      const rb = this.brokers.get(r);
      if (rb === undefined) continue;
      if (full) {
        for (let o = 0; o < Math.min(hw, rb.log.logEndOffset); o++) {
          const x = b.log.at(o);
          const y = rb.log.at(o);
          if (x?.value !== y?.value || x?.epoch !== y?.epoch) {
            throw new SafetyViolation('HW-DURABLE', `leader ${b.id} (HW ${hw}) and ISR member ${r} differ at offset ${o}: ${x?.value ?? 'nothing'} vs ${y?.value ?? 'nothing'}`);
          }
        }
      }
      const theirs = rb.log.at(hw - 1);
      if (rb.log.countableEndOffset < hw || theirs?.value !== mine?.value || theirs?.epoch !== mine?.epoch) {
        throw new SafetyViolation(
          'HW-DURABLE',
          `leader ${b.id} (epoch ${leader.leaderEpoch}) has HW ${hw} but ISR member ${r} has countable end ${rb.log.countableEndOffset} and ${theirs?.value ?? 'nothing'} at ${hw - 1} (leader: ${mine?.value ?? 'nothing'})`,
        );
      }
    }
  }
}
