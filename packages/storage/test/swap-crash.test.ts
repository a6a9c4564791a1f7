/**
 * Faults while compaction writes and installs a segment.
 * - A kill right after the compacted log is renamed over the original: had the original's indexes
 *   still been on disk, a restart (the segment lies below the recovery point, so it is not
 *   rescanned) would use them against the new bytes and reads would land on the wrong batches.
 *   The rename of the `.swap` file "kills" the process right after it happens; the directory is
 *   reopened and read at every offset.
 * - A swap that fails before anything is installed leaves no `.swap` behind, and the log goes on.
 * - A short write into the compacted copy is completed, not installed torn.
 *
 * Like flush-truncate.test.ts it spies on node:fs through the BUILT package (dist/): its CommonJS
 * `import * as fs` keeps live bindings to the module object, which the swc-transformed sources do
 * not. `npm test` builds first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { ManualClock, PartitionLog, compactLog } from '../dist/index.js';

const T0 = 1_700_000_000_000;
const keyed = (key: string, value: string): Buffer => Buffer.from(encodeRecordBatch({ records: [{ key: Buffer.from(key), value: Buffer.from(value) }], baseTimestamp: T0 }));

test('a kill right after the swap rename leaves no stale index beside the compacted log', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-swap-crash-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realRename = nodeFs.renameSync;
  const spy = jest.spyOn(nodeFs, 'renameSync').mockImplementation((from: fs.PathLike, to: fs.PathLike) => {
    realRename(from, to);
    if (String(from).endsWith('.log.swap')) throw new Error('killed right after the swap rename');
  });
  try {
    const clock = new ManualClock(T0);
    const config = { 'cleanup.policy': 'compact', 'index.interval.bytes': '256' };
    const log = PartitionLog.open(dir, { clock, config });
    // 45 distinct keys; k00 is superseded in the next segment, so compaction drops offset 0 and
    // every later batch of segment 0 moves up by one batch.
    for (let i = 0; i < 45; i++) log.appendAsLeader(keyed(`k${String(i).padStart(2, '0')}`, `v${i}`), 0);
    log.rollIfNotEmpty();
    log.appendAsLeader(keyed('k00', 'new'), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect(fs.statSync(path.join(dir, '00000000000000000000.index')).size).toBeGreaterThan(8);
    await expect(compactLog(log, { clock })).rejects.toThrow('killed right after the swap rename');
    // The segment's files are in an unknown state: the log fails rather than serve them.
    expect(() => log.appendAsLeader(keyed('k01', 'after'), 0)).toThrow('killed right after the swap rename');
    log.abandon();
    spy.mockRestore();
    const again = PartitionLog.open(dir, { clock, config });
    for (let offset = 1; offset < 46; offset++) {
      const res = again.read(offset, 1);
      expect(res.firstOffset).toBe(offset);
    }
    again.abandon();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a swap that fails before anything is installed leaves no .swap, and the log goes on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-swap-crash-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realRename = nodeFs.renameSync;
  const spy = jest.spyOn(nodeFs, 'renameSync').mockImplementation((from: fs.PathLike, to: fs.PathLike) => {
    realRename(from, to);
    if (String(to).endsWith('.log.swap')) throw new Error('EIO after the .cleaned -> .swap rename');
  });
  try {
    const clock = new ManualClock(T0);
    const config = { 'cleanup.policy': 'compact' };
    const log = PartitionLog.open(dir, { clock, config });
    for (let i = 0; i < 5; i++) log.appendAsLeader(keyed('k', `v${i}`), 0);
    log.rollIfNotEmpty();
    await log.flush();
    await expect(compactLog(log, { clock })).rejects.toThrow('EIO');
    spy.mockRestore();
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.swap') || f.endsWith('.cleaned'))).toEqual([]);
    // Nothing was installed: the log serves the original segment and takes appends.
    log.appendAsLeader(keyed('k', 'v5'), 0);
    expect(log.read(0, 1 << 20).firstOffset).toBe(0);
    await log.close();
    const again = PartitionLog.open(dir, { clock, config });
    expect([again.logStartOffset, again.logEndOffset, again.read(0, 1 << 20).firstOffset]).toEqual([0, 6, 0]);
    await again.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a short write while copying a segment is completed, not installed torn', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-swap-crash-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realWrite = nodeFs.writeSync;
  // Every write into a .cleaned file takes at most half of what it is given (as near ENOSPC).
  const spy = jest.spyOn(nodeFs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => {
    const short = fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('.cleaned') ? Math.ceil(len / 2) : len;
    return realWrite(fd, buf, off, short, pos);
  }) as typeof fs.writeSync);
  try {
    const clock = new ManualClock(T0);
    const config = { 'cleanup.policy': 'compact' };
    const log = PartitionLog.open(dir, { clock, config });
    for (let i = 0; i < 20; i++) log.appendAsLeader(keyed(`k${i % 4}`, `v${i}`), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRemoved).toBe(16);
    spy.mockRestore();
    const offsets: number[] = [];
    for (let offset = 0, res = log.read(0, 1 << 20); res.batchCount > 0; offset = res.nextOffset, res = log.read(offset, 1 << 20)) {
      for (let pos = 0; pos < res.records.length; pos += res.records.readInt32BE(pos + 8) + 12) offsets.push(Number(res.records.readBigInt64BE(pos)));
    }
    expect(offsets).toEqual([16, 17, 18, 19]);
    await log.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
