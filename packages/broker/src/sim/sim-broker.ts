// A simulated broker hosting one replica of the partition: the driver around the pure cores,
// doing what the real broker's I/O layer will do — follow metadata and become leader or
// follower, answer follower fetches with records read from the log, append produce requests,
// apply the follower's actions (append, truncate by epoch), send AlterPartition proposals and
// answer producers when the leader core completes them. It also models a machine: crash (the log
// loses unflushed records and all memory), restart (an unclean one), pause (the caller stops
// stepping it) and the group-committed fsync (`flush()`).

import { PartitionFollower } from '../replication/partition-follower';
import { PartitionLeader } from '../replication/partition-leader';
import { ProducerStateManager, type ProducerBatchHeader } from '../replication/producer-state';
import type { ReplicationConfig } from '../replication/config';
import type { ConsumerFetchDecision, ConsumerFetchRequest, FollowerFetchDecision, FollowerFetchRequest, PartitionState, ReplicaId } from '../replication/types';
import { SimLog, type FlushPolicy, type SimRecord } from './sim-log';
import { CONTROLLER_ID, PRODUCER_ID, type Message, type NodeId, type SimNetwork } from './sim-network';

export interface SimBrokerOptions {
  readonly id: ReplicaId;
  readonly flushPolicy: FlushPolicy;
  readonly config: Partial<ReplicationConfig>;
  /** Milliseconds per simulation step. */
  readonly stepMs: number;
  /** Records per fetch answer (stands for the fetch byte limit). */
  readonly fetchMaxRecords: number;
  /** A fetch unanswered this long is presumed lost, ms. */
  readonly fetchTimeoutMs: number;
  /** Deadline of an acks=all produce, ms. */
  readonly produceTimeoutMs: number;
  readonly maxLogRecords: number;
  /** Steps between learning of a leadership and taking it up (drawn per election). Default 0. */
  readonly takeoverDelaySteps?: () => number;
}

/** Observations for the checker. */
export interface BrokerEvents {
  onBecomeLeader(broker: SimBroker, epoch: number): void;
  /** The leader core of `broker` moved its high watermark (consumers may now read below it). */
  onLeaderHighWatermark(broker: SimBroker): void;
  /** The log of `broker` lost or replaced offsets >= `offset`. */
  onLogCut(broker: SimBroker, offset: number): void;
}

export class SimBroker {
  readonly id: ReplicaId;
  readonly log: SimLog;
  up = true;
  incarnation = 0;
  private uncleanRestart = false;
  /** The latest partition state learned from the controller. */
  metadata: PartitionState | null = null;
  leader: PartitionLeader | null = null;
  follower: PartitionFollower | null = null;
  /** Volatile high watermark (leader's or follower's). */
  private hw = 0;
  /** The checkpointed HW (survives crashes; written now and then, so it may be stale). */
  private hwCheckpoint = 0;
  /** Produce requests waiting for the leader core: requestId -> offset. Bounded by the core's maxPendingProduces. */
  private readonly pendingProduces = new Map<number, number>();
  private nextProduceKey = 1;
  private readonly produceKeys = new Map<number, number>();
  private followerGeneration = 0;
  /** Leadership the metadata gave us, taken up at `atStep` (see takeoverDelaySteps). */
  private pendingLeadership: { epoch: number; atStep: number } | null = null;
  private fencedBrokers: readonly ReplicaId[] = [];
  /** Idempotent-producer state: a function of the log, rebuilt after a crash or a truncation. */
  private producers = new ProducerStateManager();

  constructor(
    private readonly opts: SimBrokerOptions,
    private readonly net: SimNetwork,
    private readonly events: BrokerEvents,
  ) {
    this.id = opts.id;
    this.log = new SimLog(opts.flushPolicy, opts.maxLogRecords);
  }

  get highWatermark(): number {
    return this.hw;
  }

  /** The leader epoch this broker currently leads, or null. */
  get leaderEpoch(): number | null {
    return this.leader !== null && !this.leader.isResigned ? this.leader.leaderEpoch : null;
  }

  // -------------------------------------------------------------------------------------------
  // machine faults

