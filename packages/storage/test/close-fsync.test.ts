/**
 * What closing a log costs in fsyncs, where they run, and in which order. A broker stopping with
 * thousands of partitions closes every log, within a grace period (Kubernetes gives 30 s): close
 * must make durable only what is not yet (the segment bytes not flushed, index entries written
 * since the indexes' last fdatasync, the recovery point if it moved) with every fsync off the
 * event loop, so that many logs close in parallel, and the log directory fsynced once, after the
 * clean-shutdown marker is created. The marker must never exist while a file of the log still
 * waits for its fdatasync: the next open trusts every file of a log that has it.
 *
 * It spies on node:fs through the BUILT package (dist/) with fsync-spy.ts, including
 * FileHandle.datasync/sync of the promises API. `npm test` builds first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { CLEAN_SHUTDOWN_FILE, PartitionLog, RECOVERY_POINT_FILE } from '../dist/index.js';
import { spyFsyncs, type FsyncCall } from './fsync-spy';
import { cleanupTempDirs, tempDir } from './helpers';

const one = (v: string): Buffer => Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: Date.now() }));
// About four one-record batches per segment.
const options = { config: { 'segment.bytes': '300' } };

afterAll(cleanupTempDirs);

function tempParent(): string {
  return fs.realpathSync(tempDir('strand-close-fsync-'));
}

const markerOf = (dir: string) => (): string => path.join(dir, CLEAN_SHUTDOWN_FILE);

test('a clean close makes no fsync on the event loop, and fsyncs only what is not durable yet: the tail segment and its indexes, the recovery point, the directory once', async () => {
  const dir = path.join(tempParent(), 'topic-0');
  // page-cache: the tail appended below is not flushed before close is called.
  const log = PartitionLog.open(dir, { config: { ...options.config, 'flush.policy': 'page-cache' } });
  for (let i = 0; i < 18; i++) log.appendAsLeader(one(`v${i}`), 1);
  await log.flush();
  const segments = log.segmentCount;
  log.appendAsLeader(one('tail'), 1);
  expect(log.segmentCount).toBe(segments); // the tail went to the active segment: no new file
  const active = String(log.segmentBaseOffsets().at(-1)).padStart(20, '0');
  const spy = await spyFsyncs(markerOf(dir));
  try {
    await log.close();
  } finally {
    await spy.restore();
  }
  expect(spy.calls.filter((c) => c.call.endsWith('Sync'))).toEqual([]);
  // The closed segments were flushed with their indexes when they rolled: none is fsynced again.
  expect(spy.calls.map((c) => path.relative(path.dirname(dir), c.target)).sort()).toEqual(
    [`topic-0/${active}.log`, `topic-0/${active}.index`, `topic-0/${active}.timeindex`, `topic-0/${RECOVERY_POINT_FILE}.tmp`, 'topic-0'].sort(),
  );
  expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(true);
  expect(fs.readFileSync(path.join(dir, RECOVERY_POINT_FILE), 'utf8')).toBe('0\n19\n');

  const reopened = PartitionLog.open(dir, { config: { ...options.config, 'flush.policy': 'page-cache' } });
  expect(reopened.openedCleanly).toBe(true);
  expect(reopened.logEndOffset).toBe(19);
  expect(reopened.read(18, 1000).batchCount).toBe(1);
  // Closed again with nothing new: only the marker and the directory.
  const spy2 = await spyFsyncs(markerOf(dir));
  try {
    await reopened.close();
  } finally {
    await spy2.restore();
  }
  expect(spy2.calls.map((c) => path.relative(path.dirname(dir), c.target))).toEqual(['topic-0']);
});

test('the clean-shutdown marker appears only once every fdatasync of the log completed, and close resolves after a directory fsync that started after it', async () => {
  for (const flushedBefore of [false, true]) {
    const dir = path.join(tempParent(), 'topic-0');
    const log = PartitionLog.open(dir, options);
    for (let i = 0; i < 30; i++) log.appendAsLeader(one(`v${i}`), 1);
    if (flushedBefore) await log.flush();
    const spy = await spyFsyncs(markerOf(dir));
    try {
      await log.close();
    } finally {
      await spy.restore();
    }
    const files = spy.calls.filter((c) => c.target !== dir && c.target !== path.dirname(dir));
    expect(files.length).toBeGreaterThan(0);
    for (const c of files) expect([c.target, c.markerAtStart, c.markerAtEnd]).toEqual([c.target, false, false]);
    const last = spy.calls.at(-1) as FsyncCall;
    expect([last.target, last.markerAtStart, last.markerAtEnd]).toEqual([dir, true, true]);
    const reopened = PartitionLog.open(dir, options);
    expect([reopened.openedCleanly, reopened.logEndOffset, reopened.durableEndOffset]).toEqual([true, 30, 30]);
    await reopened.close();
  }
});

test('segment files a truncation deleted are durably gone before the marker is created', async () => {
  const dir = path.join(tempParent(), 'topic-0');
  const pageCache = { config: { ...options.config, 'flush.policy': 'page-cache' } };
  const log = PartitionLog.open(dir, pageCache);
  for (let i = 0; i < 20; i++) log.appendAsLeader(one(`v${i}`), 1);
  // Nothing flushed, so the recovery point stays at 0 and the truncation writes no checkpoint
  // (whose directory fsync would cover the deletions).
  log.truncateTo(6);
  expect(log.segmentBaseOffsets()).toEqual([0, 4]);
  const spy = await spyFsyncs(markerOf(dir));
  try {
    await log.close();
  } finally {
    await spy.restore();
  }
  // Were the deletions made durable only with the marker, a crash could keep the marker and
  // bring back segment 8 beside it: trusted, its truncated batches would return.
  // (The spy was installed after the truncation: every fsync it saw started after the deletions.)
  const dirFsyncs = spy.calls.filter((c) => c.target === dir);
  expect(dirFsyncs.some((c) => c.markerAtEnd === false)).toBe(true);
  expect((dirFsyncs.at(-1) as FsyncCall).markerAtStart).toBe(true);
  const reopened = PartitionLog.open(dir, pageCache);
  expect([reopened.openedCleanly, reopened.logEndOffset, reopened.segmentBaseOffsets()]).toEqual([true, 6, [0, 4]]);
  await reopened.close();
});

test('a close waits for appends durability waiters were given, and a second close waits for the first', async () => {
  const dir = path.join(tempParent(), 'topic-0');
  const log = PartitionLog.open(dir, { config: { 'flush.policy': 'page-cache' } });
  log.appendAsLeader(one('a'), 1);
  const durable = log.waitForDurable(0);
  const first = log.close();
  const second = log.close();
  await expect(durable).resolves.toBeUndefined();
  await Promise.all([first, second]);
  expect(fs.existsSync(path.join(dir, CLEAN_SHUTDOWN_FILE))).toBe(true);
  expect(() => log.appendAsLeader(one('b'), 1)).toThrow(/closed/);
});

test('logs created in one parent directory and closed at once share its fsync', async () => {
  const parent = tempParent();
  const logs = Array.from({ length: 40 }, (_, i) => PartitionLog.open(path.join(parent, `t-${i}`), { config: { 'flush.policy': 'page-cache' } }));
  for (const l of logs) l.appendAsLeader(one('a'), 1);
  const spy = await spyFsyncs(() => path.join(parent, CLEAN_SHUTDOWN_FILE));
  try {
    await Promise.all(logs.map((l) => l.close()));
  } finally {
    await spy.restore();
  }
  // Each close asks for it before its first await, so all forty join one fsync.
  expect(spy.calls.filter((c) => c.target === parent).length).toBe(1);
  for (let i = 0; i < logs.length; i++) {
    const l = PartitionLog.open(path.join(parent, `t-${i}`));
    expect([l.openedCleanly, l.logEndOffset]).toEqual([true, 1]);
    l.abandon();
  }
});
