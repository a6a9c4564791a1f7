/**
 * Partitioners: where a record goes when the caller does not name a partition.
 *
 * Keyed records use murmur2 exactly as Apache Kafka's Java client does
 * (`Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`), so a key lands on the same
 * partition whichever client wrote it — the property every keyed-ordering design relies on.
 * Records without a key use the sticky partitioner (KIP-480/KIP-794): stay on one partition until
 * about `batch.size` bytes went there, then move on, which fills batches instead of spreading
 * tiny ones over every partition.
 */

/** What a custom partitioner sees. */
export interface PartitionerArgs {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Number of partitions of the topic. */
  partitionCount: number;
  /** Partitions that currently have a leader (never empty when called). */
  availablePartitions: readonly number[];
}

/** A custom partitioner returns a partition number in [0, partitionCount). */
export type Partitioner = (args: PartitionerArgs) => number;

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): 32-bit, seed 0x9747b28c,
 * little-endian 4-byte blocks. Returns the signed 32-bit result, as Java does.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4] as number) | ((data[i4 + 1] as number) << 8) | ((data[i4 + 2] as number) << 16) | ((data[i4 + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  // Java's switch falls through 3 -> 2 -> 1; written as ifs (the repo forbids fallthrough).
  const rest = length % 4;
  if (rest >= 3) h ^= (data[tail + 2] as number) << 16;
  if (rest >= 2) h ^= (data[tail + 1] as number) << 8;
  if (rest >= 1) {
    h ^= data[tail] as number;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's Utils.toPositive: clears the sign bit (not Math.abs, which differs for MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition the Java client's default partitioner picks for a key. */
export function partitionForKey(key: Uint8Array, partitionCount: number): number {
  return toPositive(murmur2(key)) % partitionCount;
}

/**
 * Sticky choice for records without a key, per topic. Switches partition after `batchBytes`
 * bytes, choosing uniformly among partitions with a leader (and never the same one twice in a
 * row when there is another).
 */
export class StickyPartitioner {
  private readonly state = new Map<string, { partition: number; bytes: number }>();

  constructor(
    private readonly batchBytes: number,
    private readonly random: () => number = Math.random,
  ) {}

  partition(topic: string, recordBytes: number, partitionCount: number, available: readonly number[]): number {
    let s = this.state.get(topic);
    if (s === undefined || s.bytes >= this.batchBytes || s.partition >= partitionCount || !available.includes(s.partition)) s = this.choose(topic, s, partitionCount, available);
    s.bytes += recordBytes;
    return s.partition;
  }

  /**
   * The same choice from the topic's partition metadata (a partition is available when it has a
   * leader). The list of available partitions is built only when the choice changes, so the
   * per-record path allocates nothing.
   */
  partitionFromMetadata(topic: string, recordBytes: number, partitions: readonly ({ partition: number; leaderId: number } | undefined)[]): number {
    let s = this.state.get(topic);
    if (s === undefined || s.bytes >= this.batchBytes || s.partition >= partitions.length || (partitions[s.partition]?.leaderId ?? -1) < 0) {
      const available: number[] = [];
      for (const p of partitions) if (p !== undefined && p.leaderId >= 0) available.push(p.partition);
      s = this.choose(topic, s, partitions.length, available);
    }
    s.bytes += recordBytes;
    return s.partition;
  }

  private choose(topic: string, s: { partition: number } | undefined, partitionCount: number, available: readonly number[]): { partition: number; bytes: number } {
    const prev = s?.partition ?? -1;
    const choices = available.length > 1 ? available.filter((p) => p !== prev) : available.length === 1 ? available : [...Array(partitionCount).keys()];
    const next = choices[Math.floor(this.random() * choices.length)] as number;
    const chosen = { partition: next, bytes: 0 };
    this.state.set(topic, chosen);
    return chosen;
  }
}
