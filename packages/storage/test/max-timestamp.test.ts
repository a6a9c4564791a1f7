/**
 * ListOffsets MAX_TIMESTAMP (PartitionLog.offsetOfMaxTimestamp) against a brute force over every
 * record: random timestamps (ties, flat stretches, LogAppendTime-free create times), tiny segments
 * and index intervals so the time-index shortcut and the early stop are exercised, a random log
 * start and a random bound (the high watermark).
 */
import fc from 'fast-check';
import { encodeRecordBatch, validateBatches } from '@strand/protocol';
import { ManualClock, PartitionLog, compactLog } from '../src';
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

test('offsetOfMaxTimestamp looks past empty batches (producers\' last batches compaction kept) whose header timestamps lead the time index', async () => {
  // Compaction keeps a producer's last batch as a header with no records, and that header keeps
  // its maxTimestamp, so the time index rebuilt over the compacted segment can point at batches
  // that hold no record with that timestamp, twice in a row here. The answer is the record x@1000.
  const clock = new ManualClock(10_000);
  const log = PartitionLog.open(tempDir(), { clock, config: { 'cleanup.policy': 'compact', 'index.interval.bytes': '0' } });
  try {
    const keyed = (key: string, timestamp: number, producerId?: number): Buffer =>
      encodeRecordBatch({ records: [{ key: Buffer.from(key), value: Buffer.from(key), timestamp }], baseTimestamp: timestamp, producerId, producerEpoch: producerId === undefined ? undefined : 0, baseSequence: producerId === undefined ? undefined : 0 });
    log.appendAsLeader(keyed('x', 1000), 1); // offset 0
    log.appendAsLeader(keyed('a', 2000, 7), 1); // 1: producer 7's last batch
    log.appendAsLeader(keyed('b', 3000, 8), 1); // 2: producer 8's last batch
    log.appendAsLeader(encodeRecordBatch({ records: ['a', 'b'].map((k) => ({ key: Buffer.from(k), value: Buffer.from('new'), timestamp: 500 })), baseTimestamp: 500 }), 1); // 3-4
    log.rollIfNotEmpty();
    await log.flush();
    await compactLog(log, { clock, force: true });
    expect(validateBatches(log.read(0, 1 << 20).records).map((v) => [v.header.baseOffset, v.header.recordsCount, v.header.maxTimestamp])).toEqual([[0, 1, 1000], [1, 0, 2000], [2, 0, 3000], [3, 2, 500]]);
    expect(log.offsetOfMaxTimestamp(log.logEndOffset)).toEqual({ offset: 0, timestamp: 1000, leaderEpoch: 1 });
  } finally {
    await log.close();
  }
});
