// The simulator's in-memory partition log: the twin of @strand/storage's PartitionLog as far as
// replication cares. One record per batch (a value string standing for the bytes), stamped with
// its leader epoch; the leader-epoch cache is derived from the records, so it can never disagree
// with them, plus at most one epoch recorded at the log end with no record of it yet: the one a
// new leader records at election (`assignLeaderEpoch`, as PartitionLog and Kafka's makeLeader
// do). Like the real cache's entry, a truncation to or below the log end drops it, and so does a
// crash (the real log drops it at reopen). What makes it a faithful model of a disk: a durable
// end offset that only an explicit `flush()` (the group-committed fdatasync) moves, and
// `crash()`, which loses every record above it — the power loss of SCENARIOS.md 5.
//
// Why not the real PartitionLog in the simulator: it does file I/O and asynchronous fsync, which
// would make a run neither deterministic nor fast (200 seeds must take seconds). The core only
// sees the ReplicaLogView interface, which both implement; test/log/partition-log-view.test.ts
// checks the real log answers the same questions the same way.
//
// Invariants: offsets are dense from 0; epochs never decrease along the log, and the recorded
// epoch, if any, is above the last record's;
// 0 <= durableEndOffset <= logEndOffset <= maxRecords.

import { invariant, type EpochEndOffset, type ReplicaLogView } from '../replication/types';

export interface SimRecord {
  readonly offset: number;
  readonly epoch: number;
  /** Stands for the batch bytes; unique per write, so two histories never look alike. */
  readonly value: string;
  /** Idempotent producer id and sequence (absent for non-idempotent writes); producer epoch is 0. */
  readonly producerId?: number;
  readonly sequence?: number;
}

export type FlushPolicy = 'fsync' | 'page-cache';

export class SimLog implements ReplicaLogView {
  private records: SimRecord[] = [];
  private durable = 0;
  /** An epoch recorded at the log end (startOffset === records.length) with no record of it yet. */
  private assigned: { epoch: number; startOffset: number } | null = null;

  constructor(
    readonly flushPolicy: FlushPolicy = 'fsync',
    /** A bound on the log's length: the simulator never produces more. */
    readonly maxRecords: number = 100_000,
  ) {}

  get logStartOffset(): number {
    return 0;
  }

  get logEndOffset(): number {
    return this.records.length;
  }

  get durableEndOffset(): number {
    return this.durable;
  }

  get countableEndOffset(): number {
    return this.flushPolicy === 'fsync' ? this.durable : this.records.length;
  }

  get latestEpoch(): number {
    return this.assigned?.epoch ?? this.records[this.records.length - 1]?.epoch ?? -1;
  }

  endOffsetForEpoch(epoch: number): EpochEndOffset {
    // The largest epoch <= `epoch` present, and where the next larger one starts (or the end);
    // an epoch older than all ends where the first starts (Kafka's LeaderEpochFileCache).
    if (epoch < 0) return { epoch: -1, endOffset: -1 };
    let found = -1;
    for (let i = 0; i < this.records.length; i++) {
      const e = (this.records[i] as SimRecord).epoch;
      if (e > epoch) return found < 0 ? { epoch, endOffset: i } : { epoch: found, endOffset: i };
      found = e;
    }
    const a = this.assigned;
    if (a !== null && a.epoch > epoch) return found < 0 ? { epoch, endOffset: a.startOffset } : { epoch: found, endOffset: a.startOffset };
    if (a !== null) found = a.epoch;
    return found < 0 ? { epoch: -1, endOffset: -1 } : { epoch: found, endOffset: this.records.length };
  }

  /** A new leader of `epoch` records it at the log end before writing in it (PartitionLog.assignLeaderEpoch). */
  assignLeaderEpoch(epoch: number): void {
    invariant(epoch >= 0 && epoch >= this.latestEpoch, `leader epoch ${epoch} recorded below the log's latest ${this.latestEpoch}`);
    // The latest epoch again changes nothing; a newer one replaces one recorded here before.
    if (epoch > this.latestEpoch) this.assigned = { epoch, startOffset: this.records.length };
  }

  at(offset: number): SimRecord | undefined {
    return this.records[offset];
  }

  /** A copy of the records in [from, to). */
  slice(from = 0, to = this.records.length): SimRecord[] {
    return this.records.slice(from, to);
  }

  /** Appends `value` as leader at `epoch`; returns its offset. */
  appendAsLeader(value: string, epoch: number, producer?: { producerId: number; sequence: number }): number {
    invariant(epoch >= this.latestEpoch, `leader append at epoch ${epoch} below the log's latest ${this.latestEpoch}`);
    invariant(this.records.length < this.maxRecords, 'sim log full');
    const offset = this.records.length;
    this.assigned = null; // the record carries the epoch from here on (it is >= the assigned one)
    this.records.push(producer === undefined ? { offset, epoch, value } : { offset, epoch, value, producerId: producer.producerId, sequence: producer.sequence });
    return offset;
  }

  /** Appends replicated records, which must continue the log exactly. */
  appendAsFollower(records: readonly SimRecord[]): void {
    for (const r of records) {
      invariant(r.offset === this.records.length, `replicated record at ${r.offset} does not follow the log end ${this.records.length}`);
      invariant(r.epoch >= this.latestEpoch, `replicated epoch ${r.epoch} below the log's latest ${this.latestEpoch}`);
      invariant(this.records.length < this.maxRecords, 'sim log full');
      this.assigned = null;
      this.records.push(r);
    }
  }

  /** Up to `maxRecords` records from `offset`, none at or above `maxOffset`. */
  read(offset: number, maxRecords: number, maxOffset = this.records.length): SimRecord[] {
    return this.records.slice(offset, Math.min(offset + maxRecords, maxOffset, this.records.length));
  }

  truncateTo(offset: number): void {
    // Even at or past the log end: the recorded epoch starts there (PartitionLog.truncateTo).
    this.assigned = null;
    if (offset >= this.records.length) return;
    this.records.length = Math.max(0, offset);
    this.durable = Math.min(this.durable, this.records.length);
  }

  /** The group-committed fdatasync: everything appended so far becomes durable. */
  flush(): void {
    this.durable = this.records.length;
  }

  /** Power loss: everything not yet flushed is gone. */
  crash(): void {
    this.assigned = null;
    this.records.length = this.durable;
  }
}
