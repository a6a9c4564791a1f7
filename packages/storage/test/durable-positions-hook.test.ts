/**
 * The test-only power-loss hook (`onDurablePositions`, default off): it reports each segment's
 * fdatasynced length after open, after every flush (before durability waiters resolve), after
 * truncations and after compaction merged segments; truncating the files to the last report and reopening keeps everything that was
 * reported durable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PartitionLog, compactLog, type DurableSegmentPosition } from '../src';
import { batch, cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

test('reports durable segment lengths; truncating to them keeps every durable offset', async () => {
  const dir = tempDir();
  const reports: DurableSegmentPosition[][] = [];
  const log = PartitionLog.open(dir, { config: { 'segment.bytes': '1024' }, onDurablePositions: (d, s) => (expect(d).toBe(dir), reports.push(s)) });
  expect(reports).toEqual([[{ baseOffset: 0, bytes: 0 }]]);
  let reportedAtDurable = -1;
  log.onDurable(() => (reportedAtDurable = reports.length));
  for (let i = 0; i < 30; i++) log.appendAsLeader(batch(`v${i}`, 2), 1);
  await log.flush();
  // The report came before the durable end moved (so before any acknowledgement).
  expect(reportedAtDurable).toBe(reports.length);
  const last = reports[reports.length - 1] as DurableSegmentPosition[];
  expect(last.length).toBeGreaterThan(1);
  for (const s of last) expect(s.bytes).toBe(fs.statSync(path.join(dir, `${String(s.baseOffset).padStart(20, '0')}.log`)).size);
  const durableEnd = log.durableEndOffset;

  // Truncation reports at once, no larger than what is left.
  log.truncateTo(10);
  const afterTruncate = reports[reports.length - 1] as DurableSegmentPosition[];
  const tail = afterTruncate[afterTruncate.length - 1] as DurableSegmentPosition;
  expect(tail.bytes).toBeLessThanOrEqual(fs.statSync(path.join(dir, `${String(tail.baseOffset).padStart(20, '0')}.log`)).size);
  // Unflushed appends are not reported as durable.
  log.appendAsLeader(batch('late', 2), 1);
  const unflushed = reports[reports.length - 1] as DurableSegmentPosition[];
  expect(unflushed).toBe(afterTruncate);
  log.abandon();
  expect(durableEnd).toBe(60);

  // Power loss: cut every file to its last reported length, delete segments never reported
  // (the append above may have rolled a new one), then reopen.
  const name = (base: number): string => `${String(base).padStart(20, '0')}.log`;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.log'))) {
    if (!unflushed.some((s) => name(s.baseOffset) === f)) fs.rmSync(path.join(dir, f));
  }
  for (const s of unflushed) fs.truncateSync(path.join(dir, name(s.baseOffset)), s.bytes);
  const reopened = PartitionLog.open(dir);
  expect(reopened.logEndOffset).toBe(10);
  expect(readAll(reopened).map((r) => r.value)).toEqual(['v0-0', 'v0-1', 'v1-0', 'v1-1', 'v2-0', 'v2-1', 'v3-0', 'v3-1', 'v4-0', 'v4-1']);
  await reopened.close();
});

test('reports the segment compaction merged (longer than its first segment was)', async () => {
  const dir = tempDir();
  let last: DurableSegmentPosition[] = [];
  const log = PartitionLog.open(dir, { config: { 'cleanup.policy': 'compact', 'segment.bytes': '1000' }, onDurablePositions: (_d, s) => (last = s) });
  for (let i = 0; i < 6; i++) {
    log.appendAsLeader(batch(`v${i}`, 1, { keys: [`k${i}`] }), 1);
    log.rollIfNotEmpty();
  }
  await log.flush();
  await compactLog(log);
  expect(log.segmentBaseOffsets()).toEqual([0, 6]);
  const name = (base: number): string => `${String(base).padStart(20, '0')}.log`;
  expect(last).toEqual([
    { baseOffset: 0, bytes: fs.statSync(path.join(dir, name(0))).size },
    { baseOffset: 6, bytes: 0 },
  ]);
  await log.close();
});

test('off by default: a log opened without the hook reports nothing and behaves as before', async () => {
  const log = PartitionLog.open(tempDir());
  log.appendAsLeader(batch('a', 1), 1);
  await log.flush();
  expect(log.durableEndOffset).toBe(1);
  await log.close();
});
