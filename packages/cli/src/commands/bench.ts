/**
 * `strand bench produce|consume`, in the spirit of kafka-producer-perf-test and
 * kafka-consumer-perf-test: records/s, MB/s, and latency percentiles from an HDR histogram
 * (microsecond precision, 3 significant digits). A live progress line is drawn on stderr when it
 * is a terminal; --json prints one JSON object as the last line of stdout.
 *
 * Produce latency is send() to acknowledgement of each record. Consume latency is the record's
 * create timestamp to its arrival in poll(), meaningful when producer and consumer share a clock.
 */
import type { Command } from 'commander';
import type * as hdr from 'hdr-histogram-js';
import { Admin, Consumer, Producer } from '@strand/client';
import { StrandError } from '@strand/protocol';
import { EXIT_OK, EXIT_PARTIAL, UsageError, action, clientConfig, collect, describeError, parseIntArg, parseKeyValues, printJson, withCommon } from './common';
import type { CommonOptions } from './common';

interface BenchCommon extends CommonOptions {
  topic: string;
  records: string;
  property: string[];
}

interface ProduceBenchOptions extends BenchCommon {
  maxOutstanding: string;
  recordSize: string;
  acks: string;
  throughput: string;
  warmupRecords: string;
  partitions: string;
  replicationFactor: string;
  create: boolean;
}

export interface BenchResult {
  kind: 'produce' | 'consume';
  records: number;
  failed: number;
  bytes: number;
  seconds: number;
  /** CPU time (user + system) this client process spent during the run, in seconds. */
  clientCpuSeconds?: number;
  recordsPerSec: number;
  mbPerSec: number;
  latencyMs: LatencySummary;
  /**
   * With --warmup-records: the records after the warm-up, timed from the send (produce) or the
   * poll (consume) of the first of them (Kafka's ProducerPerformance --warmup-records, KIP-1052).
   * The fields above cover the whole run.
   */
  steadyState?: { warmupRecords: number; records: number; seconds: number; recordsPerSec: number; mbPerSec: number; latencyMs: LatencySummary };
}

interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/**
 * Default bound on records awaiting acknowledgement (--max-outstanding). Enough keeps batches
 * big (against strand dev, RF=3: 20k outstanding gave ~50 KB requests and 33k records/s, 100k
 * gave ~260 KB requests and 55k records/s); far more only adds promise garbage (a third of the
 * client's CPU at 200k) and queueing latency.
 */
const DEFAULT_MAX_OUTSTANDING = 100_000;

