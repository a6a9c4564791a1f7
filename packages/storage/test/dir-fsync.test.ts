/**
 * fsyncDirAsync, the directory fsync every flush, open and close of a log asks for. Thousands of
 * logs flushing or closing at once each asked for their own directory and for the common parent
 * (a new log's entry), each holding two descriptors meanwhile: past `ulimit -n` the opens failed
 * with EMFILE and the logs failed as if the disk had. Checked here, with fs.open and fs.fsync
 * mocked where the test needs to hold or fail them:
 * - callers asking for the same directory while its fsync has not started share that one fsync;
 *   a caller arriving while it runs gets the next one, which starts after it (an fsync that began
 *   before a caller's changes may not cover them);
 * - at most ASYNC_OPENS_IN_FLIGHT descriptors are held at once, process-wide;
 * - EMFILE/ENFILE at open is a shortage of descriptors, not of durability: retried with backoff;
 *   a failed fsync is not retried and rejects every caller that shared it.
 *
 * It spies on node:fs through the BUILT package (dist/), as new-log-dir-fsync.test.ts explains.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ASYNC_OPENS_IN_FLIGHT, fsyncDirAsync } from '../dist/index.js';

const nodeFs = jest.requireActual<typeof fs>('node:fs');
const realOpen = nodeFs.open;
const realFsync = nodeFs.fsync;
const realClose = nodeFs.close;
type Callback = (err: NodeJS.ErrnoException | null) => void;
type OpenCallback = (err: NodeJS.ErrnoException | null, fd: number) => void;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
afterEach(() => jest.restoreAllMocks());

function tempParent(): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'strand-dir-fsync-')));
  dirs.push(d);
  return d;
}

const targetOf = (fd: number): string => fs.readlinkSync(`/proc/self/fd/${fd}`);

/**
 * Records the targets of fsyncs; `hold` keeps each fsync from running until released;
 * `started(n)` resolves once n fsyncs were called.
 */
function spyFsync(hold = false): { targets: string[]; release: () => void; started: (n: number) => Promise<void> } {
  const targets: string[] = [];
  const held: Array<() => void> = [];
  const watchers: Array<{ n: number; resolve: () => void }> = [];
  jest.spyOn(nodeFs, 'fsync').mockImplementation(((fd: number, cb: Callback) => {
    targets.push(targetOf(fd));
    for (const w of watchers.filter((x) => x.n <= targets.length)) w.resolve();
    if (hold) held.push(() => realFsync(fd, cb));
    else realFsync(fd, cb);
  }) as typeof fs.fsync);
  const started = (n: number): Promise<void> => (targets.length >= n ? Promise.resolve() : new Promise((resolve) => watchers.push({ n, resolve })));
  return { targets, release: () => held.splice(0).forEach((f) => f()), started };
}

test('callers asking for one directory before its fsync starts share it', async () => {
  const dir = tempParent();
  const spy = spyFsync();
  await Promise.all(Array.from({ length: 100 }, () => fsyncDirAsync(dir)));
  expect(spy.targets).toEqual([dir]);
});

test('a caller arriving while the directory fsync runs waits for the next one, which starts after it', async () => {
  const dir = tempParent();
  const spy = spyFsync(true);
  const first = fsyncDirAsync(dir);
  await spy.started(1); // running (held)
  let secondDone = false;
  const second = fsyncDirAsync(dir).then(() => {
    secondDone = true;
  });
  const third = fsyncDirAsync(dir); // joins the second: not started yet
  spy.release();
  await first;
  expect(secondDone).toBe(false);
  await spy.started(2);
  expect(spy.targets).toEqual([dir, dir]);
  spy.release();
  await Promise.all([second, third]);
  expect(spy.targets).toEqual([dir, dir]);
});

test(`at most ${ASYNC_OPENS_IN_FLIGHT} directory descriptors are held at once, however many directories are fsynced`, async () => {
  const parent = tempParent();
  const many = Array.from({ length: 4 * ASYNC_OPENS_IN_FLIGHT }, (_, i) => path.join(parent, `d-${i}`));
  for (const d of many) fs.mkdirSync(d);
  const open = new Set<number>();
  let most = 0;
  jest.spyOn(nodeFs, 'open').mockImplementation(((file: string, flags: string, cb: OpenCallback) => {
    realOpen(file, flags, (err, fd) => {
      if (!err && many.includes(file)) {
        open.add(fd);
        most = Math.max(most, open.size);
      }
      cb(err, fd);
    });
  }) as typeof fs.open);
  jest.spyOn(nodeFs, 'close').mockImplementation(((fd: number, cb: Callback) => {
    open.delete(fd);
    realClose(fd, cb);
  }) as typeof fs.close);
  const spy = spyFsync();
  await Promise.all(many.map((d) => fsyncDirAsync(d)));
  expect(spy.targets.sort()).toEqual([...many].sort());
  expect(most).toBeGreaterThan(1);
  expect(most).toBeLessThanOrEqual(ASYNC_OPENS_IN_FLIGHT);
});

test('EMFILE opening the directory is retried; a failed fsync rejects every caller that shared it', async () => {
  const dir = tempParent();
  let refusals = 3;
  jest.spyOn(nodeFs, 'open').mockImplementation(((file: string, flags: string, cb: OpenCallback) => {
    if (file === dir && refusals > 0) {
      refusals--;
      process.nextTick(() => cb(Object.assign(new Error(`EMFILE: too many open files, open '${file}'`), { code: 'EMFILE', syscall: 'open' }), -1));
      return;
    }
    realOpen(file, flags, cb);
  }) as typeof fs.open);
  const spy = spyFsync();
  await fsyncDirAsync(dir);
  expect([refusals, spy.targets]).toEqual([0, [dir]]);

  jest.spyOn(nodeFs, 'fsync').mockImplementation(((fd: number, cb: Callback) => {
    void fd;
    process.nextTick(() => cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' })));
  }) as typeof fs.fsync);
  const results = await Promise.allSettled([fsyncDirAsync(dir), fsyncDirAsync(dir)]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
});
