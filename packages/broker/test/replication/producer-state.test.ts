// Checks idempotent-producer bookkeeping (SCENARIOS.md 11): a retry of any of the last five
// batches gets its original offsets, gaps are OUT_OF_ORDER_SEQUENCE_NUMBER, older uncached
// sequences DUPLICATE_SEQUENCE_NUMBER, stale epochs INVALID_PRODUCER_EPOCH, and the state rebuilt
// from the log's batch headers equals the state built while appending. Bounds are enforced. A
// fast-check property runs random streams of fresh sends and retries against a reference model
// (the full history of appended batches): nothing is ever appended twice.

import fc from 'fast-check';
import { ProducerStateManager, lastSequenceOf, type ProducerBatchHeader } from '../../src/replication/producer-state';

function header(producerId: number, producerEpoch: number, baseSequence: number, baseOffset: number, count = 1): ProducerBatchHeader {
  return { producerId, producerEpoch, baseSequence, baseOffset, lastOffsetDelta: count - 1 };
}

describe('ProducerStateManager', () => {
  test('retries of the last five batches are duplicates with their original offsets', () => {
    const m = new ProducerStateManager();
    let offset = 100;
    for (let seq = 0; seq < 30; seq += 3) {
      expect(m.check(7, 0, seq, 2)).toEqual({ kind: 'append' });
      m.onAppended(header(7, 0, seq, offset, 3));
      offset += 3;
    }
    expect(m.check(7, 0, 27, 2)).toEqual({ kind: 'duplicate', firstOffset: 127, lastOffset: 129 });
    expect(m.check(7, 0, 15, 2)).toEqual({ kind: 'duplicate', firstOffset: 115, lastOffset: 117 });
    expect(m.check(7, 0, 12, 2)).toEqual({ kind: 'error', error: 'DUPLICATE_SEQUENCE_NUMBER' });
    expect(m.check(7, 0, 31, 0)).toEqual({ kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(m.check(7, 0, 30, 0)).toEqual({ kind: 'append' });
  });

  test('epochs: stale is INVALID_PRODUCER_EPOCH, a new one must start at sequence 0', () => {
    const m = new ProducerStateManager();
    m.onAppended(header(1, 3, 0, 0));
    expect(m.check(1, 2, 1, 0)).toEqual({ kind: 'error', error: 'INVALID_PRODUCER_EPOCH' });
    expect(m.check(1, 4, 5, 0)).toEqual({ kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(m.check(1, 4, 0, 0)).toEqual({ kind: 'append' });
    m.onAppended(header(1, 4, 0, 1));
    expect(m.entry(1)?.batches).toEqual([{ firstSeq: 0, lastSeq: 0, firstOffset: 1, lastOffset: 1 }]);
  });

  test('unknown producers must start at 0; non-idempotent batches always append', () => {
    const m = new ProducerStateManager();
    expect(m.check(9, 0, 3, 0)).toEqual({ kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(m.check(-1, -1, -1, 9)).toEqual({ kind: 'append' });
  });

  test('sequences wrap at 2^31-1', () => {
    expect(lastSequenceOf(0x7ffffffe, 2)).toBe(0);
    const m = new ProducerStateManager();
    m.onAppended(header(1, 0, 0x7ffffffe, 0, 2));
    expect(m.check(1, 0, 0, 0)).toEqual({ kind: 'append' });
  });

  test('rebuilding from batch headers gives the same answers', () => {
    const headers: ProducerBatchHeader[] = [];
    const live = new ProducerStateManager();
    let offset = 0;
    for (let i = 0; i < 40; i++) {
      const pid = i % 3;
      const seq = live.entry(pid)?.batches.at(-1)?.lastSeq;
      const h = header(pid, 0, seq === undefined ? 0 : seq + 1, offset, 1 + (i % 4));
      offset += 1 + (i % 4);
      headers.push(h);
      live.onAppended(h);
    }
    const rebuilt = ProducerStateManager.rebuild(headers);
    for (const pid of [0, 1, 2]) expect(rebuilt.entry(pid)).toEqual(live.entry(pid));
  });

  test('at most maxProducerIds producers and batchesPerProducer batches are kept', () => {
    const m = new ProducerStateManager({ maxProducerIds: 2, batchesPerProducer: 2 });
    m.onAppended(header(1, 0, 0, 0));
    m.onAppended(header(2, 0, 0, 1));
    m.onAppended(header(1, 0, 1, 2));
    m.onAppended(header(3, 0, 0, 3)); // evicts 2, the least recently written
    expect(m.size).toBe(2);
    expect(m.entry(2)).toBeUndefined();
    m.onAppended(header(1, 0, 2, 4));
    expect(m.entry(1)?.batches.map((b) => b.firstSeq)).toEqual([1, 2]);
  });

  test('property: random sends and retries never append a batch twice, and retries within the window get original offsets', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 4 })), { maxLength: 80 }), (ops) => {
        const m = new ProducerStateManager();
        const history: Array<{ firstSeq: number; lastSeq: number; firstOffset: number; lastOffset: number }> = [];
        let nextSeq = 0;
        let offset = 0;
        for (const [retry, back, count] of ops) {
          if (retry && history.length > 0) {
            // Re-send an earlier batch, `back` batches ago.
            const i = Math.max(0, history.length - 1 - back);
            const h = history[i] as (typeof history)[number];
            const r = m.check(1, 0, h.firstSeq, h.lastSeq - h.firstSeq);
            if (history.length - i <= 5) expect(r).toEqual({ kind: 'duplicate', firstOffset: h.firstOffset, lastOffset: h.lastOffset });
            else expect(r).toEqual({ kind: 'error', error: 'DUPLICATE_SEQUENCE_NUMBER' });
          } else {
            expect(m.check(1, 0, nextSeq, count - 1)).toEqual({ kind: 'append' });
            m.onAppended({ producerId: 1, producerEpoch: 0, baseSequence: nextSeq, baseOffset: offset, lastOffsetDelta: count - 1 });
            history.push({ firstSeq: nextSeq, lastSeq: nextSeq + count - 1, firstOffset: offset, lastOffset: offset + count - 1 });
            nextSeq += count;
            offset += count;
          }
          // A gap is never accepted.
          expect(m.check(1, 0, nextSeq + 1, 0)).toEqual({ kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
        }
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  test('a snapshot round-trips the state, recency order (eviction) included; malformed ones throw', () => {
    const m = new ProducerStateManager({ maxProducerIds: 2 });
    m.load({ producerId: 1, producerEpoch: 0, baseSequence: 0, baseOffset: 0, lastOffsetDelta: 1 });
    m.load({ producerId: 2, producerEpoch: 3, baseSequence: 0, baseOffset: 2, lastOffsetDelta: 0 });
    m.load({ producerId: 1, producerEpoch: 0, baseSequence: 2, baseOffset: 3, lastOffsetDelta: 0 });
    const snap = JSON.parse(JSON.stringify(m.snapshot(4)));
    expect(snap.offset).toBe(4);
    const back = ProducerStateManager.fromSnapshot(snap, { maxProducerIds: 2 });
    expect(back.entry(1)).toEqual(m.entry(1));
    expect(back.entry(2)).toEqual(m.entry(2));
    expect(back.check(1, 0, 2, 0)).toEqual({ kind: 'duplicate', firstOffset: 3, lastOffset: 3 });
    // Producer 2 is the least recently written: a third producer evicts it, as in the original.
    back.load({ producerId: 9, producerEpoch: 0, baseSequence: 0, baseOffset: 4, lastOffsetDelta: 0 });
    expect(back.entry(2)).toBeUndefined();
    expect(back.entry(1)).toBeDefined();
    expect(() => ProducerStateManager.fromSnapshot({ ...snap, version: 2 })).toThrow(/version/);
    expect(() => ProducerStateManager.fromSnapshot({ ...snap, producers: [[1, 'x', []]] })).toThrow(/integer/);
  });

  test('after a truncation: the log\'s producers, plus those known only from removed batches that end before the cut', () => {
    const previous = new ProducerStateManager();
    previous.load({ producerId: 1, producerEpoch: 0, baseSequence: 0, baseOffset: 0, lastOffsetDelta: 1 }); // removed (below the log start)
    previous.load({ producerId: 2, producerEpoch: 0, baseSequence: 0, baseOffset: 2, lastOffsetDelta: 0 }); // removed, then cut
    previous.load({ producerId: 3, producerEpoch: 0, baseSequence: 0, baseOffset: 3, lastOffsetDelta: 0 }); // in the log
    previous.load({ producerId: 2, producerEpoch: 0, baseSequence: 1, baseOffset: 6, lastOffsetDelta: 0 });
    const fromLog = ProducerStateManager.rebuild([{ producerId: 3, producerEpoch: 0, baseSequence: 0, baseOffset: 3, lastOffsetDelta: 0 }]);
    const m = ProducerStateManager.afterTruncation(previous, fromLog, 5);
    expect(m.entry(1)?.batches).toHaveLength(1);
    expect(m.entry(2)?.batches.map((b) => b.firstOffset)).toEqual([2]);
    expect(m.entry(3)).toEqual(fromLog.entry(3));
    // Producer 2's batch at 6 was cut: its next sequence is 1 again.
    expect(m.check(2, 0, 1, 0)).toEqual({ kind: 'append' });
  });
});
