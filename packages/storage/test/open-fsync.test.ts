/**
 * What opening a log costs in fsyncs, and where they run. A broker restarting with thousands of
 * partitions opens every log; after a clean shutdown nothing needs recovery or flushing (close
 * fsynced every segment and wrote the recovery point at the log end), so a clean open makes one
 * fsync: of the log directory, after the clean-shutdown marker is removed (the removal must be
 * durable before anything is appended, or a power loss would bring the marker back and the next
 * open would trust a torn tail). `openAsync` does the same work with every fsync off the event
 * loop, so many logs open in parallel; after an unclean shutdown it recovers as `open` does.
 *
 * It spies on node:fs through the BUILT package (dist/) with fsync-spy.ts (sync, callback and
 * FileHandle forms). `npm test` builds first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { CLEAN_SHUTDOWN_FILE, PartitionLog, RECOVERY_POINT_FILE } from '../dist/index.js';
import { spyFsyncs } from './fsync-spy';
import { cleanupTempDirs, tempDir } from './helpers';

const one = (v: string): Buffer => Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: Date.now() }));
const options = { config: { 'segment.bytes': '300' } };

afterAll(cleanupTempDirs);

function tempLogDir(): string {
  return path.join(fs.realpathSync(tempDir('strand-open-fsync-')), 'topic-0');
}

/** A log of `n` one-record batches over several segments, closed cleanly or abandoned. */
async function writeLog(dir: string, n: number, clean: boolean): Promise<void> {
  const log = PartitionLog.open(dir, options);
  for (let i = 0; i < n; i++) log.appendAsLeader(one(`v${i}`), 1);
  if (clean) await log.close();
  else {
    await log.flush();
    log.abandon();
  }
}

test('a clean reopen recovers nothing and makes one fsync: the log directory, after the clean-shutdown marker is gone', async () => {
  const dir = tempLogDir();
  await writeLog(dir, 20, true);
  const recoveryPoint = fs.readFileSync(path.join(dir, RECOVERY_POINT_FILE), 'utf8');
  const spy = await spyFsyncs();
  let log: PartitionLog;
  try {
    log = PartitionLog.open(dir, options);
  } finally {
    await spy.restore();
  }
  expect(spy.calls).toEqual([{ call: 'fsyncSync', target: dir }]);
  expect(log.openedCleanly).toBe(true);
  expect(log.recoveredTruncatedBytes).toBe(0);
  expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(false);
  expect(fs.readFileSync(path.join(dir, RECOVERY_POINT_FILE), 'utf8')).toBe(recoveryPoint);
  expect(log.logEndOffset).toBe(20);
  expect(log.durableEndOffset).toBe(20);
  await log.close();
});

test('openAsync makes no fsync on the event loop, clean or after a crash, and opens the log as open does', async () => {
  for (const clean of [true, false]) {
    const dir = tempLogDir();
    await writeLog(dir, 20, clean);
    if (!clean) {
      // A torn tail: the last batch cut in half.
      const last = fs.readdirSync(dir).filter((f) => f.endsWith('.log')).sort().pop() as string;
      const file = path.join(dir, last);
      fs.truncateSync(file, fs.statSync(file).size - 10);
    }
    const spy = await spyFsyncs();
    let log: PartitionLog;
    try {
      log = await PartitionLog.openAsync(dir, options);
    } finally {
      await spy.restore();
    }
    expect(spy.calls.filter((c) => c.call.endsWith('Sync'))).toEqual([]);
    expect(spy.calls.length).toBeGreaterThan(0);
    expect(log.openedCleanly).toBe(clean);
    expect(log.logEndOffset).toBe(clean ? 20 : 19);
    expect(log.recoveredTruncatedBytes > 0).toBe(!clean);
    expect(log.durableEndOffset).toBe(log.logEndOffset);
    expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(false);
    expect(fs.readFileSync(path.join(dir, RECOVERY_POINT_FILE), 'utf8')).toBe(`0\n${log.logEndOffset}\n`);
    log.appendAsLeader(one('next'), 1);
    expect(log.read(log.logEndOffset - 1, 1000).batchCount).toBe(1);
    await log.close();
  }
});

test('openAsync of a log already open, or whose fsync fails, rejects and leaves the directory to a later open', async () => {
  const dir = tempLogDir();
  await writeLog(dir, 5, true);
  const first = PartitionLog.open(dir, options);
  await expect(PartitionLog.openAsync(dir, options)).rejects.toMatchObject({ errorName: 'KAFKA_STORAGE_ERROR' });
  await first.close();

  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const spy = jest.spyOn(nodeFs, 'fsync').mockImplementation(((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    void fd;
  }) as typeof fs.fsync);
  try {
    await expect(PartitionLog.openAsync(dir, options)).rejects.toThrow(/EIO/);
  } finally {
    spy.mockRestore();
  }
  // The lock was released and the files closed: the log opens (recovering, as the marker is gone).
  const log = await PartitionLog.openAsync(dir, options);
  expect(log.logEndOffset).toBe(5);
  await log.close();
});
