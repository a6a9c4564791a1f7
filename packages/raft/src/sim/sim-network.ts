// A simulated network: every message waits in one in-flight pool until its delivery tick.
// Faults are drawn from the run's seed: drop, duplicate, delay (which reorders), and cut links
// (symmetric or one-way partitions). Nothing here reads a clock; "now" is the cluster's tick.

import { SeededRng } from '../core/rng';
import { Message, NodeId } from '../core/types';

export interface NetworkFaults {
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message is delivered twice. */
  readonly duplicateRate: number;
  /** Messages are delayed by 0..maxDelayTicks ticks (uniform), which reorders them. */
  readonly maxDelayTicks: number;
}

export const NO_FAULTS: NetworkFaults = { dropRate: 0, duplicateRate: 0, maxDelayTicks: 0 };

interface InFlight {
  readonly m: Message;
  readonly deliverAt: number;
}

export class SimNetwork {
  faults: NetworkFaults = NO_FAULTS;
  private pool: InFlight[] = [];
  /** Cut links, as "from>to". */
  private readonly cuts = new Set<string>();
  sent = 0;
  dropped = 0;

  /** Messages in flight are bounded: a run that floods the network is a bug in the core. */
  constructor(private readonly rng: SeededRng, private readonly maxInFlight = 200_000) {}

  send(m: Message, now: number): void {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.rng.chance(this.faults.dropRate)) {
      this.dropped++;
      return;
    }
    const copies = this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.pool.length >= this.maxInFlight) throw new Error(`sim network: more than ${this.maxInFlight} messages in flight`);
      const delay = this.faults.maxDelayTicks > 0 ? this.rng.nextInt(this.faults.maxDelayTicks + 1) : 0;
      this.pool.push({ m, deliverAt: now + delay });
    }
  }

  /**
   * Remove and return the messages due at `now`. With `shuffle`, in a random order (reordering
   * even among messages of one link); otherwise in send order, for scripted tests.
   */
  takeDue(now: number, shuffle: boolean): Message[] {
    const due: Message[] = [];
    const keep: InFlight[] = [];
    for (const f of this.pool) {
      if (f.deliverAt > now) keep.push(f);
      // A link cut while a message was in flight loses it too.
      else if (this.isCut(f.m.from, f.m.to)) this.dropped++;
      else due.push(f.m);
    }
    this.pool = keep;
    if (shuffle) {
      for (let i = due.length - 1; i > 0; i--) {
        const j = this.rng.nextInt(i + 1);
        const t = due[i];
        const u = due[j];
        if (t !== undefined && u !== undefined) {
          due[i] = u;
          due[j] = t;
        }
      }
    }
    return due;
  }

  /** How many messages are due at `now` (without taking them). */
  takeDuePeek(now: number): number {
    let n = 0;
    for (const f of this.pool) if (f.deliverAt <= now) n++;
    return n;
  }

  get inFlight(): number {
    return this.pool.length;
  }

  /** Drop every message in flight (used when healing before the liveness phase is not enough). */
  clear(): void {
    this.pool = [];
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  cut(a: NodeId, b: NodeId): void {
    this.cutOneWay(a, b);
    this.cutOneWay(b, a);
  }

  isolate(id: NodeId, all: readonly NodeId[]): void {
    for (const o of all) if (o !== id) this.cut(id, o);
  }

  /** Split into two sides that cannot talk to each other. */
  partition(side: readonly NodeId[], all: readonly NodeId[]): void {
    const s = new Set(side);
    for (const a of all) for (const b of all) if (s.has(a) !== s.has(b)) this.cutOneWay(a, b);
  }

  heal(): void {
    this.cuts.clear();
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.has(`${from}>${to}`);
  }

  get cutCount(): number {
    return this.cuts.size;
  }
}
