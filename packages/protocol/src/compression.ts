/**
 * Compression codecs for RecordBatch v2 payloads, keyed by Kafka's codec id (attributes bits 0-2).
 *
 * Only the records section of a batch is compressed; the 61-byte batch header (including the
 * record count) stays plain, so the broker validates and stamps batches without decompressing.
 * `none` and `gzip` ship built in; lz4, snappy and zstd are registered by id when a library for
 * them is added (`registerCompressionCodec`), and until then a batch using them is rejected with
 * UNSUPPORTED_COMPRESSION_TYPE rather than misread.
 */
import * as zlib from 'node:zlib';
import { StrandError } from './errors';

/** Kafka's compression codec ids (`compression.type`). */
export enum CompressionType {
  None = 0,
  Gzip = 1,
  Snappy = 2,
  Lz4 = 3,
  Zstd = 4,
}

/** Kafka's `compression.type` names for each codec id. */
export const COMPRESSION_NAMES: Readonly<Record<CompressionType, string>> = {
  [CompressionType.None]: 'none',
  [CompressionType.Gzip]: 'gzip',
  [CompressionType.Snappy]: 'snappy',
  [CompressionType.Lz4]: 'lz4',
  [CompressionType.Zstd]: 'zstd',
};

export interface CompressionCodec {
  compress(data: Buffer): Buffer;
  /** Decompresses; `maxBytes` bounds the output so a hostile batch cannot exhaust memory. */
  decompress(data: Buffer, maxBytes: number): Buffer;
}

const codecs = new Map<CompressionType, CompressionCodec>([
  [CompressionType.None, { compress: (d) => d, decompress: (d) => d }],
  [
    CompressionType.Gzip,
    {
      compress: (d) => zlib.gzipSync(d),
      decompress: (d, maxBytes) => zlib.gunzipSync(d, { maxOutputLength: maxBytes }),
    },
  ],
]);

/** Installs a codec for a compression id (e.g. lz4 or zstd from a library). */
export function registerCompressionCodec(type: CompressionType, codec: CompressionCodec): void {
  codecs.set(type, codec);
}

/** The codec for `type`, or UNSUPPORTED_COMPRESSION_TYPE. */
export function compressionCodec(type: number): CompressionCodec {
  const codec = codecs.get(type as CompressionType);
  if (codec === undefined) {
    throw new StrandError('UNSUPPORTED_COMPRESSION_TYPE', `compression codec ${type} (${COMPRESSION_NAMES[type as CompressionType] ?? 'unknown'}) is not supported by this build`);
  }
  return codec;
}

/** Whether a codec for the id (a batch's attributes bits 0-2) is installed. */
export function compressionSupported(type: number): boolean {
  return codecs.has(type as CompressionType);
}

/** Whether a codec for the `compression.type` name is installed. */
export function hasCompressionCodec(name: string): boolean {
  for (const [id, n] of Object.entries(COMPRESSION_NAMES)) if (n === name) return compressionSupported(Number(id));
  return false;
}

/** Parses a `compression.type` name. */
export function compressionTypeFromName(name: string): CompressionType {
  for (const [id, n] of Object.entries(COMPRESSION_NAMES)) if (n === name) return Number(id) as CompressionType;
  throw new StrandError('INVALID_CONFIG', `unknown compression.type '${name}' (expected one of ${Object.values(COMPRESSION_NAMES).join(', ')})`);
}
