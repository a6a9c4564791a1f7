// Command line for the seeded replication simulator:
//   node packages/broker/dist/sim/cli.js --seeds N [--seed S] [--steps T] [--verbose]
// (or `npm run test:replication-sim -- --seeds N`). Runs seeds S..S+N-1 (S random unless given)
// and, on the first failure, prints the seed and the exact command that replays it, then exits 1.

import { randomInt } from 'node:crypto';
import { runSeed } from './simulator';

interface CliArgs {
  seeds: number;
  seed: number | null;
  steps: number | undefined;
  verbose: boolean;
  trace: boolean;
}

const USAGE = 'usage: --seeds N [--seed S] [--steps T] [--verbose] [--trace]';

function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { seeds: 1, seed: null, steps: undefined, verbose: false, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${a ?? ''} needs a non-negative integer (${USAGE})`);
      return v;
    };
    switch (a) {
      case '--seeds':
        args.seeds = next();
        break;
      case '--seed':
        args.seed = next();
        break;
      case '--steps':
        args.steps = next();
        break;
      case '--verbose':
        args.verbose = true;
        break;
      case '--trace':
        args.trace = true;
        break;
      default:
        throw new Error(`unknown argument ${a ?? ''} (${USAGE})`);
    }
  }
  if (args.seeds > 1_000_000) throw new Error('--seeds is limited to 1000000');
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
  let steps = 0;
  let acks = 0;
  let crashes = 0;
  for (let i = 0; i < args.seeds; i++) {
    const seed = (first + i) >>> 0;
    const trace = args.trace ? (line: string): void => void process.stdout.write(`${line}\n`) : undefined;
    const r = runSeed({ seed, ...(args.steps !== undefined ? { safetySteps: args.steps } : {}), ...(trace !== undefined ? { trace } : {}) });
    steps += r.stats.steps;
    acks += r.stats.acks;
    crashes += r.stats.crashes;
    if (args.verbose) process.stdout.write(`seed ${seed}: ${r.ok ? 'ok' : 'FAIL'} ${JSON.stringify(r.stats)}\n`);
    if (!r.ok) {
      const stepsArg = args.steps !== undefined ? ` --steps ${args.steps}` : '';
      process.stdout.write(
        `replication-sim: seed ${seed} FAILED (${r.kind ?? 'unknown'}): ${r.error ?? ''}\n` +
          `replay: npm run test:replication-sim -- --seeds 1 --seed ${seed}${stepsArg} --verbose --trace\n`,
      );
      return 1;
    }
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(
    `replication-sim: ${args.seeds} seeds (${first}..${first + args.seeds - 1}): ok in ${(ms / 1000).toFixed(1)} s (${steps} steps, ${acks} acknowledged writes, ${crashes} crashes)\n`,
  );
  return 0;
}

process.exitCode = main();