  /** Power loss: unflushed records and all memory are gone. */
  crash(): void {
    const before = this.log.logEndOffset;
    this.log.crash();
    if (this.log.logEndOffset < before) this.events.onLogCut(this, this.log.logEndOffset);
    this.rebuildProducerState();
    this.up = false;
    this.leader = null;
    this.follower = null;
    this.metadata = null;
    this.pendingLeadership = null;
    this.pendingProduces.clear();
    this.produceKeys.clear();
    this.net.dropTo(this.id);
  }

  /** Comes back after a crash: an unclean restart, recovering the HW from its checkpoint. */
  restart(step: number): void {
    this.up = true;
    this.incarnation++;
    this.uncleanRestart = true;
    this.hw = Math.min(this.hwCheckpoint, this.log.logEndOffset);
    this.heartbeat(step);
  }

  /** The group-committed fsync completes: everything appended is durable. */
  flush(step: number): void {
    this.log.flush();
    this.leader?.onLocalLogChanged();
    this.drainLeader(step);
  }

  checkpointHighWatermark(): void {
    this.hwCheckpoint = this.hw;
  }

  // -------------------------------------------------------------------------------------------
  // step and messages

  /** One step of this broker's own activity (not called while crashed or paused). */
  tick(step: number): void {
    const now = step * this.opts.stepMs;
    this.heartbeat(step);
    const pending = this.pendingLeadership;
    if (pending !== null && step >= pending.atStep) {
      this.pendingLeadership = null;
      const m = this.metadata;
      if (m !== null && m.leader === this.id && m.leaderEpoch === pending.epoch) {
        this.becomeLeader(m, now, step);
        this.leader?.setIneligibleReplicas(this.fencedBrokers);
        this.drainLeader(step);
      }
    }
    if (this.leader !== null) {
      this.leader.tick(now);
      this.drainLeader(step);
    }
    if (this.follower !== null) {
      const out = this.follower.pollFetch(now, this.opts.fetchTimeoutMs);
      if (out !== null) this.net.send(this.id, out.leaderId, { type: 'fetch', correlationId: out.correlationId, request: out.request }, step);
    }
  }

  private heartbeat(step: number): void {
    this.net.send(this.id, CONTROLLER_ID, { type: 'heartbeat', incarnation: this.incarnation, uncleanRestart: this.uncleanRestart }, step);
  }

  receive(m: Message, step: number): void {
    const now = step * this.opts.stepMs;
    const p = m.payload;
    switch (p.type) {
      case 'metadata':
        // A restarted broker acts on metadata only once the controller has seen its new
        // registration (KRaft's broker epoch): the state it then gets already reflects the fencing
        // of its previous incarnation, so it never resumes an old leader epoch with a log that lost
        // its unflushed tail.
        if (p.incarnation === this.incarnation) this.onMetadata(p.state, p.fenced, step);
        return;
      case 'fetch':
        this.onFetch(m.from, p.correlationId, p.request, step, now);
        return;
      case 'consumer-fetch':
        this.onConsumerFetch(m.from, p.correlationId, p.request, step);
        return;
      case 'fetch-response':
        this.onFetchResponse(m.from, p.correlationId, p.decision, p.records, now);
        return;
      case 'produce':
        this.onProduce(p.requestId, p.value, p.producerId !== undefined && p.sequence !== undefined ? { producerId: p.producerId, sequence: p.sequence } : undefined, step, now);
        return;
      case 'alter-partition-response':
        if (this.leader !== null) {
          this.leader.onAlterPartitionResponse(p.request, p.response);
          this.drainLeader(step);
        }
        return;
      default:
        return;
    }
  }

