/**
 * Tests of the built `strand` binary against the client's in-memory broker twin: checks that
 * the binary is built, starts a three-broker MemoryCluster before each test and stops it after,
 * and runs the CLI with STRAND_BOOTSTRAP pointing at it. Call it where the tests are declared
 * (in a describe, or at the top of a file).
 */
import * as fs from 'node:fs';
import { MemoryCluster } from '../../../client/test/support/memory-broker';
import { STRAND_CLI, runStrand, startStrand, type StrandProcess, type StrandRun } from './run-strand';

export interface TwinCluster {
  /** The current test's cluster (a new one per test). */
  readonly mem: MemoryCluster;
  /** Runs `strand ...args` against it; killed after `limitMs` (default 20 s). */
  strand(args: readonly string[], options?: { stdin?: string; limitMs?: number }): Promise<StrandRun>;
  /** Starts `strand ...args` against it and hands back the running child (to signal it, ...). */
  start(args: readonly string[], options?: { stdin?: string; limitMs?: number }): StrandProcess;
}

export function useTwinCluster(): TwinCluster {
  let current: MemoryCluster | undefined;
  beforeAll(() => {
    if (!fs.existsSync(STRAND_CLI)) throw new Error(`${STRAND_CLI} is missing: run \`npx tsc -b packages/cli\` before these tests`);
  });
  beforeEach(async () => {
    current = await MemoryCluster.start({ brokers: 3 });
  });
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  const twin: TwinCluster = {
    get mem(): MemoryCluster {
      if (current === undefined) throw new Error('the twin cluster exists only while a test runs');
      return current;
    },
    strand: (args, options = {}) => runStrand(args, { stdin: options.stdin ?? '', limitMs: options.limitMs ?? 20_000, env: { ...process.env, STRAND_BOOTSTRAP: twin.mem.bootstrap } }),
    start: (args, options = {}) => startStrand(args, { stdin: options.stdin ?? '', limitMs: options.limitMs ?? 20_000, env: { ...process.env, STRAND_BOOTSTRAP: twin.mem.bootstrap } }),
  };
  return twin;
}
