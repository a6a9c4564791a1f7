// One partition with its replicas, the controller model, an acks=all producer and the checker,
// advanced one step at a time. Scenario tests drive it by hand (crash this broker, cut that link,
// produce now); the seeded simulator drives it with random faults. All randomness (message
// delays and drops, fsync timing) comes from the seed.
//
// A step: deliver due messages (in send order) -> controller session check and metadata push ->
// each live, unpaused broker: maybe an fsync completes, maybe the HW is checkpointed, then its own
// tick (heartbeat, leader tick, follower fetch) -> producer tick -> checker.

import type { ReplicaId } from '../replication/types';
import { ReplicationChecker, SafetyViolation } from './checker';
import { SeededRng } from './rng';
import { SimBroker } from './sim-broker';
import { SimController } from './sim-controller';
import type { FlushPolicy } from './sim-log';
import type { ConsumerFetchDecision } from '../replication/types';
import type { SimRecord } from './sim-log';
import { CONSUMER_ID, CONTROLLER_ID, PRODUCER_ID, SimNetwork, type Message, type NodeId } from './sim-network';

export interface SimClusterOptions {
  readonly seed: number;
  /** Replication factor. Default 3. */
  readonly replicas?: number;
  readonly flushPolicy?: FlushPolicy;
  /** Default 2. */
  readonly minInsyncReplicas?: number;
  /** Default 200 ms (20 steps). */
  readonly replicaLagTimeMaxMs?: number;
  /** Default 30 steps. */
  readonly sessionTimeoutSteps?: number;
  /** Probability per step that a broker's pending fsync completes. Default 0.5. */
  readonly flushRate?: number;
  /** Probability per step that a broker checkpoints its HW. Default 0.1. */
  readonly hwCheckpointRate?: number;
  /** Producer requests in flight at most. Default 2. */
  readonly producerMaxInFlight?: number;
  /** Probability per step the producer sends a new write (if it may). Default 0.5. */
  readonly produceRate?: number;
  /** Bound on each log and on the number of writes. Default 5000. */
  readonly maxRecords?: number;
  /** Up to this many steps between a broker learning it leads and taking up leadership. Default 0. */
  readonly maxTakeoverDelaySteps?: number;
  /** Idempotent producer (retries with the same sequence) instead of the plain one. Default false. */
  readonly idempotentProducer?: boolean;
  /** Receives one line per notable event (replays with --trace). */
  readonly trace?: (line: string) => void;
}

export const STEP_MS = 10;
/** How often (in steps) the controller re-sends metadata even without a change. */
const METADATA_REFRESH_STEPS = 5;

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

export class SimCluster {
  readonly rng: SeededRng;
  readonly net: SimNetwork;
  readonly controller: SimController;
  readonly brokers = new Map<ReplicaId, SimBroker>();
  readonly producer: SimProducer;
  readonly consumer: SimConsumer;
  readonly checker: ReplicationChecker;
  readonly ids: readonly ReplicaId[];
  readonly flushPolicy: FlushPolicy;
  step = 0;
  private readonly pausedUntil = new Map<ReplicaId, number>();
  /** Per-broker fsync completion probability per step (scenarios set 0 to hold bytes unflushed). */
  readonly flushRate = new Map<ReplicaId, number>();
  hwCheckpointRate: number;
  private pushedVersion = -1;
  private readonly trace: ((line: string) => void) | null;
  crashes = 0;

