/**
 * Runs the built `strand` CLI as a child process: arguments, stdin as a string, an optional
 * environment, and a time limit after which it is killed (so a hung command fails its test
 * instead of the run). Shared by the CLI's own tests and the multi-process tests in test/.
 * `startStrand` hands back the running child, for tests that signal it or close its stdout while
 * it runs; `runStrand` waits for its end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';

export const STRAND_CLI = path.resolve(__dirname, '../../dist/bin/strand.js');

export interface StrandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface StrandOptions {
  stdin?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) after this long; default 20 s. */
  limitMs?: number;
}

export interface StrandProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves once the stdout read so far passes `test` (checked on every chunk); rejects if the child ends first. */
  untilStdout(test: (stdout: string) => boolean): Promise<void>;
  /** The child's end: exit code (null if killed by a signal), stdout and stderr. */
  readonly done: Promise<StrandRun>;
}

export function startStrand(args: readonly string[], options: StrandOptions = {}): StrandProcess {
  const child = spawn(process.execPath, [STRAND_CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(options.env !== undefined ? { env: options.env } : {}) });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<{ test: (s: string) => boolean; resolve: () => void }>();
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      if (!w.test(stdout)) continue;
      waiters.delete(w);
      w.resolve();
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 20_000);
  const done = new Promise<StrandRun>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  child.stdin.end(options.stdin ?? '');
  return {
    child,
    untilStdout: (test) =>
      test(stdout)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.add({ test, resolve });
            void done.then((r) => reject(new Error(`strand ${args.join(' ')} ended (code ${r.code}) before its stdout did; stdout: ${JSON.stringify(r.stdout)}, stderr: ${JSON.stringify(r.stderr)}`)));
          }),
    done,
  };
}

export function runStrand(args: readonly string[], options: StrandOptions = {}): Promise<StrandRun> {
  return startStrand(args, options).done;
}
