/** `strand topics create|list|describe|delete|alter|delete-records`. */
import type { Command } from 'commander';
import { Admin } from '@strand/client';
import type { PartitionReassignment } from '@strand/client';
import { StrandError } from '@strand/protocol';
import { EXIT_FAILED, EXIT_OK, UsageError, action, clientConfig, collect, configSourceTag, parseIntArg, parseKeyValues, printJson, usageExit, withCommon } from './common';
import type { CommonOptions } from './common';

async function withAdmin<T>(opts: CommonOptions, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientConfig(opts, { retries: 3 }));
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

/**
 * `--replica-assignment` of topics create (Kafka's kafka-topics): partitions separated by commas,
 * each partition's replicas (broker ids, the first the preferred leader) by colons, e.g.
 * `1:2,2:3,3:1` for three partitions of two replicas. Every partition has the same number of
 * distinct replicas.
 */
export function parseReplicaAssignment(value: string): { partition: number; brokerIds: number[] }[] {
  const parts = value.split(',').map((s) => s.trim());
  const out = parts.map((part, partition) => {
    const brokerIds = part.split(':').map((b) => parseIntArg(b.trim(), `--replica-assignment partition ${partition} broker id`, 0));
    if (new Set(brokerIds).size !== brokerIds.length) throw new UsageError(`--replica-assignment partition ${partition} names a broker twice: '${part}'`);
    return { partition, brokerIds };
  });
  const rf = out[0]?.brokerIds.length ?? 0;
  const other = out.find((p) => p.brokerIds.length !== rf);
  if (other !== undefined) throw new UsageError(`--replica-assignment partition ${other.partition} has ${other.brokerIds.length} replicas, partition 0 has ${rf}: every partition needs the same replication factor`);
  return out;
}

/**
 * Kafka's internal topics (its Topic.isInternal names), which topics delete refuses as kafka-topics
 * did. Only these names: a user topic that starts with `__` may be deleted, as in Kafka.
 */
export const KAFKA_INTERNAL_TOPICS: readonly string[] = ['__consumer_offsets', '__transaction_state', '__share_group_state'];

/** The partition filters of topics describe (Kafka's kafka-topics --describe options); at most one. */
export type PartitionFilter = 'under-replicated' | 'under-min-isr' | 'at-min-isr' | 'unavailable';

/**
 * Whether a partition passes `filter`, as kafka-topics decides it: under-replicated when the ISR is
 * smaller than the replication factor (the replicas less `addingReplicas` while the partition is
 * being reassigned: those are in the replica set but join the ISR only once caught up); under min
 * ISR when it has no leader or the ISR is smaller than the topic's min.insync.replicas (a
 * leaderless partition keeps its last ISR, yet takes no writes); at min ISR when the ISR equals
 * it; unavailable when it has no leader or its leader is not a live broker.
 */
export function partitionMatches(filter: PartitionFilter, p: { leader: number; replicas: readonly number[]; isr: readonly number[] }, minIsr: number, liveBrokers: ReadonlySet<number>, addingReplicas: readonly number[] = []): boolean {
  switch (filter) {
    case 'under-replicated':
      return p.isr.length < p.replicas.filter((r) => !addingReplicas.includes(r)).length;
    case 'under-min-isr':
      return p.leader < 0 || p.isr.length < minIsr;
    case 'at-min-isr':
      return p.isr.length === minIsr;
    case 'unavailable':
      return p.leader < 0 || !liveBrokers.has(p.leader);
  }
}

interface DescribeOptions extends CommonOptions {
  configs: boolean;
  excludeInternal: boolean;
  underReplicatedPartitions?: boolean;
  underMinIsrPartitions?: boolean;
  atMinIsrPartitions?: boolean;
  unavailablePartitions?: boolean;
}

function partitionFilter(opts: DescribeOptions): PartitionFilter | undefined {
  const chosen = ([
    [opts.underReplicatedPartitions, 'under-replicated'],
    [opts.underMinIsrPartitions, 'under-min-isr'],
    [opts.atMinIsrPartitions, 'at-min-isr'],
    [opts.unavailablePartitions, 'unavailable'],
  ] as const).filter(([on]) => on === true);
  if (chosen.length > 1) throw new UsageError('give at most one of --under-replicated-partitions, --under-min-isr-partitions, --at-min-isr-partitions, --unavailable-partitions');
  return chosen[0]?.[1];
}

