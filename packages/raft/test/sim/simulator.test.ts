// Runs the seeded simulator (src/sim/simulator.ts) over a fixed range of seeds for 3- and
// 5-node clusters: each run injects drops, duplicates, delays, partitions, crash-restarts and
// compactions, checks the Raft safety properties after every step, then requires liveness once
// faults heal. Also checks that a run is a pure function of its seed (replayability).

import { runElectionStudy } from '../../src/sim/election-study';
import { runSeed } from '../../src/sim/simulator';

describe('seeded simulator', () => {
  test('30 seeds of 3 nodes are safe and live', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const r = runSeed({ seed, nodes: 3 });
      if (!r.ok) throw new Error(`seed ${seed}: ${r.error ?? ''}\nreplay: npm run test:raft-sim -- --seeds 1 --seed ${seed}`);
    }
  });

  test('20 seeds of 5 nodes are safe and live', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = runSeed({ seed, nodes: 5 });
      if (!r.ok) throw new Error(`seed ${seed}: ${r.error ?? ''}\nreplay: npm run test:raft-sim -- --seeds 1 --nodes 5 --seed ${seed}`);
    }
  });

  test('a run is determined by its seed', () => {
    const a = runSeed({ seed: 7, nodes: 3, safetyTicks: 400 });
    const b = runSeed({ seed: 7, nodes: 3, safetyTicks: 400 });
    expect(a).toEqual(b);
    const c = runSeed({ seed: 8, nodes: 3, safetyTicks: 400 });
    expect(c.stats).not.toEqual(a.stats);
  });

  test('the runs exercise faults: elections, crashes, drops and compactions (also deferred ones) happen', () => {
    let crashes = 0;
    let compactions = 0;
    let dropped = 0;
    let maxTerm = 0;
    let deferred = 0;
    for (let seed = 100; seed < 110; seed++) {
      const r = runSeed({ seed, nodes: 3 });
      crashes += r.stats.crashes;
      compactions += r.stats.compactions;
      deferred += r.stats.deferredCompactions;
      dropped += r.stats.dropped;
      maxTerm = Math.max(maxTerm, r.stats.maxTerm);
    }
    expect(crashes).toBeGreaterThan(0);
    expect(compactions).toBeGreaterThan(0);
    // Snapshots captured at one point and compacted after more entries were applied.
    expect(deferred).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
    expect(maxTerm).toBeGreaterThan(3);
  });
});

describe('election study (src/sim/election-study.ts)', () => {
  test('after a leader crash, a new leader is elected within one randomized timeout plus a round, rarely needing a second round', () => {
    const samples = [];
    for (let seed = 1; seed <= 30; seed++) samples.push(...runElectionStudy({ seed, nodes: 3, elections: 5 }));
    expect(samples.length).toBe(150);
    // Detection takes at most 2n ticks after the last heartbeat; a second round at most 2n more.
    for (const s of samples) expect(s.ticks).toBeLessThanOrEqual(40);
    const multi = samples.filter((s) => s.rounds > 1).length;
    expect(multi / samples.length).toBeLessThan(0.08);
    // Deterministic per seed.
    expect(runElectionStudy({ seed: 7, nodes: 5, elections: 3 })).toEqual(runElectionStudy({ seed: 7, nodes: 5, elections: 3 }));
  });
});
