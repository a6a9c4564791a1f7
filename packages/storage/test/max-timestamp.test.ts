/**
 * ListOffsets MAX_TIMESTAMP (PartitionLog.offsetOfMaxTimestamp) against a brute force over every
 * record: random timestamps (ties, flat stretches, LogAppendTime-free create times), tiny segments
 * and index intervals so the time-index shortcut and the early stop are exercised, a random log
 * start and a random bound (the high watermark).
 */
import fc from 'fast-check';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '../src';
import { cleanupTempDirs, tempDir } from './helpers';

afterEach(cleanupTempDirs);

test('offsetOfMaxTimestamp matches a brute force over every record', () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 40 }),
      fc.nat(),
      fc.nat(),
      (batches, startPick, boundPick) => {
        const log = PartitionLog.open(tempDir(), { config: { 'segment.bytes': '600', 'index.interval.bytes': '90' } });
        try {
          const all: { offset: number; timestamp: number; epoch: number }[] = [];
          batches.forEach((ts, i) => {
            const epoch = 1 + Math.floor(i / 10);
            const info = log.appendAsLeader(encodeRecordBatch({ records: ts.map((t) => ({ value: Buffer.from('x'), timestamp: 1000 + t * 10 })), baseTimestamp: 1000 + Math.min(...ts) * 10 }), epoch);
            ts.forEach((t, j) => all.push({ offset: info.firstOffset + j, timestamp: 1000 + t * 10, epoch }));
          });
          const start = startPick % (all.length + 1);
          if (start > 0) log.deleteRecordsBefore(start);
          const bound = boundPick % (all.length + 2);
          let want: { offset: number; timestamp: number; leaderEpoch: number } | null = null;
          for (const r of all) {
            if (r.offset < log.logStartOffset || r.offset >= bound) continue;
            if (want === null || r.timestamp > want.timestamp) want = { offset: r.offset, timestamp: r.timestamp, leaderEpoch: r.epoch };
          }
          expect(log.offsetOfMaxTimestamp(bound)).toEqual(want);
        } finally {
          log.abandon();
        }
      },
    ),
    { numRuns: 150 },
  );
});