  constructor(readonly opts: SimClusterOptions) {
    this.rng = new SeededRng(opts.seed);
    this.net = new SimNetwork(this.rng);
    const n = opts.replicas ?? 3;
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    this.flushPolicy = opts.flushPolicy ?? 'fsync';
    const sessionTimeoutSteps = opts.sessionTimeoutSteps ?? 30;
    this.controller = new SimController({ replicas: this.ids, sessionTimeoutSteps, flushPolicy: this.flushPolicy });
    const maxRecords = opts.maxRecords ?? 5000;
    this.hwCheckpointRate = opts.hwCheckpointRate ?? 0.1;
    const trace = opts.trace;
    this.trace = trace === undefined ? null : (line: string): void => trace(`[${this.step}] ${line}`);
    const events = {
      onBecomeLeader: (b: SimBroker, epoch: number): void => {
        this.trace?.(`broker ${b.id} leads epoch ${epoch} (log end ${b.log.logEndOffset}, durable ${b.log.durableEndOffset}, HW ${b.highWatermark}, ISR ${this.controller.state.isr.join(',')})`);
        this.checker.onBecomeLeader(b, epoch);
      },
      onLogCut: (b: SimBroker, offset: number): void => {
        this.trace?.(`broker ${b.id} log cut to ${offset}`);
        this.checker.onLogCut(b, offset);
      },
      onLeaderHighWatermark: (b: SimBroker): void => {
        this.trace?.(`broker ${b.id} HW ${b.highWatermark} (maximal ISR ${b.leader?.maximalIsr.join(',') ?? ''})`);
        this.checker.onLeaderHighWatermark(b);
      },
    };
    for (const id of this.ids) {
      this.brokers.set(
        id,
        new SimBroker(
          {
            id,
            flushPolicy: this.flushPolicy,
            config: { replicaLagTimeMaxMs: opts.replicaLagTimeMaxMs ?? 200, minInsyncReplicas: opts.minInsyncReplicas ?? 2, alterPartitionRetryMs: 100, maxPendingProduces: 100 },
            stepMs: STEP_MS,
            fetchMaxRecords: 8,
            fetchTimeoutMs: 10 * STEP_MS,
            produceTimeoutMs: 50 * STEP_MS,
            maxLogRecords: maxRecords,
            takeoverDelaySteps: () => this.rng.nextInt((opts.maxTakeoverDelaySteps ?? 0) + 1),
          },
          this.net,
          events,
        ),
      );
      this.flushRate.set(id, opts.flushRate ?? 0.5);
    }
    this.checker = new ReplicationChecker(this.brokers, this.controller);
    this.controller.onElection = (epoch) => this.checker.onElection(epoch);
    this.consumer = new SimConsumer(this.net, 10, this.checker.committed);
    this.producer = new SimProducer(this.net, this.rng, opts.producerMaxInFlight ?? 2, opts.produceRate ?? 0.5, 60, maxRecords, (offset, value) => this.checker.onAck(offset, value));
    if (opts.idempotentProducer === true) {
      this.producer.idempotent = {
        onFatal: (error, value) => {
          throw new SafetyViolation('DUPLICATE', `idempotent write ${value} was answered ${error}: the broker lost track of the producer's sequence`);
        },
      };
    }
  }

  broker(id: ReplicaId): SimBroker {
    const b = this.brokers.get(id);
    if (b === undefined) throw new Error(`no broker ${id}`);
    return b;
  }

  isPaused(id: NodeId): boolean {
    return (this.pausedUntil.get(id) ?? -1) > this.step;
  }

  // -------------------------------------------------------------------------------------------
  // faults (scenarios call these directly; the simulator at random)

  crash(id: ReplicaId): void {
    const b = this.broker(id);
    if (!b.up) return;
    this.trace?.(`crash broker ${id} (log end ${b.log.logEndOffset}, durable ${b.log.durableEndOffset})`);
    b.crash();
    this.pausedUntil.delete(id);
    this.crashes++;
  }

  restart(id: ReplicaId): void {
    const b = this.broker(id);
    if (b.up) return;
    this.trace?.(`restart broker ${id} (log end ${b.log.logEndOffset})`);
    b.restart(this.step);
  }

  /** SIGSTOP for `steps` steps: no ticks, no message handling (messages wait). */
  pause(id: ReplicaId, steps: number): void {
    this.trace?.(`pause broker ${id} for ${steps} steps`);
    this.pausedUntil.set(id, this.step + steps);
  }

  unpauseAll(): void {
    this.pausedUntil.clear();
  }

  /** Cuts `id` off from everyone (controller, other brokers, producer). */
  isolate(id: NodeId): void {
    this.net.isolate(id, [CONTROLLER_ID, PRODUCER_ID, CONSUMER_ID, ...this.ids]);
  }

  // -------------------------------------------------------------------------------------------
  // running

  runStep(): void {
    this.step++;
    const step = this.step;
    for (const m of this.net.takeDue(step, (to) => !this.isPaused(to))) this.dispatch(m);
    this.controller.tick(step);
    this.pushMetadata(step);
    for (const b of this.brokers.values()) {
      if (!b.up || this.isPaused(b.id)) continue;
      if (b.log.durableEndOffset < b.log.logEndOffset && this.rng.chance(this.flushRate.get(b.id) ?? 0)) b.flush(step);
      if (this.rng.chance(this.hwCheckpointRate)) b.checkpointHighWatermark();
      b.tick(step);
    }
    this.producer.tick(step);
    this.consumer.tick(step);
    this.checker.afterStep();
  }

  /** Runs until `done()` holds (checked after each step) or `maxSteps` pass; returns whether it held. */
  runUntil(done: () => boolean, maxSteps: number): boolean {
    for (let i = 0; i < maxSteps; i++) {
      if (done()) return true;
      this.runStep();
    }
    return done();
  }

  run(steps: number): void {
    for (let i = 0; i < steps; i++) this.runStep();
  }

