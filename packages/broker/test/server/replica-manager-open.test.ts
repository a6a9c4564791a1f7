/**
 * How ReplicaManager opens the logs of an image: many at once, with every fsync off the event
 * loop (PartitionLog.openAsync; partition.metadata written with writeFileAtomicAsync), each
 * partition reachable only once its log is open and durable, and one log that cannot be opened
 * kept offline while the others open. A restart after a clean shutdown opens every log without
 * recovery. The fsync calls are recorded with test/support/fsync-recorder.ts (imported first: a
 * jest.spyOn on node:fs is never called by the packages' sources here, see why there).
 */
import { recordFsyncs } from '../support/fsync-recorder';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import type { MetadataImage } from '@strand/controller';
import { CLEAN_SHUTDOWN_FILE } from '@strand/storage';
import { ReplicaManager } from '../../src/server/replica-manager';
import { MANY, host, manyImage, quiet, tempDirs } from '../support/many-partitions';

const tempDir = tempDirs('strand-rm-open-');
const n = MANY;

/** Counts fsync and fdatasync calls made on the event loop (their Sync forms) while `f` runs; checks some ran off it. */
async function syncFsyncsDuring(f: () => Promise<void>): Promise<number> {
  const calls = await recordFsyncs(f);
  expect(calls.length).toBeGreaterThan(0);
  return calls.filter((c) => c.call.endsWith('Sync')).length;
}

/**
 * Applies `image`, checking at every event-loop turn meanwhile that each partition already
 * reachable has a log that finished opening (its clean-shutdown marker gone, everything durable).
 * Returns how many turns ran before the image was applied.
 */
async function applyWatching(rm: ReplicaManager, image: MetadataImage, dir: string): Promise<number> {
  let turns = 0;
  let done = false;
  const bad: string[] = [];
  const watch = (): void => {
    if (done) return;
    turns++;
    for (const p of rm.all()) {
      if (fs.existsSync(path.join(dir, p.topicPartition, CLEAN_SHUTDOWN_FILE)) || p.log.durableEndOffset !== p.log.logEndOffset) bad.push(p.topicPartition);
    }
    setImmediate(watch);
  };
  setImmediate(watch);
  await rm.applyImage(image);
  done = true;
  expect(bad).toEqual([]);
  return turns;
}

test('logs open in parallel with no fsync on the event loop, each reachable only once open; a clean restart recovers none; a bad one stays offline', async () => {
  const dir = tempDir();
  const image = manyImage();
  const rm = new ReplicaManager(dir, host, quiet);
  let turns = 0;
  expect(await syncFsyncsDuring(async () => void (turns = await applyWatching(rm, image, dir)))).toBe(0);
  expect(turns).toBeGreaterThan(0);
  expect(rm.all()).toHaveLength(n);
  for (const p of rm.all()) p.log.appendAsFollower(Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from('v') }], baseTimestamp: 1 })));
  await rm.close();

  // One partition's metadata file damaged: that one stays offline, the others open.
  fs.writeFileSync(path.join(dir, 'many-7', 'partition.metadata'), '');
  const warnings: Array<Record<string, unknown>> = [];
  const again = new ReplicaManager(dir, host, { info: () => undefined, warn: (fields, msg) => msg === 'replica offline: cannot open or apply metadata' && warnings.push(fields) });
  expect(await syncFsyncsDuring(async () => void (await applyWatching(again, image, dir)))).toBe(0);
  expect(again.all()).toHaveLength(n - 1);
  expect(again.partitionByName('many', 7)).toBeUndefined();
  expect(warnings.map((w) => w.partition)).toEqual([7]);
  for (const p of again.all()) {
    expect(p.log.openedCleanly).toBe(true);
    expect(p.log.logEndOffset).toBe(1);
  }
  await again.close();
});
