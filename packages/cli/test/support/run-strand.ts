/**
 * Runs the built `strand` CLI as a child process: arguments, stdin as a string, an optional
 * environment, and a time limit after which it is killed (so a hung command fails its test
 * instead of the run). Shared by the CLI's own tests and the multi-process tests in test/.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const STRAND_CLI = path.resolve(__dirname, '../../dist/bin/strand.js');

export interface StrandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runStrand(args: readonly string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; limitMs?: number } = {}): Promise<StrandRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [STRAND_CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(options.env !== undefined ? { env: options.env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}
