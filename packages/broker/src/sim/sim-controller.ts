// A tiny model of the controller's part in replication, for the simulator: broker sessions
// (heartbeats, fencing after a session timeout), leader election from the ISR of live brokers
// (unclean election off), AlterPartition with epoch checks, and the partition state pushed to
// brokers as metadata. The real controller (packages/controller) owns these rules; the model
// states what the replication core relies on:
// - leader epoch and partition epoch only grow; each election bumps both, each ISR change the
//   partition epoch;
// - a leader is elected only from the ISR, among unfenced brokers (no unclean election);
// - a fenced broker leaves the ISR, except the last member, which stays so that the partition
//   can come back with it ("last replica standing");
// - `chooseLeader` (KIP-966): a replica that restarted uncleanly since it was last in sync is not
//   preferred over one that was not; under `flush.policy=page-cache` it is not electable at all
//   (it may have lost acknowledged bytes), under `fsync` it is (it only lost bytes that never
//   counted toward the high watermark);
// - AlterPartition is accepted only from the current leader, at the current leader and partition
//   epochs, with an ISR that contains the leader, lies within the replicas, and adds no fenced
//   broker (KIP-841).

import {
  canonicalIsr,
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type PartitionState,
  type ReplicaId,
} from '../replication/types';
import type { FlushPolicy } from './sim-log';

export interface BrokerSession {
  lastHeartbeatStep: number;
  fenced: boolean;
  incarnation: number;
  /** Restarted uncleanly and has not rejoined the ISR since (KIP-966). */
  uncleanRestart: boolean;
}

/**
 * KIP-966's rule, as a pure function: the leader to elect from `isr`, or null (partition offline).
 * Candidates are unfenced ISR members; clean ones first (lowest id among equals, deterministic).
 */
export function chooseLeader(
  isr: readonly ReplicaId[],
  isFenced: (id: ReplicaId) => boolean,
  restartedUncleanly: (id: ReplicaId) => boolean,
  flushPolicy: FlushPolicy,
): ReplicaId | null {
  const live = canonicalIsr(isr).filter((r) => !isFenced(r));
  const clean = live.filter((r) => !restartedUncleanly(r));
  if (clean.length > 0) return clean[0] as ReplicaId;
  if (flushPolicy === 'fsync' && live.length > 0) return live[0] as ReplicaId;
  return null;
}

export interface SimControllerOptions {
  readonly replicas: readonly ReplicaId[];
  /** Steps without a heartbeat before a broker is fenced. */
  readonly sessionTimeoutSteps: number;
  readonly flushPolicy: FlushPolicy;
}

export class SimController {
  private _state: PartitionState;
  readonly sessions = new Map<ReplicaId, BrokerSession>();
  /** Bumped whenever the state changes, so the cluster knows to push metadata. */
  version = 0;
  elections = 0;
  /** Called on each election (with the new leader epoch), for the checker. */
  onElection: ((leaderEpoch: number) => void) | null = null;

  constructor(private readonly opts: SimControllerOptions) {
    const replicas = canonicalIsr(opts.replicas);
    for (const r of replicas) this.sessions.set(r, { lastHeartbeatStep: 0, fenced: false, incarnation: 0, uncleanRestart: false });
    // Topic creation: the first replica leads epoch 0 with every replica in sync.
    this._state = { leader: replicas[0] as ReplicaId, leaderEpoch: 0, partitionEpoch: 0, replicas, isr: replicas };
  }

  get state(): PartitionState {
    return this._state;
  }

  fencedBrokers(): ReplicaId[] {
    return [...this.sessions].filter(([, s]) => s.fenced).map(([id]) => id);
  }

  isFenced(id: ReplicaId): boolean {
    return this.sessions.get(id)?.fenced ?? true;
  }

  onHeartbeat(from: ReplicaId, incarnation: number, uncleanRestart: boolean, step: number): void {
    const s = this.sessions.get(from);
    if (s === undefined || incarnation < s.incarnation) return;
    if (incarnation > s.incarnation) {
      // A new registration: the broker restarted. Its old session is over whatever it was doing.
      s.incarnation = incarnation;
      if (uncleanRestart) s.uncleanRestart = true;
      if (!s.fenced) this.fence(from);
    }
    s.lastHeartbeatStep = step;
    if (s.fenced) {
      s.fenced = false;
      this.version++;
      if (this._state.leader === null && this._state.isr.includes(from)) this.elect();
    }
  }

  tick(step: number): void {
    for (const [id, s] of this.sessions) {
      if (!s.fenced && step - s.lastHeartbeatStep > this.opts.sessionTimeoutSteps) this.fence(id);
    }
  }

  private fence(id: ReplicaId): void {
    const s = this.sessions.get(id) as BrokerSession;
    s.fenced = true;
    this.version++;
    const st = this._state;
    const isr = st.isr.filter((r) => r !== id);
    if (st.leader === id) {
      this.elect();
    } else if (isr.length > 0 && isr.length !== st.isr.length) {
      this._state = { ...st, isr, partitionEpoch: st.partitionEpoch + 1 };
    }
  }

  /** Elects from the ISR among unfenced brokers; fenced members leave the ISR (but never the last). */
  private elect(): void {
    const st = this._state;
    const leader = chooseLeader(st.isr, (r) => this.isFenced(r), (r) => this.sessions.get(r)?.uncleanRestart === true, this.opts.flushPolicy);
    const liveIsr = st.isr.filter((r) => !this.isFenced(r) || r === leader);
    const isr = liveIsr.length > 0 ? liveIsr : st.isr;
    if (leader === null && st.leader === null && isr.length === st.isr.length) return; // still offline, nothing changed
    this._state = { ...st, leader, isr: canonicalIsr(isr), leaderEpoch: st.leaderEpoch + 1, partitionEpoch: st.partitionEpoch + 1 };
    this.elections++;
    this.version++;
    this.onElection?.(this._state.leaderEpoch);
  }

  onAlterPartition(req: AlterPartitionRequest): AlterPartitionResponse {
    const st = this._state;
    if (req.leaderEpoch !== st.leaderEpoch) return { error: 'FENCED_LEADER_EPOCH' };
    if (req.leaderId !== st.leader) return { error: 'NOT_LEADER_OR_FOLLOWER' };
    if (req.partitionEpoch !== st.partitionEpoch) return { error: 'INVALID_UPDATE_VERSION' };
    if (!req.newIsr.includes(req.leaderId) || req.newIsr.some((r) => !st.replicas.includes(r))) return { error: 'INVALID_REQUEST' };
    if (req.newIsr.some((r) => !st.isr.includes(r) && this.isFenced(r))) return { error: 'INELIGIBLE_REPLICA' };
    const isr = canonicalIsr(req.newIsr);
    // A member (re)joining the ISR has caught up with the high watermark: it holds the committed
    // data again, so an earlier unclean restart no longer disqualifies it.
    for (const r of isr) {
      const s = this.sessions.get(r);
      if (s !== undefined) s.uncleanRestart = false;
    }
    this._state = { ...st, isr, partitionEpoch: st.partitionEpoch + 1 };
    this.version++;
    return { error: null, leaderEpoch: st.leaderEpoch, partitionEpoch: this._state.partitionEpoch, isr };
  }
}
