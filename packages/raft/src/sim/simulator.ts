// The seeded simulator (after TigerBeetle's VOPR): one seed drives every choice of a run —
// fault rates, the schedule of ticks and deliveries, message drops, duplicates, delays and
// reorders, partitions (symmetric, one-way, isolations), crash-restarts that lose unpersisted
// state, compactions, proposals, reads and leadership transfers. The safety checker runs after
// every step. Then a liveness phase heals everything and requires a leader and a new commit on
// every node within a bounded number of ticks. Same seed, same run, bit for bit.

import { SeededRng } from '../core/rng';
import { ConfChangeType, NodeId } from '../core/types';
import { SafetyViolation } from './checker';
import { SimCluster } from './sim-cluster';
import { NO_FAULTS } from './sim-network';

export interface SimRunOptions {
  readonly seed: number;
  /** 3 or 5 voters (any count >= 1 works). Default 3. */
  readonly nodes?: number;
  /** Ticks of the fault-injecting safety phase. Default 1500. */
  readonly safetyTicks?: number;
  /** Bound on the liveness phase, in election timeouts. Default 30. */
  readonly livenessElectionTimeouts?: number;
  /**
   * Membership changes: a spare node joins as a learner, is promoted once caught up, then one
   * original voter is removed (possibly the leader). Default true.
   */
  readonly membership?: boolean;
}

export interface SimRunResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly kind?: 'safety' | 'liveness' | 'crash';
  readonly error?: string;
  readonly stats: {
    ticks: number;
    messages: number;
    dropped: number;
    commits: number;
    maxTerm: number;
    crashes: number;
    compactions: number;
    checks: number;
    livenessTicks: number;
    /** Membership changes applied by the final leader (bootstrap entries excluded). */
    confChanges: number;
    /** Leader Readies persisted in the background (RaftCore.advanceAsync). */
    asyncReadies: number;
    /** Snapshots captured at one point and compacted later (SimNode.finishSnapshot), and those dropped as stale. */
    deferredCompactions: number;
    staleSnapshots: number;
  };
}

const ELECTION_TICKS = 10;
const enc = new TextEncoder();

