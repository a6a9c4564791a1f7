/**
 * The leader-epoch cache of a partition: for each leader epoch, the offset where it starts: its
 * first batch, or the log end at the moment this replica became its leader (recorded then, before
 * any batch of it, as Kafka's Partition.makeLeader does; see PartitionLog.assignLeaderEpoch). So
 * the latest entry is the epoch of the last batch or, on a leader, the epoch it leads (a former
 * leader that wrote nothing in it keeps that entry until its first truncation as a follower).
 * It is what lets a follower truncate by epoch instead of by high watermark (KIP-101/KIP-279):
 * the follower asks the leader where its last epoch ends and truncates there.
 *
 * Persisted as Kafka's `leader-epoch-checkpoint` text format, replaced atomically on each change:
 *   0            (version)
 *   N            (entries)
 *   epoch startOffset   (N lines, ascending)
 * Changes are rare (one per leader election), so each is fsynced before the append that needs it.
 */
import * as path from 'node:path';
import { StrandError } from '@strand/protocol';
import { readFileIfExists, writeFileAtomic } from './files';

export const LEADER_EPOCH_CHECKPOINT = 'leader-epoch-checkpoint';

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** Answer to "where does epoch E end?" (Kafka's OffsetsForLeaderEpoch). */
export interface EpochEndOffset {
  /** The largest epoch <= the requested one known here, -1 if none. */
  epoch: number;
  /** The start offset of the next larger epoch, or the log end offset if `epoch` is the latest; -1 if unknown. */
  endOffset: number;
}

export class LeaderEpochCache {
  private entries: EpochEntry[];
  private readonly file: string;

  constructor(dir: string) {
    this.file = path.join(dir, LEADER_EPOCH_CHECKPOINT);
    this.entries = parse(readFileIfExists(this.file), this.file);
  }

  /** All entries, ascending. */
  list(): readonly EpochEntry[] {
    return this.entries;
  }

  get latest(): EpochEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  /**
   * Records that `epoch` starts at `startOffset`. A newer epoch is appended; an epoch not newer
   * than the latest is ignored (batches of one epoch arrive in order). Entries whose start offset
   * is >= the new one are dropped (they belonged to a truncated history).
   */
  assign(epoch: number, startOffset: number): void {
    const last = this.latest;
    if (last !== undefined && epoch <= last.epoch) return;
    const kept = this.entries.filter((e) => e.startOffset < startOffset);
    kept.push({ epoch, startOffset });
    this.replace(kept);
  }

  /**
   * Where `epoch` ends, given the log end offset: the largest epoch <= `epoch` and where the next
   * one starts (or the log end). An epoch older than every entry (never written here, or gone
   * with the log start) ends where the first entry starts, as in Kafka's
   * LeaderEpochFileCache.endOffsetFor: a fetch from before the log start then gets
   * OFFSET_OUT_OF_RANGE (the follower starts over at the log start, a consumer resets) instead
   * of a divergence it cannot resolve.
   */
  endOffsetFor(epoch: number, logEndOffset: number): EpochEndOffset {
    if (epoch < 0) return { epoch: -1, endOffset: -1 };
    let i = this.entries.length - 1;
    while (i >= 0 && (this.entries[i] as EpochEntry).epoch > epoch) i--;
    if (i < 0) {
      const first = this.entries[0];
      return first === undefined ? { epoch: -1, endOffset: -1 } : { epoch, endOffset: first.startOffset };
    }
    const found = this.entries[i] as EpochEntry;
    const next = this.entries[i + 1];
    return { epoch: found.epoch, endOffset: next === undefined ? logEndOffset : next.startOffset };
  }

  /** Epoch of the batch at `offset` (the last entry starting at or before it), -1 if unknown. */
  epochAt(offset: number): number {
    let i = this.entries.length - 1;
    while (i >= 0 && (this.entries[i] as EpochEntry).startOffset > offset) i--;
    return i < 0 ? -1 : (this.entries[i] as EpochEntry).epoch;
  }

  /** After truncating the log to `endOffset`: drop epochs that start at or after it. */
  truncateFromEnd(endOffset: number): void {
    const kept = this.entries.filter((e) => e.startOffset < endOffset);
    if (kept.length !== this.entries.length) this.replace(kept);
  }

  /** After the log start moved to `startOffset`: the epoch covering it now starts there. */
  truncateFromStart(startOffset: number): void {
    let i = 0;
    while (i + 1 < this.entries.length && (this.entries[i + 1] as EpochEntry).startOffset <= startOffset) i++;
    const kept = this.entries.slice(i);
    const first = kept[0];
    if (first !== undefined && first.startOffset < startOffset) kept[0] = { epoch: first.epoch, startOffset };
    const changed = kept.length !== this.entries.length || kept[0]?.startOffset !== this.entries[0]?.startOffset;
    if (changed) this.replace(kept);
  }

  /** Forgets everything (the log was emptied). */
  clear(): void {
    if (this.entries.length === 0) return;
    this.replace([]);
  }

  /**
   * Writes `entries` to the checkpoint, then takes them: a failed write leaves the cache as the
   * file has it, so a retry writes again instead of finding the change already made (batches of
   * an epoch the file lacks would be cut off by recovery after a crash).
   */
  private replace(entries: EpochEntry[]): void {
    const lines = ['0', String(entries.length), ...entries.map((e) => `${e.epoch} ${e.startOffset}`)];
    writeFileAtomic(this.file, `${lines.join('\n')}\n`);
    this.entries = entries;
  }
}

function parse(text: string | undefined, file: string): EpochEntry[] {
  if (text === undefined) return [];
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const bad = (why: string): never => {
    throw new StrandError('KAFKA_STORAGE_ERROR', `malformed ${file}: ${why}`);
  };
  if (lines[0] !== '0') bad(`unsupported version ${lines[0]}`);
  const n = Number(lines[1]);
  if (!Number.isInteger(n) || n !== lines.length - 2) bad(`entry count ${lines[1]} does not match ${lines.length - 2} lines`);
  const out: EpochEntry[] = [];
  for (const line of lines.slice(2)) {
    const [e, o] = line.trim().split(/\s+/).map(Number);
    if (!Number.isInteger(e) || !Number.isInteger(o)) bad(`bad line '${line}'`);
    const prev = out[out.length - 1];
    if (prev !== undefined && ((e as number) <= prev.epoch || (o as number) < prev.startOffset)) bad('entries are not ascending');
    out.push({ epoch: e as number, startOffset: o as number });
  }
  return out;
}
