/**
 * Storage benchmark: `npm run bench:storage [-- --json] [--mb N] [--fsync-mb N] [--compact-mb N] [--recover-mb N] [--drop-caches] [--runs N] [--dir D]`.
 *
 * Appends 100-byte records in 16 KiB RecordBatch v2 batches to a PartitionLog and, in the same
 * run, writes the same bytes with a plain sequential `writeSync` loop at the same sync cadence:
 * - pageCache: flush.policy=page-cache; both sides fdatasync once at the end;
 * - fsync: flush.policy=fsync, one batch at a time (append, await durability) against
 *   write + fdatasync per batch; plus a pipelined figure (many appends in flight, group commit).
 * Reads the log back in 1 MiB fetches for readMBps. Compaction: one forced pass over a closed
 * segment of `--compact-mb` MB of keyed 100-byte records (150 per batch, one in ten superseded),
 * timed, with the longest event-loop stall meanwhile (largest gap between the ticks of a 1 ms
 * interval): what the broker's produce and fetch would wait at worst. Recovery: a log of one
 * `--recover-mb` MB segment left without its clean-shutdown marker and recovery point (as a
 * crash leaves it) is opened with the synchronous `PartitionLog.open` and with `openAsync` (what
 * the broker uses), each timed with its longest event-loop stall; `--drop-caches` (root) empties
 * the page cache first, as a power loss does. Each figure is the median
 * of `--runs` runs, sides interleaved so that machine noise hits both. Prints a table, and with
 * --json one JSON object on the last line: {"pageCache": {...}, "fsync": {...}, "compaction": {...}, "recovery": {...}}.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch, type RecordInput } from '@strand/protocol';
import { compactLog } from '../compactor';
import { PartitionLog } from '../partition-log';

interface Args {
  json: boolean;
  mb: number;
  fsyncMb: number;
  compactMb: number;
  recoverMb: number;
  dropCaches: boolean;
  runs: number;
  dir: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, mb: 256, fsyncMb: 16, compactMb: 128, recoverMb: 256, dropCaches: false, runs: 4, dir: os.tmpdir() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--json') args.json = true;
    else if (a === '--mb') args.mb = next();
    else if (a === '--fsync-mb') args.fsyncMb = next();
    else if (a === '--compact-mb') args.compactMb = next();
    else if (a === '--recover-mb') args.recoverMb = next();
    else if (a === '--drop-caches') args.dropCaches = true;
    else if (a === '--runs') args.runs = Math.floor(next());
    else if (a === '--dir') args.dir = String(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench:storage -- [--json] [--mb 256] [--fsync-mb 16] [--compact-mb 128] [--recover-mb 256] [--drop-caches] [--runs 4] [--dir /tmp]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const RECORD_BYTES = 100;
const BATCH_BYTES = 16 * 1024;

/** One 16 KiB batch of 100-byte records (as a producer would send it), and its record count. */
function makeBatch(): { bytes: Buffer; records: number } {
  const value = Buffer.alloc(RECORD_BYTES, 0x61);
  const records: RecordInput[] = [];
  // Grow until the next record would pass 16 KiB.
  for (;;) {
    records.push({ key: null, value });
    const size = encodeRecordBatch({ records, baseTimestamp: 1_700_000_000_000 }).length;
    if (size > BATCH_BYTES) {
      records.pop();
      break;
    }
  }
  return { bytes: encodeRecordBatch({ records, baseTimestamp: 1_700_000_000_000 }), records: records.length };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const MB = 1024 * 1024;

function freshDir(root: string): string {
  return fs.mkdtempSync(path.join(root, 'strand-bench-'));
}

/** Plain sequential writes of `count` copies of `bytes`, fdatasync every `syncEvery` writes and at the end. */
function rawWrite(dir: string, bytes: Buffer, count: number, syncEvery: number): number {
  const file = path.join(dir, 'raw.bin');
  const fd = fs.openSync(file, 'w');
  const t0 = performance.now();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    pos += fs.writeSync(fd, bytes, 0, bytes.length, pos);
    if (syncEvery > 0 && (i + 1) % syncEvery === 0) fs.fdatasyncSync(fd);
  }
  fs.fdatasyncSync(fd);
  const ms = performance.now() - t0;
  fs.closeSync(fd);
  fs.rmSync(file);
  return ms;
}

