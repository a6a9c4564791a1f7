/**
 * A spy on every fsync-family call (sync, callback and FileHandle forms) the BUILT package
 * (dist/) makes, with the path of its descriptor: open-fsync and close-fsync tests. It spies
 * through node:fs itself, as new-log-dir-fsync.test.ts explains (dist's CommonJS `import * as
 * fs` keeps live bindings to the module object).
 */
import * as fs from 'node:fs';

export interface FsyncCall {
  call: string;
  target: string;
  /** With a marker: whether it existed when the call was made, and when it completed. */
  markerAtStart?: boolean;
  markerAtEnd?: boolean | null;
}

/**
 * Records every fsync-family call with the path of its descriptor and, given `marker` (the
 * marker file's path for a call's target), whether the marker existed when the call started
 * and when it completed. `restore` puts node:fs back.
 */
export async function spyFsyncs(marker?: (target: string) => string): Promise<{ calls: FsyncCall[]; restore: () => Promise<void> }> {
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const calls: FsyncCall[] = [];
  const begin = (call: string, fd: number): FsyncCall => {
    const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    const c: FsyncCall = marker === undefined ? { call, target } : { call, target, markerAtStart: fs.existsSync(marker(target)), markerAtEnd: null };
    calls.push(c);
    return c;
  };
  const end = (c: FsyncCall): void => {
    if (marker !== undefined) c.markerAtEnd = fs.existsSync(marker(c.target));
  };
  const real = { fsyncSync: nodeFs.fsyncSync, fdatasyncSync: nodeFs.fdatasyncSync, fsync: nodeFs.fsync, fdatasync: nodeFs.fdatasync };
  const wrapCallback =
    (name: 'fsync' | 'fdatasync') =>
    (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
      const c = begin(name, fd);
      real[name](fd, (err) => {
        end(c);
        cb(err);
      });
    };
  const spies = [
    jest.spyOn(nodeFs, 'fsyncSync').mockImplementation((fd: number) => {
      const c = begin('fsyncSync', fd);
      real.fsyncSync(fd);
      end(c);
    }),
    jest.spyOn(nodeFs, 'fdatasyncSync').mockImplementation((fd: number) => {
      const c = begin('fdatasyncSync', fd);
      real.fdatasyncSync(fd);
      end(c);
    }),
    jest.spyOn(nodeFs, 'fsync').mockImplementation(wrapCallback('fsync') as typeof fs.fsync),
    jest.spyOn(nodeFs, 'fdatasync').mockImplementation(wrapCallback('fdatasync') as typeof fs.fdatasync),
  ];
  const handle = await nodeFs.promises.open(__filename, 'r');
  const proto = Object.getPrototypeOf(handle) as Record<'sync' | 'datasync', (this: fs.promises.FileHandle) => Promise<void>>;
  await handle.close();
  const realProto = { sync: proto.sync, datasync: proto.datasync };
  for (const name of ['sync', 'datasync'] as const) {
    proto[name] = async function (this: fs.promises.FileHandle): Promise<void> {
      const c = begin(`handle.${name}`, this.fd);
      await realProto[name].call(this);
      end(c);
    };
  }
  return {
    calls,
    restore: async () => {
      spies.forEach((s) => s.mockRestore());
      Object.assign(proto, realProto);
    },
  };
}
