/**
 * Runs the built `strand` CLI against a cluster: one child process with `--bootstrap`, stdin
 * given as a string, killed after 30 s so a hung command fails its test instead of the run.
 */
import { spawn } from 'node:child_process';
import { STRAND_BIN } from './process-cluster';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], bootstrap: string, stdin = ''): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [STRAND_BIN, ...args, '--bootstrap', bootstrap], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}