  private onMetadata(state: PartitionState, fenced: readonly ReplicaId[], step: number): void {
    const m = this.metadata;
    if (m !== null && (state.leaderEpoch < m.leaderEpoch || (state.leaderEpoch === m.leaderEpoch && state.partitionEpoch <= m.partitionEpoch))) {
      // Older or same: only the fenced set may be news.
      this.fencedBrokers = fenced;
      this.leader?.setIneligibleReplicas(fenced);
      return;
    }
    this.metadata = state;
    this.fencedBrokers = fenced;
    const now = step * this.opts.stepMs;
    if (state.leader === this.id) {
      if (this.leader === null || this.leader.leaderEpoch < state.leaderEpoch) {
        const delay = this.opts.takeoverDelaySteps?.() ?? 0;
        if (delay > 0) {
          // Taking up leadership takes a while (loading the log, say): meanwhile this broker
          // knows the new epoch but is not leader, and answers NOT_LEADER_OR_FOLLOWER.
          this.resignLeadership(step);
          this.follower = null;
          this.pendingLeadership = { epoch: state.leaderEpoch, atStep: step + delay };
          return;
        }
        this.becomeLeader(state, now, step);
      } else this.leader.onPartitionState(state);
      this.leader?.setIneligibleReplicas(fenced);
      this.drainLeader(step);
      return;
    }
    this.pendingLeadership = null;
    this.resignLeadership(step);
    if (state.leader === null) {
      this.follower = null;
      return;
    }
    if (this.follower === null || this.follower.leaderEpoch < state.leaderEpoch || this.follower.leaderId !== state.leader) {
      this.followerGeneration++;
      this.follower = new PartitionFollower({
        localReplicaId: this.id,
        leaderId: state.leader,
        leaderEpoch: state.leaderEpoch,
        log: this.log,
        highWatermark: this.hw,
        retryBackoffMs: 5 * this.opts.stepMs,
        // Unique across follower objects and restarts: a late answer to an earlier stream is never taken for ours.
        firstCorrelationId: (this.incarnation * 1_000_000 + this.followerGeneration) * 1_000_000,
      });
    }
  }

  private becomeLeader(state: PartitionState, now: number, step: number): void {
    // A leadership taken up now supersedes one scheduled earlier for the same epoch: replacing a
    // live leader core would drop its in-flight AlterPartition and let the HW pass an ISR member.
    this.pendingLeadership = null;
    this.resignLeadership(step);
    this.follower = null;
    // As the real broker (Partition.applyMetadata): the epoch starts at our log end from now on.
    this.log.assignLeaderEpoch(state.leaderEpoch);
    this.leader = new PartitionLeader({ localReplicaId: this.id, state, log: this.log, highWatermark: this.hw, nowMs: now, config: this.opts.config });
    this.hw = this.leader.highWatermark;
    this.events.onBecomeLeader(this, state.leaderEpoch);
  }

  private resignLeadership(step: number): void {
    if (this.leader === null) return;
    this.leader.resign();
    this.drainLeader(step);
    this.leader = null;
  }

  private onFetch(from: ReplicaId, correlationId: number, req: FollowerFetchRequest, step: number, now: number): void {
    let decision: FollowerFetchDecision;
    let records: SimRecord[] = [];
    if (this.leader !== null && !this.leader.isResigned) {
      decision = this.leader.handleFollowerFetch(req, now);
      if (decision.kind === 'read') records = this.log.read(decision.fetchOffset, this.opts.fetchMaxRecords);
      this.drainLeader(step);
    } else {
      // Not the leader: fence by what we know (KIP-320).
      const known = this.metadata?.leaderEpoch ?? -1;
      const error = req.currentLeaderEpoch < known ? 'FENCED_LEADER_EPOCH' : req.currentLeaderEpoch > known ? 'UNKNOWN_LEADER_EPOCH' : 'NOT_LEADER_OR_FOLLOWER';
      decision = { kind: 'error', error, leaderEpoch: known, logStartOffset: this.log.logStartOffset };
    }
    this.net.send(this.id, from, { type: 'fetch-response', correlationId, decision, records }, step);
  }

  /** A consumer's fetch: only the leader answers with records, and only below its HW. */
  private onConsumerFetch(from: NodeId, correlationId: number, req: ConsumerFetchRequest, step: number): void {
    let decision: ConsumerFetchDecision;
    let records: SimRecord[] = [];
    if (this.leader !== null && !this.leader.isResigned) {
      decision = this.leader.handleConsumerFetch(req);
      if (decision.kind === 'read') records = this.log.read(decision.fetchOffset, this.opts.fetchMaxRecords, decision.maxOffset);
    } else {
      const known = this.metadata?.leaderEpoch ?? -1;
      const error = req.currentLeaderEpoch < known ? 'FENCED_LEADER_EPOCH' : req.currentLeaderEpoch > known ? 'UNKNOWN_LEADER_EPOCH' : 'NOT_LEADER_OR_FOLLOWER';
      decision = { kind: 'error', error, leaderEpoch: known, logStartOffset: this.log.logStartOffset };
    }
    this.net.send(this.id, from, { type: 'consumer-fetch-response', correlationId, decision, records }, step);
  }

