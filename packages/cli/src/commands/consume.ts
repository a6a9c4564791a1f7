/**
 * `strand consume TOPIC`: prints records, values one per line by default, or JSON lines with
 * --format json (kafka-console-consumer / kcat -C). Without --group it reads every partition (or
 * --partition) directly; with --group it joins the group and commits as it goes. It stops after
 * --max-messages, once no record arrived for --timeout-ms (kafka-console-consumer's meaning; also
 * spelt --idle-timeout-ms, its older Strand name), or on SIGINT/SIGTERM (exit 0 after a clean
 * close, so offsets of a group are committed); on each of these exits, and on an error while
 * consuming, it prints kafka-console-consumer's "Processed a total of N messages" on stderr (N:
 * the records it printed), so stdout stays the records. Its request timeout, --timeout-ms on the other
 * commands, is --request-timeout-ms here. As kafka-console-consumer: --offset takes
 * earliest, latest or a number; --property takes its formatter's keys (print.key=true, ...:
 * console-format.ts); client configs go in -X, --consumer-property.
 */
import type { Command } from 'commander';
import { Admin, Consumer } from '@strand/client';
import type { ConsumerRecord } from '@strand/client';
import { UsageError, action, clientConfig, collect, parseIntArg, parseKeyValues, withCommon } from './common';
import type { CommonOptions } from './common';
import { FORMATTER_DEFAULTS, messageFormatter, splitConsoleProperties } from './console-format';

interface ConsumeOptions extends Omit<CommonOptions, 'timeoutMs'> {
  requestTimeoutMs: string;
  timeoutMs?: string;
  fromBeginning: boolean;
  offset?: string;
  partition?: string;
  fromTimestamp?: string;
  group?: string;
  maxMessages?: string;
  format: string;
  idleTimeoutMs?: string;
  property: string[];
  consumerProperty: string[];
}

