/**
 * glibc malloc settings for Strand's busy processes, passed as GLIBC_TUNABLES. glibc reads them
 * once at process start, so whoever starts the process sets them: `strand dev` for its nodes,
 * the container image (deploy/docker/Dockerfile) for `strand server`, and `strand bench`, which
 * re-runs itself in a child process with them.
 *
 * Why: the big allocations of a produce request are made per request and are out of our hands:
 * grpc-js joins each received message into one Buffer (Buffer.concat), Node's HTTP/2 session
 * allocates a zeroed buffer per socket read, and on the producer protobufjs and grpc-js each copy
 * a ~0.5 MiB request into a fresh Buffer. With glibc's defaults these come from fresh mmap'd
 * pages, or from heap top that free() has just trimmed back to the kernel, so the kernel faults
 * in and zeroes every page of every request. Serving allocations up to 32 MiB from the heap and
 * keeping up to 64 MiB of free heap before trimming reuses warm pages instead. Measured with
 * `strand bench produce` (RF=1, 3M records, strand dev): brokers' page faults 42k -> 27k and their
 * CPU -14%, and 0.98M -> 1.07-1.10M records/s (broker README, "Speed").
 *
 * The cost: a process keeps up to 64 MiB of freed memory mapped rather than returning it.
 * Settings already in GLIBC_TUNABLES win; on a libc other than glibc the variable is ignored.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export const MALLOC_TUNABLES: ReadonlyArray<readonly [string, string]> = [
  ['glibc.malloc.mmap_threshold', String(32 * 1024 * 1024)],
  ['glibc.malloc.trim_threshold', String(64 * 1024 * 1024)],
];

/** Set by `rerunWithMallocTunables` in the child's environment: the parent's pid. */
const RERUN_PARENT_ENV = '__STRAND_MALLOC_RERUN_PARENT';

/** `current` (a GLIBC_TUNABLES value) with each of MALLOC_TUNABLES added unless already set. */
export function withMallocTunables(current: string | undefined): string {
  const parts = current === undefined || current === '' ? [] : current.split(':');
  const set = new Set(parts.map((p) => p.split('=')[0]));
  for (const [key, value] of MALLOC_TUNABLES) if (!set.has(key)) parts.push(`${key}=${value}`);
  return parts.join(':');
}

/** Whether `current` already sets every key of MALLOC_TUNABLES (to any value). */
export function hasMallocTunables(current: string | undefined): boolean {
  return withMallocTunables(current) === (current ?? '');
}

/**
 * Runs this very command again in a child process with MALLOC_TUNABLES, when this process was
 * started without them, and exits with the child's status. Returns false (and does nothing)
 * when the tunables are already in effect or this is not Linux; the caller then goes on.
 * SIGINT and SIGTERM are passed to the child, and a child whose parent died exits.
 */
export function rerunWithMallocTunables(): boolean {
  const parentPid = process.env[RERUN_PARENT_ENV];
  if (parentPid !== undefined) {
    // The child: leave when the parent is gone (kill -9), instead of running on unattended.
    const timer = setInterval(() => {
      if (String(process.ppid) !== parentPid) process.exit(1);
    }, 500);
    timer.unref();
    return false;
  }
  if (process.platform !== 'linux' || hasMallocTunables(process.env['GLIBC_TUNABLES'])) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: withMallocTunables(process.env['GLIBC_TUNABLES']), [RERUN_PARENT_ENV]: String(process.pid) },
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('error', (e) => {
    process.stderr.write(`strand: cannot start ${process.execPath}: ${e.message}\n`);
    process.exit(1);
  });
  // A child killed by a signal exits as a shell reports it: 128 + the signal's number.
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal !== null ? constants.signals[signal] : 0)));
  return true;
}
