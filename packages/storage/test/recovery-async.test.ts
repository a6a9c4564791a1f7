/**
 * Recovery off the event loop. `PartitionLog.openAsync` recovers an unclean log's segments with
 * LogSegment.recoverAsync, which reads the file in 1 MiB chunks in libuv's thread pool and checks
 * each chunk's batches between reads; `PartitionLog.open` recovers with the synchronous scan.
 * Both must keep exactly the same thing, byte for byte (log, indexes, checkpoints), whatever the
 * damage: batches straddling chunk boundaries, batches larger than a chunk, a torn tail, a
 * flipped bit, a torn length prefix. And the asynchronous one must give the event loop a turn
 * between chunks, so a broker recovering a 1 GiB segment after a power loss keeps heartbeating.
 * That test counts fs.read calls through the BUILT package (dist/), whose CommonJS `import * as
 * fs` keeps live bindings to node:fs (see new-log-dir-fsync.test.ts); `npm test` builds first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { PartitionLog } from '../src';
import { PartitionLog as BuiltPartitionLog } from '../dist/index.js';
import { batch, cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

const MiB = 1024 * 1024;
// One segment for everything; index entries every 4 KiB.
const options = { config: { 'segment.bytes': String(64 * MiB), 'index.interval.bytes': '4096', 'max.message.bytes': String(8 * MiB), 'flush.policy': 'page-cache' } };

/** One record of `bytes` bytes of value, tagged. */
function bigBatch(tag: string, bytes: number): Buffer {
  return batch(tag, 1, { values: [`${tag}-0:${'v'.repeat(bytes)}`] });
}

/** Writes batches of the given value sizes into one segment, shut down uncleanly with no recovery point. */
function writeUnclean(sizes: readonly number[]): { dir: string; values: string[]; file: string; ends: number[] } {
  const dir = tempDir();
  const log = PartitionLog.open(dir, options);
  const values: string[] = [];
  const ends: number[] = [];
  let end = 0;
  sizes.forEach((size, i) => {
    const b = bigBatch(`b${i}`, size);
    log.appendAsLeader(b, 1);
    values.push(`b${i}-0:${'v'.repeat(size)}`);
    end += b.length;
    ends.push(end);
  });
  log.abandon();
  fs.rmSync(path.join(dir, 'recovery-point-offset-checkpoint'), { force: true });
  const file = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.log')) as string);
  return { dir, values, file, ends };
}

/** Every file of a directory with its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return out;
}

/** Opens a copy of `dir` with open() and another with openAsync(); both must hold the same. */
async function recoverBothWays(dir: string): Promise<{ values: string[]; end: number; logBytes: number }> {
  const copy = tempDir();
  fs.cpSync(dir, copy, { recursive: true });
  const sync = PartitionLog.open(dir, options);
  const async = await PartitionLog.openAsync(copy, options);
  const values = readAll(sync, 0, 8 * MiB).map((r) => r.value ?? '');
  expect(readAll(async, 0, 8 * MiB).map((r) => r.value ?? '')).toEqual(values);
  expect(async.logEndOffset).toBe(sync.logEndOffset);
  expect(async.recoveredTruncatedBytes).toBe(sync.recoveredTruncatedBytes);
  const end = sync.logEndOffset;
  await sync.close();
  await async.close();
  const a = snapshot(dir);
  expect(snapshot(copy)).toEqual(a);
  const logName = Object.keys(a).find((n) => n.endsWith('.log')) as string;
  return { values, end, logBytes: fs.statSync(path.join(dir, logName)).size };
}

// Value sizes: mostly small, some over the synchronous scan's 1 MiB chunk, a few over the 4 MiB
// chunk of recoverAsync, so batches straddle chunk boundaries and some need a read larger than a
// chunk, both ways.
const sizesArb = fc.array(
  fc.oneof({ arbitrary: fc.integer({ min: 1, max: 40_000 }), weight: 6 }, { arbitrary: fc.integer({ min: 900_000, max: 1_600_000 }), weight: 2 }, { arbitrary: fc.integer({ min: 3_900_000, max: 4_500_000 }), weight: 1 }),
  { minLength: 1, maxLength: 40 },
);

describe('recovery off the event loop (openAsync) keeps what the synchronous recovery keeps', () => {
  it('with no damage, a torn tail or a flipped bit anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(sizesArb, fc.constantFrom('none', 'torn', 'flip'), fc.double({ min: 0, max: 1, noNaN: true }), async (sizes, damage, where) => {
        const { dir, values, file, ends } = writeUnclean(sizes);
        const size = fs.statSync(file).size;
        const at = Math.min(size - 1, Math.floor(where * size));
        if (damage === 'torn') fs.truncateSync(file, at);
        if (damage === 'flip') {
          const fd = fs.openSync(file, 'r+');
          const b = Buffer.alloc(1);
          fs.readSync(fd, b, 0, 1, at);
          b[0] = (b[0] as number) ^ 0x10;
          fs.writeSync(fd, b, 0, 1, at);
          fs.closeSync(fd);
        }
        const got = await recoverBothWays(dir);
        // What survives is a prefix of what was written, ending at a batch boundary.
        expect(got.values).toEqual(values.slice(0, got.values.length));
        expect(got.logBytes).toBe(got.values.length === 0 ? 0 : ends[got.values.length - 1]);
        if (damage === 'none') expect(got.values.length).toBe(values.length);
        // Damage inside a batch's first 8 bytes (its baseOffset, outside the CRC) may be accepted
        // as a gap; anything else cuts the log at or before the damaged batch.
        if (damage === 'torn') expect(got.logBytes).toBeLessThanOrEqual(at);
      }),
      { numRuns: 25 },
    );
  });

  it('a torn length prefix at the end of the file', async () => {
    const { dir, values, file, ends } = writeUnclean([10, 2_000_000, 10]);
    fs.truncateSync(file, (ends[1] as number) + 5);
    const got = await recoverBothWays(dir);
    expect(got.values).toEqual(values.slice(0, 2));
    expect(got.logBytes).toBe(ends[1]);
  });

  it('gives the event loop a turn between the chunks of a large segment', async () => {
    const { dir, values } = writeUnclean(Array.from({ length: 30 }, () => 700_000));
    // The turns of the event loop taken while the recovery reads (after its first read began,
    // before its last): none if the segment is read in one synchronous call.
    let reads = 0;
    const nodeFs = jest.requireActual<typeof fs>('node:fs');
    const realRead = nodeFs.read;
    const read = jest.spyOn(nodeFs, 'read').mockImplementation(((...args: Parameters<typeof fs.read>) => {
      reads++;
      realRead(...args);
    }) as typeof fs.read);
    const readsAtTurns: number[] = [];
    let ticking = true;
    const tick = (): void => {
      readsAtTurns.push(reads);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      const log = await BuiltPartitionLog.openAsync(dir, options);
      expect(log.openedCleanly).toBe(false);
      expect(log.logEndOffset).toBe(values.length);
      await log.close();
    } finally {
      ticking = false;
      read.mockRestore();
    }
    // ~20 MiB in 4 MiB chunks: a turn after each read but the last, at least.
    expect(reads).toBeGreaterThanOrEqual(5);
    expect(new Set(readsAtTurns.filter((n) => n > 0 && n < reads)).size).toBeGreaterThanOrEqual(reads - 1);
  });
});
