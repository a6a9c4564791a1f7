// Election study: how often does an election need more than one round (a split vote, or a
// campaign that failed for tick-phase reasons)? A fault-free cluster with pre-vote and
// check-quorum on; its leader is crashed `elections` times (restarted once a successor leads,
// and the next crash waits until every node has caught up).
// Clock phase is modelled: every tick the nodes tick in a random order, and messages are
// delivered after each node's tick, so a campaign can reach a peer before or after that peer's
// own tick. A round is a tick in which some node started a campaign (sent PreVote or Vote
// requests); every round completes within its tick (no delay), so an election with more than
// one round had a round that failed.

import { SeededRng } from '../core/rng';
import { Message, MessageType, NodeId, Role } from '../core/types';
import { SimCluster } from './sim-cluster';

export interface ElectionStudyOptions {
  readonly seed: number;
  readonly nodes?: number;
  readonly elections?: number;
  readonly electionTicks?: number;
}

export interface ElectionSample {
  /** Campaign rounds until a leader was elected (1 = the first campaign won). */
  readonly rounds: number;
  /** Ticks from the crash of the leader to the new leader. */
  readonly ticks: number;
}

export function runElectionStudy(opts: ElectionStudyOptions): ElectionSample[] {
  const n = opts.nodes ?? 3;
  const electionTicks = opts.electionTicks ?? 10;
  const ids: NodeId[] = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const rng = new SeededRng(opts.seed >>> 0);
  const cluster = new SimCluster({ ids, seed: rng.nextU32(), core: { electionTicks, heartbeatTicks: Math.ceil(electionTicks / 10) } });
  let campaignTicks = new Set<number>();
  const send = cluster.net.send.bind(cluster.net);
  cluster.net.send = (m: Message, now: number): void => {
    if ((m.type === MessageType.PreVote || m.type === MessageType.Vote) && m.context === 0) campaignTicks.add(now);
    send(m, now);
  };
  const step = (): void => {
    cluster.now++;
    const order = [...ids];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [order[i], order[j]] = [order[j] as NodeId, order[i] as NodeId];
    }
    for (const id of order) {
      cluster.tickNode(id);
      cluster.stabilize();
    }
  };
  const leaderOf = (): NodeId | undefined => ids.find((id) => cluster.node(id).role === Role.Leader);
  const limit = 100 * electionTicks;
  const caughtUp = (): boolean => {
    const l = ids.map((id) => cluster.node(id).core).find((c) => c?.role === Role.Leader);
    if (l === undefined || l === null) return false;
    return ids.every((id) => {
      const c = cluster.node(id).core;
      return c !== null && c.log.lastIndex() === l.log.lastIndex() && c.log.committed === l.log.committed;
    });
  };
  for (let t = 0; leaderOf() === undefined; t++) {
    if (t > limit) throw new Error(`election study seed ${opts.seed}: no first leader`);
    step();
  }
  const samples: ElectionSample[] = [];
  for (let k = 0; k < (opts.elections ?? 10); k++) {
    // Let the cluster settle: every node caught up with the leader (so an election measures
    // timing, not a lagging log), then a random part of a heartbeat round; crash the leader.
    for (let t = 0; !caughtUp(); t++) {
      if (t > limit) throw new Error(`election study seed ${opts.seed}: nodes did not catch up before crash ${k}`);
      step();
    }
    for (let i = 0; i < 1 + rng.nextInt(2 * electionTicks); i++) step();
    const victim = leaderOf();
    if (victim === undefined) throw new Error(`election study seed ${opts.seed}: no leader before crash ${k}`);
    cluster.crash(victim);
    campaignTicks = new Set();
    const t0 = cluster.now;
    while (leaderOf() === undefined) {
      if (cluster.now - t0 > limit) throw new Error(`election study seed ${opts.seed}: no leader ${limit} ticks after crash ${k}`);
      step();
    }
    samples.push({ rounds: campaignTicks.size, ticks: cluster.now - t0 });
    cluster.restart(victim);
    cluster.stabilize();
  }
  return samples;
}
