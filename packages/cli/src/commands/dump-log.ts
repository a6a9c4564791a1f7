/**
 * `strand dump-log`, Kafka's kafka-dump-log (DumpLogSegments): prints what a partition
 * directory's files hold, offline (no broker needed; a running broker's files may be read too).
 *
 *   --files F[,F...] [--print-data-log] [--deep-iteration] [--json]
 *
 * - `.log`: one line per batch (offsets, count, producer id/epoch/sequences, leader epoch,
 *   transactional/control flags, position, timestamp, size, codec, CRC and whether it is valid);
 *   `--deep-iteration` adds a line per record, `--print-data-log` (implies it) the key and
 *   payload too. The dump stops at the first batch that is torn or fails its CRC, as recovery
 *   would truncate there, and says so.
 * - `.index` / `.timeindex`: the entries; each is checked against the `.log` beside it (an offset
 *   entry must point at a batch boundary whose batch holds that offset; a time entry's offset must
 *   lie in the log), and mismatches are listed, as Kafka's tool does.
 * Exit 0 when every file was read and found consistent, 1 when a file holds a corrupt batch or
 * a mismatching index entry, 2 for usage errors (no --files, an unknown file type, a missing file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import {
  COMPRESSION_NAMES,
  LOG_OVERHEAD,
  RECORD_BATCH_OVERHEAD,
  StrandError,
  TimestampType,
  batchCompression,
  batchTimestampType,
  decodeRecordBatch,
  isControlBatch,
  isTransactionalBatch,
  readBatchHeader,
  validateBatch,
  type RecordBatchHeader,
} from '@strand/protocol';
import { EXIT_FAILED, EXIT_OK, UsageError, action } from './common';

/** One batch of a `.log` file as the dump reports it. */
export interface DumpedBatch {
  baseOffset: number;
  lastOffset: number;
  count: number;
  baseSequence: number;
  lastSequence: number;
  producerId: number;
  producerEpoch: number;
  partitionLeaderEpoch: number;
  isTransactional: boolean;
  isControl: boolean;
  position: number;
  timestampType: 'CreateTime' | 'LogAppendTime';
  maxTimestamp: number;
  size: number;
  magic: number;
  compresscodec: string;
  crc: number;
  isvalid: boolean;
  records?: DumpedRecord[];
}

export interface DumpedRecord {
  offset: number;
  timestamp: number;
  keySize: number;
  valueSize: number;
  sequence: number;
  headerKeys: string[];
  key?: string | null;
  payload?: string | null;
}

export interface LogDump {
  file: string;
  kind: 'log';
  baseOffset: number;
  batches: DumpedBatch[];
  /** Set when the file ends in a torn or corrupt batch: where and why the dump stopped. */
  corruptAt?: { position: number; error: string };
}

export interface IndexDump {
  file: string;
  kind: 'index' | 'timeindex';
  entries: { offset: number; position?: number; timestamp?: number }[];
  mismatches: string[];
}

export type FileDump = LogDump | IndexDump;

/** The segment's base offset from its file name (20 digits), or 0 when the name is not one. */
function baseOffsetOf(file: string): number {
  const m = /^(\d{20})\./.exec(path.basename(file));
  return m === null ? 0 : Number(m[1]);
}

function text(b: Buffer | null): string | null {
  return b === null ? null : b.toString('utf8');
}

/** Reads a `.log` segment batch by batch. */
export function dumpLog(file: string, options: { deep?: boolean; data?: boolean } = {}): LogDump {
  const bytes = fs.readFileSync(file);
  const out: LogDump = { file, kind: 'log', baseOffset: baseOffsetOf(file), batches: [] };
  let pos = 0;
  while (pos < bytes.length) {
    let header: RecordBatchHeader;
    try {
      if (bytes.length - pos < LOG_OVERHEAD) throw new StrandError('CORRUPT_MESSAGE', `${bytes.length - pos} trailing bytes, fewer than a batch's length field`);
      header = validateBatch(bytes, pos);
    } catch (e: unknown) {
      out.corruptAt = { position: pos, error: e instanceof Error ? e.message : String(e) };
      // Show what the header claims when there is one: it helps to see what was torn.
      if (bytes.length - pos >= RECORD_BATCH_OVERHEAD) out.batches.push({ ...describe(readBatchHeader(bytes, pos), pos), isvalid: false });
      break;
    }
    const batch = describe(header, pos);
    if (options.deep === true || options.data === true) {
      const decoded = decodeRecordBatch(bytes, pos, { skipCrc: true });
      batch.records = decoded.records.map((r, i) => ({
        offset: r.offset,
        timestamp: decoded.timestampType === TimestampType.LogAppendTime ? decoded.maxTimestamp : r.timestamp,
        keySize: r.key === null ? -1 : r.key.length,
        valueSize: r.value === null ? -1 : r.value.length,
        sequence: header.baseSequence < 0 ? -1 : header.baseSequence + i,
        headerKeys: r.headers.map((h) => h.key),
        ...(options.data === true ? { key: text(r.key), payload: text(r.value) } : {}),
      }));
    }
    out.batches.push(batch);
    pos += header.batchLength + LOG_OVERHEAD;
  }
  return out;
}

