/**
 * Run-time support for the generated protobuf code in ./generated: one protobufjs Root built from
 * the JSON descriptor of proto/, and typed encode/decode pairs over its types.
 *
 * Decoding converts to plain objects (64-bit integers as numbers, bytes as Buffers, absent
 * scalars as their defaults, absent messages as null) so callers never meet protobufjs' Long or
 * prototype-held defaults. Malformed bytes become a typed CORRUPT_MESSAGE error.
 */
import * as protobuf from 'protobufjs';
import { descriptor } from './generated/descriptor';
import { StrandError } from './errors';
import { decodeMetadataDeltaFast, decodeMetadataRecordBatchFast, decodeMetadataRecordFast, decodeMetadataSnapshotFast } from './metadata-codec';

// The descriptor is protobufjs' own toJSON() output, so it is an INamespace by construction.
const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, arrays: true };

export interface MessageCodec<T> {
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/**
 * An upper bound of a plain message's encoded size: per field at most a 5-byte tag plus a 10-byte
 * varint or a 5-byte length prefix, strings at most 3 bytes per UTF-16 unit.
 */
export function encodedSizeBound(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (value instanceof Uint8Array) return value.length + 16;
  switch (typeof value) {
    case 'string':
      return value.length * 3 + 16;
    case 'object': {
      let n = 16;
      if (Array.isArray(value)) for (const v of value) n += encodedSizeBound(v);
      else for (const k in value) n += encodedSizeBound((value as Record<string, unknown>)[k]);
      return n;
    }
    default:
      return 16;
  }
}

/** Messages at least this large (by the bound) are encoded into one buffer sized up front. */
const PRESIZE_MIN_BYTES = 4096;

/**
 * Hand-written decoders that replace protobufjs' for the metadata log's messages (large
 * snapshots: see metadata-codec.ts), giving the same plain objects.
 */
const HAND_DECODERS: ReadonlyMap<string, (bytes: Uint8Array) => object> = new Map<string, (bytes: Uint8Array) => object>([
  ['strand.metadata.MetadataRecord', decodeMetadataRecordFast],
  ['strand.metadata.MetadataRecordBatch', decodeMetadataRecordBatchFast],
  ['strand.metadata.MetadataSnapshot', decodeMetadataSnapshotFast],
  ['strand.controller.MetadataDelta', decodeMetadataDeltaFast],
]);

/** The codec of the message type `fullName` (e.g. `strand.broker.ProduceRequest`). */
export function messageCodec<T extends object>(fullName: string): MessageCodec<T> {
  const type = root.lookupType(fullName);
  const hand = HAND_DECODERS.get(fullName) as ((bytes: Uint8Array) => T) | undefined;
  return {
    encode: (message: T): Uint8Array => {
      // protobufjs 8 starts at 128 bytes and doubles (copying) as it goes, then copies the result
      // once more: for a 1 MiB batch that is ~4 MiB of fresh buffers and copies per message
      // (profiled: ~14% of the producer's CPU, ~8% of a broker's). Big messages get a buffer sized
      // up front and the result is a view of it (grpc-js copies it into its frame right away).
      const bound = encodedSizeBound(message);
      if (bound < PRESIZE_MIN_BYTES) return type.encode(message).finish();
      const writer = protobuf.Writer.create();
      writer.buf = Buffer.allocUnsafe(bound);
      return type.encode(message, writer).finish(true);
    },
    decode: hand ?? ((bytes: Uint8Array): T => {
      let decoded: protobuf.Message;
      try {
        decoded = type.decode(bytes);
      } catch (e: unknown) {
        throw new StrandError('CORRUPT_MESSAGE', `malformed ${fullName}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      // The generated interface is exactly the shape toObject produces with TO_OBJECT.
      return type.toObject(decoded, TO_OBJECT) as T;
    }),
  };
}

/**
 * An encoder of some of the fields of `fullName`: only the fields present in the part are
 * written. Protobuf writes fields in field-number order (protobufjs sorts them), and a repeated
 * field's elements one after another, so parts that split a message's fields in that order (the
 * elements of a repeated field in consecutive runs) concatenate to exactly the bytes of the
 * whole message. That lets a large message be encoded a part per event-loop turn.
 */
export function partEncoder<T extends object>(fullName: string): (part: Partial<T>) => Uint8Array {
  return messageCodec<Partial<T>>(fullName).encode;
}

/**
 * protobufjs' own decode (+ toObject) of `fullName`, bypassing any hand-written decoder: what the
 * hand-written ones are tested against.
 */
export function protobufjsDecode(fullName: string, bytes: Uint8Array): object {
  const type = root.lookupType(fullName);
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

/** A Buffer view of `bytes` without copying (grpc-js serializers must return Buffers). */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
