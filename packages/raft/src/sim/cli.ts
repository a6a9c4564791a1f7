// Command line for the seeded Raft simulator:
//   node packages/raft/dist/sim/cli.js --seeds N [--nodes 3|5] [--seed S] [--ticks T] [--verbose]
// Runs seeds S..S+N-1 (S random unless given) and, on the first failure, prints the seed and the
// exact command that replays it, then exits 1.

import { randomInt } from 'node:crypto';
import { runSeed } from './simulator';

interface CliArgs {
  seeds: number;
  nodes: number;
  seed: number | null;
  ticks: number | undefined;
  verbose: boolean;
}

function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { seeds: 1, nodes: 3, seed: null, ticks: undefined, verbose: false };
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
      default:
        throw new Error(`unknown argument ${a ?? ''} (usage: --seeds N [--nodes 3|5] [--seed S] [--ticks T] [--verbose])`);
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

process.exitCode = main();
