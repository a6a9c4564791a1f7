/**
 * Partition assignors of the classic consumer-group protocol, and the bytes they exchange.
 *
 * The group leader (a consumer chosen by the coordinator) receives every member's subscription
 * and computes the assignment; the coordinator only relays bytes. Those bytes follow Kafka's
 * ConsumerProtocol so tooling that reads them (describe groups) works unchanged:
 *
 *   Subscription v0: version int16 | topics [int32 count, (int16 len, utf8)*] | userData bytes
 *   Subscription v1: v0 | ownedPartitions [int32 count, (topic string, [int32 count, int32*])*]
 *   Assignment v0:   version int16 | [int32 count, (topic string, [int32 count, int32*])*] | userData bytes
 *   (bytes = int32 length, -1 for null). Later versions only append fields, so decoding reads
 *   the v0 prefix of any version.
 *
 * Assignors are pure functions of (members, partition counts): deterministic given sorted
 * inputs, which is what lets every test check them exactly.
 */
import { KafkaReader, KafkaWriter } from '@strand/protocol';

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface MemberSubscription {
  memberId: string;
  topics: string[];
  userData: Buffer | null;
  /** Partitions the member owns now (subscription v1; cooperative assignors use them). */
  ownedPartitions?: TopicPartition[];
}

/** An assignor: a protocol name and a pure assignment function. */
export interface Assignor {
  /** The protocol name offered in JoinGroup (Kafka's: `range`, `roundrobin`, ...). */
  readonly name: string;
  /**
   * `eager` (default): every member gives up all partitions before a rebalance. `cooperative`
   * (KIP-429): members keep consuming what they keep; a partition moves in two rebalances
   * (revoked by its owner in the first, assigned to its new owner in the second).
   */
  readonly rebalanceProtocol?: 'eager' | 'cooperative';
  assign(members: readonly MemberSubscription[], partitionsPerTopic: ReadonlyMap<string, number>): Map<string, TopicPartition[]>;
}

function compareMembers(a: MemberSubscription, b: MemberSubscription): number {
  return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}

/** Kafka's RangeAssignor: per topic, consecutive ranges; the first members get one extra. */
export const rangeAssignor: Assignor = {
  name: 'range',
  assign(members, partitionsPerTopic) {
    const out = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
    const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
    for (const topic of topics) {
      const count = partitionsPerTopic.get(topic);
      if (count === undefined) continue;
      const subscribers = members.filter((m) => m.topics.includes(topic)).sort(compareMembers);
      const per = Math.floor(count / subscribers.length);
      const extra = count % subscribers.length;
      subscribers.forEach((m, i) => {
        const start = per * i + Math.min(i, extra);
        const length = per + (i < extra ? 1 : 0);
        const list = out.get(m.memberId) as TopicPartition[];
        for (let p = start; p < start + length; p++) list.push({ topic, partition: p });
      });
    }
    return out;
  },
};

/** Kafka's RoundRobinAssignor: all partitions, sorted, dealt to subscribed members in turn. */
export const roundRobinAssignor: Assignor = {
  name: 'roundrobin',
  assign(members, partitionsPerTopic) {
    const sorted = [...members].sort(compareMembers);
    const out = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
    const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
    let next = 0;
    for (const topic of topics) {
      const count = partitionsPerTopic.get(topic) ?? 0;
      for (let p = 0; p < count; p++) {
        // Advance to the next member (circularly) subscribed to this topic.
        for (let tries = 0; tries < sorted.length; tries++) {
          const m = sorted[next % sorted.length] as MemberSubscription;
          next++;
          if (m.topics.includes(topic)) {
            (out.get(m.memberId) as TopicPartition[]).push({ topic, partition: p });
            break;
          }
        }
      }
    }
    return out;
  },
};

/**
 * Kafka's CooperativeStickyAssignor, simplified: balanced (sizes differ by at most one among
 * members subscribed to the same topics), sticky (a member keeps what it owns up to its quota),
 * and cooperative: a partition whose owner must give it up is left unassigned in this round, so
 * no partition is ever owned by two members at once; the owner revokes it, rejoins, and the next
 * round hands it out.
 */
