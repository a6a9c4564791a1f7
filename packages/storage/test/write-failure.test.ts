/**
 * A segment write that fails part-way (a short write, then ENOSPC, as a filling disk gives) must
 * not leave bytes that a later clean shutdown makes part of the log: the log fails, as Kafka takes
 * a log directory offline on an IOException, and the next open recovers to the batches before it.
 * A close (or abandon) whose index writes fail still closes every file and releases the directory.
 * A segment read failing with a file system error (EIO) fails the log too, as Kafka takes the
 * log directory offline on an IOException during a read.
 *
 * It spies on fs.writeSync through the BUILT package (dist/): its CommonJS `import * as fs` keeps
 * live bindings to the module object, which the swc-transformed sources do not. `npm test`
 * builds first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StrandError, decodeRecordBatch, encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '../dist/index.js';

const records = (tag: string, n: number): Buffer => Buffer.from(encodeRecordBatch({ records: Array.from({ length: n }, (_, i) => ({ value: Buffer.from(`${tag}-${i}`) })), baseTimestamp: Date.now() }));

function values(log: PartitionLog): string[] {
  const out: string[] = [];
  for (let offset = log.logStartOffset, res = log.read(offset, 1 << 20); res.batchCount > 0; offset = res.nextOffset, res = log.read(offset, 1 << 20)) {
    for (let pos = 0; pos < res.records.length; pos += res.records.readInt32BE(pos + 8) + 12) {
      for (const r of decodeRecordBatch(res.records, pos).records) out.push(r.value?.toString() ?? '');
    }
  }
  return out;
}

test('a segment write that fails part-way fails the log; a restart keeps the batches before it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-write-failure-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realWrite = nodeFs.writeSync;
  let armed = false;
  let calls = 0;
  // Armed: the first write into a segment file takes half of what it is given, the next fails.
  const spy = jest.spyOn(nodeFs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => {
    if (armed && fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('.log')) {
      if (calls++ > 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      return realWrite(fd, buf, off, Math.ceil(len / 2), pos);
    }
    return realWrite(fd, buf, off, len, pos);
  }) as typeof fs.writeSync);
  try {
    const failures: StrandError[] = [];
    const log = PartitionLog.open(dir, { onFailure: (e: StrandError) => failures.push(e) });
    log.appendAsLeader(records('a', 5), 1);
    await log.flush();
    armed = true;
    let thrown: unknown;
    try {
      log.appendAsLeader(records('b', 50), 1);
    } catch (e: unknown) {
      thrown = e;
    }
    armed = false;
    expect(thrown).toMatchObject({ errorName: 'KAFKA_STORAGE_ERROR' });
    expect(failures.map((e) => e.errorName)).toEqual(['KAFKA_STORAGE_ERROR']);
    expect(() => log.appendAsLeader(records('c', 1), 1)).toThrow(StrandError);
    await log.close();

    const again = PartitionLog.open(dir);
    expect(values(again)).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    expect(again.appendAsLeader(records('d', 1), 1).firstOffset).toBe(5);
    await again.close();
    const third = PartitionLog.open(dir);
    expect(values(third)).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'd-0']);
    await third.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.each(['close', 'abandon'] as const)('on %s, failing index writes still leave no file open and release the directory', async (how) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-write-failure-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realWrite = nodeFs.writeSync;
  let armed = false;
  // Armed: writes into index files fail (the entries buffered since the last index flush).
  const spy = jest.spyOn(nodeFs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => {
    if (armed && /\.(time)?index$/.test(fs.readlinkSync(`/proc/self/fd/${fd}`))) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    return realWrite(fd, buf, off, len, pos);
  }) as typeof fs.writeSync);
  try {
    const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    const log = PartitionLog.open(dir);
    log.appendAsLeader(records('a', 5), 1);
    await log.flush();
    armed = true;
    if (how === 'close') await expect(log.close()).rejects.toThrow(/ENOSPC/);
    else log.abandon(); // as a crash would: nothing to report
    armed = false;
    expect(openFds()).toBe(before);
    // Not refused as still open in this process; no clean-shutdown marker, so it recovers.
    const again = PartitionLog.open(dir);
    expect(again.openedCleanly).toBe(false);
    expect(values(again)).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
    await again.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.each(['read', 'offsetForTimestamp', 'offsetOfMaxTimestamp'] as const)('a segment %s that fails with a file system error (EIO) fails the log, as a failed write does', async (how) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-read-failure-'));
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const realRead = nodeFs.readSync;
  let armed = false;
  // Armed: reads of segment files fail (an offline disk).
  const spy = jest.spyOn(nodeFs, 'readSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
    if (armed && fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('.log')) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
    return (realRead as (fd: number, ...rest: unknown[]) => number)(fd, ...rest);
  }) as typeof fs.readSync);
  try {
    const failures: StrandError[] = [];
    const log = PartitionLog.open(dir, { onFailure: (e: StrandError) => failures.push(e) });
    log.appendAsLeader(records('a', 5), 1);
    await log.flush();
    armed = true;
    const attempt = (): unknown => (how === 'read' ? log.read(0, 1 << 20) : how === 'offsetForTimestamp' ? log.offsetForTimestamp(0) : log.offsetOfMaxTimestamp(5));
    let thrown: unknown;
    try {
      attempt();
    } catch (e: unknown) {
      thrown = e;
    }
    armed = false;
    // Kafka's LocalLog.read (and its timestamp lookups) run under maybeHandleIOException: the log
    // directory goes offline, the caller gets a KafkaStorageException.
    expect(thrown).toBeInstanceOf(StrandError);
    expect(thrown).toMatchObject({ errorName: 'KAFKA_STORAGE_ERROR' });
    expect(failures.map((e) => e.errorName)).toEqual(['KAFKA_STORAGE_ERROR']);
    expect(log.isOpen).toBe(false);
    expect(() => log.appendAsLeader(records('b', 1), 1)).toThrow(StrandError);
    await log.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
