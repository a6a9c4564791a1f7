/**
 * Checks the range and round-robin assignors against hand-computed Kafka results (they are
 * pure functions, so exact expectations), balance and coverage over many member/partition
 * shapes, and the ConsumerProtocol subscription/assignment bytes (round trip, fixed bytes,
 * truncated input rejected).
 */
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, rangeAssignor, roundRobinAssignor } from '../../src/consumer/assignors';
import type { MemberSubscription, TopicPartition } from '../../src/consumer/assignors';

const m = (memberId: string, topics: string[]): MemberSubscription => ({ memberId, topics, userData: null });
const fmt = (a: Map<string, TopicPartition[]>): Record<string, string[]> => Object.fromEntries([...a].map(([k, v]) => [k, v.map((tp) => `${tp.topic}-${tp.partition}`)]));

describe('assignors', () => {
  it('range: consecutive ranges per topic, first members get the extra partitions', () => {
    const out = rangeAssignor.assign([m('c2', ['a', 'b']), m('c1', ['a', 'b'])], new Map([['a', 3], ['b', 2]]));
    expect(fmt(out)).toEqual({ c2: ['a-2', 'b-1'], c1: ['a-0', 'a-1', 'b-0'] });
  });

  it('roundrobin: all partitions sorted and dealt in turn', () => {
    const out = roundRobinAssignor.assign([m('c1', ['a', 'b']), m('c2', ['a', 'b'])], new Map([['a', 3], ['b', 2]]));
    expect(fmt(out)).toEqual({ c1: ['a-0', 'a-2', 'b-1'], c2: ['a-1', 'b-0'] });
  });

  it('roundrobin skips members not subscribed to a topic', () => {
    const out = roundRobinAssignor.assign([m('c1', ['a']), m('c2', ['a', 'b'])], new Map([['a', 2], ['b', 2]]));
    expect(fmt(out)).toEqual({ c1: ['a-0'], c2: ['a-1', 'b-0', 'b-1'] });
  });

  it('both cover every partition exactly once and balance within one', () => {
    for (const assignor of [rangeAssignor, roundRobinAssignor]) {
      for (let members = 1; members <= 7; members++) {
        for (let parts = 0; parts <= 13; parts++) {
          const ms = Array.from({ length: members }, (_, i) => m(`m${i}`, ['t']));
          const out = assignor.assign(ms, new Map([['t', parts]]));
          const all = [...out.values()].flat().map((tp) => tp.partition).sort((x, y) => x - y);
          expect(all).toEqual(Array.from({ length: parts }, (_, i) => i));
          const sizes = [...out.values()].map((v) => v.length);
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        }
      }
    }
  });

  it('encodes Kafka ConsumerProtocol bytes and decodes them back', () => {
    const sub = encodeSubscription(['ab'], null);
    expect(sub.toString('hex')).toBe('0000' + '00000001' + '0002' + '6162' + 'ffffffff');
    expect(decodeSubscription(sub)).toEqual({ topics: ['ab'], userData: null });
    const tps = [{ topic: 'x', partition: 0 }, { topic: 'x', partition: 2 }, { topic: 'y', partition: 1 }];
    expect(decodeAssignment(encodeAssignment(tps))).toEqual(tps);
    expect(decodeAssignment(Buffer.alloc(0))).toEqual([]);
    expect(() => decodeAssignment(encodeAssignment(tps).subarray(0, 9))).toThrow(/truncated/);
  });
});
