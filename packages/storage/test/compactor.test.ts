/**
 * Compaction against a model: after a pass, the closed segments hold exactly the latest record
 * of each key (plus keyless records), with original offsets and epochs; the active segment is
 * untouched; tombstones survive delete.retention.ms after the cleaner first reached them and then
 * go; min.compaction.lag.ms protects recent segments; appends proceed while a pass runs; an
 * interrupted swap is completed on reopen; each pass keys its offset map's hash afresh.
 */
import crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { CompressionType, TimestampType, decodeRecordBatch, encodeRecordBatch, validateBatches } from '@strand/protocol';
import { ManualClock, PartitionLog, compactLog } from '../src';
import { LogSegment } from '../src/segment';
import { asUnreadableCodec, batch, cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

const config = { 'cleanup.policy': 'compact', 'segment.bytes': '350', 'delete.retention.ms': '1000' };

describe('compaction', () => {
  it('keeps the latest record per key in closed segments (model)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.boolean()), { minLength: 1, maxLength: 80 }), async (ops) => {
        const clock = new ManualClock(10_000);
        const log = PartitionLog.open(tempDir(), { clock, config });
        const written: { offset: number; key: string; value: string | null }[] = [];
        for (const [i, [k, tomb]] of ops.entries()) {
          const value = tomb && i % 3 === 0 ? null : `v${i}`;
          log.appendAsLeader(batch(`b${i}`, 1, { keys: [`k${k}`], values: [value], timestamp: 10_000 }), 0);
          written.push({ offset: i, key: `k${k}`, value });
        }
        const activeBase = log.segmentBaseOffsets().slice(-1)[0] as number;
        await log.flush();
        await compactLog(log, { clock });
        const latest = new Map<string, number>();
        for (const w of written.filter((x) => x.offset < activeBase)) latest.set(w.key, w.offset);
        const expected = written.filter((w) => w.offset >= activeBase || latest.get(w.key) === w.offset);
        expect(readAll(log).map((r) => [r.offset, r.key, r.value])).toEqual(expected.map((w) => [w.offset, w.key, w.value]));
        expect(log.logEndOffset).toBe(ops.length);
        // Tombstones are still there (their horizon is in the future)... (Nothing new is dirty:
        // only a forced pass runs, as Kafka's tests call its cleaner directly.)
        clock.advance(999);
        await compactLog(log, { clock, force: true });
        expect(readAll(log).map((r) => r.offset)).toEqual(expected.map((w) => w.offset));
        // ...and go once delete.retention.ms has passed since the first pass reached them.
        clock.advance(2);
        await compactLog(log, { clock, force: true });
        const final = expected.filter((w) => w.offset >= activeBase || w.value !== null);
        expect(readAll(log).map((r) => [r.offset, r.value])).toEqual(final.map((w) => [w.offset, w.value]));
        await log.close();
      }),
      { numRuns: 25 },
    );
  });

  it('keeps the latest record per key across batches of several records (gzip, headers, keyless records, tombstones), and copies the batches that lose nothing byte for byte', async () => {
    const recordArb = fc.record({ key: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null }), tombstone: fc.boolean(), header: fc.boolean() });
    const batchArb = fc.record({ gzip: fc.boolean(), records: fc.array(recordArb, { minLength: 1, maxLength: 6 }), roll: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 30 }), async (batches) => {
        const clock = new ManualClock(10_000);
        const log = PartitionLog.open(tempDir(), { clock, config });
        interface Written {
          offset: number;
          key: string | null;
          value: string | null;
          header: string | null;
        }
        const written: Written[] = [];
        const originals = new Map<number, { bytes: Buffer; records: Written[] }>();
        let offset = 0;
        for (const [b, spec] of batches.entries()) {
          const records = spec.records.map((r, i): Written => ({ offset: offset + i, key: r.key === null ? null : `k${r.key}`, value: r.tombstone && r.key !== null ? null : `v${b}-${i}`, header: r.header ? `h${b}-${i}` : null }));
          // Replicated batches, as a follower stores them: keyless records are legal there.
          const bytes = encodeRecordBatch({
            baseOffset: offset,
            baseTimestamp: 10_000,
            compression: spec.gzip ? CompressionType.Gzip : CompressionType.None,
            records: records.map((r) => ({ key: r.key === null ? null : Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), headers: r.header === null ? [] : [{ key: 'h', value: Buffer.from(r.header) }] })),
          });
          log.appendAsFollower(bytes);
          if (spec.roll) log.rollIfNotEmpty();
          originals.set(offset, { bytes, records });
          written.push(...records);
          offset += records.length;
        }
        const activeBase = log.segmentBaseOffsets().slice(-1)[0] as number;
        await log.flush();
        expect((await compactLog(log, { clock, force: true })).recordsRead).toBe(written.filter((w) => w.offset < activeBase).length);
        const latest = new Map<string, number>();
        for (const w of written) if (w.offset < activeBase && w.key !== null) latest.set(w.key, w.offset);
        const survives = (w: Written): boolean => w.offset >= activeBase || w.key === null || latest.get(w.key) === w.offset;
        // Every record read back, headers included.
        const read: Written[] = [];
        for (let from = 0; from < log.logEndOffset; ) {
          const res = log.read(from, 1 << 20);
          for (const v of validateBatches(res.records)) {
            const d = decodeRecordBatch(res.records, v.position);
            for (const r of d.records) read.push({ offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, header: r.headers[0]?.value?.toString() ?? null });
            const original = originals.get(d.baseOffset) as { bytes: Buffer; records: Written[] };
            const holdsTombstone = original.records.some((w) => survives(w) && w.key !== null && w.value === null);
            if (d.baseOffset < activeBase && holdsTombstone) {
              // The first pass to keep a tombstone stamps its batch's delete horizon.
              expect(d.hasDeleteHorizon).toBe(true);
            } else if (original.records.every(survives)) {
              // A batch that loses nothing is copied byte for byte.
              expect(res.records.subarray(v.position, v.position + v.size).equals(original.bytes)).toBe(true);
            }
          }
          expect(res.nextOffset).toBeGreaterThan(from);
          from = res.nextOffset;
        }
        expect(read).toEqual(written.filter(survives));
        await log.close();
      }),
      { numRuns: 40 },
    );
  });

  it('with an offset map smaller than the dirty segments, each pass goes on where the last stopped, to the same result', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 80 }), async (keys) => {
        const clock = new ManualClock(10_000);
        const log = PartitionLog.open(tempDir(), { clock, config });
        keys.forEach((k, i) => log.appendAsLeader(batch(`b${i}`, 1, { keys: [`k${k}`], values: [`v${i}`], timestamp: 10_000 }), 0));
        const activeBase = log.segmentBaseOffsets().slice(-1)[0] as number;
        await log.flush();
        // Room for 5 keys: about one 350-byte segment (4 records) per pass.
        const small = { clock, force: true, offsetMapBytes: 24 * 6 };
        let passes = 0;
        while (log.firstDirtyOffset < activeBase && passes < 100) {
          await compactLog(log, small);
          passes++;
        }
        expect(log.firstDirtyOffset).toBe(activeBase);
        if (activeBase > 10) expect(passes).toBeGreaterThan(1);
        const latest = new Map<string, number>();
        keys.forEach((k, i) => {
          if (i < activeBase) latest.set(`k${k}`, i);
        });
        const expected = keys.map((k, i) => [i, `k${k}`]).filter(([i, k]) => (i as number) >= activeBase || latest.get(k as string) === i);
        expect(readAll(log).map((r) => [r.offset, r.key])).toEqual(expected);
        await log.close();
      }),
      { numRuns: 25 },
    );
  });

  it('compacts a segment with more offsets than the offset map holds if its keys fit, and refuses one whose keys do not, changing nothing', async () => {
    const clock = new ManualClock(10_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact' } });
    // 40 records, 3 keys, one segment: more offsets than the 5-key map, few enough keys.
    for (let i = 0; i < 40; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: [`k${i % 3}`], timestamp: 10_000 }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock, offsetMapBytes: 24 * 6 })).recordsRemoved).toBe(37);
    expect(readAll(log).map((r) => r.offset)).toEqual([37, 38, 39]);
    // Then a segment of 8 distinct keys: the map cannot tell which records are superseded.
    for (let i = 0; i < 16; i++) log.appendAsLeader(batch(`c${i}`, 1, { keys: [`x${i % 8}`], timestamp: 10_000 }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    await expect(compactLog(log, { clock, offsetMapBytes: 24 * 6 })).rejects.toMatchObject({ errorName: 'INVALID_CONFIG', message: expect.stringContaining('log.cleaner.dedupe.buffer.size') });
    expect(readAll(log).map((r) => r.offset)).toEqual([37, 38, 39, ...Array.from({ length: 16 }, (_, i) => 40 + i)]);
    // With room for them it goes through.
    expect((await compactLog(log, { clock, offsetMapBytes: 24 * 10 })).recordsRemoved).toBe(8);
    expect(readAll(log).map((r) => r.offset)).toEqual([37, 38, 39, ...Array.from({ length: 8 }, (_, i) => 48 + i)]);
    await log.close();
  });

  it('maps only the dirty part of a segment that a truncation left half clean (the clean keys do not count against the map), with the default map size', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact' } });
    for (let i = 0; i < 10; i++) log.appendAsLeader(batch(`a${i}`, 1, { keys: [`k${i}`] }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRead).toBe(10);
    expect(log.firstDirtyOffset).toBe(10);
    // A follower truncating to an uncleanly elected leader's end: segment 0 becomes the active
    // one again, cleaned up to 5, and gets 4 new keys and one that supersedes k0.
    log.truncateTo(5);
    expect(log.firstDirtyOffset).toBe(5);
    for (let i = 0; i < 4; i++) log.appendAsLeader(batch(`x${i}`, 1, { keys: [`x${i}`] }), 1);
    log.appendAsLeader(batch('k0new', 1, { keys: ['k0'] }), 1);
    log.rollIfNotEmpty();
    await log.flush();
    // 5 dirty offsets (an offset map for 5 keys) in a segment that holds 9 distinct keys.
    const stats = await compactLog(log, { clock });
    expect([stats.recordsRead, stats.recordsRemoved]).toEqual([10, 1]);
    expect(readAll(log).map((r) => r.key)).toEqual(['k1', 'k2', 'k3', 'k4', 'x0', 'x1', 'x2', 'x3', 'k0']);
    expect(log.firstDirtyOffset).toBe(10);
    await log.close();
  });

  it('respects min.compaction.lag.ms and the upper bound', async () => {
    const clock = new ManualClock(100_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { ...config, 'min.compaction.lag.ms': '5000' } });
    for (let i = 0; i < 30; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: ['same'], timestamp: 100_000 - 1000 }), 0);
    await log.flush();
    expect((await compactLog(log, { clock })).segmentsCleaned).toBe(0);
    clock.advance(10_000);
    expect((await compactLog(log, { clock, upperBoundOffset: 0 })).segmentsCleaned).toBe(0);
    const stats = await compactLog(log, { clock });
    expect(stats.segmentsCleaned).toBeGreaterThan(0);
    expect(stats.recordsRemoved).toBeGreaterThan(0);
    await log.close();
  });

  it('runs a pass only when the dirty share exceeds min.cleanable.dirty.ratio, across a reopen', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const dir = tempDir();
    const cfg = { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.5' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    const segmentOf = (l: PartitionLog, tag: string, n: number): void => {
      for (let i = 0; i < n; i++) l.appendAsLeader(batch(`${tag}${i}`, 1, { keys: [`k${i}`] }), 0);
      l.rollIfNotEmpty();
    };
    segmentOf(log, 'a', 10);
    segmentOf(log, 'b', 10);
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRead).toBe(20); // nothing cleaned yet: all dirty
    segmentOf(log, 'c', 5); // 5 of 15 records dirty: a third
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRead).toBe(0);
    await log.close();
    const again = PartitionLog.open(dir, { clock, config: cfg });
    expect((await compactLog(again, { clock })).recordsRead).toBe(0); // the checkpoint survives
    segmentOf(again, 'd', 5); // 10 of 20: a half, not above it
    await again.flush();
    expect((await compactLog(again, { clock })).recordsRead).toBe(0);
    segmentOf(again, 'e', 1);
    await again.flush();
    const stats = await compactLog(again, { clock });
    expect([stats.recordsRead, stats.recordsRemoved]).toEqual([21, 11]);
    expect((await compactLog(again, { clock })).recordsRead).toBe(0);
    await again.close();
  });

  it('max.compaction.lag.ms rolls the active segment of a compacted topic, so superseded values go', async () => {
    const T0 = 1_700_000_000_000;
    const clock = new ManualClock(T0);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact', 'max.compaction.lag.ms': '1000' } });
    log.appendAsLeader(batch('v1', 1, { keys: ['a'], timestamp: T0 }), 0);
    clock.advance(5000);
    log.appendAsLeader(batch('v2', 1, { keys: ['a'], timestamp: T0 + 5000 }), 0); // rolls: segment.ms is 7 days
    clock.advance(5000);
    log.appendAsLeader(batch('v3', 1, { keys: ['b'], timestamp: T0 + 10000 }), 0);
    expect(log.segmentBaseOffsets()).toEqual([0, 1, 2]);
    await log.flush();
    await compactLog(log, { clock });
    expect(readAll(log).map((r) => r.value)).toEqual(['v2-0', 'v3-0']);
    await log.close();
  });

  it('max.compaction.lag.ms forces a pass over dirty segments older than it, whatever the dirty ratio', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.9', 'max.compaction.lag.ms': '60000' } });
    for (let i = 0; i < 10; i++) log.appendAsLeader(batch(`old${i}`, 1, { keys: [`k${i}`], timestamp: clock.nowMs() }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRead).toBe(10); // all dirty
    log.appendAsLeader(batch('new', 1, { keys: ['k0'], timestamp: clock.nowMs() }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRead).toBe(0); // 1 of 11 dirty
    clock.advance(59_000);
    expect((await compactLog(log, { clock })).recordsRead).toBe(0);
    clock.advance(2_000); // 'new' has waited more than a minute
    expect((await compactLog(log, { clock })).recordsRemoved).toBe(1);
    expect(readAll(log).map((r) => r.value)).toEqual([...Array.from({ length: 9 }, (_, i) => `old${i + 1}-0`), 'new-0']);
    await log.close();
  });

  it('min.compaction.lag.ms protects records without a timestamp by the segment\'s last write', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { ...config, 'min.compaction.lag.ms': '5000' } });
    for (let i = 0; i < 30; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: ['same'], timestamp: -1 }), 0);
    await log.flush();
    expect(log.segmentCount).toBeGreaterThan(2);
    clock.advance(4000);
    expect((await compactLog(log, { clock })).segmentsCleaned).toBe(0);
    clock.advance(2000);
    expect((await compactLog(log, { clock })).segmentsCleaned).toBeGreaterThan(0);
    await log.close();
  });

  it('does not block appends while it runs', async () => {
    const clock = new ManualClock(1_700_000_000_000); // the records' timestamp (helpers' default)
    const log = PartitionLog.open(tempDir(), { clock, config: { ...config, 'segment.bytes': '4000' } });
    for (let i = 0; i < 600; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: [`k${i % 5}`] }), 0);
    await log.flush();
    const pass = compactLog(log, { clock, sliceMs: 0 });
    // The pass yields between batches: appends interleave with it.
    let appendedDuring = 0;
    let done = false;
    void pass.then(() => (done = true));
    while (!done) {
      log.appendAsLeader(batch('during', 1, { keys: ['k9'] }), 0);
      appendedDuring++;
      await new Promise((r) => setImmediate(r));
    }
    expect(appendedDuring).toBeGreaterThan(1);
    const values = readAll(log).map((r) => r.value);
    expect(values.filter((v) => v === 'during-0').length).toBe(appendedDuring);
    await log.close();
  });

  it('keeps the append time of a LogAppendTime batch it rewrites, so retention keeps the latest value', async () => {
    const T0 = 1_700_000_000_000;
    const DAY = 24 * 3600 * 1000;
    const clock = new ManualClock(T0);
    const dir = tempDir();
    const cfg = { 'cleanup.policy': 'compact,delete', 'message.timestamp.type': 'LogAppendTime' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    // Create times 30 days old (a mirrored topic, say); the broker stamps T0 on append.
    const created = T0 - 30 * DAY;
    const rec = (k: string, v: string): { key: Buffer; value: Buffer } => ({ key: Buffer.from(k), value: Buffer.from(v) });
    log.appendAsLeader(encodeRecordBatch({ records: [rec('a', 'a1'), rec('b', 'b1')], baseTimestamp: created }), 0);
    log.rollIfNotEmpty();
    log.appendAsLeader(encodeRecordBatch({ records: [rec('a', 'a2')], baseTimestamp: created }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock })).recordsRemoved).toBe(1); // a1: its batch is rewritten with b1 alone
    const res = log.read(0, 1 << 20);
    const rewritten = decodeRecordBatch(res.records, (validateBatches(res.records)[0] as { position: number }).position);
    expect([rewritten.timestampType, rewritten.maxTimestamp, rewritten.records.map((r) => r.value?.toString())]).toEqual([TimestampType.LogAppendTime, T0, ['b1']]);
    expect(log.offsetForTimestamp(T0)?.offset).toBe(1);
    // retention.ms is 7 days and b1 was appended a day ago: it stays, before and after a reopen.
    clock.advance(DAY);
    expect(log.applyRetention()).toBe(0);
    await log.close();
    const again = PartitionLog.open(dir, { clock, config: cfg });
    expect(again.applyRetention()).toBe(0);
    expect(readAll(again).map((r) => r.value)).toEqual(['b1', 'a2']);
    await again.close();
  });

  it('aborts a pass when the log is truncated under it, leaving no .swap for the next open to install', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const cfg = { 'cleanup.policy': 'compact' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    for (let i = 0; i < 10; i++) log.appendAsLeader(batch(`old${i}`, 1, { keys: ['k'] }), 0);
    log.rollIfNotEmpty();
    for (let i = 0; i < 10; i++) log.appendAsLeader(batch(`j${i}`, 1, { keys: [`j${i}`] }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    const seg0 = path.join(dir, '00000000000000000000.log');
    const pass = compactLog(log, { clock, sliceMs: 0 });
    // Wait until the pass has written segment 0's only survivor (offset 9) to its .cleaned copy.
    while (!(fs.existsSync(`${seg0}.cleaned`) && fs.statSync(`${seg0}.cleaned`).size > 0)) await new Promise((r) => setImmediate(r));
    // A follower truncating after an unclean election (the new leader's log ends at 5), then new data.
    log.truncateTo(5);
    log.appendAsLeader(batch('new', 1, { keys: ['k'] }), 1);
    const stats = await pass;
    expect([stats.aborted, stats.segmentsCleaned]).toEqual([true, 0]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.swap') || f.endsWith('.cleaned'))).toEqual([]);
    const expected = ['old0-0', 'old1-0', 'old2-0', 'old3-0', 'old4-0', 'new-0'];
    expect(readAll(log).map((r) => r.value)).toEqual(expected);
    await log.close();
    const again = PartitionLog.open(dir, { clock, config: cfg });
    expect(readAll(again).map((r) => r.value)).toEqual(expected);
    await again.close();
  });

  it('stops reading a segment that DeleteRecords deleted under it', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(dir, { clock, config: { 'cleanup.policy': 'compact,delete' } });
    // 2.4 MB in segment 0: more than one read chunk, so the pass goes back to the file midway.
    const big = 'x'.repeat(20_000);
    for (let i = 0; i < 120; i++) log.appendAsLeader(batch('b', 1, { keys: [`k${i % 3}`], values: [big] }), 0);
    log.rollIfNotEmpty();
    log.appendAsLeader(batch('c', 1, { keys: ['k0'] }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    const pass = compactLog(log, { clock, sliceMs: 0 });
    await new Promise((r) => setImmediate(r)); // the pass is reading segment 0
    log.deleteRecordsBefore(120);
    const stats = await pass;
    expect([stats.aborted, stats.segmentsCleaned]).toEqual([false, 0]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.swap') || f.endsWith('.cleaned'))).toEqual([]);
    expect(readAll(log).map((r) => r.value)).toEqual(['c-0']);
    await log.close();
  });

  it('leaves a group it could not install dirty, so the next pass compacts what is left of it', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(dir, { clock, config: { 'cleanup.policy': 'compact,delete' } });
    // Segment 0 (2.4 MB, read in several chunks) and segment 120 (two records of key d) fit one
    // segment: one group.
    const big = 'x'.repeat(20_000);
    for (let i = 0; i < 120; i++) log.appendAsLeader(batch('b', 1, { keys: [`k${i % 3}`], values: [big] }), 0);
    log.rollIfNotEmpty();
    log.appendAsLeader(batch('d', 2, { keys: ['d', 'd'] }), 0);
    log.rollIfNotEmpty();
    log.appendAsLeader(batch('c', 1, { keys: ['k0'] }), 0);
    await log.flush();
    let done = false;
    const pass = compactLog(log, { clock, sliceMs: 0 }).finally(() => (done = true));
    // DeleteRecords while the group's copy is being written (pass 2).
    const writing = (): boolean => fs.readdirSync(dir).some((f) => f.endsWith('.cleaned'));
    while (!done && !writing()) await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    log.deleteRecordsBefore(120);
    expect((await pass).segmentsCleaned).toBe(0);
    // The group's copy was dropped: segment 120 was not compacted and is still dirty.
    expect(log.firstDirtyOffset).toBeLessThanOrEqual(120);
    await compactLog(log, { clock });
    expect(readAll(log).map((r) => r.value)).toEqual(['d-1', 'c-0']);
    await log.close();
  });

  it('aborts a pass when the log closes under it', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(dir, { clock, config });
    for (let i = 0; i < 100; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: [`k${i % 4}`] }), 0);
    await log.flush();
    expect(log.segmentCount).toBeGreaterThan(3);
    const pass = compactLog(log, { clock, sliceMs: 0 });
    await new Promise((r) => setImmediate(r));
    await log.close();
    expect((await pass).aborted).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.swap') || f.endsWith('.cleaned'))).toEqual([]);
    const again = PartitionLog.open(dir, { clock, config });
    expect(again.logEndOffset).toBe(100);
    await again.close();
  });

  it('copies a batch in a codec this build lacks unchanged, and compacts the rest', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact' } });
    const unreadable = asUnreadableCodec(batch('x', 1, { keys: ['a'] }));
    log.appendAsLeader(Buffer.from(unreadable), 0); // offset 0
    for (let i = 0; i < 5; i++) log.appendAsLeader(batch(`v${i}`, 1, { keys: ['a'] }), 0); // 1..5
    log.rollIfNotEmpty();
    await log.flush();
    const stats = await compactLog(log, { clock });
    expect([stats.recordsRemoved, stats.segmentsCleaned]).toEqual([4, 1]);
    const res = log.read(0, 1 << 20);
    const views = validateBatches(res.records);
    expect(views.map((v) => v.header.baseOffset)).toEqual([0, 5]);
    // The unreadable batch is byte for byte what was appended (apart from the stamped offset and epoch).
    expect(res.records.subarray(12 + 4, (views[0] as { size: number }).size).equals(unreadable.subarray(16))).toBe(true);
    await log.close();
  });

  it('keeps a producer\'s last batch as an empty batch when all its records go, for replicas rebuilding producer state', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const cfg = { 'cleanup.policy': 'compact' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    const idem = (keys: string[], seq: number): Buffer => encodeRecordBatch({ records: keys.map((k) => ({ key: Buffer.from(k), value: Buffer.from(`p7-${seq}`) })), baseTimestamp: clock.nowMs(), producerId: 7, producerEpoch: 2, baseSequence: seq });
    log.appendAsLeader(idem(['a'], 0), 0); // offset 0
    log.appendAsLeader(idem(['a', 'b'], 1), 0); // offsets 1-2: producer 7's last batch
    log.appendAsLeader(batch('other', 2, { keys: ['a', 'b'] }), 0); // 3-4: supersede both
    log.rollIfNotEmpty();
    await log.flush();
    const headers = (l: PartitionLog): string[] => {
      const out: string[] = [];
      for (let offset = l.logStartOffset, res = l.read(offset, 1 << 20); res.batchCount > 0; offset = res.nextOffset, res = l.read(offset, 1 << 20)) {
        for (const { header: h } of validateBatches(res.records)) out.push(`${h.baseOffset}+${h.lastOffsetDelta} pid ${h.producerId} seq ${h.baseSequence} n ${h.recordsCount}`);
      }
      return out;
    };
    expect((await compactLog(log, { clock })).recordsRemoved).toBe(3);
    expect(headers(log)).toEqual(['1+1 pid 7 seq 1 n 0', '3+1 pid -1 seq -1 n 2']);
    expect(readAll(log).map((r) => `${r.offset}:${r.value}`)).toEqual(['3:other-0', '4:other-1']);
    // Every reader of the log takes the empty batch: a reopen that rescans it, a follower's append.
    log.abandon();
    fs.rmSync(path.join(dir, 'recovery-point-offset-checkpoint'));
    const again = PartitionLog.open(dir, { clock, config: cfg });
    expect(again.recoveredTruncatedBytes).toBe(0);
    expect(headers(again)).toEqual(['1+1 pid 7 seq 1 n 0', '3+1 pid -1 seq -1 n 2']);
    const follower = PartitionLog.open(tempDir(), { clock, config: cfg });
    follower.appendAsFollower(Buffer.from(again.read(0, 1 << 20).records));
    expect(headers(follower)).toEqual(headers(again));
    await follower.close();
    // Once the producer has a later batch, the empty one has nothing left to say and goes.
    again.appendAsLeader(idem(['c'], 3), 0); // offset 5
    again.rollIfNotEmpty();
    await again.flush();
    await compactLog(again, { clock, force: true });
    expect(headers(again)).toEqual(['3+1 pid -1 seq -1 n 2', '5+0 pid 7 seq 3 n 1']);
    await again.close();
  });

  it('keeps no empty batch for a producer the broker no longer tracks (producerLastOffset)', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact' } });
    for (const pid of [7, 8]) log.appendAsLeader(encodeRecordBatch({ records: [{ key: Buffer.from('a'), value: Buffer.from(`p${pid}`) }], baseTimestamp: clock.nowMs(), producerId: pid, producerEpoch: 0, baseSequence: 0 }), 0);
    log.appendAsLeader(batch('other', 1, { keys: ['a'] }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    await compactLog(log, { clock, producerLastOffset: (pid) => (pid === 8 ? 1 : undefined) });
    expect(validateBatches(log.read(0, 1 << 20).records).map((v) => [v.header.producerId, v.header.recordsCount])).toEqual([[8, 0], [-1, 1]]);
    await log.close();
  });

  it('merges adjacent small segments while they fit segment.bytes, across reopens', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const cfg = { 'cleanup.policy': 'compact', 'segment.bytes': '1000' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    const written: { offset: number; key: string; value: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const key = `k${i % 15}`;
      log.appendAsLeader(batch(`v${i}`, 1, { keys: [key] }), 0);
      written.push({ offset: i, key, value: `v${i}-0` });
      log.rollIfNotEmpty(); // a segment per batch, as a busy max.compaction.lag.ms would roll them
    }
    await log.flush();
    expect(log.segmentCount).toBe(41);
    const stats = await compactLog(log, { clock });
    expect(stats.segmentsCleaned).toBeGreaterThan(30); // all but a last group of one unchanged segment
    const latest = new Map(written.map((w) => [w.key, w.offset]));
    const expected = written.filter((w) => latest.get(w.key) === w.offset).map((w) => `${w.offset}:${w.value}`);
    const check = (l: PartitionLog): void => {
      expect(readAll(l).map((r) => `${r.offset}:${r.value}`)).toEqual(expected);
      for (let o = 25; o < 40; o++) expect(readAll(l, o, 1)[0]?.offset).toBe(o);
    };
    check(log);
    // 25 segments emptied, 15 of about 75 bytes: a few segments of at most 1000 bytes.
    const bases = log.segmentBaseOffsets();
    expect(bases.length).toBeLessThan(8);
    expect(bases[bases.length - 1]).toBe(40);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
    expect(files.length).toBe(bases.length);
    for (const f of files.slice(0, -1)) expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(1000);
    await log.close();
    const again = PartitionLog.open(dir, { clock, config: cfg });
    expect(again.segmentBaseOffsets()).toEqual(bases);
    check(again);
    again.abandon();
    fs.rmSync(path.join(dir, 'recovery-point-offset-checkpoint'));
    const recovered = PartitionLog.open(dir, { clock, config: cfg });
    expect(recovered.recoveredTruncatedBytes).toBe(0);
    check(recovered);
    expect(recovered.appendAsLeader(batch('after', 1, { keys: ['k0'] }), 0).firstOffset).toBe(40);
    await recovered.close();
  });

  it('compacts only from the log start up to the first segment not yet flushed, so no tombstone outlives what it deletes', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    // Segment 0 is not fdatasynced yet (its flushes cover nothing); the later ones are.
    const realFlush = LogSegment.prototype.flush;
    const spy = jest.spyOn(LogSegment.prototype, 'flush').mockImplementation(function (this: LogSegment, withIndexes: boolean) {
      return this.baseOffset === 0 ? Promise.resolve(this.flushedSize) : realFlush.call(this, withIndexes);
    });
    const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact', 'flush.policy': 'page-cache', 'delete.retention.ms': '0' } });
    try {
      log.appendAsLeader(batch('old', 1, { keys: ['a'] }), 0);
      log.rollIfNotEmpty();
      log.appendAsLeader(batch('tomb', 1, { keys: ['a'], values: [null] }), 0);
      log.rollIfNotEmpty();
      log.appendAsLeader(batch('b', 1, { keys: ['b'] }), 0);
      log.rollIfNotEmpty();
      await log.flush(); // segments 1 and 2 are fdatasynced, segment 0 is not
      await compactLog(log, { clock, force: true });
      clock.advance(1);
      await compactLog(log, { clock, force: true });
      // Key a's latest record is still the tombstone: 'old' did not come back.
      expect(readAll(log).filter((r) => r.key === 'a').pop()?.value).toBeNull();
    } finally {
      spy.mockRestore();
      log.abandon();
    }
  });

  it('installs the indexes it built while writing the copy: the same bytes a rebuild from the log gives', async () => {
    const clock = new ManualClock(10_000);
    const dir = tempDir();
    const cfg = { 'cleanup.policy': 'compact', 'segment.bytes': '6000', 'index.interval.bytes': '200' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    // Timestamps out of order, and each batch's newest record is the one compaction drops (its
    // key recurs), so a rewritten batch has a smaller max timestamp than the original.
    for (let i = 0; i < 150; i++) {
      const ts = 10_000 + ((i * 7) % 50);
      const records = [
        { key: Buffer.from(`k${i % 30}`), value: Buffer.from(`v${i}`), timestamp: ts + 5 },
        { key: Buffer.from(`u${i}`), value: Buffer.from(`w${i}`), timestamp: ts },
      ];
      log.appendAsLeader(Buffer.from(encodeRecordBatch({ records, baseTimestamp: ts })), 0);
    }
    log.rollIfNotEmpty();
    await log.flush();
    expect((await compactLog(log, { clock, force: true })).segmentsCleaned).toBeGreaterThan(1);
    await log.close();
    const indexFiles = (): Record<string, string> =>
      Object.fromEntries(
        fs
          .readdirSync(dir)
          .filter((f) => f.endsWith('index'))
          .sort()
          .map((f) => [f, fs.readFileSync(path.join(dir, f)).toString('hex')]),
      );
    const built = indexFiles();
    expect(Object.values(built).filter((hex) => hex.length > 0).length).toBeGreaterThan(2);
    for (const f of Object.keys(built)) fs.rmSync(path.join(dir, f));
    const rebuilt = PartitionLog.open(dir, { clock, config: cfg });
    await rebuilt.close();
    expect(indexFiles()).toEqual(built);
  });

  it('keys each pass\'s offset map afresh from the key source (offsetMapKeySource), and compacts the same under any key', async () => {
    const log = PartitionLog.open(tempDir(), { config });
    const keys: Buffer[] = [];
    const keySource = (): Uint8Array => {
      const k = Buffer.alloc(16, keys.length + 1);
      keys.push(k);
      return k;
    };
    for (let i = 0; i < 12; i++) log.appendAsLeader(batch(`a${i}`, 1, { keys: [`k${i % 3}`] }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    await compactLog(log, { force: true, offsetMapKeySource: keySource });
    expect(readAll(log).map((r) => r.offset)).toEqual([9, 10, 11]);
    for (let i = 12; i < 18; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: [`k${i % 2}`] }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    await compactLog(log, { force: true, offsetMapKeySource: keySource });
    expect(readAll(log).map((r) => [r.offset, r.key])).toEqual([[11, 'k2'], [16, 'k0'], [17, 'k1']]);
    // One key per pass, and a different one each time.
    expect(keys.length).toBe(2);
    expect(keys[0]?.equals(keys[1] as Buffer)).toBe(false);
    await log.close();
  });

  it('by default keys each pass\'s offset map with 16 fresh random bytes, so no one can craft colliding keys ahead of a pass', async () => {
    const draws = jest.spyOn(crypto, 'randomBytes');
    try {
      const log = PartitionLog.open(tempDir(), { config });
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < 6; i++) log.appendAsLeader(batch(`p${pass}-${i}`, 1, { keys: [`k${i % 2}`] }), 0);
        log.rollIfNotEmpty();
        await log.flush();
        await compactLog(log, { force: true });
      }
      expect(readAll(log).map((r) => r.value)).toEqual(['p1-4-0', 'p1-5-0']);
      await log.close();
      const keys = draws.mock.calls.flatMap((args, i) => (args[0] === 16 ? [draws.mock.results[i]?.value as Buffer] : []));
      expect(keys.length).toBe(2);
      expect(keys[0]?.equals(keys[1] as Buffer)).toBe(false);
    } finally {
      draws.mockRestore();
    }
  });

  it('completes an interrupted swap on reopen', async () => {
    const dir = tempDir();
    const log = PartitionLog.open(dir, { config });
    for (let i = 0; i < 20; i++) log.appendAsLeader(batch(`b${i}`, 1, { keys: ['k'] }), 0);
    await log.close();
    // Simulate a crash after the .swap was written: a compacted copy holding only the last batch
    // of the first segment, plus an unfinished .cleaned file that must be discarded.
    const first = path.join(dir, '00000000000000000000.log');
    const bytes = fs.readFileSync(first);
    let pos = 0;
    let last = 0;
    while (pos < bytes.length) {
      last = pos;
      pos += bytes.readInt32BE(pos + 8) + 12;
    }
    fs.writeFileSync(`${first}.swap`, bytes.subarray(last));
    fs.writeFileSync(`${first}.cleaned`, Buffer.from('garbage'));
    const again = PartitionLog.open(dir, { config });
    const lastOffset = bytes.readInt32BE(last + 4); // low 32 bits of baseOffset
    expect(readAll(again)[0]?.offset).toBe(lastOffset);
    expect(fs.existsSync(`${first}.cleaned`)).toBe(false);
    expect(again.logEndOffset).toBe(20);
    await again.close();
  });
});
