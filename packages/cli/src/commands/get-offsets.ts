/**
 * `strand get-offsets`, Kafka's kafka-get-offsets (GetOffsetShell):
 *
 *   --topic T [--partitions 0,1,...] [--time -1|latest|-2|earliest|-3|max-timestamp|<epoch ms>]
 *
 * prints `topic:partition:offset` per partition, sorted by partition: the high watermark
 * (latest, the default), the log start (earliest), the offset of the record with the largest
 * timestamp (max-timestamp, KIP-734), or the first offset whose record timestamp is at or after
 * the given time. As Kafka's current tool, a partition with no such offset (no record at or
 * after the time, or an empty partition for max-timestamp) is left out of the text output
 * (--json lists it with offset null). --partitions naming a partition the topic lacks prints the
 * others and reports it on stderr (exit 1); so does a partition without a leader, or whose leader
 * answers with an error, after retries (Kafka's tool skips it with a message on stderr; --json
 * gives it offset null and its error's name); an unknown topic fails the command (exit 1). Kafka's tiered-storage specs (-4, -5, -6) are usage errors: Strand
 * keeps every segment locally.
 */
import type { Command } from 'commander';
import type { OffsetSpec } from '@strand/client';
import { EXIT_FAILED, EXIT_OK, UsageError, action, printJson, withCommon } from './common';
import type { CommonOptions } from './common';
import { withAdmin } from './topics';

const NAMED_SPECS: Readonly<Record<string, OffsetSpec>> = { latest: 'latest', '-1': 'latest', earliest: 'earliest', '-2': 'earliest', 'max-timestamp': 'max-timestamp', '-3': 'max-timestamp' };

/** Parses --time: -1|latest, -2|earliest, -3|max-timestamp, or a timestamp (ms since the epoch, >= 0). */
export function parseOffsetSpec(value: string): OffsetSpec {
  const v = value.trim();
  const named = NAMED_SPECS[v.toLowerCase()];
  if (named !== undefined) return named;
  if (/^(-[4-6]|earliest-local|latest-tiered|earliest-pending-upload)$/i.test(v)) throw new UsageError(`--time ${value}: Strand has no tiered storage; use -1|latest, -2|earliest, -3|max-timestamp or a timestamp in ms`);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`--time: malformed time '${value}': use -1|latest, -2|earliest, -3|max-timestamp or a timestamp in ms since the epoch`);
  return { timestamp: Number(v) };
}

/** Parses --partitions 0,1,2: distinct non-negative integers, ascending. */
export function parsePartitionList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((s) => !/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)))) throw new UsageError(`--partitions expects comma-separated partition ids like 0,1,2, got '${value}'`);
  return [...new Set(parts.map(Number))].sort((a, b) => a - b);
}

export function registerGetOffsets(program: Command): void {
  withCommon(program.command('get-offsets').description("offsets of a topic's partitions: latest, earliest, max-timestamp or by time (kafka-get-offsets)"))
    .option('--topic <name>', 'the topic (required)')
    .option('--partitions <ids>', 'comma-separated partition ids, e.g. 0,1 (default: all)')
    .option('--time <time>', '-1|latest (high watermark), -2|earliest (log start), -3|max-timestamp (the record with the largest timestamp), or a time in ms since the epoch (first offset at or after it)', '-1')
    .action(
      action('get-offsets', async (opts: CommonOptions & { topic?: string; partitions?: string; time: string }) => {
        if (opts.topic === undefined || opts.topic === '') throw new UsageError('--topic <name> is required');
        const topic = opts.topic;
        const spec = parseOffsetSpec(opts.time);
        const wanted = opts.partitions === undefined ? undefined : parsePartitionList(opts.partitions);
        const offsets = await withAdmin(opts, (admin) => admin.listPartitionOffsets(topic, spec));
        const shown = wanted === undefined ? offsets : offsets.filter((o) => wanted.includes(o.partition));
        const missing = wanted === undefined ? [] : wanted.filter((p) => !offsets.some((o) => o.partition === p));
        const failed = shown.filter((o) => o.error !== undefined);
        if (opts.json) printJson(shown.map((o) => ({ topic, partition: o.partition, offset: o.offset < 0 ? null : o.offset, timestamp: o.offset < 0 || o.timestamp < 0 ? null : o.timestamp, ...(o.error === undefined ? {} : { error: o.error.errorName }) })));
        else for (const o of shown) if (o.offset >= 0) process.stdout.write(`${topic}:${o.partition}:${o.offset}\n`);
        for (const o of failed) process.stderr.write(`strand get-offsets: skipped ${topic}-${o.partition}: ${o.error?.errorName ?? ''}: ${o.error?.message ?? ''}\n`);
        for (const p of missing) process.stderr.write(`strand get-offsets: ${topic}-${p}: UNKNOWN_TOPIC_OR_PARTITION: the topic has ${offsets.length} partitions\n`);
        return missing.length > 0 || failed.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );
}
