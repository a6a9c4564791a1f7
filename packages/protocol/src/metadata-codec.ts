/**
 * A hand-written decoder of the metadata log's messages (proto/metadata.proto's MetadataRecord
 * and the three messages that carry a list of them), used in place of protobufjs' by the
 * generated `decodeMetadataRecord`, `decodeMetadataRecordBatch`, `decodeMetadataSnapshot`,
 * `decodeMetadataDelta` and the FetchMetadata stream's gRPC deserializer (proto-runtime.ts).
 *
 * Why: a snapshot of 10,000 partitions is ~0.4 MiB of ~11,000 records, and protobufjs decodes it
 * into message objects that `toObject` then copies into plain ones: two objects per record and
 * per nested list, most of the time spent allocating and collecting. A broker decodes one on
 * every metadata stream (re)connect, a controller on every restore; profiled, that was 100-200 ms
 * of one event-loop turn at 10,000 partitions. This decoder builds the plain objects directly.
 *
 * The output is exactly what protobufjs' decode + toObject({longs: Number, enums: Number,
 * defaults: true, arrays: true}) gives (checked by a property test against protobufjs): absent
 * scalars as their proto3 defaults, absent repeated fields as [], absent messages as null, absent
 * proto3 `optional` and oneof members not set, bytes as Buffer views of the input, int64 as
 * number (exact below 2^53), unknown fields skipped, repeated int32 packed or not.
 *
 * Wire grammar (protobuf): message := (tag value)*; tag := varint (field << 3 | wire type);
 * wire type 0 varint, 1 fixed64, 2 length-delimited (varint length, bytes), 5 fixed32, 3/4 group
 * start/end (skipped). Field numbers per message are those of proto/metadata.proto:
 *   MetadataRecordBatch { records = 1 }    MetadataSnapshot { offset = 1; records = 2 }
 *   MetadataDelta (controller.proto) { snapshot = 1; offset = 2; records = 3 }
 *   MetadataRecord { oneof record: cluster = 1 ... producer_ids = 12 }
 * Malformed bytes (truncated, a length past the end, a known field with the wrong wire type)
 * throw CORRUPT_MESSAGE. The input is never modified.
 */
import type {
  BrokerEndpointRecord,
  ConfigRecord,
  Int32List,
  MetadataRecord,
  MetadataRecordBatch,
  MetadataSnapshot,
  PartitionChangeRecord,
  PartitionRecord,
  ProducerIdsRecord,
  RegisterBrokerRecord,
  TopicRecord,
} from './generated/metadata';
import type { MetadataDelta } from './generated/controller';
import { StrandError } from './errors';

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const GROUP_START = 3;
const GROUP_END = 4;
const FIXED32 = 5;

const EMPTY: Buffer = Buffer.alloc(0);

function corrupt(what: string): StrandError {
  return new StrandError('CORRUPT_MESSAGE', `malformed metadata message: ${what}`);
}

