/**
 * Runs the built `strand` CLI against a cluster: `--bootstrap` appended, stdin given as a
 * string, killed after 30 s so a hung command fails its test instead of the run.
 */
import { runStrand, type StrandRun } from '../../packages/cli/test/support/run-strand';

export type CliResult = StrandRun;

export function cli(args: string[], bootstrap: string, stdin = ''): Promise<CliResult> {
  return runStrand([...args, '--bootstrap', bootstrap], { stdin, limitMs: 30_000 });
}