/** Appends `count` batches; `mode` decides how durability is awaited. Returns ms and the open log. */
async function logAppend(dir: string, template: Buffer, count: number, mode: 'page-cache' | 'fsync-one' | 'fsync-pipelined'): Promise<{ ms: number; log: PartitionLog }> {
  const log = PartitionLog.open(path.join(dir, 'log'), { config: { 'flush.policy': mode === 'page-cache' ? 'page-cache' : 'fsync' } });
  // A pool of copies: appendAsLeader stamps batches in place, as the broker's request buffers.
  const pool = Array.from({ length: 64 }, () => Buffer.from(template));
  const t0 = performance.now();
  if (mode === 'fsync-one') {
    for (let i = 0; i < count; i++) {
      const info = log.appendAsLeader(pool[i % pool.length] as Buffer, 0);
      await log.waitForDurable(info.lastOffset);
    }
  } else if (mode === 'fsync-pipelined') {
    // Up to 64 appends in flight, as concurrent producers would keep.
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const info = log.appendAsLeader(pool[i % pool.length] as Buffer, 0);
      inFlight.push(log.waitForDurable(info.lastOffset));
      if (inFlight.length >= 64) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } else {
    for (let i = 0; i < count; i++) log.appendAsLeader(pool[i % pool.length] as Buffer, 0);
    await log.flush();
  }
  return { ms: performance.now() - t0, log };
}

function readBack(log: PartitionLog): { ms: number; bytes: number } {
  const t0 = performance.now();
  let offset = log.logStartOffset;
  let bytes = 0;
  for (;;) {
    const res = log.read(offset, MB);
    if (res.batchCount === 0) break;
    bytes += res.records.length;
    offset = res.nextOffset;
  }
  return { ms: performance.now() - t0, bytes };
}

interface PolicyFigures {
  appendMBps: number;
  appendRecordsPerSec: number;
  readMBps: number;
  rawWriteMBps: number;
  ratio: number;
  batchBytes: number;
  recordsPerBatch: number;
  totalMB: number;
  runs: number;
  pipelinedAppendMBps?: number;
  pipelinedRatio?: number;
}

interface CompactionFigures {
  totalMB: number;
  records: number;
  keys: number;
  passMs: number;
  MBps: number;
  /**
   * CPU time of the process (user + system, all threads) during the pass: unlike passMs, barely
   * moved by other work on a shared machine, so it compares builds run at different moments.
   */
  cpuMs: number;
  maxStallMs: number;
  runs: number;
}

/** One forced compaction pass over `mb` MB of keyed records; its time and the longest stall. */
async function compactionRun(dir: string, mb: number): Promise<{ records: number; keys: number; bytes: number; passMs: number; cpuMs: number; maxStallMs: number }> {
  const log = PartitionLog.open(path.join(dir, 'log'), { config: { 'cleanup.policy': 'compact', 'segment.bytes': String(2 ** 31 - 1) } });
  const perBatch = 150;
  const value = Buffer.alloc(RECORD_BYTES, 1);
  let records = 0;
  let bytes = 0;
  // A tenth of the records are superseded: keys repeat after 90% of the records.
  const total = Math.ceil((mb * MB) / (RECORD_BYTES + 30));
  const keys = Math.floor(total * 0.9);
  while (bytes < mb * MB) {
    const batch: RecordInput[] = [];
    for (let i = 0; i < perBatch; i++) batch.push({ key: Buffer.from(`key-${(records + i) % keys}`), value });
    const encoded = encodeRecordBatch({ records: batch, baseTimestamp: Date.now() });
    log.appendAsLeader(encoded, 0);
    records += perBatch;
    bytes += encoded.length;
  }
  log.rollIfNotEmpty();
  await log.flush();
  const pass = await withStallMeter(async () => {
    const cpuStart = process.cpuUsage();
    await compactLog(log, { force: true });
    const cpu = process.cpuUsage(cpuStart);
    return (cpu.user + cpu.system) / 1000;
  });
  await log.close();
  return { records, keys, bytes, passMs: pass.ms, cpuMs: pass.value, maxStallMs: pass.maxStallMs };
}

