// The simulated network between the controller, three brokers and a producer: every message
// gets a delivery step (delay = reorder), may be dropped, and is lost when its link is cut
// (at send or at delivery). Messages to a paused node wait (SIGSTOP keeps the socket buffers);
// messages to a crashed node are lost. Bounded: a full queue drops new messages (a real stream
// would apply back-pressure; the protocol must survive loss anyway).

import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  ConsumerFetchDecision,
  ConsumerFetchRequest,
  FollowerFetchDecision,
  FollowerFetchRequest,
  PartitionState,
  ReplicaId,
} from '../replication/types';
import type { SeededRng } from './rng';
import type { SimRecord } from './sim-log';

/** Node ids: the controller is 0, brokers 1..n, the producer PRODUCER_ID, the consumer CONSUMER_ID. */
export type NodeId = number;
export const CONTROLLER_ID: NodeId = 0;
export const PRODUCER_ID: NodeId = 99;
export const CONSUMER_ID: NodeId = 98;

export type Payload =
  | { readonly type: 'fetch'; readonly correlationId: number; readonly request: FollowerFetchRequest }
  | { readonly type: 'fetch-response'; readonly correlationId: number; readonly decision: FollowerFetchDecision; readonly records: readonly SimRecord[] }
  /** `producerId`/`sequence` only for idempotent writes (one record per batch). */
  | { readonly type: 'produce'; readonly requestId: number; readonly value: string; readonly producerId?: number; readonly sequence?: number }
  | { readonly type: 'produce-response'; readonly requestId: number; readonly error: string | null; readonly offset: number }
  | { readonly type: 'consumer-fetch'; readonly correlationId: number; readonly request: ConsumerFetchRequest }
  | { readonly type: 'consumer-fetch-response'; readonly correlationId: number; readonly decision: ConsumerFetchDecision; readonly records: readonly SimRecord[] }
  | { readonly type: 'alter-partition'; readonly request: AlterPartitionRequest }
  | { readonly type: 'alter-partition-response'; readonly request: AlterPartitionRequest; readonly response: AlterPartitionResponse }
  | { readonly type: 'heartbeat'; readonly incarnation: number; readonly uncleanRestart: boolean }
  /** `incarnation`: the recipient's registration the controller knows (brokers ignore metadata for an older one). */
  | { readonly type: 'metadata'; readonly state: PartitionState; readonly fenced: readonly ReplicaId[]; readonly incarnation: number };

export interface Message {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly deliverAt: number;
  /** Send order, to make delivery order among equal steps deterministic. */
  readonly seq: number;
  readonly payload: Payload;
}

export interface NetworkFaults {
  /** Probability a message is dropped. */
  dropRate: number;
  /** Maximum extra delay in steps (uniform 0..max): reorders messages. */
  maxDelaySteps: number;
}

export const NO_FAULTS: NetworkFaults = { dropRate: 0, maxDelaySteps: 0 };

export class SimNetwork {
  private queue: Message[] = [];
  private seq = 0;
  private readonly cut = new Set<string>();
  faults: NetworkFaults = { ...NO_FAULTS };
  sent = 0;
  dropped = 0;

  constructor(
    private readonly rng: SeededRng,
    /** Bound on queued messages. */
    readonly maxQueued = 10_000,
  ) {}

  private static link(a: NodeId, b: NodeId): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }

  isCut(a: NodeId, b: NodeId): boolean {
    return this.cut.has(SimNetwork.link(a, b));
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(SimNetwork.link(a, b));
  }

  /** Cuts every link of `node` (an isolated node). */
  isolate(node: NodeId, others: readonly NodeId[]): void {
    for (const o of others) if (o !== node) this.cutLink(node, o);
  }

  healLink(a: NodeId, b: NodeId): void {
    this.cut.delete(SimNetwork.link(a, b));
  }

  healAll(): void {
    this.cut.clear();
  }

  get cutLinks(): number {
    return this.cut.size;
  }

  send(from: NodeId, to: NodeId, payload: Payload, now: number): void {
    this.sent++;
    if (this.isCut(from, to) || this.rng.chance(this.faults.dropRate) || this.queue.length >= this.maxQueued) {
      this.dropped++;
      return;
    }
    const delay = 1 + this.rng.nextInt(this.faults.maxDelaySteps + 1);
    this.queue.push({ from, to, deliverAt: now + delay, seq: this.seq++, payload });
  }

  /**
   * Removes and returns the messages due at `step` whose destination can receive (`canReceive`);
   * messages for nodes that cannot receive yet (paused) stay queued.
   */
  takeDue(step: number, canReceive: (to: NodeId) => boolean): Message[] {
    const due: Message[] = [];
    const keep: Message[] = [];
    for (const m of this.queue) {
      if (m.deliverAt <= step && canReceive(m.to)) due.push(m);
      else keep.push(m);
    }
    this.queue = keep;
    const out: Message[] = [];
    for (const m of due.sort((a, b) => a.deliverAt - b.deliverAt || a.seq - b.seq)) {
      if (this.isCut(m.from, m.to)) this.dropped++;
      else out.push(m);
    }
    return out;
  }

  /**
   * Drops every queued message to `node` (it crashed: its connections are gone). Messages it
   * sent before crashing stay in flight: the most adversarial choice (stale answers arrive late).
   */
  dropTo(node: NodeId): void {
    const before = this.queue.length;
    this.queue = this.queue.filter((m) => m.to !== node);
    this.dropped += before - this.queue.length;
  }

  get queued(): number {
    return this.queue.length;
  }
}