export const cooperativeStickyAssignor: Assignor = {
  name: 'cooperative-sticky',
  rebalanceProtocol: 'cooperative',
  assign(members, partitionsPerTopic) {
    const sorted = [...members].sort(compareMembers);
    const out = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
    const all: TopicPartition[] = [];
    for (const topic of [...new Set(members.flatMap((m) => m.topics))].sort()) {
      const count = partitionsPerTopic.get(topic) ?? 0;
      for (let p = 0; p < count; p++) all.push({ topic, partition: p });
    }
    const eligible = (m: MemberSubscription, tp: TopicPartition): boolean => m.topics.includes(tp.topic);
    // Quotas: floor(P/M) each, and P mod M members may hold one more.
    const base = sorted.length === 0 ? 0 : Math.floor(all.length / sorted.length);
    let extra = sorted.length === 0 ? 0 : all.length % sorted.length;
    const exists = new Set(all.map((tp) => `${tp.topic}\u0000${tp.partition}`));
    const taken = new Map<string, string>(); // partition -> member keeping it
    const previousOwner = new Map<string, string>();
    // Members owning the most keep first, so the members that may keep one extra are the ones
    // that already have it (fewer moves).
    const byOwned = [...sorted].sort((a, b) => (b.ownedPartitions?.length ?? 0) - (a.ownedPartitions?.length ?? 0) || compareMembers(a, b));
    for (const m of byOwned) {
      const list = out.get(m.memberId) as TopicPartition[];
      for (const tp of m.ownedPartitions ?? []) {
        const k = `${tp.topic}\u0000${tp.partition}`;
        if (!previousOwner.has(k)) previousOwner.set(k, m.memberId);
        if (!exists.has(k) || taken.has(k) || !eligible(m, tp)) continue;
        const cap = base + (extra > 0 ? 1 : 0);
        if (list.length >= cap) continue;
        list.push({ topic: tp.topic, partition: tp.partition });
        taken.set(k, m.memberId);
      }
      if (list.length > base && extra > 0) extra--;
    }
    // Hand out the rest to the members with the fewest, except partitions another member still
    // owns: those wait for the next round (cooperative).
    for (const tp of all) {
      const k = `${tp.topic}\u0000${tp.partition}`;
      if (taken.has(k)) continue;
      const candidates = sorted.filter((m) => eligible(m, tp)).sort((a, b) => (out.get(a.memberId) as TopicPartition[]).length - (out.get(b.memberId) as TopicPartition[]).length || compareMembers(a, b));
      const target = candidates[0];
      if (target === undefined) continue;
      const owner = previousOwner.get(k);
      if (owner !== undefined && owner !== target.memberId && out.has(owner)) continue;
      (out.get(target.memberId) as TopicPartition[]).push(tp);
      taken.set(k, target.memberId);
    }
    for (const list of out.values()) list.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    return out;
  },
};

export const BUILT_IN_ASSIGNORS: Readonly<Record<string, Assignor>> = { range: rangeAssignor, roundrobin: roundRobinAssignor, 'cooperative-sticky': cooperativeStickyAssignor };

// ---- ConsumerProtocol bytes ------------------------------------------------------------------

/** Upper bound on array lengths read from the wire (topics, partitions). */
const MAX_ARRAY = 1_000_000;

export function encodeSubscription(topics: readonly string[], userData: Buffer | null = null, ownedPartitions?: readonly TopicPartition[]): Buffer {
  const w = new KafkaWriter().int16(ownedPartitions === undefined ? 0 : 1).int32(topics.length);
  for (const t of topics) w.string(t);
  w.bytes(userData);
  if (ownedPartitions !== undefined) writeTopicPartitions(w, ownedPartitions);
  return w.done();
}

export function decodeSubscription(bytes: Buffer): { topics: string[]; userData: Buffer | null; ownedPartitions: TopicPartition[] } {
  const r = new KafkaReader(bytes, 'INCONSISTENT_GROUP_PROTOCOL', 'consumer protocol bytes');
  const version = r.int16();
  const n = r.count(MAX_ARRAY);
  const topics: string[] = [];
  for (let i = 0; i < n; i++) topics.push(r.string());
  let userData: Buffer | null = null;
  let ownedPartitions: TopicPartition[] = [];
  try {
    userData = r.nullableBytes();
    if (version >= 1) ownedPartitions = readTopicPartitions(r);
  } catch {
    // Some clients omit trailing fields.
  }
  return { topics, userData, ownedPartitions };
}

function writeTopicPartitions(w: KafkaWriter, partitions: readonly TopicPartition[]): void {
  const byTopic = new Map<string, number[]>();
  for (const tp of partitions) {
    let list = byTopic.get(tp.topic);
    if (list === undefined) {
      list = [];
      byTopic.set(tp.topic, list);
    }
    list.push(tp.partition);
  }
  w.int32(byTopic.size);
  for (const [topic, ps] of byTopic) {
    w.string(topic).int32(ps.length);
    for (const p of ps) w.int32(p);
  }
}

function readTopicPartitions(r: KafkaReader): TopicPartition[] {
  const out: TopicPartition[] = [];
  const topics = r.count(MAX_ARRAY);
  for (let i = 0; i < topics; i++) {
    const topic = r.string();
    const n = r.count(MAX_ARRAY);
    for (let j = 0; j < n; j++) out.push({ topic, partition: r.int32() });
  }
  return out;
}

export function encodeAssignment(partitions: readonly TopicPartition[], userData: Buffer | null = null): Buffer {
  const w = new KafkaWriter().int16(0);
  writeTopicPartitions(w, partitions);
  return w.bytes(userData).done();
}

export function decodeAssignment(bytes: Buffer): TopicPartition[] {
  if (bytes.length === 0) return [];
  const r = new KafkaReader(bytes, 'INCONSISTENT_GROUP_PROTOCOL', 'consumer protocol bytes');
  r.int16();
  return readTopicPartitions(r);
}
