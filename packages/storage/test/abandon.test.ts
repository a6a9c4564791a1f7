/**
 * abandon() drops a log as a crash would: nothing of it is written after it returns. A crash test
 * abandons a log while a group-commit fdatasync is still running, damages or cuts the files as a
 * crash would, and reopens the directory; the abandoned log's buffered index entries, written
 * when that fdatasync finished, used to land in the reopened log's index files (the same inodes)
 * and point into bytes that no longer hold those batches.
 *
 * It holds the fdatasync through the BUILT package (dist/): its CommonJS `import * as fs` keeps
 * live bindings to the module object, which the swc-transformed sources do not. `npm test`
 * builds first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '../dist/index.js';

const one = (v: string): Buffer => Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: 1_700_000_000_000 }));

test('an abandoned log writes nothing after abandon(), even when an fdatasync was in flight', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-abandon-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realSync = nodeFs.fdatasync;
  const realClose = nodeFs.closeSync;
  const held: (() => void)[] = [];
  let hold = true;
  const closed: string[] = [];
  const syncSpy = jest.spyOn(nodeFs, 'fdatasync').mockImplementation(((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    if (hold) held.push(() => realSync(fd, cb));
    else realSync(fd, cb);
  }) as typeof fs.fdatasync);
  const closeSpy = jest.spyOn(nodeFs, 'closeSync').mockImplementation((fd: number) => {
    try {
      closed.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // not a file descriptor we can name
    }
    realClose(fd);
  });
  const config = { 'index.interval.bytes': '0' };
  const index = path.join(dir, `${'0'.repeat(20)}.index`);
  try {
    const log = PartitionLog.open(dir, { config });
    for (let i = 0; i < 5; i++) log.appendAsLeader(one(`old-${i}`), 1);
    expect(held.length).toBe(1); // the group commit's fdatasync of the log file
    log.abandon();
    // The crash lost everything not fdatasynced: the segment is empty again.
    fs.truncateSync(path.join(dir, `${'0'.repeat(20)}.log`), 0);
    hold = false;
    // Reopened, written (larger batches, so the old positions fall inside them), closed cleanly.
    const again = PartitionLog.open(dir, { config });
    for (let i = 0; i < 5; i++) again.appendAsLeader(one(`new-${i}-${'x'.repeat(100)}`), 1);
    await again.close();
    const before = fs.readFileSync(index);
    // The abandoned log's fdatasync finishes; wait until it has closed its files.
    const n = closed.length;
    for (const h of held.splice(0)) h();
    for (let turns = 0; turns < 1000 && !closed.slice(n).includes(index); turns++) await nextTurn();
    expect(closed.slice(n)).toContain(index);
    expect(fs.readFileSync(index)).toEqual(before);
    // The clean open trusts the index: it must describe the new batches.
    const third = PartitionLog.open(dir, { config });
    expect([third.logStartOffset, third.logEndOffset]).toEqual([0, 5]);
    expect(third.read(0, 1 << 20).batchCount).toBe(5);
    await third.close();
  } finally {
    syncSpy.mockRestore();
    closeSpy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
