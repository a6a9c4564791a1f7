// Runs the seeded replication simulator (crashes losing unflushed bytes, unclean restarts,
// pauses, link cuts, drops and reorders, an acks=all producer, plain or idempotent with retries,
// and a consumer reading below the HW) for a few dozen fixed seeds: every run must pass the safety checks after every step and then
// converge once faults heal. Also checks that a run is a pure function of its seed. The CLI runs many more seeds
// (npm run test:replication-sim -- --seeds 200).

import { runSeed } from '../../src/sim/simulator';

describe('replication simulator', () => {
  test.each(Array.from({ length: 40 }, (_, i) => 7000 + i * 7919))('seed %i is safe and converges', (seed) => {
    const r = runSeed({ seed });
    if (!r.ok) throw new Error(`seed ${seed} failed (${r.kind ?? ''}): ${r.error ?? ''}\nreplay: npm run test:replication-sim -- --seeds 1 --seed ${seed} --verbose --trace`);
    expect(r.stats.checks).toBeGreaterThan(1000);
  });

  // Seeds that once failed: 902220 (a late INVALID_UPDATE_VERSION made the leader stop counting
  // an ISR member an earlier copy of its proposal had just added; now a deterministic unit test in
  // partition-leader.test.ts) and 50058 with 5000 steps (a checker bug: a paused broker acting on
  // its election after later leaders committed more). The fault profile has grown since, so these
  // seeds no longer replay those exact runs; they stay as two more long runs. 496949283 (default
  // steps): the simulated broker took up a delayed leadership a second time at the same epoch,
  // replacing a leader core whose ISR expansion was in flight, so the HW passed the new member.
  test.each([
    [902220, 1500],
    [50058, 5000],
    [496949283, 1500],
  ])('regression seed %i (%i steps)', (seed, safetySteps) => {
    const r = runSeed({ seed, safetySteps });
    if (!r.ok) throw new Error(`seed ${seed} failed (${r.kind ?? ''}): ${r.error ?? ''}`);
  });

  test('the same seed gives the same run', () => {
    expect(runSeed({ seed: 42 })).toEqual(runSeed({ seed: 42 }));
  });

  test('the runs exercise faults and still acknowledge writes', () => {
    let crashes = 0;
    let elections = 0;
    let acks = 0;
    let retries = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = runSeed({ seed });
      crashes += r.stats.crashes;
      elections += r.stats.elections;
      acks += r.stats.acks;
      retries += r.stats.retries;
    }
    expect(retries).toBeGreaterThan(10); // idempotent re-sends, deduplicated across leader changes
    expect(crashes).toBeGreaterThan(20);
    expect(elections).toBeGreaterThan(10);
    expect(acks).toBeGreaterThan(500);
  });
});