function histogram(): hdr.Histogram {
  // Loaded on first use: its import builds an Intl.NumberFormat, a cost every strand command paid.
  const { build } = require('hdr-histogram-js') as typeof hdr;
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

function latencySummary(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  if (h.totalCount === 0) return { p50: 0, p95: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return { p50: ms(h.getValueAtPercentile(50)), p95: ms(h.getValueAtPercentile(95)), p99: ms(h.getValueAtPercentile(99)), p999: ms(h.getValueAtPercentile(99.9)), max: ms(h.maxValue), mean: ms(h.mean) };
}

function rates(records: number, bytes: number, seconds: number): { seconds: number; recordsPerSec: number; mbPerSec: number } {
  return {
    seconds: Math.round(seconds * 1000) / 1000,
    recordsPerSec: Math.round(records / Math.max(seconds, 1e-9)),
    mbPerSec: Math.round((bytes / 1048576 / Math.max(seconds, 1e-9)) * 100) / 100,
  };
}

function steadySummary(warmupRecords: number, records: number, bytes: number, seconds: number, h: hdr.Histogram): NonNullable<BenchResult['steadyState']> {
  return { warmupRecords, records, ...rates(records, bytes, seconds), latencyMs: latencySummary(h) };
}

/** Parses --warmup-records, which must leave at least one record to measure. */
function parseWarmup(value: string, total: number): number {
  const warmup = parseIntArg(value, '--warmup-records', 0);
  if (warmup >= total) throw new UsageError(`--warmup-records must be less than --records (${total}), got ${warmup}`);
  return warmup;
}

function summarize(kind: 'produce' | 'consume', h: hdr.Histogram, records: number, failed: number, bytes: number, seconds: number, cpuStart?: NodeJS.CpuUsage): BenchResult {
  const cpu = cpuStart === undefined ? undefined : process.cpuUsage(cpuStart);
  return {
    kind,
    records,
    failed,
    bytes,
    ...rates(records, bytes, seconds),
    ...(cpu === undefined ? {} : { clientCpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000 }),
    latencyMs: latencySummary(h),
  };
}

function report(r: BenchResult, json: boolean | undefined): void {
  if (json) {
    printJson(r);
    return;
  }
  process.stdout.write(
    `${r.records} records ${r.kind === 'produce' ? 'sent' : 'consumed'} in ${r.seconds} s: ${r.recordsPerSec} records/s (${r.mbPerSec} MB/s)${r.failed > 0 ? `, ${r.failed} failed` : ''}${r.clientCpuSeconds !== undefined ? `, client CPU ${r.clientCpuSeconds} s` : ''}\n` +
      latencyLine(r.latencyMs),
  );
  const s = r.steadyState;
  if (s !== undefined) {
    process.stdout.write(`steady state, after ${s.warmupRecords} warm-up records: ${s.records} records in ${s.seconds} s: ${s.recordsPerSec} records/s (${s.mbPerSec} MB/s)\n` + latencyLine(s.latencyMs));
  }
}

function latencyLine(l: LatencySummary): string {
  return `latency ms: p50 ${l.p50}, p95 ${l.p95}, p99 ${l.p99}, p99.9 ${l.p999}, max ${l.max}, mean ${l.mean}\n`;
}

/** A progress line redrawn about once a second, only on a terminal. */
function progress(label: () => string): () => void {
  if (!process.stderr.isTTY) return () => undefined;
  const timer = setInterval(() => process.stderr.write(`\r\x1b[K${label()}`), 1000);
  return () => {
    clearInterval(timer);
    process.stderr.write('\r\x1b[K');
  };
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmark producing and consuming (kafka-*-perf-test style)');

  withCommon(bench.command('produce').description('produce records as fast as allowed and report throughput and latency'))
    .requiredOption('-t, --topic <topic>', 'topic to write')
    .option('-n, --records <n>', 'records to send', '100000')
    .option('-s, --record-size <bytes>', 'value size of each record', '100')
    .option('-a, --acks <acks>', '0, 1 or all', 'all')
    .option('--throughput <records/s>', 'limit the send rate (-1: unlimited)', '-1')
    .option('--warmup-records <n>', 'first records to leave out of a second, steady-state summary (Kafka\'s --warmup-records)', '0')
    .option('--max-outstanding <n>', 'most records awaiting acknowledgement (also bounded by buffer.memory)', String(DEFAULT_MAX_OUTSTANDING))
    .option('--create', 'create the topic first if it does not exist', false)
    .option('--partitions <n>', 'partitions when creating', '6')
    .option('--replication-factor <n>', 'replication factor when creating', '3')
    .option('-X, --property <key=value>', 'any producer config key (repeatable), e.g. linger.ms=5', collect, [] as string[])
    .action(
      action('bench produce', async (opts: ProduceBenchOptions) => {
        const total = parseIntArg(opts.records, '--records', 1);
        const size = parseIntArg(opts.recordSize, '--record-size', 0);
        const rate = Number(opts.throughput);
        const warmup = parseWarmup(opts.warmupRecords, total);
        if (!Number.isFinite(rate) || (rate <= 0 && rate !== -1)) throw new UsageError(`--throughput must be a positive rate or -1, got '${opts.throughput}'`);
        if (!['0', '1', 'all', '-1'].includes(opts.acks)) throw new UsageError(`--acks must be 0, 1 or all, got '${opts.acks}'`);
        if (opts.create) {
          const admin = new Admin(clientConfig(opts, { retries: 3 }));
          try {
            await admin.createTopic({ name: opts.topic, numPartitions: parseIntArg(opts.partitions, '--partitions', 1), replicationFactor: parseIntArg(opts.replicationFactor, '--replication-factor', 1) });
          } catch (e: unknown) {
            if (!(e instanceof StrandError && e.errorName === 'TOPIC_ALREADY_EXISTS')) throw e;
          } finally {
            await admin.close();
          }
        }
        const producer = new Producer(clientConfig(opts, { acks: opts.acks, ...parseKeyValues(opts.property, '--property') }));
        await producer.connect();
        const value = Buffer.alloc(size, 0x78);
        const h = histogram();
        // Steady state: the records sent after the first `warmup` (a slice never straddles).
        const steady = warmup > 0 ? histogram() : null;
        let steadyStarted = 0;
        let steadyAcked = 0;
        // Bound on records awaiting acknowledgement: keeps the promise count (memory) flat.
        const window = Math.min(parseIntArg(opts.maxOutstanding, '--max-outstanding', 1), Math.max(1000, Math.floor(producer.config['buffer.memory'] / Math.max(size + 70, 1))));
        let sent = 0;
        let acked = 0;
        let failed = 0;
        let firstError: string | undefined;
        let inFlight = 0;
        let resumeWaiter: (() => void) | undefined;
        const started = performance.now();
        const cpuStart = process.cpuUsage();
        const stopProgress = progress(() => {
          const s = (performance.now() - started) / 1000;
          return `${acked}/${total} acked, ${Math.round(acked / s)} records/s, ${(((acked * size) / 1048576) / s).toFixed(1)} MB/s, p99 ${(h.getValueAtPercentile(99) / 1000).toFixed(1)} ms`;
        });
        const settle = (): void => {
          inFlight--;
          if (resumeWaiter !== undefined && inFlight < window / 2) {
            const r = resumeWaiter;
            resumeWaiter = undefined;
            r();
          }
        };
        // Latencies are recorded run-length encoded: the records of one slice share a send time
        // and the records of one batch are acknowledged in one synchronous burst (one clock read
        // per burst), so consecutive callbacks mostly carry the same value and cost one add.
        let runValue = 0;
        let runCount = 0;
        let runSteady = false;
        const flushRun = (): void => {
          if (runCount > 0) {
            h.recordValueWithCount(runValue, runCount);
            if (runSteady) steady?.recordValueWithCount(runValue, runCount);
          }
          runCount = 0;
        };
        let burstNow = -1;
        const clearBurst = (): void => {
          burstNow = -1;
        };
        const ackedAt = (): number => {
          if (burstNow < 0) {
            burstNow = performance.now();
            queueMicrotask(clearBurst);
          }
          return burstNow;
        };
        // One callback per slice (its send time), no promise and no closure per record: the
        // callback form of send(). A slice is sent in one synchronous loop, so its records' send
        // times differ by at most that loop's duration, which the latency then overstates.
        const callbackFor =
          (t0: number, isSteady: boolean) =>
          (error: Error | null): void => {
            if (error === null) {
              acked++;
              if (isSteady) steadyAcked++;
              const v = Math.max(1, Math.round((ackedAt() - t0) * 1000));
              if (v !== runValue || isSteady !== runSteady) {
                flushRun();
                runValue = v;
                runSteady = isSteady;
              }
              runCount++;
            } else {
              failed++;
              firstError ??= describeError(error).message;
            }
            settle();
          };
        const record = { topic: opts.topic, value };
        while (sent < total) {
          if (inFlight >= window) await new Promise<void>((resolve) => (resumeWaiter = resolve));
          if (rate > 0) {
            const due = started + (sent / rate) * 1000;
            const wait = due - performance.now();
            if (wait > 1) await new Promise<void>((resolve) => setTimeout(resolve, wait));
          }
          // Send in slices, yielding to the event loop so responses are handled meanwhile.
          const isSteady = steady !== null && sent >= warmup;
          const slice = Math.min(isSteady || steady === null ? total - sent : warmup - sent, window - inFlight, rate > 0 ? Math.max(1, Math.ceil(rate / 100)) : 1000);
          const sliceStart = performance.now();
          if (isSteady && sent === warmup) steadyStarted = sliceStart;
          const callback = callbackFor(sliceStart, isSteady);
          inFlight += slice;
          sent += slice;
          for (let i = 0; i < slice; i++) producer.send(record, callback);
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        await producer.flush();
        flushRun();
        const seconds = (performance.now() - started) / 1000;
        stopProgress();
        await producer.close({ timeoutMs: 1000 });
        if (firstError !== undefined) process.stderr.write(`strand bench produce: ${failed} records failed; first error: ${firstError}\n`);
        const result = summarize('produce', h, acked, failed, acked * size, seconds, cpuStart);
        if (steady !== null) {
          result.steadyState = steadySummary(warmup, steadyAcked, steadyAcked * size, (started + seconds * 1000 - steadyStarted) / 1000, steady);
        }
        report(result, opts.json);
        return failed > 0 ? EXIT_PARTIAL : EXIT_OK;
      }),
    );

  withCommon(bench.command('consume').description('consume records from the beginning and report throughput and latency'))
    .requiredOption('-t, --topic <topic>', 'topic to read')
    .option('-n, --records <n>', 'records to read before stopping', '100000')
    .option('-g, --group <group>', 'read as a member of this group (default: assign all partitions)')
    .option('--warmup-records <n>', 'first records to leave out of a second, steady-state summary', '0')
    .option('--idle-timeout-ms <ms>', 'stop when no record arrived for this long', '10000')
    .option('-X, --property <key=value>', 'any consumer config key (repeatable)', collect, [] as string[])
    .action(
      action('bench consume', async (opts: BenchCommon & { group?: string; idleTimeoutMs: string; warmupRecords: string }) => {
        const total = parseIntArg(opts.records, '--records', 1);
        const warmup = parseWarmup(opts.warmupRecords, total);
        // Steady state: records after the first `warmup`, timed from the poll that returned the first.
        const steady = warmup > 0 ? histogram() : null;
        let steadyStarted = 0;
        let steadyCount = 0;
        let steadyBytes = 0;
        const idle = parseIntArg(opts.idleTimeoutMs, '--idle-timeout-ms', 1);
        const consumer = new Consumer(clientConfig(opts, { 'auto.offset.reset': 'earliest', 'max.poll.records': 10_000, 'enable.auto.commit': opts.group !== undefined, ...(opts.group !== undefined ? { 'group.id': opts.group } : {}), ...parseKeyValues(opts.property, '--property') }));
        const h = histogram();
        let count = 0;
        let bytes = 0;
        try {
          if (opts.group !== undefined) consumer.subscribe([opts.topic]);
          else {
            const admin = new Admin(clientConfig(opts, { retries: 3 }));
            try {
              const n = (await admin.describeTopics([opts.topic]))[0]?.partitions.length ?? 0;
              consumer.assign(Array.from({ length: n }, (_, partition) => ({ topic: opts.topic, partition })));
            } finally {
              await admin.close();
            }
          }
          const started = performance.now();
          let last = started;
          const stopProgress = progress(() => {
            const s = (performance.now() - started) / 1000;
            return `${count}/${total} consumed, ${Math.round(count / s)} records/s, ${(bytes / 1048576 / s).toFixed(1)} MB/s`;
          });
          let end = started;
          const cpuStart = process.cpuUsage();
          while (count < total) {
            const records = await consumer.poll(500);
            const now = performance.now();
            const wall = Date.now();
            // Records of one poll that share a timestamp (ms) share a latency: one histogram
            // update per run instead of per record keeps the benchmark's own cost out of the way.
            let runTimestamp = 0;
            let run = 0;
            let runSteady = false;
            const flushRun = (): void => {
              if (run === 0) return;
              const v = Math.max(1, (wall - runTimestamp) * 1000);
              h.recordValueWithCount(v, run);
              if (runSteady) steady?.recordValueWithCount(v, run);
            };
            for (const r of records) {
              count++;
              const size = (r.value?.length ?? 0) + (r.key?.length ?? 0);
              bytes += size;
              const isSteady = steady !== null && count > warmup;
              if (isSteady) {
                if (steadyCount++ === 0) steadyStarted = now;
                steadyBytes += size;
              }
              if (run > 0 && r.timestamp === runTimestamp && isSteady === runSteady) run++;
              else {
                flushRun();
                runTimestamp = r.timestamp;
                runSteady = isSteady;
                run = 1;
              }
            }
            flushRun();
            if (records.length > 0) {
              last = now;
              end = now;
            } else if (now - last >= idle) break;
          }
          stopProgress();
          const result = summarize('consume', h, count, 0, bytes, (end - started) / 1000, cpuStart);
          if (steady !== null && steadyCount > 0) result.steadyState = steadySummary(warmup, steadyCount, steadyBytes, (end - steadyStarted) / 1000, steady);
          report(result, opts.json);
        } finally {
          await consumer.close();
        }
        return count < total ? EXIT_PARTIAL : EXIT_OK;
      }),
    );
}
