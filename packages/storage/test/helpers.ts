/** Shared test helpers: temp dirs, batch builders, reading a whole log back. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ATTRIBUTES_OFFSET, CRC_OFFSET, CompressionType, compressionSupported, crc32c, decodeRecordBatch, encodeRecordBatch, validateBatches, type RecordInput } from '@strand/protocol';
import type { PartitionLog } from '../src';

const dirs: string[] = [];

/** A fresh temp directory, removed by `cleanupTempDirs` (call it in afterEach/afterAll). */
export function tempDir(prefix = 'strand-storage-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export function cleanupTempDirs(): void {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** A batch of `count` records with values `${tag}-${i}` (optionally keyed) at `timestamp`. */
export function batch(tag: string, count = 1, options: { timestamp?: number; keys?: (string | null)[]; values?: (string | null)[]; producerId?: number } = {}): Buffer {
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    const key = options.keys?.[i];
    const value = options.values ? options.values[i] : `${tag}-${i}`;
    records.push({ key: key === undefined || key === null ? null : Buffer.from(key), value: value === null || value === undefined ? null : Buffer.from(value) });
  }
  return encodeRecordBatch({ records, baseTimestamp: options.timestamp ?? 1_700_000_000_000, producerId: options.producerId });
}

/**
 * `bytes` (one batch) relabelled as lz4, a codec this build lacks, with a valid CRC: what a
 * client with an lz4 library sends, which produce stores as sent.
 */
export function asUnreadableCodec(bytes: Buffer): Buffer {
  if (compressionSupported(CompressionType.Lz4)) throw new Error('this build reads lz4: pick another codec for the test');
  const out = Buffer.from(bytes);
  out.writeInt16BE(out.readInt16BE(ATTRIBUTES_OFFSET) | CompressionType.Lz4, ATTRIBUTES_OFFSET);
  out.writeUInt32BE(crc32c(out.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return out;
}

export interface ReadRecord {
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
  epoch: number;
}

/** Every record from `from` to the end (or `maxOffset`), reading in chunks of `maxBytes`. */
export function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 4096, maxOffset?: number): ReadRecord[] {
  const out: ReadRecord[] = [];
  let offset = from;
  for (let guard = 0; guard < 1_000_000; guard++) {
    const res = log.read(offset, maxBytes, maxOffset === undefined ? {} : { maxOffset });
    if (res.batchCount === 0) break;
    for (const v of validateBatches(res.records)) {
      const b = decodeRecordBatch(res.records, v.position);
      for (const r of b.records) {
        if (r.offset < offset) continue;
        out.push({ offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, timestamp: r.timestamp, epoch: b.partitionLeaderEpoch });
      }
    }
    offset = res.nextOffset;
  }
  return out;
}
