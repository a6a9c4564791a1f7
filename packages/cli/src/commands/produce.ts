/**
 * `strand produce TOPIC`: one record per stdin line (kafka-console-producer / kcat -P).
 *
 * With --key-separator, the text before the first separator is the key (none: a null key).
 * --property takes kafka-console-producer's line reader keys (parse.key, key.separator,
 * parse.headers, null.marker...: console-format.ts); a line that lacks a delimiter they need is
 * reported and counts as not acknowledged (Kafka's tool stops there). Client configs go in
 * -X, --producer-property. Reading pauses while
 * too many records are unacknowledged (bounded memory for any input size). Exits 0 when every
 * record was acknowledged, 4 when some were not (each failure is reported on stderr, up to a
 * limit), 3 when none was and at least one failed because the cluster was unreachable.
 */
import * as readline from 'node:readline';
import type { Command } from 'commander';
import { Producer } from '@strand/client';
import type { ProducerHeaders } from '@strand/client';
import { EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, UsageError, action, clientConfig, collect, describeError, parseIntArg, parseKeyValues, printJson, withCommon } from './common';
import type { CommonOptions } from './common';
import { LINE_READER_DEFAULTS, lineReader, splitConsoleProperties } from './console-format';

/** Unacknowledged records above which stdin is paused. */
const MAX_OUTSTANDING = 10_000;
/** Failures printed individually before only counting. */
const MAX_REPORTED_FAILURES = 10;

interface ProduceOptions extends CommonOptions {
  keySeparator?: string;
  acks: string;
  header: string[];
  partition?: string;
  compression: string;
  lingerMs: string;
  property: string[];
  producerProperty: string[];
}

export function registerProduce(program: Command): void {
  withCommon(program.command('produce <topic>').description('produce one record per stdin line; exits non-zero if any record was not acknowledged'))
    .option('-K, --key-separator <sep>', 'split each line into key and value at the first <sep>')
    .option('-a, --acks <acks>', 'acknowledgements: 0, 1 or all', 'all')
    .option('-H, --header <key=value>', 'header added to every record (repeatable)', collect, [] as string[])
    .option('-p, --partition <n>', 'write every record to this partition')
    .option('--compression <type>', 'none or gzip', 'none')
    .option('--linger-ms <ms>', 'producer linger.ms', '5')
    .option('--property <key=value>', "kafka-console-producer's line reader keys (repeatable): parse.key, parse.headers (true/false), key.separator, headers.delimiter, headers.separator, headers.key.separator, null.marker; another key is a producer config", collect, [] as string[])
    .option('-X, --producer-property <key=value>', 'any producer config key (repeatable), e.g. batch.size=65536', collect, [] as string[])
    .action(
      action('produce', async (topic: string, opts: ProduceOptions) => {
        if (!['0', '1', 'all', '-1'].includes(opts.acks)) throw new UsageError(`--acks must be 0, 1 or all, got '${opts.acks}'`);
        if (opts.keySeparator === '') throw new UsageError('--key-separator must not be empty');
        const props = splitConsoleProperties(opts.property, LINE_READER_DEFAULTS);
        if (opts.keySeparator !== undefined && props.given.length > 0) throw new UsageError(`give --key-separator or --property ${props.given[0]} (Kafka's line reader: --property parse.key=true --property key.separator=SEP), not both`);
        // Kafka's reader, unless only --key-separator is given (a line without it: a null key).
        const read = props.given.length > 0 ? lineReader(props.tool) : undefined;
        const headerValues = parseKeyValues(opts.header, '--header');
        const headers: ProducerHeaders = headerValues;
        const partition = opts.partition === undefined ? undefined : parseIntArg(opts.partition, '--partition', 0);
        const producer = new Producer(clientConfig(opts, { acks: opts.acks, 'compression.type': opts.compression, 'linger.ms': parseIntArg(opts.lingerMs, '--linger-ms', 0), 'max.block.ms': parseIntArg(opts.timeoutMs, '--timeout-ms', 1), 'delivery.timeout.ms': Math.max(30_000, parseIntArg(opts.timeoutMs, '--timeout-ms', 1) * 3), ...props.config, ...parseKeyValues(opts.producerProperty, '--producer-property') }));
        let sent = 0;
        let acked = 0;
        let failed = 0;
        let unreachable = false;
        let outstanding = 0;
        let allSettled: (() => void) | undefined;
        const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
        const done = new Promise<void>((resolve) => rl.once('close', resolve));
        rl.on('line', (line: string) => {
          let key: string | null = null;
          let value: string | null = line;
          let lineHeaders: ProducerHeaders = headers;
          if (read !== undefined) {
            const parsed = read(line);
            if ('error' in parsed) {
              const lineNo = ++sent;
              failed++;
              if (failed <= MAX_REPORTED_FAILURES) process.stderr.write(`strand produce: line ${lineNo} not sent: ${parsed.error}\n`);
              return;
            }
            key = parsed.key;
            value = parsed.value;
            // --header's go first, then the line's own.
            if (parsed.headers.length > 0) lineHeaders = [...Object.entries(headerValues).map(([k, v]) => ({ key: k, value: v })), ...parsed.headers];
          } else if (opts.keySeparator !== undefined) {
            const i = line.indexOf(opts.keySeparator);
            if (i >= 0) {
              key = line.slice(0, i);
              value = line.slice(i + opts.keySeparator.length);
            }
          }
          const lineNo = ++sent;
          outstanding++;
          if (outstanding >= MAX_OUTSTANDING) rl.pause();
          producer.send({ topic, key, value, headers: lineHeaders, ...(partition !== undefined ? { partition } : {}) }).then(
            () => {
              acked++;
            },
            (e: unknown) => {
              failed++;
              const d = describeError(e);
              if (d.code === EXIT_UNREACHABLE) unreachable = true;
              if (failed <= MAX_REPORTED_FAILURES) process.stderr.write(`strand produce: line ${lineNo} not acknowledged: ${d.message.split('\n')[0]}\n`);
            },
          ).finally(() => {
            if (--outstanding < MAX_OUTSTANDING / 2) rl.resume();
            if (outstanding === 0) allSettled?.();
          });
        });
        await done;
        await producer.flush();
        // Every send() promise has settled before the exit code is decided.
        if (outstanding > 0) await new Promise<void>((resolve) => (allSettled = resolve));
        await producer.close({ timeoutMs: 1000 });
        if (failed > MAX_REPORTED_FAILURES) process.stderr.write(`strand produce: ${failed - MAX_REPORTED_FAILURES} more records not acknowledged\n`);
        if (opts.json) printJson({ topic, sent, acknowledged: acked, failed });
        else if (failed > 0 || process.stderr.isTTY) process.stderr.write(`${acked} of ${sent} records acknowledged\n`);
        if (failed === 0) return EXIT_OK;
        return unreachable && acked === 0 ? EXIT_UNREACHABLE : EXIT_PARTIAL;
      }),
    );
}
