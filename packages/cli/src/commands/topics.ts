/** `strand topics create|list|describe|delete|alter|delete-records`. */
import type { Command } from 'commander';
import { Admin } from '@strand/client';
import { StrandError } from '@strand/protocol';
import { EXIT_FAILED, EXIT_OK, UsageError, action, clientConfig, collect, parseIntArg, parseKeyValues, printJson, printTable, usageExit, withCommon } from './common';
import type { CommonOptions } from './common';

async function withAdmin<T>(opts: CommonOptions, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientConfig(opts, { retries: 3 }));
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

export function registerTopics(program: Command): void {
  const topics = usageExit(program.command('topics').description('create, list, describe, alter and delete topics, and delete records'));

  withCommon(topics.command('create <name>').description('create a topic'), false)
    .option('-p, --partitions <n>', 'number of partitions (default: the cluster\'s num.partitions)')
    .option('-r, --replication-factor <n>', 'replicas per partition (default: the cluster\'s default.replication.factor)')
    .option('-c, --config <key=value>', 'topic config (repeatable), e.g. retention.ms=86400000', collect, [] as string[])
    .option('--if-not-exists', 'succeed if the topic already exists', false)
    .action(
      action('topics create', async (name: string, opts: CommonOptions & { partitions?: string; replicationFactor?: string; config: string[]; ifNotExists: boolean }) => {
        const numPartitions = opts.partitions === undefined ? undefined : parseIntArg(opts.partitions, '--partitions', 1);
        const replicationFactor = opts.replicationFactor === undefined ? undefined : parseIntArg(opts.replicationFactor, '--replication-factor', 1);
        const configs = parseKeyValues(opts.config, '--config');
        await withAdmin(opts, async (admin) => {
          try {
            await admin.createTopic({ name, ...(numPartitions === undefined ? {} : { numPartitions }), ...(replicationFactor === undefined ? {} : { replicationFactor }), configs });
          } catch (e: unknown) {
            if (opts.ifNotExists && e instanceof StrandError && e.errorName === 'TOPIC_ALREADY_EXISTS') return;
            throw e;
          }
        });
        process.stdout.write(`Created topic ${name}.\n`);
      }),
    );

  withCommon(topics.command('list').description('list topics'))
    .option('--internal', 'include internal topics (__consumer_offsets, ...)', false)
    .action(
      action('topics list', async (opts: CommonOptions & { internal: boolean }) => {
        const names = await withAdmin(opts, (admin) => admin.listTopics({ includeInternal: opts.internal }));
        if (opts.json) printJson(names);
        else for (const n of names) process.stdout.write(`${n}\n`);
      }),
    );

  withCommon(topics.command('describe [name]').description('partitions of a topic (all topics without a name): leader, epoch, replicas, ISR'))
    .option('--configs', 'also print the topic configs', false)
    .action(
      action('topics describe', async (name: string | undefined, opts: CommonOptions & { configs: boolean }) => {
        const { described, configs } = await withAdmin(opts, async (admin) => {
          const d = await admin.describeTopics(name === undefined ? [] : [name]);
          const c = opts.configs ? await Promise.all(d.map(async (t) => ({ topic: t.name, configs: await admin.describeConfigs(t.name) }))) : [];
          return { described: d, configs: c };
        });
        if (opts.json) {
          printJson(described.map((t) => ({ ...t, partitions: t.partitions.map((p) => ({ ...p, error: p.error?.errorName })), ...(opts.configs ? { configs: Object.fromEntries((configs.find((c) => c.topic === t.name)?.configs ?? []).map((c) => [c.name, c.value])) } : {}) })));
          return;
        }
        for (const t of described) {
          process.stdout.write(`Topic: ${t.name}\tTopicId: ${t.topicId}\tPartitionCount: ${t.partitions.length}\tReplicationFactor: ${t.partitions[0]?.replicas.length ?? 0}\n`);
          printTable(
            ['Partition', 'Leader', 'Epoch', 'Replicas', 'ISR', 'Offline'],
            t.partitions.map((p) => [p.partition, p.leader, p.leaderEpoch, p.replicas.join(','), p.isr.join(','), p.offlineReplicas.join(',') || '-']),
          );
          const c = configs.find((x) => x.topic === t.name);
          // (dynamic): set on the topic; (static): a default from the broker's own settings.
          if (c !== undefined) for (const e of c.configs) process.stdout.write(`  ${e.name}=${e.value}${e.source === 'dynamic' ? ' (dynamic)' : e.source === 'static' ? ' (static)' : ''}\n`);
        }
      }),
    );

  withCommon(topics.command('delete <name>').description('delete a topic'), false)
    .option('--if-exists', 'succeed if the topic does not exist', false)
    .action(
      action('topics delete', async (name: string, opts: CommonOptions & { ifExists: boolean }) => {
        const [r] = await withAdmin(opts, (admin) => admin.deleteTopics([name]));
        if (r?.error !== undefined && !(opts.ifExists && r.error.errorName === 'UNKNOWN_TOPIC_OR_PARTITION')) throw r.error;
        process.stdout.write(`Deleted topic ${name}.\n`);
      }),
    );

  withCommon(topics.command('alter <name>').description('change topic configs (and grow partitions)'), false)
    .option('-c, --config <key=value>', 'set a topic config (repeatable)', collect, [] as string[])
    .option('--delete-config <key>', 'reset a topic config to its default (repeatable)', collect, [] as string[])
    .option('-p, --partitions <n>', 'grow the topic to this many partitions')
    .action(
      action('topics alter', async (name: string, opts: CommonOptions & { config: string[]; deleteConfig: string[]; partitions?: string }) => {
        const set = parseKeyValues(opts.config, '--config');
        if (Object.keys(set).length === 0 && opts.deleteConfig.length === 0 && opts.partitions === undefined) throw new UsageError('nothing to alter: give --config key=value, --delete-config key or --partitions N');
        const partitions = opts.partitions === undefined ? undefined : parseIntArg(opts.partitions, '--partitions', 1);
        await withAdmin(opts, async (admin) => {
          if (Object.keys(set).length > 0 || opts.deleteConfig.length > 0) await admin.alterConfigs(name, { set, delete: opts.deleteConfig });
          if (partitions !== undefined) await admin.createPartitions(name, partitions);
        });
        process.stdout.write(`Altered topic ${name}.\n`);
      }),
    );

  withCommon(topics.command('delete-records <name>').description('move partitions\' log start forward: records before the offset are deleted (Kafka\'s kafka-delete-records)'))
    .option('--offset <partition=offset>', 'a partition and its new log start offset, -1 for its high watermark (repeatable)', collect, [] as string[])
    .action(
      action('topics delete-records', async (name: string, opts: CommonOptions & { offset: string[] }) => {
        const offsets = parseDeleteOffsets(opts.offset);
        const results = await withAdmin(opts, (admin) => admin.deleteRecords(name, offsets));
        const failed = results.filter((r) => r.error !== undefined);
        // Each partition is reported on its own (Kafka's tool prints a low watermark or an error per
        // partition); any failed partition makes the exit 1, as `reassign --execute` does.
        if (opts.json) printJson(results.map((r) => ({ topic: r.topic, partition: r.partition, lowWatermark: r.error === undefined ? r.lowWatermark : null, error: r.error?.errorName ?? null, message: r.error?.message ?? null })));
        else {
          for (const r of results) if (r.error === undefined) process.stdout.write(`partition: ${r.topic}-${r.partition}\tlow_watermark: ${r.lowWatermark}\n`);
          for (const r of failed) process.stderr.write(`strand topics delete-records: ${r.topic}-${r.partition}: ${r.error?.errorName}: ${r.error?.message}\n`);
        }
        return failed.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );
}

/** Parses repeated `--offset partition=offset` (offset -1: the high watermark); usage errors name the bad one. */
function parseDeleteOffsets(items: readonly string[]): Map<number, number> {
  if (items.length === 0) throw new UsageError('nothing to delete: give --offset partition=offset (repeatable; offset -1: up to the high watermark)');
  const out = new Map<number, number>();
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--offset expects partition=offset, got '${item}'`);
    const partition = parseIntArg(item.slice(0, i), '--offset partition', 0);
    const offset = parseIntArg(item.slice(i + 1), '--offset offset', -1);
    if (out.has(partition)) throw new UsageError(`--offset names partition ${partition} twice`);
    out.set(partition, offset);
  }
  return out;
}

export { withAdmin, EXIT_FAILED };