function describe(h: RecordBatchHeader, position: number): DumpedBatch {
  return {
    baseOffset: h.baseOffset,
    lastOffset: h.baseOffset + h.lastOffsetDelta,
    count: h.recordsCount,
    baseSequence: h.baseSequence,
    lastSequence: h.baseSequence < 0 ? -1 : h.baseSequence + h.lastOffsetDelta,
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    partitionLeaderEpoch: h.partitionLeaderEpoch,
    isTransactional: isTransactionalBatch(h.attributes),
    isControl: isControlBatch(h.attributes),
    position,
    timestampType: batchTimestampType(h.attributes) === TimestampType.LogAppendTime ? 'LogAppendTime' : 'CreateTime',
    maxTimestamp: h.maxTimestamp,
    size: h.batchLength + LOG_OVERHEAD,
    magic: h.magic,
    compresscodec: COMPRESSION_NAMES[batchCompression(h.attributes)] ?? `unknown(${batchCompression(h.attributes)})`,
    crc: h.crc,
    isvalid: true,
  };
}

/** The `.log` beside an index file, if there is one, read for the consistency checks. */
function siblingLog(file: string): LogDump | undefined {
  const log = file.replace(/\.(index|timeindex)$/, '.log');
  return fs.existsSync(log) ? dumpLog(log) : undefined;
}

/** Reads an offset index (`.index`: relative offset u32, position u32) and checks it. */
export function dumpOffsetIndex(file: string): IndexDump {
  const bytes = fs.readFileSync(file);
  const base = baseOffsetOf(file);
  const out: IndexDump = { file, kind: 'index', entries: [], mismatches: [] };
  if (bytes.length % 8 !== 0) out.mismatches.push(`file size ${bytes.length} is not a multiple of the 8-byte entry`);
  const log = siblingLog(file);
  const byPosition = new Map(log?.batches.filter((b) => b.isvalid).map((b) => [b.position, b]) ?? []);
  for (let at = 0; at + 8 <= bytes.length; at += 8) {
    const offset = base + bytes.readUInt32BE(at);
    const position = bytes.readUInt32BE(at + 4);
    out.entries.push({ offset, position });
    if (log === undefined) continue;
    const batch = byPosition.get(position);
    if (batch === undefined) out.mismatches.push(`index offset ${offset}, position ${position}: no batch starts at that position in the log`);
    else if (offset < batch.baseOffset || offset > batch.lastOffset) out.mismatches.push(`index offset ${offset}, position ${position}: the batch there holds offsets ${batch.baseOffset}-${batch.lastOffset}`);
  }
  return out;
}

/** Reads a time index (`.timeindex`: timestamp i64, relative offset u32) and checks it. */
export function dumpTimeIndex(file: string): IndexDump {
  const bytes = fs.readFileSync(file);
  const base = baseOffsetOf(file);
  const out: IndexDump = { file, kind: 'timeindex', entries: [], mismatches: [] };
  if (bytes.length % 12 !== 0) out.mismatches.push(`file size ${bytes.length} is not a multiple of the 12-byte entry`);
  const log = siblingLog(file);
  const valid = log?.batches.filter((b) => b.isvalid) ?? [];
  let previous = -Infinity;
  for (let at = 0; at + 12 <= bytes.length; at += 12) {
    const timestamp = Number(bytes.readBigInt64BE(at));
    const offset = base + bytes.readUInt32BE(at + 8);
    out.entries.push({ timestamp, offset });
    if (timestamp < previous) out.mismatches.push(`timestamp ${timestamp} at offset ${offset} is below the entry before it (${previous})`);
    previous = timestamp;
    if (log !== undefined && !valid.some((b) => offset >= b.baseOffset && offset <= b.lastOffset)) out.mismatches.push(`time index offset ${offset} (timestamp ${timestamp}) is in no batch of the log`);
  }
  return out;
}