export function runSeed(opts: SimRunOptions): SimRunResult {
  const seed = opts.seed >>> 0;
  const rng = new SeededRng(seed);
  const n = opts.nodes ?? 3;
  const voters: NodeId[] = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const membership = opts.membership ?? true;
  const spare: NodeId = `n${n + 1}`;
  const ids: NodeId[] = membership ? [...voters, spare] : voters;
  const safetyTicks = opts.safetyTicks ?? 1500;
  const livenessTicks = (opts.livenessElectionTimeouts ?? 30) * ELECTION_TICKS;

  // Per-seed fault profile: some seeds are gentle, some brutal, so both long stable periods
  // (deep logs, compaction, pipelining) and constant churn (elections, back-off) get explored.
  const profile = {
    dropRate: rng.chance(0.3) ? 0 : rng.nextInt(25) / 100,
    duplicateRate: rng.chance(0.5) ? 0 : rng.nextInt(10) / 100,
    maxDelayTicks: rng.nextInt(6),
    crashRate: rng.chance(0.2) ? 0 : (1 + rng.nextInt(80)) / 1000,
    restartRate: (5 + rng.nextInt(60)) / 100,
    partitionRate: rng.chance(0.2) ? 0 : (1 + rng.nextInt(100)) / 1000,
    healRate: (2 + rng.nextInt(20)) / 100,
    proposeRate: (10 + rng.nextInt(80)) / 100,
    compactRate: rng.chance(0.2) ? 0 : (1 + rng.nextInt(30)) / 1000,
    transferRate: rng.nextInt(5) / 1000,
    readRate: rng.nextInt(200) / 1000,
    skipTickRate: rng.nextInt(5) / 100,
    deferReadyRate: rng.nextInt(40) / 100,
    crashMidReadyRate: rng.chance(0.5) ? 0 : rng.nextInt(20) / 10_000,
    memberRate: membership && rng.chance(0.7) ? (1 + rng.nextInt(20)) / 1000 : 0,
    // A leader persisting in the background (thesis §10.2.1), and how soon its writes complete.
    asyncPersistRate: rng.chance(0.25) ? 0 : rng.nextInt(101) / 100,
    writeCompleteRate: (10 + rng.nextInt(91)) / 100,
    // Snapshots taken in the background (RaftNode's asynchronous StateMachine.snapshot): the
    // share of compactions captured now and compacted later, and how soon they finish.
    deferredSnapshotShare: rng.chance(0.3) ? 0 : rng.nextInt(101) / 100,
    snapshotFinishRate: (2 + rng.nextInt(40)) / 100,
  };

  const cluster = new SimCluster({
    ids,
    voters,
    seed: rng.nextU32(),
    core: {
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 2,
      maxInflight: 1 + rng.nextInt(8),
      maxEntriesPerMsg: rng.chance(0.5) ? 1 : 1 + rng.nextInt(16),
      snapshotChunkBytes: 1 + rng.nextInt(8),
    },
    deferReadyRate: profile.deferReadyRate,
    crashMidReadyRate: profile.crashMidReadyRate,
    asyncPersistRate: profile.asyncPersistRate,
  });
  cluster.net.faults = { dropRate: profile.dropRate, duplicateRate: profile.duplicateRate, maxDelayTicks: profile.maxDelayTicks };

  let proposals = 0;
  let compactions = 0;
  let reads = 0;
  const stats = (): SimRunResult['stats'] => {
    let maxTerm = 0;
    let crashes = 0;
    let commits = 0;
    let asyncReadies = 0;
    let deferredCompactions = 0;
    let staleSnapshots = 0;
    for (const node of cluster.nodes.values()) {
      asyncReadies += node.asyncReadies;
      deferredCompactions += node.deferredCompactions;
      staleSnapshots += node.staleSnapshots;
      maxTerm = Math.max(maxTerm, node.term);
      crashes += node.crashes;
      commits = Math.max(commits, node.core?.log.committed ?? 0);
    }
    const cs = cluster.leader()?.core?.confState();
    const confChanges = cs === undefined ? 0 : (cs.learners.includes(spare) ? 1 : cs.voters.includes(spare) ? 2 : 0) + (cs.voters.length < n + (cs.voters.includes(spare) ? 1 : 0) ? 1 : 0);
    return { ticks: cluster.now, messages: cluster.net.sent, dropped: cluster.net.dropped, commits, maxTerm, crashes, compactions, checks: cluster.checker.checks, livenessTicks: 0, confChanges, asyncReadies, deferredCompactions, staleSnapshots };
  };
  const pick = <T>(xs: readonly T[]): T => {
    const x = xs[rng.nextInt(xs.length)];
    if (x === undefined) throw new Error('pick from empty list');
    return x;
  };

  try {
    // Safety phase.
    for (let t = 0; t < safetyTicks; t++) {
      cluster.now++;
      for (const id of ids) if (!rng.chance(profile.skipTickRate)) cluster.tickNode(id);

      if (rng.chance(profile.proposeRate)) {
        const target = rng.chance(0.8) ? cluster.leader()?.id ?? pick(ids) : pick(ids);
        const node = cluster.node(target);
        if (node.core !== null) {
          const batch = 1 + rng.nextInt(3);
          const datas: Uint8Array[] = [];
          for (let i = 0; i < batch; i++) datas.push(enc.encode(`${seed}:${proposals++}`));
          node.core.propose(datas);
          cluster.processReady(node);
        }
      }
      if (rng.chance(profile.crashRate)) {
        const live = ids.filter((id) => cluster.node(id).alive);
        if (live.length > 0) cluster.crash(pick(live));
      }
      for (const id of ids) if (!cluster.node(id).alive && rng.chance(profile.restartRate / 10)) cluster.restart(id);
      if (rng.chance(profile.partitionRate)) {
        const kind = rng.nextInt(3);
        if (kind === 0) cluster.isolate(pick(ids));
        else if (kind === 1) cluster.net.cutOneWay(pick(ids), pick(ids));
        else cluster.net.partition(ids.filter(() => rng.chance(0.5)), ids);
      }
      if (cluster.net.cutCount > 0 && rng.chance(profile.healRate / 10)) cluster.heal();
      if (rng.chance(profile.compactRate)) {
        const node = cluster.node(pick(ids));
        if (rng.chance(profile.deferredSnapshotShare)) node.startSnapshot();
        else if (node.compact()) compactions++;
      }
      for (const id of ids) {
        const node = cluster.node(id);
        if (node.snapshotPending && rng.chance(profile.snapshotFinishRate) && node.finishSnapshot()) compactions++;
      }
      if (rng.chance(profile.transferRate)) {
        const l = cluster.leader();
        if (l?.core) {
          l.core.transferLeadership(pick(ids));
          cluster.processReady(l);
        }
      }
      if (rng.chance(profile.memberRate)) {
        // Single-server changes (thesis §4.1): add the spare as a learner, promote it once it
        // caught up, then remove one original voter. The core refuses a change while another
        // is pending or before the leader's first entry is applied.
        const l = cluster.leader();
        if (l?.core) {
          const cs = l.core.confState();
          if (!cs.voters.includes(spare) && !cs.learners.includes(spare)) {
            if (cs.voters.length === n) l.core.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: spare });
          } else if (cs.learners.includes(spare)) {
            l.core.proposeConfChange({ type: ConfChangeType.AddVoter, nodeId: spare });
          } else if (cs.voters.length > n) {
            l.core.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: pick(voters) });
          }
          cluster.processReady(l);
        }
      }
      if (rng.chance(profile.readRate)) {
        const node = cluster.node(pick(ids));
        if (node.core !== null) {
          node.readIndex(++reads);
          cluster.processReady(node);
        }
      }
      // Deliveries: a few rounds per tick so that zero-delay exchanges complete within it.
      for (let round = 0; round < 4; round++) {
        if (cluster.deliverDue(true) === 0) break;
      }
      // Background writes complete in order, some of them now (unless the node crashes first).
      for (const id of ids) {
        const node = cluster.node(id);
        if (node.pendingWriteCount > 0 && rng.chance(profile.writeCompleteRate)) {
          node.completeWrites(1 + rng.nextInt(node.pendingWriteCount));
          cluster.processReady(node);
        }
      }
      // Deferred readies are eventually handled (unless the node crashes first).
      for (const id of ids) if (!rng.chance(profile.deferReadyRate)) cluster.processReady(cluster.node(id));
    }

    // Liveness phase: heal the network, restart everyone, stop injecting faults.
    cluster.heal();
    cluster.net.faults = NO_FAULTS;
    cluster.deferReadyRate = 0;
    cluster.crashMidReadyRate = 0;
    cluster.asyncPersistRate = 0;
    for (const id of ids) cluster.node(id).completeWrites();
    for (const id of ids) cluster.restart(id);
    cluster.processAllReady();
    const start = cluster.now;
    let target: { index: number; term: number } | null = null;
    for (;;) {
      if (cluster.now - start > livenessTicks) {
        const roles = ids.map((id) => `${id}:${cluster.node(id).role}@${cluster.node(id).term}`).join(' ');
        throw new LivenessFailure(
          target === null
            ? `no leader committed a proposal within ${livenessTicks} ticks after healing (${roles})`
            : `proposal at ${target.index} not applied everywhere within ${livenessTicks} ticks (${roles})`,
        );
      }
      cluster.tickAll(1);
      const l = cluster.leader();
      if (target === null && l?.core && l.core.log.term(l.core.log.committed) === l.core.term) {
        const res = l.core.propose([enc.encode(`${seed}:liveness`)]);
        cluster.processReady(l);
        if (res.ok) target = { index: res.firstIndex, term: res.term };
      }
      if (target !== null) {
        const t = target;
        // Only current members must apply it (a removed node no longer receives the log).
        const cs = cluster.leader()?.core?.confState();
        const members = cs === undefined ? ids : [...cs.voters, ...cs.learners];
        const done = members.every((id) => {
          const node = cluster.node(id);
          return node.smIndex >= t.index && node.core?.log.term(t.index) === t.term;
        });
        if (done) break;
        // If leadership moved before our entry committed, it may have been overwritten: retry.
        const ldr = cluster.leader();
        if (ldr?.core && ldr.core.term !== t.term && ldr.core.log.term(t.index) !== t.term) target = null;
      }
    }
    const s = stats();
    s.livenessTicks = cluster.now - start;
    return { seed, ok: true, stats: s };
  } catch (e: unknown) {
    const kind = e instanceof SafetyViolation ? 'safety' : e instanceof LivenessFailure ? 'liveness' : 'crash';
    const message = e instanceof Error ? `${e.message}${kind === 'crash' ? `\n${e.stack ?? ''}` : ''}` : String(e);
    return { seed, ok: false, kind, error: `tick ${cluster.now}: ${message}`, stats: stats() };
  }
}

export class LivenessFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LivenessFailure';
  }
}
