// The seeded replication simulator (TigerBeetle's VOPR, applied to one partition): one seed picks
// a fault profile and drives every choice of the run — message drops and delays (reorders),
// link cuts (broker-broker, broker-controller, producer-broker, isolations), crashes that lose
// unflushed bytes and unclean restarts, pauses, fsync timing and HW checkpoint timing — while an
// acks=all producer writes (plain, or idempotent with retries of the same sequence) and a consumer
// reads below the HW with its leader epoch. The checker runs after every step. Then a liveness phase heals
// everything and requires, within a bounded number of steps, a new acknowledged write and full
// convergence (one leader, full ISR, identical logs, HW at the log end, every ack present).
// Same seed, same run.

import { SafetyViolation } from './checker';
import { SeededRng } from './rng';
import { SimCluster, type SimClusterOptions } from './sim-cluster';
import { CONSUMER_ID, CONTROLLER_ID, NO_FAULTS, PRODUCER_ID } from './sim-network';

export interface SimRunOptions {
  readonly seed: number;
  /** Steps of the fault-injecting phase. Default 1500. */
  readonly safetySteps?: number;
  /** Bound on each liveness sub-phase (new ack; convergence), in steps. Default 600. */
  readonly livenessSteps?: number;
  /** Receives a line per notable event. */
  readonly trace?: (line: string) => void;
}

export interface SimRunStats {
  steps: number;
  messages: number;
  dropped: number;
  acks: number;
  writes: number;
  /** Idempotent re-sends of a batch (0 with the plain producer). */
  retries: number;
  crashes: number;
  elections: number;
  maxLeaderEpoch: number;
  logEnd: number;
  checks: number;
}

export interface SimRunResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly kind?: 'safety' | 'liveness' | 'crash';
  readonly error?: string;
  readonly stats: SimRunStats;
}

export function runSeed(opts: SimRunOptions): SimRunResult {
  const seed = opts.seed >>> 0;
  const rng = new SeededRng(seed ^ 0x5eed);
  const safetySteps = opts.safetySteps ?? 1500;
  const livenessSteps = opts.livenessSteps ?? 600;
  // Per-seed fault profile: some seeds gentle (deep logs, steady ISR), some brutal.
  const profile = {
    dropRate: rng.chance(0.3) ? 0 : rng.nextInt(20) / 100,
    maxDelaySteps: rng.nextInt(5),
    crashRate: rng.chance(0.2) ? 0 : (1 + rng.nextInt(15)) / 1000,
    restartRate: (2 + rng.nextInt(20)) / 100,
    pauseRate: rng.chance(0.3) ? 0 : (1 + rng.nextInt(10)) / 1000,
    cutRate: rng.chance(0.2) ? 0 : (1 + rng.nextInt(20)) / 1000,
    healRate: (1 + rng.nextInt(10)) / 100,
  };
  const clusterOpts: SimClusterOptions = {
    seed: rng.nextU32(),
    minInsyncReplicas: 1 + rng.nextInt(2),
    flushRate: (2 + rng.nextInt(8)) / 10,
    hwCheckpointRate: rng.nextInt(30) / 100,
    producerMaxInFlight: 1 + rng.nextInt(4),
    produceRate: (2 + rng.nextInt(8)) / 10,
    replicaLagTimeMaxMs: (10 + rng.nextInt(30)) * 10,
    sessionTimeoutSteps: 15 + rng.nextInt(30),
    idempotentProducer: rng.chance(0.5),
    maxTakeoverDelaySteps: rng.chance(0.5) ? 0 : rng.nextInt(10),
    ...(opts.trace !== undefined ? { trace: opts.trace } : {}),
  };
  const c = new SimCluster(clusterOpts);
  const stats = (): SimRunStats => ({
    steps: c.step,
    messages: c.net.sent,
    dropped: c.net.dropped,
    acks: c.producer.acks,
    writes: c.producer.writes,
    retries: c.producer.retries,
    crashes: c.crashes,
    elections: c.controller.elections,
    maxLeaderEpoch: c.controller.state.leaderEpoch,
    logEnd: Math.max(...[...c.brokers.values()].map((b) => b.log.logEndOffset)),
    checks: c.checker.checks,
  });
  const nodes = [CONTROLLER_ID, PRODUCER_ID, CONSUMER_ID, ...c.ids];
  try {
    c.net.faults = { dropRate: profile.dropRate, maxDelaySteps: profile.maxDelaySteps };
    for (let i = 0; i < safetySteps; i++) {
      for (const id of c.ids) {
        const b = c.broker(id);
        if (b.up && rng.chance(profile.crashRate)) c.crash(id);
        else if (!b.up && rng.chance(profile.restartRate)) c.restart(id);
        else if (b.up && !c.isPaused(id) && rng.chance(profile.pauseRate)) c.pause(id, 1 + rng.nextInt(60));
      }
      if (rng.chance(profile.cutRate)) {
        if (rng.chance(0.3)) {
          const id = rng.pick(c.ids);
          c.isolate(id);
          opts.trace?.(`[${c.step}] isolate broker ${id}`);
        }
        else {
          const a = rng.pick(nodes);
          const b = rng.pick(nodes.filter((n) => n !== a));
          c.net.cutLink(a, b);
          opts.trace?.(`[${c.step}] cut ${a}-${b}`);
        }
      }
      if (c.net.cutLinks > 0 && rng.chance(profile.healRate)) {
        c.net.healAll();
        opts.trace?.(`[${c.step}] heal all links`);
      }
      c.runStep();
    }
    // Liveness: heal everything, then a fresh write must be acknowledged and the replicas converge.
    c.net.faults = { ...NO_FAULTS };
    c.net.healAll();
    c.unpauseAll();
    for (const id of c.ids) {
      c.restart(id);
      c.flushRate.set(id, 0.5);
    }
    c.producer.enabled = true;
    const from = c.step;
    if (!c.runUntil(() => c.producer.lastAckStep > from, livenessSteps)) {
      return { seed, ok: false, kind: 'liveness', error: `no write acknowledged within ${livenessSteps} steps after healing (${c.notConvergedBecause() ?? 'converged'})`, stats: stats() };
    }
    c.producer.enabled = false;
    if (!c.runUntil(() => c.notConvergedBecause() === null, livenessSteps)) {
      return { seed, ok: false, kind: 'liveness', error: `replicas did not converge within ${livenessSteps} steps: ${c.notConvergedBecause() ?? ''}`, stats: stats() };
    }
    c.checkConverged();
    return { seed, ok: true, stats: stats() };
  } catch (e: unknown) {
    if (e instanceof SafetyViolation) return { seed, ok: false, kind: 'safety', error: `${e.message} (step ${c.step})`, stats: stats() };
    return { seed, ok: false, kind: 'crash', error: `${e instanceof Error ? (e.stack ?? e.message) : String(e)} (step ${c.step})`, stats: stats() };
  }
}
