/**
 * How ReplicaManager closes its logs at a clean shutdown: many at once (a bounded number), with
 * every fsync off the event loop (the high watermark checkpoint, each partition's producer-state
 * snapshot, each log's close), so that a broker with thousands of partitions stops within its
 * grace period and keeps answering meanwhile. Every log ends with its clean-shutdown marker and
 * reopens without recovery; one log whose close fails leaves the others closed cleanly, and the
 * close reports the failure (the broker then does not record a clean shutdown). The fsync calls
 * are counted by spying on node:fs, as in replica-manager-open.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { CLEAN_SHUTDOWN_FILE } from '@strand/storage';
import { HW_CHECKPOINT_FILE, ReplicaManager } from '../../src/server/replica-manager';
import type { PartitionHost } from '../../src/server/partition';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const topicId = '0123456789abcdef0123456789abcdef';
const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
const n = 40;
const quiet = { info: (): void => undefined, warn: (): void => undefined };

/** Topic `many` of `n` partitions, replicas [1, 2], broker 2 leading (this broker follows everywhere). */
function manyImage(): MetadataImage {
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  const records: MetadataRecord[] = [{ cluster: { clusterId: 'c' } }, broker(1), broker(2), { topic: { name: 'many', topicId: topicIdToBytes(topicId) } }];
  for (let p = 0; p < n; p++) records.push({ partition: { topicId: topicIdToBytes(topicId), partition: p, replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } });
  return MetadataImage.fromRecords(10, records);
}

/** Counts fsync and fdatasync calls made on the event loop (their Sync forms) while `f` runs. */
async function syncFsyncsDuring(f: () => Promise<void>): Promise<number> {
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  let count = 0;
  const real = { fsyncSync: nodeFs.fsyncSync, fdatasyncSync: nodeFs.fdatasyncSync };
  const spies = [
    jest.spyOn(nodeFs, 'fsyncSync').mockImplementation((fd: number) => {
      count++;
      real.fsyncSync(fd);
    }),
    jest.spyOn(nodeFs, 'fdatasyncSync').mockImplementation((fd: number) => {
      count++;
      real.fdatasyncSync(fd);
    }),
  ];
  try {
    await f();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return count;
}

async function hostedLogs(): Promise<{ dir: string; rm: ReplicaManager }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-close-'));
  dirs.push(dir);
  const rm = new ReplicaManager(dir, host, quiet);
  await rm.applyImage(manyImage());
  expect(rm.all()).toHaveLength(n);
  for (const p of rm.all()) p.log.appendAsFollower(Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from('v') }], baseTimestamp: 1 })));
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
  expect(await syncFsyncsDuring(() => rm.close())).toBe(0);
  done = true;
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
