/**
 * The log directory lock: exclusive within and across processes, taken over from a dead owner,
 * and not blocked by an unrelated live process that reuses a crashed owner's pid (a restart after
 * a power loss or reboot), which the recorded boot id and process start time tell apart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DirectoryLock } from '../src/dir-lock';
import { cleanupTempDirs, tempDir } from './helpers';

afterEach(cleanupTempDirs);

const lockFile = (dir: string): string => path.join(path.resolve(dir), '.lock');

describe('DirectoryLock', () => {
  it('is exclusive in one process and released on release()', () => {
    const dir = tempDir();
    const lock = DirectoryLock.acquire(dir);
    expect(() => DirectoryLock.acquire(dir)).toThrow(/already open in this process/);
    lock.release();
    DirectoryLock.acquire(dir).release();
    expect(fs.existsSync(lockFile(dir))).toBe(false);
  });

  it('a live process with the recorded identity holds it; the same pid with another start time (reuse) does not', () => {
    const dir = tempDir();
    const pid = process.ppid; // alive for the whole test, and not us
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    fs.writeFileSync(lockFile(dir), `${pid} ${boot} ${start}\n`);
    expect(() => DirectoryLock.acquire(dir)).toThrow(/locked by process/);
    // The pid now belongs to a process that started at another time, or to another boot.
    fs.writeFileSync(lockFile(dir), `${pid} ${boot} ${Number(start) + 1}\n`);
    DirectoryLock.acquire(dir).release();
    fs.writeFileSync(lockFile(dir), `${pid} 00000000-0000-0000-0000-000000000000 ${start}\n`);
    DirectoryLock.acquire(dir).release();
    // A lock of a process that is gone is taken over; so is one naming a dead pid in the old format.
    fs.writeFileSync(lockFile(dir), '2147483646\n');
    const lock = DirectoryLock.acquire(dir);
    expect(fs.readFileSync(lockFile(dir), 'utf8').split(/\s+/)[0]).toBe(String(process.pid));
    lock.release();
  });
});
