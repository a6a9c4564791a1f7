// Command line for the seeded Raft simulator:
//   node packages/raft/dist/sim/cli.js --seeds N [--nodes 3|5] [--seed S] [--ticks T] [--verbose]
// Runs seeds S..S+N-1 (S random unless given) and, on the first failure, prints the seed and the
// exact command that replays it, then exits 1.
//   ... --elections K: the election study instead (election-study.ts): per seed, crash the
// leader K times in a fault-free cluster and report how many elections needed more than one
// campaign round, and how many ticks they took.

import { randomInt } from 'node:crypto';
import { runElectionStudy } from './election-study';
import { runSeed } from './simulator';

interface CliArgs {
  seeds: number;
  nodes: number;
  seed: number | null;
  ticks: number | undefined;
  verbose: boolean;
  elections: number;
  electionTicks: number;
}

function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { seeds: 1, nodes: 3, seed: null, ticks: undefined, verbose: false, elections: 0, electionTicks: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${a ?? ''} needs a non-negative integer`);
      return v;
    };
    switch (a) {
      case '--seeds':
        args.seeds = next();
        break;
      case '--nodes':
        args.nodes = next();
        break;
      case '--seed':
        args.seed = next();
        break;
      case '--ticks':
        args.ticks = next();
        break;
      case '--verbose':
        args.verbose = true;
        break;
      case '--elections':
        args.elections = next();
        break;
      case '--election-ticks':
        args.electionTicks = next();
        break;
      default:
        throw new Error(`unknown argument ${a ?? ''} (usage: --seeds N [--nodes 3|5] [--seed S] [--ticks T] [--verbose] [--elections K [--election-ticks N]])`);
    }
  }
  if (args.nodes < 1 || args.nodes > 9) throw new Error('--nodes must be 1..9');
  return args;
}

function main(): number {
  let args: CliArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e: unknown) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const first = args.seed ?? randomInt(0, 2 ** 31);
  if (args.elections > 0) return electionStudy(args, first);
  const t0 = process.hrtime.bigint();
  let ticks = 0;
  let messages = 0;
  for (let i = 0; i < args.seeds; i++) {
    const seed = (first + i) >>> 0;
    const r = runSeed({ seed, nodes: args.nodes, ...(args.ticks !== undefined ? { safetyTicks: args.ticks } : {}) });
    ticks += r.stats.ticks;
    messages += r.stats.messages;
    if (args.verbose) process.stdout.write(`seed ${seed}: ${r.ok ? 'ok' : 'FAIL'} ${JSON.stringify(r.stats)}\n`);
    if (!r.ok) {
      const ticksArg = args.ticks !== undefined ? ` --ticks ${args.ticks}` : '';
      process.stdout.write(
        `raft-sim: seed ${seed} FAILED (${r.kind ?? 'unknown'}): ${r.error ?? ''}\n` +
          `replay: npm run test:raft-sim -- --seeds 1 --nodes ${args.nodes} --seed ${seed}${ticksArg} --verbose\n`,
      );
      return 1;
    }
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(
    `raft-sim: ${args.seeds} seeds (${first}..${first + args.seeds - 1}), ${args.nodes} nodes: ok in ${(ms / 1000).toFixed(1)} s (${ticks} ticks, ${messages} messages)\n`,
  );
  return 0;
}

function electionStudy(args: CliArgs, first: number): number {
  const rounds = new Map<number, number>();
  const ticks: number[] = [];
  for (let i = 0; i < args.seeds; i++) {
    const seed = (first + i) >>> 0;
    let samples;
    try {
      samples = runElectionStudy({ seed, nodes: args.nodes, elections: args.elections, electionTicks: args.electionTicks });
    } catch (e: unknown) {
      process.stdout.write(`raft-sim: election study seed ${seed} FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
    for (const s of samples) {
      rounds.set(s.rounds, (rounds.get(s.rounds) ?? 0) + 1);
      ticks.push(s.ticks);
    }
  }
  ticks.sort((a, b) => a - b);
  const total = ticks.length;
  const multi = [...rounds].filter(([r]) => r > 1).reduce((a, [, c]) => a + c, 0);
  const pct = (p: number): number => ticks[Math.min(total - 1, Math.ceil((p / 100) * total) - 1)] ?? NaN;
  const dist = [...rounds].sort((a, b) => a[0] - b[0]).map(([r, c]) => `${r}:${c}`).join(' ');
  process.stdout.write(
    `raft-sim election study: ${args.seeds} seeds (${first}..${first + args.seeds - 1}), ${args.nodes} nodes, ${total} elections after a leader crash\n` +
      `  needed more than one round: ${multi} (${((100 * multi) / total).toFixed(2)} %); rounds:count ${dist}\n` +
      `  ticks from crash to new leader (election timeout ${args.electionTicks} ticks): p50 ${pct(50)} p99 ${pct(99)} max ${ticks[total - 1] ?? NaN}\n`,
  );
  return 0;
}

process.exitCode = main();
