/**
 * An exclusive lock on a log directory, so that two processes (or two opens in one process)
 * never write the same partition. Node has no flock(2), so the lock is a `.lock` file created
 * with O_EXCL holding the owner's pid; a lock left by a dead process (a crash) is taken over.
 * The residual risk is pid reuse by an unrelated live process after a crash, which then
 * reports the directory as locked: a safe failure that names the file to remove.
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
        fs.writeSync(fd, `${process.pid}\n`);
        fs.closeSync(fd);
        held.add(file);
        return new DirectoryLock(file);
      } catch (e: unknown) {
        if (!isErrno(e, 'EEXIST')) throw new StrandError('KAFKA_STORAGE_ERROR', `cannot lock log directory ${dir}: ${String(e)}`, { cause: e });
        const owner = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: unknown) {
    return isErrno(e, 'EPERM'); // exists, owned by someone else
  }
}
