/**
 * Retention deletes whole segments: by retention.ms (newest record older than now - retention.ms,
 * on an injected clock; a segment without timestamps, or emptied by compaction, by its last write) and by retention.bytes (oldest first while the log stays at or above the
 * limit), never at or past an upper bound (the high watermark), never with cleanup.policy=compact
 * alone. Checked against a model of which segments must go, and across reopen.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { LOG_START_OFFSET_FILE, ManualClock, PartitionLog, compactLog } from '../src';
import { batch, cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

describe('retention', () => {
  it('by time: deletes expired segments, rolls an expired active segment', async () => {
    const clock = new ManualClock(1_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'segment.bytes': '300', 'retention.ms': '10000' } });
    for (let i = 0; i < 12; i++) log.appendAsLeader(batch(`a${i}`, 2, { timestamp: 1_000_000 + i * 1000 }), 0);
    const segs = log.segmentCount;
    clock.set(1_000_000 + 5_500 + 10_000); // records with timestamp < 1_005_500 expired
    const deleted = log.applyRetention();
    expect(deleted).toBeGreaterThan(0);
    expect(deleted).toBeLessThan(segs);
    // Every remaining segment holds at least one record with timestamp >= the cutoff.
    const remaining = readAll(log);
    expect(remaining.length).toBeGreaterThan(0);
    expect(log.logStartOffset).toBe(remaining[0]?.offset);
    expect(remaining.some((r) => r.timestamp >= 1_005_500)).toBe(true);
    clock.advance(1_000_000);
    log.applyRetention();
    expect(log.logStartOffset).toBe(24);
    expect(log.logEndOffset).toBe(24);
    expect(log.appendAsLeader(batch('z', 1, { timestamp: clock.nowMs() }), 0).firstOffset).toBe(24);
    await log.close();
  });

  it('by time: a segment whose records carry no timestamp ages from its last write, not from 1970', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'retention.ms': '10000' } });
    log.appendAsLeader(batch('no-ts', 3, { timestamp: -1 }), 0);
    clock.advance(9_000);
    expect(log.applyRetention()).toBe(0);
    expect(readAll(log).length).toBe(3);
    clock.advance(2_000); // 11 s after the append
    expect(log.applyRetention()).toBe(1);
    expect(log.logStartOffset).toBe(3);
    await log.close();
  });

  it('by time: a segment compaction emptied expires by its last write and does not stop retention', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const dir = tempDir();
    // One batch per segment and no room for two: compaction cannot merge them.
    const cfg = { 'cleanup.policy': 'compact,delete', 'retention.ms': '1000', 'segment.bytes': '100' };
    const log = PartitionLog.open(dir, { clock, config: cfg });
    log.appendAsLeader(batch('s0', 1, { keys: ['a'], timestamp: clock.nowMs() }), 0);
    log.rollIfNotEmpty();
    log.appendAsLeader(batch('s1', 1, { keys: ['a'], timestamp: clock.nowMs() }), 0); // supersedes all of segment 0
    log.rollIfNotEmpty();
    log.appendAsLeader(batch('s2', 1, { keys: ['b'], timestamp: clock.nowMs() }), 0);
    log.rollIfNotEmpty();
    await log.flush();
    await compactLog(log, { clock });
    expect(log.segmentBaseOffsets()).toEqual([0, 1, 2, 3]);
    expect(log.read(0, 1 << 20).firstOffset).toBe(1); // segment 0 is empty
    await log.close();
    const again = PartitionLog.open(dir, { clock, config: cfg });
    expect(again.applyRetention()).toBe(0);
    clock.advance(10_000); // every record is 10 s old; retention.ms is 1 s
    expect(again.applyRetention()).toBe(3);
    expect(again.logStartOffset).toBe(3);
    await again.close();
  });

  it('by size: matches a model of the oldest-first rule, bounded by the high watermark', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 3000 }), fc.double({ min: 0, max: 1, noNaN: true }), (counts, retentionBytes, hwAt) => {
        const dir = tempDir();
        const log = PartitionLog.open(dir, { config: { 'segment.bytes': '400', 'retention.bytes': String(retentionBytes), 'retention.ms': '-1' } });
        for (const [i, c] of counts.entries()) log.appendAsLeader(batch(`s${i}`, c), 0);
        const hw = Math.floor(hwAt * log.logEndOffset);
        // Model: segment sizes and ranges, from the files.
        const bases = log.segmentBaseOffsets();
        const sizes = bases.map((_, i) => {
          const next = bases[i + 1] ?? log.logEndOffset;
          const res = log.read(bases[i] as number, 1 << 20, { maxOffset: next });
          return { base: bases[i] as number, next, size: res.records.length };
        });
        let total = sizes.reduce((a, s) => a + s.size, 0);
        let expectDeleted = 0;
        for (const s of sizes.slice(0, -1)) {
          if (s.next > hw || total - s.size < retentionBytes) break;
          total -= s.size;
          expectDeleted++;
        }
        expect(log.applyRetention(hw)).toBe(expectDeleted);
        expect(log.logStartOffset).toBe((sizes[expectDeleted] as { base: number }).base);
        log.abandon();
      }),
      { numRuns: 40 },
    );
  });

  it('does nothing for compact-only topics', async () => {
    const clock = new ManualClock(1_000_000);
    const log = PartitionLog.open(tempDir(), { clock, config: { 'segment.bytes': '200', 'retention.ms': '1', 'cleanup.policy': 'compact' } });
    for (let i = 0; i < 5; i++) log.appendAsLeader(batch(`a${i}`, 2, { keys: ['k', 'j'], timestamp: 1 }), 0);
    expect(log.applyRetention()).toBe(0);
    expect(log.logStartOffset).toBe(0);
    await log.close();
  });

  it('deletes segments wholly below the log start whatever the policy (a crash between the log start checkpoint and the deletion)', async () => {
    // DeleteRecords writes the log start checkpoint, then deletes the segments below it; a kill
    // in between leaves them. Kafka's retention deletes such segments for every cleanup.policy
    // (deleteLogStartOffsetBreachedSegments); left alone, a compacted log would keep them forever.
    for (const policy of ['compact', 'delete']) {
      const dir = tempDir();
      const config = { 'segment.bytes': '200', 'cleanup.policy': policy, 'retention.ms': '-1' };
      const log = PartitionLog.open(dir, { config });
      for (let i = 0; i < 4; i++) {
        log.appendAsLeader(batch(`a${i}`, 2, { keys: ['k', 'j'] }), 0);
        log.rollIfNotEmpty();
      }
      const bases = log.segmentBaseOffsets();
      expect(bases.length).toBeGreaterThan(3);
      await log.close();
      const start = bases[2] as number;
      fs.writeFileSync(path.join(dir, LOG_START_OFFSET_FILE), `0\n${start}\n`);
      const again = PartitionLog.open(dir, { config });
      expect(again.logStartOffset).toBe(start);
      expect(again.applyRetention()).toBe(2);
      expect(again.segmentBaseOffsets()).toEqual(bases.slice(2));
      expect(again.logStartOffset).toBe(start);
      await again.close();
    }
  });

  it('survives a reopen with the new log start', async () => {
    const clock = new ManualClock(1_000_000);
    const dir = tempDir();
    const log = PartitionLog.open(dir, { clock, config: { 'segment.bytes': '200', 'retention.bytes': '200' } });
    for (let i = 0; i < 10; i++) log.appendAsLeader(batch(`a${i}`, 2, { timestamp: clock.nowMs() }), 0);
    log.applyRetention();
    const start = log.logStartOffset;
    expect(start).toBeGreaterThan(0);
    await log.close();
    const again = PartitionLog.open(dir, { clock, config: { 'segment.bytes': '200', 'retention.bytes': '200' } });
    expect(again.logStartOffset).toBe(start);
    expect(readAll(again)[0]?.offset).toBe(start);
    await again.close();
  });
});
