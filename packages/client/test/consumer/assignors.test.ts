/**
 * Checks the range and round-robin assignors against hand-computed Kafka results (they are
 * pure functions, so exact expectations), balance and coverage over many member/partition
 * shapes, the cooperative-sticky assignor over successive rebalances (members keep what they own,
 * no partition is ever owned by two members, it converges to a balanced assignment), and the
 * ConsumerProtocol subscription/assignment bytes (round trip, fixed bytes, v1 owned partitions,
 * truncated input rejected).
 */
import { cooperativeStickyAssignor, decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, rangeAssignor, roundRobinAssignor } from '../../src/consumer/assignors';
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

  it('cooperative-sticky keeps owned partitions, never double-assigns, and converges balanced', () => {
    const key = (tp: TopicPartition): string => `${tp.topic}-${tp.partition}`;
    for (const [parts, before, after] of [
      [6, ['a'], ['a', 'b']],
      [7, ['a', 'b'], ['a', 'b', 'c']],
      [4, ['a', 'b', 'c'], ['a', 'c']],
      [12, ['a', 'b', 'c', 'd'], ['b', 'e']],
    ] as [number, string[], string[]][]) {
      const counts = new Map([['t', parts]]);
      // Rounds: members report what they own; the assignment becomes their ownership after they
      // revoke what they lost. Ownership never overlaps and each owner keeps what it is given.
      let owned = new Map<string, TopicPartition[]>(before.map((id) => [id, []]));
      const round = (ids: string[]): Map<string, TopicPartition[]> => cooperativeStickyAssignor.assign(ids.map((id) => ({ ...m(id, ['t']), ownedPartitions: owned.get(id) ?? [] })), counts);
      for (let i = 0; i < 3; i++) owned = round(before);
      const settled = new Map(owned);
      let rounds = 0;
      for (; rounds < 5; rounds++) {
        const next = round(after);
        const all = [...next.values()].flat().map(key);
        expect(new Set(all).size).toBe(all.length);
        for (const [id, list] of next) {
          // A partition someone else owned right now cannot be given to this member yet.
          for (const tp of list) {
            const holder = [...owned].find(([o, l]) => o !== id && after.includes(o) && l.some((x) => key(x) === key(tp)));
            expect(holder).toBeUndefined();
          }
        }
        const changed = [...next].some(([id, l]) => l.map(key).join() !== (owned.get(id) ?? []).map(key).join());
        owned = next;
        if (!changed && all.length === parts) break;
      }
      const sizes = after.map((id) => owned.get(id)?.length ?? 0);
      expect(sizes.reduce((x, y) => x + y, 0)).toBe(parts);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      // Sticky: a member that stayed lost only what balance required.
      for (const id of after.filter((x) => before.includes(x))) {
        const kept = (settled.get(id) ?? []).filter((tp) => owned.get(id)?.some((x) => key(x) === key(tp))).length;
        expect(kept).toBeGreaterThanOrEqual(Math.min(settled.get(id)?.length ?? 0, Math.floor(parts / after.length)));
      }
    }
  });

  it('encodes Kafka ConsumerProtocol bytes and decodes them back', () => {
    const sub = encodeSubscription(['ab'], null);
    expect(sub.toString('hex')).toBe('0000' + '00000001' + '0002' + '6162' + 'ffffffff');
    expect(decodeSubscription(sub)).toEqual({ topics: ['ab'], userData: null, ownedPartitions: [] });
    const v1 = encodeSubscription(['ab'], null, [{ topic: 'ab', partition: 3 }]);
    expect(v1.subarray(0, 2).toString('hex')).toBe('0001');
    expect(decodeSubscription(v1).ownedPartitions).toEqual([{ topic: 'ab', partition: 3 }]);
    const tps = [{ topic: 'x', partition: 0 }, { topic: 'x', partition: 2 }, { topic: 'y', partition: 1 }];
    expect(decodeAssignment(encodeAssignment(tps))).toEqual(tps);
    expect(decodeAssignment(Buffer.alloc(0))).toEqual([]);
    expect(() => decodeAssignment(encodeAssignment(tps).subarray(0, 9))).toThrow(/truncated/);
  });
});