  private onFetchResponse(from: ReplicaId, correlationId: number, decision: FollowerFetchDecision, records: readonly SimRecord[], now: number): void {
    const f = this.follower;
    if (f === null || from !== f.leaderId) return;
    const action = f.onFetchResponse(correlationId, decision, now);
    switch (action.kind) {
      case 'append':
        if (decision.kind === 'read') {
          this.log.appendAsFollower(records);
          for (const r of records) {
            const h = producerHeader(r);
            if (h !== null) this.producers.load(h);
          }
          f.onAppended(decision.highWatermark);
          this.hw = f.highWatermark;
        }
        return;
      case 'truncate':
      case 'truncate-fully': {
        const before = this.log.logEndOffset;
        this.log.truncateTo(action.offset);
        if (this.log.logEndOffset < before) {
          this.events.onLogCut(this, this.log.logEndOffset);
          this.rebuildProducerState();
        }
        f.onTruncated();
        this.hw = f.highWatermark;
        return;
      }
      default:
        return;
    }
  }

  private onProduce(requestId: number, value: string, producer: { producerId: number; sequence: number } | undefined, step: number, now: number): void {
    const leader = this.leader;
    const reply = (error: string | null, offset: number): void => this.net.send(this.id, PRODUCER_ID, { type: 'produce-response', requestId, error, offset }, step);
    if (leader === null || leader.isResigned) return reply('NOT_LEADER_OR_FOLLOWER', -1);
    const err = leader.checkProduce(-1);
    if (err !== null) return reply(err, -1);
    let offset: number;
    const check = producer === undefined ? null : this.producers.check(producer.producerId, 0, producer.sequence, 0);
    if (check !== null && check.kind === 'error') return reply(check.error, -1);
    if (check !== null && check.kind === 'duplicate') {
      // A retry: answer with the original offset, once that is committed like any acks=all write.
      offset = check.lastOffset;
    } else {
      offset = this.log.appendAsLeader(value, leader.leaderEpoch, producer);
      if (producer !== undefined) this.producers.onAppended({ producerId: producer.producerId, producerEpoch: 0, baseSequence: producer.sequence, baseOffset: offset, lastOffsetDelta: 0 });
      if (this.log.flushPolicy === 'page-cache') leader.onLocalLogChanged();
    }
    const key = this.nextProduceKey++;
    this.pendingProduces.set(key, offset);
    this.produceKeys.set(key, requestId);
    leader.addProduceWaiter(key, offset, now + this.opts.produceTimeoutMs);
    this.drainLeader(step);
  }

  /** Carries out the leader core's outputs. */
  private drainLeader(step: number): void {
    const leader = this.leader;
    if (leader === null) return;
    const ready = leader.takeReady();
    if (ready.highWatermark !== null) {
      this.hw = ready.highWatermark;
      this.events.onLeaderHighWatermark(this);
    }
    if (ready.alterPartition !== null) this.net.send(this.id, CONTROLLER_ID, { type: 'alter-partition', request: ready.alterPartition }, step);
    for (const c of ready.completedProduces) {
      const offset = this.pendingProduces.get(c.requestId);
      const requestId = this.produceKeys.get(c.requestId);
      this.pendingProduces.delete(c.requestId);
      this.produceKeys.delete(c.requestId);
      if (offset === undefined || requestId === undefined) continue;
      this.net.send(this.id, PRODUCER_ID, { type: 'produce-response', requestId, error: c.error, offset }, step);
    }
  }

  /** Rebuilds the producer state from the log (what the broker does on load and after a truncation). */
  private rebuildProducerState(): void {
    const headers: ProducerBatchHeader[] = [];
    for (const r of this.log.slice()) {
      const h = producerHeader(r);
      if (h !== null) headers.push(h);
    }
    this.producers = ProducerStateManager.rebuild(headers);
  }
}

function producerHeader(r: SimRecord): ProducerBatchHeader | null {
  if (r.producerId === undefined || r.sequence === undefined) return null;
  return { producerId: r.producerId, producerEpoch: 0, baseSequence: r.sequence, baseOffset: r.offset, lastOffsetDelta: 0 };
}