export function registerTopics(program: Command): void {
  const topics = usageExit(program.command('topics').description('create, list, describe, alter and delete topics, and delete records'));

  withCommon(topics.command('create <name>').description('create a topic'), false)
    .option('-p, --partitions <n>', 'number of partitions (default: the cluster\'s num.partitions)')
    .option('-r, --replication-factor <n>', 'replicas per partition (default: the cluster\'s default.replication.factor)')
    .option('-c, --config <key=value>', 'topic config (repeatable), e.g. retention.ms=86400000', collect, [] as string[])
    .option('--replica-assignment <list>', 'the replicas of each partition: partitions by commas, broker ids by colons, the first the preferred leader (1:2,2:3,3:1); instead of --partitions and --replication-factor')
    .option('--if-not-exists', 'succeed if the topic already exists', false)
    .action(
      action('topics create', async (name: string, opts: CommonOptions & { partitions?: string; replicationFactor?: string; replicaAssignment?: string; config: string[]; ifNotExists: boolean }) => {
        if (opts.replicaAssignment !== undefined && (opts.partitions !== undefined || opts.replicationFactor !== undefined)) throw new UsageError('--replica-assignment names the partitions and their replicas: give it without --partitions and --replication-factor');
        const assignments = opts.replicaAssignment === undefined ? undefined : parseReplicaAssignment(opts.replicaAssignment);
        const numPartitions = opts.partitions === undefined ? undefined : parseIntArg(opts.partitions, '--partitions', 1);
        const replicationFactor = opts.replicationFactor === undefined ? undefined : parseIntArg(opts.replicationFactor, '--replication-factor', 1);
        const configs = parseKeyValues(opts.config, '--config');
        await withAdmin(opts, async (admin) => {
          try {
            await admin.createTopic({ name, ...(numPartitions === undefined ? {} : { numPartitions }), ...(replicationFactor === undefined ? {} : { replicationFactor }), ...(assignments === undefined ? {} : { assignments }), configs });
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

  withCommon(topics.command('describe [name]').description("partitions of a topic (all topics without a name), as kafka-topics --describe prints them: leader, replicas, ISR"))
    .option('--configs', 'also print every topic config, one per line with where it comes from', false)
    .option('--exclude-internal', 'leave out internal topics (__consumer_offsets) when describing all', false)
    .option('--under-replicated-partitions', 'only partitions whose ISR is smaller than their replicas (less those a reassignment is adding)')
    .option('--under-min-isr-partitions', "only partitions without a leader or whose ISR is smaller than the topic's min.insync.replicas")
    .option('--at-min-isr-partitions', "only partitions whose ISR is exactly the topic's min.insync.replicas")
    .option('--unavailable-partitions', 'only partitions without a leader, or whose leader is not a live broker')
    .action(
      action('topics describe', async (name: string | undefined, opts: DescribeOptions) => {
        const filter = partitionFilter(opts);
        const shape = new Map<string, { count: number; rf: number }>();
        const { described, configs, moving } = await withAdmin(opts, async (admin) => {
          let d = (await admin.describeTopics(name === undefined ? [] : [name])).filter((t) => !(opts.excludeInternal && t.internal));
          // As kafka-topics: the reassignments in progress give each partition's adding and
          // removing replicas, and the replication factor leaves the adding ones out.
          const adding = new Map<string, PartitionReassignment>();
          if (d.length > 0) for (const r of await admin.listPartitionReassignments()) adding.set(`${r.topic}\u0000${r.partition}`, r);
          for (const t of d) {
            const first = t.partitions[0];
            const rf = first === undefined ? 0 : first.replicas.length - (adding.get(`${t.name}\u0000${first.partition}`)?.addingReplicas.length ?? 0);
            shape.set(t.name, { count: t.partitions.length, rf });
          }
          if (filter !== undefined) {
            // As kafka-topics: the topic's min.insync.replicas, the live brokers and the
            // reassignments in progress decide.
            const live = filter === 'unavailable' ? new Set((await admin.describeCluster()).brokers.filter((b) => b.state !== 'fenced').map((b) => b.id)) : new Set<number>();
            const minIsr = new Map<string, number>();
            if (filter === 'under-min-isr' || filter === 'at-min-isr') for (const t of d) minIsr.set(t.name, Number((await admin.describeConfigs(t.name, { keys: ['min.insync.replicas'] }))[0]?.value ?? '1'));
            d = d.map((t) => ({ ...t, partitions: t.partitions.filter((p) => partitionMatches(filter, p, minIsr.get(t.name) ?? 1, live, filter === 'under-replicated' ? adding.get(`${t.name}\u0000${p.partition}`)?.addingReplicas : [])) })).filter((t) => t.partitions.length > 0);
          }
          // kafka-topics' header line lists the configs that are not defaults; its filtered
          // views have no header, so no configs are asked for there (unless --configs).
          const c = opts.configs || (filter === undefined && !opts.json) ? await Promise.all(d.map(async (t) => ({ topic: t.name, configs: await admin.describeConfigs(t.name) }))) : [];
          return { described: d, configs: c, moving: adding };
        });
        if (opts.json) {
          printJson(described.map((t) => ({ ...t, partitions: t.partitions.map((p) => ({ ...p, error: p.error?.errorName })), ...(opts.configs ? { configs: Object.fromEntries((configs.find((c) => c.topic === t.name)?.configs ?? []).map((c) => [c.name, c.value])) } : {}) })));
          return;
        }
        const ids = (ns: readonly number[]): string => ns.join(',');
        for (const t of described) {
          const c = configs.find((x) => x.topic === t.name)?.configs ?? [];
          // kafka-topics --describe: the topic line (not with a partition filter, as Kafka's
          // tool), then a tab-indented line per partition. Strand has no eligible leader
          // replicas (KIP-966): Elr and LastKnownElr read N/A, as Kafka prints them when the
          // cluster does not report them.
          if (filter === undefined) process.stdout.write(`Topic: ${t.name}\tTopicId: ${t.topicId}\tPartitionCount: ${shape.get(t.name)?.count ?? 0}\tReplicationFactor: ${shape.get(t.name)?.rf ?? 0}\tConfigs: ${c.filter((e) => e.source !== 'default').map((e) => `${e.name}=${e.value}`).join(',')}\n`);
          for (const p of t.partitions) {
            const r = moving.get(`${t.name}\u0000${p.partition}`);
            const reassigning = r === undefined ? '' : `\tAdding Replicas: ${ids(r.addingReplicas)}\tRemoving Replicas: ${ids(r.removingReplicas)}`;
            process.stdout.write(`\tTopic: ${t.name}\tPartition: ${p.partition}\tLeader: ${p.leader < 0 ? 'none' : p.leader}\tReplicas: ${ids(p.replicas)}\tIsr: ${ids(p.isr)}${reassigning}\tElr: N/A\tLastKnownElr: N/A\n`);
          }
          // (dynamic): set on the topic; (static): a default from the broker's own settings.
          if (opts.configs) for (const e of c) process.stdout.write(`  ${e.name}=${e.value}${configSourceTag(e.source)}\n`);
        }
      }),
    );

  withCommon(topics.command('delete <name>').description('delete a topic (not an internal one such as __consumer_offsets, as kafka-topics)'), false)
    .option('--if-exists', 'succeed if the topic does not exist', false)
    .action(
      action('topics delete', async (name: string, opts: CommonOptions & { ifExists: boolean }) => {
        // kafka-topics' own refusal, before any request: deleting __consumer_offsets would drop
        // every group's committed offsets. The controller, as Kafka's, does not refuse it.
        if (KAFKA_INTERNAL_TOPICS.includes(name)) {
          process.stderr.write(`strand topics delete: Topic ${name} is a kafka internal topic and is not allowed to be marked for deletion.\n`);
          return EXIT_FAILED;
        }
        const [r] = await withAdmin(opts, (admin) => admin.deleteTopics([name]));
        if (r?.error !== undefined && !(opts.ifExists && r.error.errorName === 'UNKNOWN_TOPIC_OR_PARTITION')) throw r.error;
        process.stdout.write(`Deleted topic ${name}.\n`);
        return EXIT_OK;
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
