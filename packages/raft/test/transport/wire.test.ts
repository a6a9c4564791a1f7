// The wire conversion (src/transport/wire.ts): every message shape round-trips through the
// generated protobuf codec, and malformed inbound messages (unsafe numbers, unknown types,
// gaps in entries, oversized snapshot chunks) are rejected at the edge.

import { RaftMessageType, decodeRaftMessage, encodeRaftMessage } from '@strand/protocol';
import { EntryType, MessageType, msg } from '../../src/core/types';
import { WireError, fromWire, toWire } from '../../src/transport/wire';

describe('raft wire', () => {
  test('round-trips appends with entries and snapshot chunks', () => {
    const m = msg({
      type: MessageType.App,
      from: 'a',
      to: 'b',
      term: 7,
      logTerm: 6,
      index: 41,
      commit: 40,
      entries: [
        { index: 42, term: 7, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
        { index: 43, term: 7, type: EntryType.ConfChange, data: new Uint8Array([1, 99]) },
      ],
    });
    const back = fromWire(decodeRaftMessage(encodeRaftMessage(toWire(m))));
    expect({ ...back, entries: back.entries.map((e) => ({ ...e, data: Array.from(e.data) })) }).toEqual({ ...m, entries: m.entries.map((e) => ({ ...e, data: Array.from(e.data) })) });
    const s = msg({
      type: MessageType.Snap,
      from: 'a',
      to: 'b',
      term: 3,
      snapshot: { meta: { index: 9, term: 2, confState: { voters: ['a', 'b'], learners: ['c'] } }, offset: 4, totalBytes: 10, data: new Uint8Array([5, 6]) },
    });
    const sb = fromWire(decodeRaftMessage(encodeRaftMessage(toWire(s))));
    expect(sb.snapshot?.meta).toEqual(s.snapshot?.meta);
    // Members' addresses travel in the snapshot's membership.
    const meta = { index: 9, term: 2, confState: { voters: ['a', 'b'], learners: ['c'], contexts: { b: '127.0.0.1:2', c: '127.0.0.1:3' } } };
    const sc = fromWire(decodeRaftMessage(encodeRaftMessage(toWire({ ...s, snapshot: { meta, offset: 0, totalBytes: 0, data: new Uint8Array(0) } }))));
    expect(sc.snapshot?.meta).toEqual(meta);
    const wrong = toWire({ ...s, snapshot: { meta: { ...meta, confState: { ...meta.confState, contexts: { z: '127.0.0.1:9' } } }, offset: 0, totalBytes: 0, data: new Uint8Array(0) } });
    expect(() => fromWire(wrong)).toThrow(/non-member/);
    expect(Array.from(sb.snapshot?.data ?? [])).toEqual([5, 6]);
    const r = msg({ type: MessageType.AppResp, from: 'b', to: 'a', term: 3, reject: true, rejectHint: 5, logTerm: 2, index: 8 });
    expect(fromWire(decodeRaftMessage(encodeRaftMessage(toWire(r))))).toEqual(r);
  });

  test('rejects malformed messages', () => {
    const base = toWire(msg({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1 }));
    expect(() => fromWire({ ...base, type: 99 as RaftMessageType })).toThrow(WireError);
    expect(() => fromWire({ ...base, term: 2 ** 60 })).toThrow(WireError);
    expect(() => fromWire({ ...base, from: '' })).toThrow(WireError);
    expect(() =>
      fromWire({
        ...base,
        entries: [
          { index: 1, term: 1, type: 0, data: new Uint8Array(0) },
          { index: 3, term: 1, type: 0, data: new Uint8Array(0) },
        ],
      }),
    ).toThrow(/contiguous/);
    expect(() => fromWire({ ...base, index: 5, entries: [{ index: 7, term: 1, type: 0, data: new Uint8Array(0) }] })).toThrow(/follow/);
    expect(() => fromWire({ ...base, snapshot: { meta: { index: 1, term: 1, confState: { voters: [], learners: [], contexts: [] } }, offset: 5, totalBytes: 6, data: new Uint8Array(2) } })).toThrow(/beyond/);
  });
});