export function dumpFile(file: string, options: { deep?: boolean; data?: boolean } = {}): FileDump {
  if (file.endsWith('.log')) return dumpLog(file, options);
  if (file.endsWith('.index')) return dumpOffsetIndex(file);
  if (file.endsWith('.timeindex')) return dumpTimeIndex(file);
  throw new UsageError(`${file}: not a .log, .index or .timeindex file`);
}

/** Kafka's text form of a dump. */
export function formatDump(d: FileDump): string[] {
  const lines = [`Dumping ${d.file}`];
  if (d.kind === 'log') {
    lines.push(`Log starting offset: ${d.baseOffset}`);
    for (const b of d.batches) {
      lines.push(
        `baseOffset: ${b.baseOffset} lastOffset: ${b.lastOffset} count: ${b.count} baseSequence: ${b.baseSequence} lastSequence: ${b.lastSequence} producerId: ${b.producerId} producerEpoch: ${b.producerEpoch} partitionLeaderEpoch: ${b.partitionLeaderEpoch} isTransactional: ${b.isTransactional} isControl: ${b.isControl} position: ${b.position} ${b.timestampType}: ${b.maxTimestamp} size: ${b.size} magic: ${b.magic} compresscodec: ${b.compresscodec} crc: ${b.crc} isvalid: ${b.isvalid}`,
      );
      for (const r of b.records ?? []) {
        const data = r.payload !== undefined ? ` key: ${r.key ?? 'null'} payload: ${r.payload ?? 'null'}` : '';
        lines.push(`| offset: ${r.offset} ${b.timestampType}: ${r.timestamp} keySize: ${r.keySize} valueSize: ${r.valueSize} sequence: ${r.sequence} headerKeys: [${r.headerKeys.join(',')}]${data}`);
      }
    }
    if (d.corruptAt !== undefined) lines.push(`Found a corrupt or torn batch at position ${d.corruptAt.position} (recovery truncates the log there): ${d.corruptAt.error}`);
  } else {
    for (const e of d.entries) lines.push(d.kind === 'index' ? `offset: ${e.offset} position: ${e.position}` : `timestamp: ${e.timestamp} offset: ${e.offset}`);
    if (d.mismatches.length > 0) lines.push(`Mismatches in ${d.file}:`, ...d.mismatches.map((m) => `  ${m}`));
  }
  return lines;
}

function consistent(d: FileDump): boolean {
  return d.kind === 'log' ? d.corruptAt === undefined : d.mismatches.length === 0;
}

export function registerDumpLog(program: Command): void {
  program
    .command('dump-log')
    .description('print the batches and records of .log segments and the entries of .index/.timeindex files, offline (kafka-dump-log)')
    .option('--files <files>', 'comma-separated segment files (.log, .index, .timeindex) (required)')
    .option('--deep-iteration', 'also one line per record', false)
    .option('--print-data-log', 'also each record\'s key and payload (implies --deep-iteration)', false)
    .option('--json', 'one JSON object per file', false)
    .action(
      action('dump-log', async (opts: { files?: string; deepIteration: boolean; printDataLog: boolean; json: boolean }) => {
        if (opts.files === undefined || opts.files.trim() === '') throw new UsageError('--files <file[,file]> is required');
        const files = opts.files.split(',').map((f) => f.trim()).filter((f) => f !== '');
        for (const f of files) {
          if (!/\.(log|index|timeindex)$/.test(f)) throw new UsageError(`${f}: not a .log, .index or .timeindex file`);
          if (!fs.existsSync(f)) throw new UsageError(`${f}: no such file`);
        }
        let ok = true;
        for (const f of files) {
          const d = dumpFile(f, { deep: opts.deepIteration, data: opts.printDataLog });
          ok &&= consistent(d);
          if (opts.json) process.stdout.write(`${JSON.stringify(d)}\n`);
          else process.stdout.write(`${formatDump(d).join('\n')}\n`);
        }
        return ok ? EXIT_OK : EXIT_FAILED;
      }),
    );
}
