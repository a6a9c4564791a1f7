/**
 * An exclusive lock on a log directory, so that two processes (or two opens in one process)
 * never write the same partition. Node has no flock(2), so the lock is a `.lock` file created
 * with O_EXCL holding the owner's identity: pid, boot id and process start time (Linux /proc).
 * A lock left by a dead process (a crash, kill -9, a power loss) is taken over: its pid is gone,
 * a zombie, from another boot, or reused by a process that started at another time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrandError } from '@strand/protocol';
import { isErrno } from './files';

const held = new Set<string>();

export class DirectoryLock {
  private released = false;
  private constructor(readonly file: string) {}

  /** Takes the lock on `dir`, or throws KAFKA_STORAGE_ERROR naming the holder. */
  static acquire(dir: string): DirectoryLock {
    const file = path.join(path.resolve(dir), '.lock');
    if (held.has(file)) throw new StrandError('KAFKA_STORAGE_ERROR', `log directory ${dir} is already open in this process`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(file, 'wx');
        fs.writeSync(fd, `${identity(process.pid)}\n`);
        fs.closeSync(fd);
        held.add(file);
        return new DirectoryLock(file);
      } catch (e: unknown) {
        if (!isErrno(e, 'EEXIST')) throw new StrandError('KAFKA_STORAGE_ERROR', `cannot lock log directory ${dir}: ${String(e)}`, { cause: e });
        const recorded = fs.readFileSync(file, 'utf8').trim();
        const owner = Number.parseInt(recorded, 10);
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && holds(owner, recorded)) {
          throw new StrandError('KAFKA_STORAGE_ERROR', `log directory ${dir} is locked by process ${owner} (${file}); is another broker using it?`);
        }
        // Stale: its owner is gone (or it is our own pid from a previous life). Take it over.
        fs.rmSync(file, { force: true });
      }
    }
    throw new StrandError('KAFKA_STORAGE_ERROR', `cannot lock log directory ${dir}: lost the race for ${file} twice`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this.file);
    fs.rmSync(this.file, { force: true });
  }
}

/** `pid boot-id start-time` (the last two empty without /proc). */
function identity(pid: number): string {
  return `${pid} ${bootId()} ${startTime(pid) ?? ''}`.trim();
}

/** Whether the process that wrote `recorded` (see identity) still runs. */
function holds(pid: number, recorded: string): boolean {
  if (!isAlive(pid)) return false;
  const stat = procStat(pid);
  if (stat === undefined) return true; // no /proc: the pid is all we know
  if (stat.state === 'Z') return false; // killed, not yet reaped: holds nothing
  const [, boot, start] = recorded.split(/\s+/);
  if (boot === undefined || start === undefined) return true; // an older lock file: pid only
  return boot === bootId() && start === stat.startTime;
}

function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function startTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** State and start time (clock ticks since boot) from /proc/<pid>/stat, undefined without /proc. */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const start = fields[19]; // field 22 of the man page
  return state === undefined || start === undefined ? undefined : { state, startTime: start };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: unknown) {
    return isErrno(e, 'EPERM'); // exists, owned by someone else
  }
}