  private dispatch(m: Message): void {
    const p = m.payload;
    if (m.to === CONTROLLER_ID) {
      if (p.type === 'heartbeat') this.controller.onHeartbeat(m.from, p.incarnation, p.uncleanRestart, this.step);
      else if (p.type === 'alter-partition') {
        const response = this.controller.onAlterPartition(p.request);
        this.trace?.(`controller: AlterPartition from ${m.from} (leader epoch ${p.request.leaderEpoch}, partition epoch ${p.request.partitionEpoch}, ISR ${p.request.newIsr.join(',')}): ${response.error ?? 'ok'}`);
        this.net.send(CONTROLLER_ID, m.from, { type: 'alter-partition-response', request: p.request, response }, this.step);
      }
      return;
    }
    if (m.to === CONSUMER_ID) {
      if (p.type === 'metadata') this.consumer.onMetadata(p.state.leader, p.state.leaderEpoch);
      else if (p.type === 'consumer-fetch-response') this.consumer.onResponse(p.correlationId, p.decision, p.records, this.step);
      return;
    }
    if (m.to === PRODUCER_ID) {
      if (p.type === 'metadata') this.producer.onMetadata(p.state.leader, p.state.leaderEpoch);
      else if (p.type === 'produce-response') this.producer.onResponse(p.requestId, p.error, p.offset, this.step);
      return;
    }
    const b = this.brokers.get(m.to);
    if (b === undefined || !b.up) return;
    b.receive(m, this.step);
  }

  private pushMetadata(step: number): void {
    if (this.controller.version === this.pushedVersion && step % METADATA_REFRESH_STEPS !== 0) return;
    const state = this.controller.state;
    const fenced = this.controller.fencedBrokers();
    if (this.controller.version !== this.pushedVersion) {
      this.trace?.(`controller: leader ${String(state.leader)} epoch ${state.leaderEpoch} partition epoch ${state.partitionEpoch} ISR ${state.isr.join(',')} fenced ${fenced.join(',')}`);
    }
    this.pushedVersion = this.controller.version;
    for (const id of this.ids) {
      const incarnation = this.controller.sessions.get(id)?.incarnation ?? 0;
      this.net.send(CONTROLLER_ID, id, { type: 'metadata', state, fenced, incarnation }, step);
    }
    this.net.send(CONTROLLER_ID, PRODUCER_ID, { type: 'metadata', state, fenced, incarnation: 0 }, step);
    this.net.send(CONTROLLER_ID, CONSUMER_ID, { type: 'metadata', state, fenced, incarnation: 0 }, step);
  }

  // -------------------------------------------------------------------------------------------
  // convergence (the liveness phase's goal)

  /**
   * Healed and settled: every broker up, one leader at the controller's epoch, every replica in
   * the ISR, every log identical to the leader's, every HW at the log end, every ack present.
   * Returns null when converged, else why not.
   */
  notConvergedBecause(): string | null {
    const st = this.controller.state;
    if (st.leader === null) return 'no leader';
    const leader = this.broker(st.leader);
    if (!leader.up || leader.leaderEpoch !== st.leaderEpoch) return `broker ${st.leader} does not lead epoch ${st.leaderEpoch} yet`;
    if (st.isr.length !== this.ids.length) return `ISR is ${st.isr.join(',')}`;
    const leo = leader.log.logEndOffset;
    for (const b of this.brokers.values()) {
      if (!b.up) return `broker ${b.id} is down`;
      if (b.log.logEndOffset !== leo || b.highWatermark !== leo) return `broker ${b.id} has log end ${b.log.logEndOffset} and HW ${b.highWatermark}, leader's log end ${leo}`;
    }
    if (this.consumer.position !== leo) return `the consumer is at ${this.consumer.position}, the log end at ${leo}`;
    return null;
  }

  /** Asserts the converged logs are identical and hold every acknowledged write. */
  checkConverged(): void {
    const st = this.controller.state;
    const leader = this.broker(st.leader as ReplicaId);
    const ref = leader.log.slice();
    for (const b of this.brokers.values()) {
      const mine = b.log.slice();
      for (let o = 0; o < ref.length; o++) {
        const a = ref[o];
        const c = mine[o];
        if (a?.value !== c?.value || a?.epoch !== c?.epoch) throw new SafetyViolation('CONSISTENT-OFFSETS', `after convergence broker ${b.id} has ${c?.value}@${o} (epoch ${c?.epoch}) but leader ${leader.id} has ${a?.value} (epoch ${a?.epoch})`);
      }
    }
    for (const [o, v] of this.checker.acked) {
      if (ref[o]?.value !== v) throw new SafetyViolation('ACKS', `acknowledged ${v}@${o} missing after convergence`);
      // Jepsen's lost-write / unseen: the consumer, now at the end, read every acknowledged write.
      if (this.consumer.read.get(o) !== v) throw new SafetyViolation('ACKS', `the consumer never read acknowledged ${v}@${o} (read ${this.consumer.read.get(o) ?? 'nothing'})`);
    }
  }
}