/** A cursor over protobuf bytes. `end` bounds the message being read. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos: number,
    public end: number,
  ) {
    this.pos = pos;
  }

  /** A varint's low 32 bits, unsigned (longer varints are read to their end: negative int32s take 10 bytes). */
  uint32(): number {
    const buf = this.buf;
    let value = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw corrupt('truncated varint');
      const b = buf[this.pos++] as number;
      if (shift < 32) value |= (b & 0x7f) << shift;
      if (b < 0x80) return value >>> 0;
      shift += 7;
    }
    throw corrupt('varint longer than 10 bytes');
  }

  int32(): number {
    return this.uint32() | 0;
  }

  /** A varint int64 as a number, as protobufjs' LongBits.toNumber(false): exact below 2^53. */
  int64(): number {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw corrupt('truncated varint');
      const b = buf[this.pos++] as number;
      if (i < 4) lo |= (b & 0x7f) << (i * 7);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (i * 7 - 32);
      if (b < 0x80) {
        lo >>>= 0;
        hi >>>= 0;
        if (hi >>> 31 !== 0) {
          const nlo = (~lo + 1) >>> 0;
          let nhi = ~hi >>> 0;
          if (nlo === 0) nhi = (nhi + 1) >>> 0;
          return -(nlo + nhi * 4294967296);
        }
        return lo + hi * 4294967296;
      }
    }
    throw corrupt('varint longer than 10 bytes');
  }

  bool(): boolean {
    return this.uint32() !== 0;
  }

  /** The bounds of a length-delimited value; advances past it. */
  delimited(): number {
    const len = this.uint32();
    const start = this.pos;
    if (len > this.end - start) throw corrupt(`length ${len} past the end`);
    this.pos = start + len;
    return start;
  }

  string(): string {
    const start = this.delimited();
    return this.buf.toString('utf8', start, this.pos);
  }

  /** A view of the input (as protobufjs' BufferReader), not a copy. */
  bytes(): Buffer {
    const start = this.delimited();
    return start === this.pos ? EMPTY : this.buf.subarray(start, this.pos);
  }

  skip(wireType: number, field: number): void {
    switch (wireType) {
      case VARINT:
        this.uint32();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LEN:
        this.delimited();
        return;
      case GROUP_START:
        for (;;) {
          const tag = this.uint32();
          if ((tag & 7) === GROUP_END) {
            if (tag >>> 3 !== field) throw corrupt('mismatched group end');
            return;
          }
          this.skip(tag & 7, tag >>> 3);
        }
      case FIXED32:
        this.advance(4);
        return;
      default:
        throw corrupt(`wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw corrupt('truncated fixed-width value');
    this.pos += n;
  }
}

function expect(wireType: number, want: number, field: number): void {
  if (wireType !== want) throw corrupt(`field ${field} has wire type ${wireType}, not ${want}`);
}

/** Runs `f` over a nested message's bytes: the reader's bounds narrowed to it, then restored. */
function nested<T>(r: Reader, f: (r: Reader) => T): T {
  const start = r.delimited();
  const end = r.pos;
  const outer = r.end;
  r.pos = start;
  r.end = end;
  const value = f(r);
  r.pos = end;
  r.end = outer;
  return value;
}

/** One repeated int32 value, packed (a run of varints) or not (one varint). */
function int32s(r: Reader, wireType: number, into: number[]): void {
  if (wireType === LEN) {
    const start = r.delimited();
    const end = r.pos;
    const outer = r.end;
    r.pos = start;
    r.end = end;
    while (r.pos < end) into.push(r.int32());
    r.end = outer;
  } else if (wireType === VARINT) {
    into.push(r.int32());
  } else {
    throw corrupt(`repeated int32 with wire type ${wireType}`);
  }
}

function int32List(r: Reader): Int32List {
  const m: Int32List = { values: [] };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) int32s(r, tag & 7, m.values);
    else r.skip(tag & 7, tag >>> 3);
  }
  return m;
}

function endpoint(r: Reader): BrokerEndpointRecord {
  const m: BrokerEndpointRecord = { listener: '', host: '', port: 0 };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    switch (f) {
      case 1:
        expect(w, LEN, f);
        m.listener = r.string();
        break;
      case 2:
        expect(w, LEN, f);
        m.host = r.string();
        break;
      case 3:
        expect(w, VARINT, f);
        m.port = r.int32();
        break;
      default:
        r.skip(w, f);
    }
  }
  return m;
}

function registerBroker(r: Reader): RegisterBrokerRecord {
  const m: RegisterBrokerRecord = { brokerId: 0, incarnationId: '', brokerEpoch: 0, endpoints: [], fenced: false, inControlledShutdown: false, previousShutdownClean: false };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    switch (f) {
      case 1:
        expect(w, VARINT, f);
        m.brokerId = r.int32();
        break;
      case 2:
        expect(w, LEN, f);
        m.incarnationId = r.string();
        break;
      case 3:
        expect(w, VARINT, f);
        m.brokerEpoch = r.int64();
        break;
      case 4:
        expect(w, LEN, f);
        m.endpoints.push(nested(r, endpoint));
        break;
      case 5:
        expect(w, LEN, f);
        m.rack = r.string();
        break;
      case 6:
        expect(w, VARINT, f);
        m.fenced = r.bool();
        break;
      case 7:
        expect(w, VARINT, f);
        m.inControlledShutdown = r.bool();
        break;
      case 8:
        expect(w, VARINT, f);
        m.previousShutdownClean = r.bool();
        break;
      case 9:
        expect(w, LEN, f);
        m.logDirId = r.string();
        break;
      case 10:
        expect(w, VARINT, f);
        m.logDirReplaced = r.bool();
        break;
      default:
        r.skip(w, f);
    }
  }
  return m;
}

/** UnregisterBroker, FenceBroker, UnfenceBroker and BrokerControlledShutdown: { broker_id = 1; broker_epoch = 2 }. */
function brokerEpochRecord(r: Reader): { brokerId: number; brokerEpoch: number } {
  const m = { brokerId: 0, brokerEpoch: 0 };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    if (f === 1) {
      expect(w, VARINT, f);
      m.brokerId = r.int32();
    } else if (f === 2) {
      expect(w, VARINT, f);
      m.brokerEpoch = r.int64();
    } else r.skip(w, f);
  }
  return m;
}

function topic(r: Reader): TopicRecord {
  const m: TopicRecord = { name: '', topicId: EMPTY };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    if (f === 1) {
      expect(w, LEN, f);
      m.name = r.string();
    } else if (f === 2) {
      expect(w, LEN, f);
      m.topicId = r.bytes();
    } else r.skip(w, f);
  }
  return m;
}

function partition(r: Reader): PartitionRecord {
  const m: PartitionRecord = { topicId: EMPTY, partition: 0, replicas: [], isr: [], leader: 0, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    switch (f) {
      case 1:
        expect(w, LEN, f);
        m.topicId = r.bytes();
        break;
      case 2:
        expect(w, VARINT, f);
        m.partition = r.int32();
        break;
      case 3:
        int32s(r, w, m.replicas);
        break;
      case 4:
        int32s(r, w, m.isr);
        break;
      case 5:
        expect(w, VARINT, f);
        m.leader = r.int32();
        break;
      case 6:
        expect(w, VARINT, f);
        m.leaderEpoch = r.int32();
        break;
      case 7:
        expect(w, VARINT, f);
        m.partitionEpoch = r.int32();
        break;
      case 8:
        int32s(r, w, m.addingReplicas);
        break;
      case 9:
        int32s(r, w, m.removingReplicas);
        break;
      default:
        r.skip(w, f);
    }
  }
  return m;
}

function partitionChange(r: Reader): PartitionChangeRecord {
  const m: PartitionChangeRecord = { topicId: EMPTY, partition: 0, isr: null, replicas: null, addingReplicas: null, removingReplicas: null };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    switch (f) {
      case 1:
        expect(w, LEN, f);
        m.topicId = r.bytes();
        break;
      case 2:
        expect(w, VARINT, f);
        m.partition = r.int32();
        break;
      case 3:
        expect(w, VARINT, f);
        m.leader = r.int32();
        break;
      case 4:
        expect(w, LEN, f);
        m.isr = nested(r, int32List);
        break;
      case 5:
        expect(w, LEN, f);
        m.replicas = nested(r, int32List);
        break;
      case 6:
        expect(w, LEN, f);
        m.addingReplicas = nested(r, int32List);
        break;
      case 7:
        expect(w, LEN, f);
        m.removingReplicas = nested(r, int32List);
        break;
      default:
        r.skip(w, f);
    }
  }
  return m;
}

function config(r: Reader): ConfigRecord {
  const m: ConfigRecord = { resourceType: 0, resourceName: '', name: '' };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    switch (f) {
      case 1:
        expect(w, VARINT, f);
        m.resourceType = r.int32();
        break;
      case 2:
        expect(w, LEN, f);
        m.resourceName = r.string();
        break;
      case 3:
        expect(w, LEN, f);
        m.name = r.string();
        break;
      case 4:
        expect(w, LEN, f);
        m.value = r.string();
        break;
      default:
        r.skip(w, f);
    }
  }
  return m;
}

function removeTopic(r: Reader): { topicId: Uint8Array } {
  const m: { topicId: Uint8Array } = { topicId: EMPTY };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) {
      expect(tag & 7, LEN, 1);
      m.topicId = r.bytes();
    } else r.skip(tag & 7, tag >>> 3);
  }
  return m;
}

function producerIds(r: Reader): ProducerIdsRecord {
  const m: ProducerIdsRecord = { brokerId: 0, brokerEpoch: 0, nextProducerId: 0 };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    if (f === 1) {
      expect(w, VARINT, f);
      m.brokerId = r.int32();
    } else if (f === 2) {
      expect(w, VARINT, f);
      m.brokerEpoch = r.int64();
    } else if (f === 3) {
      expect(w, VARINT, f);
      m.nextProducerId = r.int64();
    } else r.skip(w, f);
  }
  return m;
}

function clusterRecord(r: Reader): { clusterId: string } {
  const m = { clusterId: '' };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) {
      expect(tag & 7, LEN, 1);
      m.clusterId = r.string();
    } else r.skip(tag & 7, tag >>> 3);
  }
  return m;
}

/** One MetadataRecord spanning the reader's bounds. */
function record(r: Reader): MetadataRecord {
  const m: MetadataRecord = {};
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    if (f < 1 || f > 12) {
      r.skip(w, f);
      continue;
    }
    expect(w, LEN, f);
    switch (f) {
      case 1:
        m.cluster = nested(r, clusterRecord);
        break;
      case 2:
        m.registerBroker = nested(r, registerBroker);
        break;
      case 3:
        m.unregisterBroker = nested(r, brokerEpochRecord);
        break;
      case 4:
        m.fenceBroker = nested(r, brokerEpochRecord);
        break;
      case 5:
        m.unfenceBroker = nested(r, brokerEpochRecord);
        break;
      case 6:
        m.controlledShutdown = nested(r, brokerEpochRecord);
        break;
      case 7:
        m.topic = nested(r, topic);
        break;
      case 8:
        m.partition = nested(r, partition);
        break;
      case 9:
        m.partitionChange = nested(r, partitionChange);
        break;
      case 10:
        m.config = nested(r, config);
        break;
      case 11:
        m.removeTopic = nested(r, removeTopic);
        break;
      default:
        m.producerIds = nested(r, producerIds);
    }
  }
  return m;
}

function readerOf(bytes: Uint8Array): Reader {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return new Reader(buf, 0, buf.length);
}

/**
 * The top-level fields of a message that carries metadata records, read without decoding the
 * records: each record's bounds are noted, so the records can be decoded later, a slice at a time.
 */
export interface MetadataRecordSpans {
  /** MetadataDelta.snapshot (false for the other messages). */
  readonly snapshot: boolean;
  /** MetadataSnapshot.offset / MetadataDelta.offset (0 for a batch). */
  readonly offset: number;
  /** How many records the message holds. */
  readonly count: number;
  /** Decodes records [from, to) (clamped to [0, count)). */
  decode(from: number, to: number): MetadataRecord[];
}

/** Which message: the field numbers of its offset, snapshot flag and records (0: none). */
interface Shape {
  readonly offset: number;
  readonly snapshot: number;
  readonly records: number;
}

const BATCH: Shape = { offset: 0, snapshot: 0, records: 1 };
const SNAPSHOT: Shape = { offset: 1, snapshot: 0, records: 2 };
const DELTA: Shape = { offset: 2, snapshot: 1, records: 3 };

function spans(bytes: Uint8Array, shape: Shape): MetadataRecordSpans {
  const r = readerOf(bytes);
  let snapshot = false;
  let offset = 0;
  // [start, end) of each record, flat.
  let bounds = new Int32Array(64);
  let count = 0;
  while (r.pos < r.end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const w = tag & 7;
    if (f === shape.records) {
      expect(w, LEN, f);
      const start = r.delimited();
      if (2 * count + 2 > bounds.length) {
        const grown = new Int32Array(bounds.length * 2);
        grown.set(bounds);
        bounds = grown;
      }
      bounds[2 * count] = start;
      bounds[2 * count + 1] = r.pos;
      count++;
    } else if (f === shape.offset) {
      expect(w, VARINT, f);
      offset = r.int64();
    } else if (f === shape.snapshot) {
      expect(w, VARINT, f);
      snapshot = r.bool();
    } else r.skip(w, f);
  }
  const buf = r.buf;
  return {
    snapshot,
    offset,
    count,
    decode(from: number, to: number): MetadataRecord[] {
      const hi = Math.min(to, count);
      const out: MetadataRecord[] = [];
      const rr = new Reader(buf, 0, 0);
      for (let i = Math.max(0, from); i < hi; i++) {
        rr.pos = bounds[2 * i] as number;
        rr.end = bounds[2 * i + 1] as number;
        out.push(record(rr));
      }
      return out;
    },
  };
}

/** A MetadataDelta's header read and its records located, none decoded yet (see MetadataRecordSpans). */
export function metadataDeltaSpans(bytes: Uint8Array): MetadataRecordSpans {
  return spans(bytes, DELTA);
}

/** A MetadataSnapshot's offset read and its records located, none decoded yet (see MetadataRecordSpans). */
export function metadataSnapshotSpans(bytes: Uint8Array): MetadataRecordSpans {
  return spans(bytes, SNAPSHOT);
}

export function decodeMetadataRecordFast(bytes: Uint8Array): MetadataRecord {
  return record(readerOf(bytes));
}

export function decodeMetadataRecordBatchFast(bytes: Uint8Array): MetadataRecordBatch {
  const s = spans(bytes, BATCH);
  return { records: s.decode(0, s.count) };
}

export function decodeMetadataSnapshotFast(bytes: Uint8Array): MetadataSnapshot {
  const s = spans(bytes, SNAPSHOT);
  return { offset: s.offset, records: s.decode(0, s.count) };
}

export function decodeMetadataDeltaFast(bytes: Uint8Array): MetadataDelta {
  const s = spans(bytes, DELTA);
  return { snapshot: s.snapshot, offset: s.offset, records: s.decode(0, s.count) };
}
