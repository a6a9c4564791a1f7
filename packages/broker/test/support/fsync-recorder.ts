/**
 * Records the fsync-family calls (fsync, fdatasync, their Sync forms, FileHandle.sync/datasync)
 * the code under test makes, with the path of each descriptor.
 *
 * Import it BEFORE any workspace package: in these tests the packages run from their TypeScript
 * sources, whose `import * as fs from 'node:fs'` @swc/jest turns into a copy of node:fs's
 * functions taken when the module loads, so a jest.spyOn(fs, ...) installed later is never called
 * by them. This module wraps node:fs's functions when it loads, before those copies are taken.
 * FileHandle methods live on a shared prototype: `installFileHandleRecorder` wraps them there.
 */
import type * as fs from 'node:fs';

export interface FsyncCall {
  call: string;
  target: string;
}

let recording: FsyncCall[] | null = null;
const nodeFs = jest.requireActual<typeof fs>('node:fs');
const target = (fd: number): string => nodeFs.readlinkSync(`/proc/self/fd/${fd}`);
const record = (call: string, fd: number): void => {
  recording?.push({ call, target: target(fd) });
};

const real = { fsync: nodeFs.fsync, fdatasync: nodeFs.fdatasync, fsyncSync: nodeFs.fsyncSync, fdatasyncSync: nodeFs.fdatasyncSync };
type Callback = (err: NodeJS.ErrnoException | null) => void;
const mutable = nodeFs as unknown as Record<keyof typeof real, unknown>;
mutable.fsync = (fd: number, cb: Callback): void => {
  record('fsync', fd);
  real.fsync(fd, cb);
};
mutable.fdatasync = (fd: number, cb: Callback): void => {
  record('fdatasync', fd);
  real.fdatasync(fd, cb);
};
mutable.fsyncSync = (fd: number): void => {
  record('fsyncSync', fd);
  real.fsyncSync(fd);
};
mutable.fdatasyncSync = (fd: number): void => {
  record('fdatasyncSync', fd);
  real.fdatasyncSync(fd);
};

let handleRecorder: Promise<void> | null = null;

/** Wraps FileHandle.sync/datasync (once per process). */
export function installFileHandleRecorder(): Promise<void> {
  handleRecorder ??= (async () => {
    const h = await nodeFs.promises.open('/dev/null', 'r');
    const proto = Object.getPrototypeOf(h) as Record<'sync' | 'datasync', (this: fs.promises.FileHandle) => Promise<void>>;
    await h.close();
    for (const name of ['sync', 'datasync'] as const) {
      const original = proto[name];
      proto[name] = function (this: fs.promises.FileHandle): Promise<void> {
        record(`handle.${name}`, this.fd);
        return original.call(this);
      };
    }
  })();
  return handleRecorder;
}

/** Runs `f`, returning the fsync-family calls made meanwhile (by anything in the process). */
export async function recordFsyncs(f: () => Promise<void>): Promise<FsyncCall[]> {
  await installFileHandleRecorder();
  const calls: FsyncCall[] = [];
  recording = calls;
  try {
    await f();
  } finally {
    recording = null;
  }
  return calls;
}
