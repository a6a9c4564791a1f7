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

// The descriptor is protobufjs' own toJSON() output, so it is an INamespace by construction.
const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true, arrays: true };

export interface MessageCodec<T> {
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** The codec of the message type `fullName` (e.g. `strand.broker.ProduceRequest`). */
export function messageCodec<T extends object>(fullName: string): MessageCodec<T> {
  const type = root.lookupType(fullName);
  return {
    encode: (message: T): Uint8Array => type.encode(message).finish(),
    decode: (bytes: Uint8Array): T => {
      let decoded: protobuf.Message;
      try {
        decoded = type.decode(bytes);
      } catch (e: unknown) {
        throw new StrandError('CORRUPT_MESSAGE', `malformed ${fullName}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      // The generated interface is exactly the shape toObject produces with TO_OBJECT.
      return type.toObject(decoded, TO_OBJECT) as T;
    },
  };
}

/** A Buffer view of `bytes` without copying (grpc-js serializers must return Buffers). */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
