/**
 * Checks the record accumulator's rules with explicit monotonic times (no timers): batches fill
 * up to their capacity and the next record opens a new batch; readiness by size, linger, flush
 * and retry backoff; batch size doubling while a partition has a backlog and shrinking when idle;
 * no batch above buffer.memory or max.request.size; memory accounting; retry requeue in sequence
 * order; and that built batches decode with the protocol package's RecordBatch codec (keys,
 * values, headers, timestamps, producer fields, gzip).
 */
import { CompressionType, decodeRecordBatch } from '@strand/protocol';
import { APPEND_FULL, APPEND_NEW_BATCH, RecordAccumulator } from '../../src/producer/accumulator';
import type { ProducerBatch } from '../../src/producer/accumulator';

const opts = { batchSize: 1024, batchSizeMax: 8192, lingerMs: 5, bufferMemory: 1 << 20, maxRequestBytes: 1 << 20 };
const v = (n: number): Buffer => Buffer.alloc(n, 0x61);

describe('RecordAccumulator', () => {
  it('fills a batch, opens the next one when full, and reports fullness', () => {
    const acc = new RecordAccumulator(opts);
    let full = false;
    let n = 0;
    while (!full) {
      full = (acc.append('t', 0, 1000 + n, null, v(100), undefined, undefined, 0) & APPEND_FULL) !== 0;
      n++;
    }
    const q = acc.queue('t', 0);
    expect(q.batches.length).toBeGreaterThanOrEqual(1);
    expect(acc.usedBytes).toBe(q.batches.reduce((s, b) => s + b.capacity, 0));
    expect(acc.isReady(q, 0, false)).toBe(true); // full before linger
  });

  it('is ready by linger, by flush, and not before', () => {
    const acc = new RecordAccumulator(opts);
    expect(acc.append('t', 0, 1, null, v(10), undefined, undefined, 100)).toBe(APPEND_NEW_BATCH);
    expect(acc.append('t', 0, 1, null, v(10), undefined, undefined, 101)).toBe(0);
    const q = acc.queue('t', 0);
    expect(acc.isReady(q, 104, false)).toBe(false);
    expect(acc.isReady(q, 104, true)).toBe(true);
    expect(acc.isReady(q, 105, false)).toBe(true);
    expect(acc.readyAtMs(q)).toBe(105);
  });

  it('grows batch.size while a backlog exists and shrinks it back when lingering half-empty', () => {
    const acc = new RecordAccumulator(opts);
    for (let i = 0; i < 30; i++) acc.append('t', 0, 1, null, v(100), undefined, undefined, 0);
    const q = acc.queue('t', 0);
    expect(q.batches.length).toBeGreaterThan(1);
    acc.takeHead(q, 0);
    expect(q.batchSize).toBe(2048);
    while (q.batches.length > 1) acc.takeHead(q, 0);
    expect(q.batchSize).toBe(8192); // capped at batch.size.max
    acc.takeHead(q, 0);
    acc.append('t', 0, 1, null, v(10), undefined, undefined, 10);
    acc.takeHead(q, 20); // sent by linger, nearly empty
    expect(q.batchSize).toBe(4096);
  });

  it('never sizes a new batch above buffer.memory, however far batch.size.max would let it grow', () => {
    // A batch needing more than the whole buffer waits for memory that nothing frees once the
    // buffer is empty: the producer's send() then failed after max.block.ms, for ever after.
    const acc = new RecordAccumulator({ ...opts, batchSizeMax: 1 << 20, bufferMemory: 3000 });
    for (let i = 0; i < 30; i++) acc.append('t', 0, 1, null, v(100), undefined, undefined, 0);
    const q = acc.queue('t', 0);
    while (q.batches.length > 1) acc.takeHead(q, 0);
    acc.takeHead(q, 0);
    expect(q.batches).toHaveLength(0);
    expect(acc.bytesNeeded('t', 0, 100)).toBeLessThanOrEqual(3000);
    acc.append('t', 0, 1, null, v(100), undefined, undefined, 0);
    expect(acc.lastBatch?.capacity).toBeLessThanOrEqual(3000);
    // Batch size still starts at batch.size for a partition when that fits.
    const small = new RecordAccumulator({ ...opts, bufferMemory: 3000 });
    expect(small.bytesNeeded('t', 0, 100)).toBe(1024);
    // A record larger than the cap still gets a batch of its own size.
    expect(acc.bytesNeeded('u', 0, 2900)).toBe(2900 + 61);
  });

  it('never sizes a new batch above max.request.size, from batch.size or from growth toward batch.size.max', () => {
    // A batch goes out whole in one request: one built above max.request.size made a request
    // above it. batch.size itself may be set higher, and growth under a backlog goes beyond it.
    const acc = new RecordAccumulator({ ...opts, batchSize: 16_384, batchSizeMax: 1 << 20, maxRequestBytes: 4096 });
    for (let i = 0; i < 200; i++) acc.append('t', 0, 1, null, v(100), undefined, undefined, 0);
    const q = acc.queue('t', 0);
    for (const b of q.batches) expect(b.capacity).toBeLessThanOrEqual(4096);
    while (q.batches.length > 0) acc.takeHead(q, 0);
    expect(q.batchSize).toBeGreaterThan(4096); // the backlog grew it...
    acc.append('t', 0, 1, null, v(100), undefined, undefined, 0);
    expect(acc.lastBatch?.capacity).toBe(4096); // ...but no batch is built above the limit
    // A partition's first batch too: batch.size is above the limit.
    expect(acc.bytesNeeded('u', 0, 100)).toBe(4096);
  });

  it('requeues retried batches ahead of new ones, in sequence order', () => {
    const acc = new RecordAccumulator(opts);
    const taken: ProducerBatch[] = [];
    for (let i = 0; i < 3; i++) {
      acc.append('t', 0, 1, null, v(10), undefined, undefined, 0);
      const q = acc.queue('t', 0);
      const b = acc.takeHead(q, 0);
      b.seal(CompressionType.None, 7, 0, i);
      taken.push(b);
    }
    acc.append('t', 0, 1, null, v(10), undefined, undefined, 0); // a new, unsealed batch
    acc.requeue(taken[2] as ProducerBatch);
    acc.requeue(taken[0] as ProducerBatch);
    acc.requeue(taken[1] as ProducerBatch);
    const q = acc.queue('t', 0);
    expect(q.batches.map((b) => b.baseSequence)).toEqual([0, 1, 2, -1]);
  });

  it('builds batches the protocol codec decodes, compressed or not', () => {
    for (const compression of [CompressionType.None, CompressionType.Gzip]) {
      const acc = new RecordAccumulator(opts);
      acc.append('t', 0, 5000, Buffer.from('k1'), Buffer.from('v1'), [{ key: 'h', value: Buffer.from('x') }], undefined, 0);
      acc.append('t', 0, 4990, null, null, undefined, undefined, 0);
      acc.append('t', 0, 5010, Buffer.from(''), Buffer.from('v3'), [{ key: 'é', value: null }], undefined, 0);
      const batch = acc.takeHead(acc.queue('t', 0), 0);
      const bytes = batch.seal(compression, 42, 3, 17);
      const d = decodeRecordBatch(bytes);
      expect(d.compression).toBe(compression);
      expect([d.producerId, d.producerEpoch, d.baseSequence, d.lastOffsetDelta]).toEqual([42, 3, 17, 2]);
      expect(d.maxTimestamp).toBe(5010);
      expect(d.records.map((r) => [r.key?.toString() ?? null, r.value?.toString() ?? null, r.timestamp])).toEqual([
        ['k1', 'v1', 5000],
        [null, null, 4990],
        ['', 'v3', 5010],
      ]);
      expect(d.records[0]?.headers.map((h) => [h.key, h.value?.toString()])).toEqual([['h', 'x']]);
      expect(d.records[2]?.headers.map((h) => [h.key, h.value])).toEqual([['é', null]]);
      batch.restamp(43, 0, 0);
      const r = decodeRecordBatch(batch.bytes as Buffer);
      expect([r.producerId, r.producerEpoch, r.baseSequence]).toEqual([43, 0, 0]);
    }
  });

  it('sizes a batch for a record larger than batch.size', () => {
    const acc = new RecordAccumulator(opts);
    expect(acc.bytesNeeded('t', 0, 5000)).toBeGreaterThanOrEqual(5000);
    acc.append('t', 0, 1, null, v(5000), undefined, undefined, 0);
    expect(acc.queue('t', 0).batches[0]?.recordCount).toBe(1);
  });
});