interface RecoveryFigures {
  totalMB: number;
  /** The synchronous PartitionLog.open: time, and the longest event-loop stall (all of it). */
  syncMs: number;
  syncMaxStallMs: number;
  /** PartitionLog.openAsync (the broker's): time and longest stall. */
  asyncMs: number;
  asyncMaxStallMs: number;
  coldCache: boolean;
  runs: number;
}

/**
 * Runs `f` while a 1 ms ticker records the longest gap between its ticks (the longest the event
 * loop was held): its time, that gap and its value. The ticker runs one tick past `f`, so a stall
 * in its last synchronous step (a compaction's install) counts.
 */
async function withStallMeter<T>(f: () => Promise<T>): Promise<{ ms: number; maxStallMs: number; value: T }> {
  let maxStallMs = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    maxStallMs = Math.max(maxStallMs, now - last);
    last = now;
  }, 1);
  try {
    const t0 = performance.now();
    const value = await f();
    const ms = performance.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, 2));
    return { ms, maxStallMs: Math.max(maxStallMs, performance.now() - last), value };
  } finally {
    clearInterval(ticker);
  }
}

/**
 * Writes one `mb` MB segment of 16 KiB batches and leaves it as a crash would for recovery from
 * its first byte (no clean-shutdown marker, no recovery point); then opens it both ways.
 */