function text(b: Uint8Array | null): string | null {
  return b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

/** --format json: one JSON object per line. */
function jsonLine(r: ConsumerRecord): string {
  return `${JSON.stringify({ topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: text(r.key), value: text(r.value), headers: Object.fromEntries(r.headers.map((h) => [h.key, text(h.value)])) })}\n`;
}

/** --format value without formatter keys: the value, a null one as an empty line (as before those keys existed). */
function valueLine(r: ConsumerRecord): string {
  return `${text(r.value) ?? ''}\n`;
}

export function registerConsume(program: Command): void {
  withCommon(program.command('consume <topic>').description('print records of a topic (values one per line, or JSON lines)'), false, '--request-timeout-ms')
    .option('--from-beginning', 'start at the earliest offset (with --group: when nothing is committed)', false)
    .option('--offset <n>', "start at offset n of --partition, or at its earliest or latest offset (Kafka's --offset)")
    .option('--partition <p>', 'read only this partition')
    .option('--from-timestamp <ms>', 'start at the first record at or after this time (ms since the epoch)')
    .option('-g, --group <group>', 'consume as a member of this consumer group (commits offsets)')
    .option('-n, --max-messages <n>', 'exit after n records')
    .option('-f, --format <format>', 'value or json', 'value')
    .option('--timeout-ms <ms>', "exit when no record arrived for this long (kafka-console-consumer's --timeout-ms; the request timeout is --request-timeout-ms)")
    .option('--idle-timeout-ms <ms>', 'the same as --timeout-ms (its older name)')
    .option('--property <key=value>', "kafka-console-consumer's formatter keys (repeatable): print.key, print.value, print.timestamp, print.partition, print.offset, print.headers (true/false), key.separator, line.separator, headers.separator, null.literal; another key is a consumer config", collect, [] as string[])
    .option('-X, --consumer-property <key=value>', 'any consumer config key (repeatable)', collect, [] as string[])
    .action(
      action('consume', async (topic: string, opts: ConsumeOptions) => {
        if (opts.format !== 'value' && opts.format !== 'json') throw new UsageError(`--format must be value or json, got '${opts.format}'`);
        const props = splitConsoleProperties(opts.property, FORMATTER_DEFAULTS);
        if (props.given.length > 0 && opts.format === 'json') throw new UsageError(`--property ${props.given[0]} is a formatter key: it does not go with --format json`);
        const format = opts.format === 'json' ? jsonLine : props.given.length > 0 ? messageFormatter(props.tool) : valueLine;
        if (opts.offset !== undefined && opts.partition === undefined) throw new UsageError('--offset needs --partition');
        const starts = [opts.fromBeginning, opts.offset !== undefined, opts.fromTimestamp !== undefined].filter(Boolean).length;
        if (starts > 1) throw new UsageError('give at most one of --from-beginning, --offset, --from-timestamp');
        if (opts.group !== undefined && (opts.offset !== undefined || opts.partition !== undefined)) throw new UsageError('--offset and --partition cannot be used with --group (reset the group with `strand groups reset-offsets`)');
        const max = opts.maxMessages === undefined ? Infinity : parseIntArg(opts.maxMessages, '--max-messages', 1);
        if (opts.timeoutMs !== undefined && opts.idleTimeoutMs !== undefined) throw new UsageError('--timeout-ms and --idle-timeout-ms are the same option: give one');
        const idle = opts.timeoutMs !== undefined ? parseIntArg(opts.timeoutMs, '--timeout-ms', 1) : opts.idleTimeoutMs !== undefined ? parseIntArg(opts.idleTimeoutMs, '--idle-timeout-ms', 1) : Infinity;
        parseIntArg(opts.requestTimeoutMs, '--request-timeout-ms', 1);
        const common: CommonOptions = { bootstrap: opts.bootstrap, timeoutMs: opts.requestTimeoutMs };
        const offset = opts.offset === undefined || opts.offset === 'earliest' || opts.offset === 'latest' ? opts.offset : parseIntArg(opts.offset, '--offset', 0);
        const partition = opts.partition === undefined ? undefined : parseIntArg(opts.partition, '--partition', 0);
        const fromTs = opts.fromTimestamp === undefined ? undefined : parseIntArg(opts.fromTimestamp, '--from-timestamp', 0);
        const consumer = new Consumer(
          clientConfig(common, {
            'auto.offset.reset': opts.fromBeginning ? 'earliest' : 'latest',
            'fetch.max.wait.ms': 500,
            ...(opts.group !== undefined ? { 'group.id': opts.group } : {}),
            ...props.config,
            ...parseKeyValues(opts.consumerProperty, '--consumer-property'),
          }),
        );
        let stopping = false;
        let wakeWriter: (() => void) | undefined;
        const stop = (): void => {
          stopping = true;
          wakeWriter?.();
        };
        // `strand consume ... | head`: the reader went away. Stop quietly (and commit what was
        // written, with --group), as kafka-console-consumer does.
        const onStdoutError = (e: NodeJS.ErrnoException): void => {
          if (e.code === 'EPIPE') stop();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        process.stdout.on('error', onStdoutError);
        // Records formatted for stdout; `consuming` once the loop is reached, after the set-up
        // (topic lookup, assignment, seeks), whose failures report no count, as Kafka's.
        let seen = 0;
        let consuming = false;
        try {
          if (opts.group !== undefined) {
            consumer.subscribe([topic]);
            if (fromTs !== undefined) throw new UsageError('--from-timestamp cannot be used with --group (reset the group with `strand groups reset-offsets --to-datetime`)');
          } else {
            const admin = new Admin(clientConfig(common, { retries: 3 }));
            let count: number;
            try {
              count = (await admin.describeTopics([topic]))[0]?.partitions.length ?? 0;
            } finally {
              await admin.close();
            }
            if (partition !== undefined && partition >= count) throw new UsageError(`${topic} has ${count} partitions; there is no partition ${partition}`);
            const tps = partition !== undefined ? [{ topic, partition }] : Array.from({ length: count }, (_, p) => ({ topic, partition: p }));
            consumer.assign(tps);
            const tp = { topic, partition: partition as number };
            if (offset === 'earliest') consumer.seekToBeginning([tp]);
            else if (offset === 'latest') consumer.seekToEnd([tp]);
            else if (offset !== undefined) consumer.seek(tp, offset);
            else if (fromTs !== undefined) consumer.seekToTimestamp(tps, fromTs);
          }
          let lastRecordMs = performance.now();
          const out: string[] = [];
          consuming = true;
          while (!stopping && seen < max) {
            const records = await consumer.poll(Math.min(500, idle));
            const unprinted = new Map<string, ConsumerRecord>();
            for (const r of records) {
              if (seen >= max) {
                // Rewind to the first record not printed, so the group's commit covers only
                // what was printed.
                const k = `${r.topic}\u0000${r.partition}`;
                if (!unprinted.has(k)) unprinted.set(k, r);
                continue;
              }
              out.push(format(r));
              seen++;
            }
            for (const r of unprinted.values()) consumer.seek({ topic: r.topic, partition: r.partition }, r.offset);
            if (out.length > 0) {
              // Respect the pipe: wait for stdout to drain before asking for more.
              const ok = process.stdout.write(out.join(''));
              out.length = 0;
              if (!ok && !stopping) {
                await new Promise<void>((resolve) => {
                  wakeWriter = resolve;
                  process.stdout.once('drain', resolve);
                });
                wakeWriter = undefined;
              }
              lastRecordMs = performance.now();
            } else if (performance.now() - lastRecordMs >= idle) break;
          }
        } finally {
          try {
            await consumer.close();
          } finally {
            process.removeListener('SIGINT', stop);
            process.removeListener('SIGTERM', stop);
            process.stdout.removeListener('error', onStdoutError);
            // kafka-console-consumer's last line, on stderr so stdout stays the records: after the
            // close (with --group: the commit), on every way out of the loop (--max-messages, the
            // idle timeout, SIGINT/SIGTERM, a closed stdout, an error while consuming).
            if (consuming) process.stderr.write(`Processed a total of ${seen} messages\n`);
          }
        }
      }),
    );
}
