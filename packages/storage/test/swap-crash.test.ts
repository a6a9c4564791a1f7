/**
 * Faults while compaction writes and installs a segment.
 * - A kill right after the compacted log is renamed over the original (the log fails and reports
 *   it through onFailure): had the original's indexes
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
import { decodeRecordBatch, encodeRecordBatch } from '@strand/protocol';
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
    const failures: string[] = [];
    const log = PartitionLog.open(dir, { clock, config, onFailure: (e) => failures.push(e.errorName) });
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
    // ... and tells its owner, once (the broker halts, as for a failed fdatasync).
    expect(failures).toEqual(['KAFKA_STORAGE_ERROR']);
    log.abandon();
    expect(failures).toHaveLength(1);
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

test('a kill at any step of installing merged segments leaves a log that opens consistent', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-swap-crash-'));
  const snapshots: { step: string; dir: string }[] = [];
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realRename = nodeFs.renameSync;
  const realRm = nodeFs.rmSync;
  let armed = false;
  // What the disk holds at that moment (the log's page cache survives a kill; the lock does not).
  const snapshot = (step: string): void => {
    armed = false;
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-swap-snap-'));
    fs.cpSync(dir, copy, { recursive: true, filter: (src) => path.basename(src) !== '.lock' });
    snapshots.push({ step, dir: copy });
    armed = true;
  };
  const renameSpy = jest.spyOn(nodeFs, 'renameSync').mockImplementation((from: fs.PathLike, to: fs.PathLike) => {
    realRename(from, to);
    if (armed && /\.swap|index\.cleaned/.test(`${String(from)} ${String(to)}`)) snapshot(`after renaming ${path.basename(String(from))} to ${path.basename(String(to))}`);
  });
  const rmSpy = jest.spyOn(nodeFs, 'rmSync').mockImplementation((p: fs.PathLike, options?: fs.RmOptions) => {
    realRm(p, options);
    if (armed && String(p).endsWith('.log')) snapshot(`after removing ${path.basename(String(p))}`);
  });
  try {
    const clock = new ManualClock(T0);
    const config = { 'cleanup.policy': 'compact', 'segment.bytes': '1000' };
    const log = PartitionLog.open(dir, { clock, config });
    const written = new Map<number, string>();
    const append = (key: string, value: string): void => {
      written.set(log.appendAsLeader(keyed(key, value), 0).firstOffset, `${key}=${value}`);
      log.rollIfNotEmpty();
    };
    // Twelve small segments (one group), then k5 again in a segment too big to join them: the
    // group's last segment (offset 11, k5) loses its only record, so the merged copy ends at 10.
    for (let i = 0; i < 12; i++) append(`k${i % 6}`, `v${i}`);
    append('k5', 'x'.repeat(900));
    await log.flush();
    armed = true;
    expect((await compactLog(log, { clock })).segmentsCleaned).toBe(12);
    armed = false;
    await log.close();
    renameSpy.mockRestore();
    rmSpy.mockRestore();
    // .cleaned -> .swap, the eleven merged logs removed one by one, .swap -> .log, then the
    // indexes built while the copy was written.
    expect(snapshots.map((x) => x.step.replace(/\d{20}/g, 'N'))).toEqual([
      'after renaming N.log.cleaned to N.log.swap',
      ...Array(11).fill('after removing N.log'),
      'after renaming N.log.swap to N.log',
      'after renaming N.index.cleaned to N.index',
      'after renaming N.timeindex.cleaned to N.timeindex',
    ]);
    const latest = [6, 7, 8, 9, 10, 12];
    for (const { step, dir: d } of [...snapshots, { step: 'after the pass', dir }]) {
      const again = PartitionLog.open(d, { clock, config });
      const got: number[] = [];
      for (let offset = again.logStartOffset, res = again.read(offset, 1 << 20); res.batchCount > 0; offset = res.nextOffset, res = again.read(offset, 1 << 20)) {
        for (let pos = 0; pos < res.records.length; pos += res.records.readInt32BE(pos + 8) + 12) {
          const [r] = decodeRecordBatch(res.records, pos).records;
          got.push(r!.offset);
          // Every record read is the one written at its offset...
          expect([step, `${r!.key?.toString()}=${r!.value?.toString()}`]).toEqual([step, written.get(r!.offset)]);
        }
      }
      // ...in offset order, and the latest record of every key is there; no segment overlaps
      // the next (reads by offset would not notice: they jump past a segment's last offset).
      expect([step, got]).toEqual([step, [...got].sort((a, b) => a - b)]);
      const logs = fs.readdirSync(d).filter((f) => f.endsWith('.log')).sort();
      for (let i = 0; i + 1 < logs.length; i++) {
        const bytes = fs.readFileSync(path.join(d, logs[i]!));
        let last = -1;
        for (let pos = 0; pos < bytes.length; pos += bytes.readInt32BE(pos + 8) + 12) last = Number(bytes.readBigInt64BE(pos)) + bytes.readInt32BE(pos + 23);
        expect([step, logs[i], last < Number(logs[i + 1]!.slice(0, 20))]).toEqual([step, logs[i], true]);
      }
      expect([step, latest.filter((o) => !got.includes(o))]).toEqual([step, []]);
      expect([step, fs.readdirSync(d).filter((f) => f.endsWith('.swap') || f.endsWith('.cleaned'))]).toEqual([step, []]);
      await again.close();
    }
    // Installed: the twelve small segments are one (offsets 6-10), then the big one and the active one.
    const final = PartitionLog.open(dir, { clock, config });
    expect(final.segmentBaseOffsets()).toEqual([0, 12, 13]);
    await final.close();
  } finally {
    renameSpy.mockRestore();
    rmSpy.mockRestore();
    for (const d of [dir, ...snapshots.map((x) => x.dir)]) fs.rmSync(d, { recursive: true, force: true });
  }
});
