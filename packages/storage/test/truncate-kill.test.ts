/**
 * Kills right after index files were rebuilt in memory, with the rebuilt segment below the
 * recovery point (a kill loses the entries still buffered):
 *
 * A kill right after a truncation that ends in a compaction gap (the log end moves up to the
 * target through a new empty segment, so the truncated segment is no longer the last one). The
 * truncation rebuilt that segment's indexes in memory; a kill loses the entries still buffered,
 * so the recovery point must not pass the segment until its indexes are flushed: otherwise the
 * next open trusts the partial index files, takes the segment's newest timestamp from its tail
 * only, and retention deletes records newer than retention.ms.
 *
 * The kill is real: a child process truncates and SIGKILLs itself (abandon() would write the
 * buffered entries). The child runs the BUILT package (dist/); `npm test` builds first.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ManualClock, PartitionLog } from '../src';
import { encodeRecordBatch } from '@strand/protocol';
import { cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

const NOW = 1_700_000_000_000;
const DAY = 86_400_000;


/** Runs `code` in a child Node process that must end by SIGKILLing itself, silently. */
function runUntilKilled(code: string): void {
  const res = spawnSync(process.execPath, ['-e', code], { cwd: path.resolve(__dirname, '..'), timeout: 30_000, encoding: 'utf8' });
  expect([res.signal, res.stderr]).toEqual(['SIGKILL', '']);
}

test('a kill after a truncation into a compaction gap keeps the truncated segment\'s newest timestamp', () => {
  const dir = tempDir();
  const config = { 'index.interval.bytes': '0', 'retention.ms': String(10 * DAY) };
  // Batch 0 is the newest (a day old), batches 1-799 are 20 days old; a gap (compaction on the
  // leader), batch 1000, then a second segment. The truncation to 900 cuts batch 1000 and rolls a
  // new segment at 900.
  const child = `
    const { PartitionLog, ManualClock } = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
    const { encodeRecordBatch } = require('@strand/protocol');
    const one = (offset, ts) => encodeRecordBatch({ records: [{ value: Buffer.from('v' + offset), timestamp: ts }], baseTimestamp: ts, baseOffset: offset, partitionLeaderEpoch: 1 });
    (async () => {
      const log = PartitionLog.open(${JSON.stringify(dir)}, { clock: new ManualClock(${NOW}), config: ${JSON.stringify(config)} });
      const batches = [one(0, ${NOW - DAY})];
      for (let o = 1; o < 800; o++) batches.push(one(o, ${NOW - 20 * DAY}));
      batches.push(one(1000, ${NOW - 20 * DAY}));
      log.appendAsFollower(Buffer.concat(batches));
      log.rollIfNotEmpty();
      log.appendAsFollower(one(1001, ${NOW - DAY}));
      await log.flush(); // the recovery point passes segment 0 (1001)
      log.truncateTo(900);
      process.kill(process.pid, 'SIGKILL');
    })();
  `;
  runUntilKilled(child);
  const log = PartitionLog.open(dir, { clock: new ManualClock(NOW), config });
  try {
    expect(log.segmentBaseOffsets()).toEqual([0, 900]);
    expect(log.applyRetention()).toBe(0);
    expect(readAll(log, 0, 1 << 20).length).toBe(800);
  } finally {
    log.abandon();
  }
});

test('a kill after a clean open that rebuilt a segment\'s missing indexes keeps that segment\'s newest timestamp', async () => {
  // The clean open rebuilds the indexes of segment 0 (deleted here, as an operator forcing a
  // rebuild does) and then sets the recovery point to the log end: they must be on disk by then.
  const dir = tempDir();
  const config = { 'index.interval.bytes': '0', 'retention.ms': String(10 * DAY) };
  const log = PartitionLog.open(dir, { clock: new ManualClock(NOW), config });
  const one = (offset: number, ts: number): Buffer => encodeRecordBatch({ records: [{ value: Buffer.from(`v${offset}`), timestamp: ts }], baseTimestamp: ts, baseOffset: offset, partitionLeaderEpoch: 1 });
  const batches = [one(0, NOW - DAY)];
  for (let o = 1; o < 800; o++) batches.push(one(o, NOW - 20 * DAY));
  log.appendAsFollower(Buffer.concat(batches));
  log.rollIfNotEmpty();
  log.appendAsFollower(one(800, NOW - DAY));
  await log.close();
  for (const suffix of ['.index', '.timeindex']) fs.rmSync(path.join(dir, `${'0'.repeat(20)}${suffix}`));
  const child = `
    const { PartitionLog, ManualClock } = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
    PartitionLog.open(${JSON.stringify(dir)}, { clock: new ManualClock(${NOW}), config: ${JSON.stringify(config)} });
    process.kill(process.pid, 'SIGKILL');
  `;
  runUntilKilled(child);
  const again = PartitionLog.open(dir, { clock: new ManualClock(NOW), config });
  try {
    expect(again.segmentBaseOffsets()).toEqual([0, 800]);
    expect(again.applyRetention()).toBe(0);
    expect(readAll(again, 0, 1 << 20).length).toBe(801);
  } finally {
    again.abandon();
  }
});