async function recoveryRun(dir: string, template: Buffer, mb: number, dropCaches: boolean): Promise<{ bytes: number; sync: number; syncStall: number; async: number; asyncStall: number }> {
  const logDir = path.join(dir, 'log');
  const config = { 'flush.policy': 'page-cache', 'segment.bytes': String(2 ** 31 - 1) };
  const log = PartitionLog.open(logDir, { config });
  const count = Math.max(1, Math.floor((mb * MB) / template.length));
  for (let i = 0; i < count; i++) log.appendAsLeader(Buffer.from(template), 0);
  await log.close();
  const crash = (): void => {
    fs.rmSync(path.join(logDir, '.kafka_cleanshutdown'), { force: true });
    fs.rmSync(path.join(logDir, 'recovery-point-offset-checkpoint'), { force: true });
    if (dropCaches) execFileSync('sh', ['-c', 'sync && echo 3 > /proc/sys/vm/drop_caches']);
  };
  crash();
  const sync = await withStallMeter(() => Promise.resolve(PartitionLog.open(logDir, { config })));
  await sync.value.close();
  crash();
  const async = await withStallMeter(() => PartitionLog.openAsync(logDir, { config }));
  if (async.value.logEndOffset !== sync.value.logEndOffset) throw new Error(`recovery differs: ${async.value.logEndOffset} vs ${sync.value.logEndOffset}`);
  await async.value.close();
  return { bytes: count * template.length, sync: sync.ms, syncStall: sync.maxStallMs, async: async.ms, asyncStall: async.maxStallMs };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { bytes: template, records: recordsPerBatch } = makeBatch();
  const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

  const measure = async (mode: 'page-cache' | 'fsync', totalMb: number): Promise<PolicyFigures> => {
    const count = Math.max(1, Math.floor((totalMb * MB) / template.length));
    const mbWritten = (count * template.length) / MB;
    const appendMs: number[] = [];
    const pipeMs: number[] = [];
    const rawMs: number[] = [];
    const readMBps: number[] = [];
    for (let r = 0; r < args.runs; r++) {
      const dir = freshDir(args.dir);
      try {
        // Alternate which side goes first: the second writer meets the first one's writeback.
        const raw = (): void => {
          rawMs.push(rawWrite(dir, template, count, mode === 'fsync' ? 1 : 0));
        };
        if (r % 2 === 0) raw();
        const { ms, log } = await logAppend(dir, template, count, mode === 'fsync' ? 'fsync-one' : 'page-cache');
        appendMs.push(ms);
        if (r % 2 === 1) raw();
        const read = readBack(log);
        readMBps.push(read.bytes / MB / (read.ms / 1000));
        await log.close();
        if (mode === 'fsync') {
          const pipeDir = freshDir(args.dir);
          try {
            const p = await logAppend(pipeDir, template, count, 'fsync-pipelined');
            pipeMs.push(p.ms);
            await p.log.close();
          } finally {
            fs.rmSync(pipeDir, { recursive: true, force: true });
          }
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    const appendMBps = mbWritten / (median(appendMs) / 1000);
    const rawWriteMBps = mbWritten / (median(rawMs) / 1000);
    const figures: PolicyFigures = {
      appendMBps: round(appendMBps),
      appendRecordsPerSec: Math.round((count * recordsPerBatch) / (median(appendMs) / 1000)),
      readMBps: round(median(readMBps)),
      rawWriteMBps: round(rawWriteMBps),
      ratio: round(appendMBps / rawWriteMBps, 3),
      batchBytes: template.length,
      recordsPerBatch,
      totalMB: round(mbWritten),
      runs: args.runs,
    };
    if (pipeMs.length > 0) {
      const p = mbWritten / (median(pipeMs) / 1000);
      figures.pipelinedAppendMBps = round(p);
      figures.pipelinedRatio = round(p / rawWriteMBps, 3);
    }
    return figures;
  };

  const pageCache = await measure('page-cache', args.mb);
  const fsyncFigures = await measure('fsync', args.fsyncMb);
  const compactRuns: Awaited<ReturnType<typeof compactionRun>>[] = [];
  for (let r = 0; r < args.runs; r++) {
    const dir = freshDir(args.dir);
    try {
      compactRuns.push(await compactionRun(dir, args.compactMb));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const first = compactRuns[0] as (typeof compactRuns)[number];
  const passMs = median(compactRuns.map((c) => c.passMs));
  const compaction: CompactionFigures = {
    totalMB: round(first.bytes / MB),
    records: first.records,
    keys: first.keys,
    passMs: Math.round(passMs),
    MBps: round(first.bytes / MB / (passMs / 1000)),
    cpuMs: Math.round(median(compactRuns.map((c) => c.cpuMs))),
    maxStallMs: round(median(compactRuns.map((c) => c.maxStallMs))),
    runs: args.runs,
  };
  const recoverRuns: Awaited<ReturnType<typeof recoveryRun>>[] = [];
  for (let r = 0; r < args.runs; r++) {
    const dir = freshDir(args.dir);
    try {
      recoverRuns.push(await recoveryRun(dir, template, args.recoverMb, args.dropCaches));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const recovery: RecoveryFigures = {
    totalMB: round((recoverRuns[0]?.bytes ?? 0) / MB),
    syncMs: Math.round(median(recoverRuns.map((r) => r.sync))),
    syncMaxStallMs: round(median(recoverRuns.map((r) => r.syncStall))),
    asyncMs: Math.round(median(recoverRuns.map((r) => r.async))),
    asyncMaxStallMs: round(median(recoverRuns.map((r) => r.asyncStall))),
    coldCache: args.dropCaches,
    runs: args.runs,
  };
  const rows: [string, PolicyFigures][] = [
    ['page-cache', pageCache],
    ['fsync', fsyncFigures],
  ];
  const lines = [
    `storage bench: ${recordsPerBatch} x ${RECORD_BYTES}-byte records per ${template.length}-byte batch, median of ${args.runs} runs`,
    'policy       MB    appendMB/s  records/s    rawMB/s  ratio  readMB/s  pipelinedMB/s (ratio)',
    ...rows.map(([name, f]) =>
      `${name.padEnd(11)} ${String(f.totalMB).padStart(5)} ${String(f.appendMBps).padStart(11)} ${String(f.appendRecordsPerSec).padStart(10)} ${String(f.rawWriteMBps).padStart(10)} ${String(f.ratio).padStart(6)} ${String(f.readMBps).padStart(9)}  ${f.pipelinedAppendMBps === undefined ? '-' : `${f.pipelinedAppendMBps} (${f.pipelinedRatio})`}`,
    ),
    `compaction: ${compaction.totalMB} MB, ${compaction.records} records, ${compaction.keys} keys: pass ${compaction.passMs} ms (${compaction.MBps} MB/s), CPU ${compaction.cpuMs} ms, longest event-loop stall ${compaction.maxStallMs} ms`,
    `recovery (${recovery.coldCache ? 'cold' : 'hot'} page cache): ${recovery.totalMB} MB segment: open ${recovery.syncMs} ms (longest stall ${recovery.syncMaxStallMs} ms), openAsync ${recovery.asyncMs} ms (longest stall ${recovery.asyncMaxStallMs} ms)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.json) process.stdout.write(`${JSON.stringify({ pageCache, fsync: fsyncFigures, compaction, recovery })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:storage failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
