/**
 * How ReplicaManager closes its logs at a clean shutdown: many at once (a bounded number), with
 * every fsync off the event loop (the high watermark checkpoint, each partition's producer-state
 * snapshot, each log's close), so that a broker with thousands of partitions stops within its
 * grace period and keeps answering meanwhile. Every log ends with its clean-shutdown marker and
 * reopens without recovery; one log whose close fails leaves the others closed cleanly, and the
 * close reports the failure (the broker then does not record a clean shutdown). A replica deleted
 * by an image (topic deleted, reassigned away) is dropped without flushing: its directory is
 * renamed away and deleted (Kafka closes such a log without a flush too). The fsync calls are
 * recorded with test/support/fsync-recorder.ts (imported first: see why there).
 */
import { recordFsyncs } from '../support/fsync-recorder';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { MetadataImage } from '@strand/controller';
import { CLEAN_SHUTDOWN_FILE } from '@strand/storage';
import { HW_CHECKPOINT_FILE, ReplicaManager } from '../../src/server/replica-manager';
import { MANY, brokerRecord, host, manyImage, quiet, tempDirs } from '../support/many-partitions';

const tempDir = tempDirs('strand-rm-close-');
const n = MANY;

async function hostedLogs(): Promise<{ dir: string; rm: ReplicaManager }> {
  const dir = tempDir();
  const rm = new ReplicaManager(dir, host, quiet);
  await rm.applyImage(manyImage());
  expect(rm.all()).toHaveLength(n);
  for (const p of rm.all()) p.log.appendAsFollower(Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from('v') }], baseTimestamp: 1 })));
  await Promise.all(rm.all().map((p) => p.log.flush()));
  return { dir, rm };
}

test('a clean close closes the logs several at once, at most 16, with no fsync on the event loop; every log reopens without recovery', async () => {
  const { dir, rm } = await hostedLogs();
  const logs = rm.all().map((p) => p.log);
  // Closing: refuses writes already, still holds its directory lock.
  let most = 0;
  let done = false;
  const watch = (): void => {
    if (done) return;
    most = Math.max(most, logs.filter((l) => !l.isOpen && fs.existsSync(path.join(l.dir, '.lock'))).length);
    setImmediate(watch);
  };
  setImmediate(watch);
  const calls = await recordFsyncs(() => rm.close());
  done = true;
  expect(calls.filter((c) => c.call.endsWith('Sync'))).toEqual([]);
  // Producer snapshot, two indexes, recovery point and directory for each log, and the checkpoint.
  expect(calls.length).toBe(5 * n + 2);
  expect(most).toBeGreaterThan(1);
  expect(most).toBeLessThanOrEqual(16);
  expect(fs.readFileSync(path.join(dir, HW_CHECKPOINT_FILE), 'utf8').split('\n')[1]).toBe(String(n));
  for (const l of logs) expect(fs.existsSync(path.join(l.dir, CLEAN_SHUTDOWN_FILE))).toBe(true);

  const again = new ReplicaManager(dir, host, quiet);
  await again.applyImage(manyImage());
  expect(again.all().map((p) => [p.log.openedCleanly, p.log.logEndOffset])).toEqual(Array.from({ length: n }, () => [true, 1]));
  await again.close();
});

test('a log whose close fails leaves the others closed cleanly, and the close rejects', async () => {
  const { dir, rm } = await hostedLogs();
  // The marker of many-3 cannot be created (here a directory has its name; ENOSPC or EIO alike).
  fs.mkdirSync(path.join(dir, 'many-3', CLEAN_SHUTDOWN_FILE));
  await expect(rm.close()).rejects.toThrow(/EISDIR/);
  fs.rmdirSync(path.join(dir, 'many-3', CLEAN_SHUTDOWN_FILE));
  const again = new ReplicaManager(dir, host, quiet);
  await again.applyImage(manyImage());
  expect(again.all()).toHaveLength(n);
  for (const p of again.all()) expect([p.topicPartition, p.log.openedCleanly, p.log.logEndOffset]).toEqual([p.topicPartition, p.topicPartition !== 'many-3', 1]);
  await again.close();
});

test('replicas deleted by an image are dropped without an fsync of their files', async () => {
  const { dir, rm } = await hostedLogs();
  const calls = await recordFsyncs(async () => {
    await rm.applyImage(MetadataImage.fromRecords(11, [{ cluster: { clusterId: 'c' } }, brokerRecord(1), brokerRecord(2)]));
    await rm.removalsDone();
  });
  expect(rm.all()).toEqual([]);
  expect(fs.readdirSync(dir).filter((f) => f.startsWith('many-'))).toEqual([]);
  // The renames into -delete directories are made durable (one fsync of the log directory); no
  // file of a deleted log is flushed first.
  expect(calls.map((c) => path.relative(dir, c.target))).toEqual(['']);
  await rm.close();
});
