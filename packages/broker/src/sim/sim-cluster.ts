// One partition with its replicas, the controller model, an acks=all producer (sim-producer.ts),
// a consumer (sim-consumer.ts) and the checker, advanced one step at a time. Scenario tests drive it by hand (crash this broker, cut that link,
// produce now); the seeded simulator drives it with random faults. All randomness (message
// delays and drops, fsync timing) comes from the seed.
//
// A step: deliver due messages (in send order) -> controller session check and metadata push ->
// each live, unpaused broker: maybe an fsync completes, maybe the HW is checkpointed, then its own
// tick (heartbeat, leader tick, follower fetch) -> producer and consumer ticks -> checker.

import type { ReplicaId } from '../replication/types';
import { ReplicationChecker, SafetyViolation } from './checker';
import { SeededRng } from './rng';
import { SimBroker } from './sim-broker';
import { SimController } from './sim-controller';
import type { FlushPolicy } from './sim-log';
import { CONSUMER_ID, CONTROLLER_ID, PRODUCER_ID, SimNetwork, type Message, type NodeId } from './sim-network';
import { SimConsumer } from './sim-consumer';
import { SimProducer } from './sim-producer';

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
