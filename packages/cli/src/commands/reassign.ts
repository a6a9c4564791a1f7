/**
 * `strand reassign`, in the spirit of kafka-reassign-partitions, with Kafka's JSON files:
 *
 *   --generate --topics-to-move-json-file F --broker-list 1,2,3
 *       prints the current assignment of the topics in F ({"version":1,"topics":[{"topic":"t"}]})
 *       and a proposed one over the listed brokers (same replication factor, leaders and
 *       replicas spread round-robin). Nothing is changed.
 *   --execute --reassignment-json-file F
 *       prints the current assignment of the partitions in F (keep it to roll back), then starts
 *       moving them to F's replica lists ({"version":1,"partitions":[{"topic":"t","partition":0,
 *       "replicas":[1,2,3]}]}).
 *   --verify --reassignment-json-file F
 *       per partition of F: completed, still in progress, or not in progress but the replicas
 *       differ from F. Exit 0 when all completed, 5 while some are in progress, 1 otherwise.
 *   --cancel --reassignment-json-file F
 *       cancels the moves of F's partitions in progress (the original replicas stay).
 *   --list
 *       every reassignment in progress.
 *
 * A file name `-` reads the JSON from stdin. Malformed JSON is a usage error (exit 2) that names
 * the offending entry, and nothing is sent.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { Admin, TopicDescription } from '@strand/client';
import { StrandError } from '@strand/protocol';
import { EXIT_FAILED, EXIT_IN_PROGRESS, EXIT_OK, UsageError, action, printJson, printTable, withCommon } from './common';
import type { CommonOptions } from './common';
import { withAdmin } from './topics';

/** One partition's replica list, as in Kafka's reassignment JSON. */
export interface PartitionReplicas {
  topic: string;
  partition: number;
  replicas: number[];
}

/** Kafka's reassignment JSON document. */
export interface ReassignmentJson {
  version: 1;
  partitions: PartitionReplicas[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses JSON text; empty or invalid text is a usage error naming `what`. */
export function parseJsonText(text: string, what: string): unknown {
  if (text.trim() === '') throw new UsageError(`${what} is empty`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e: unknown) {
    throw new UsageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function checkVersion(doc: Record<string, unknown>, what: string): void {
  if (doc['version'] !== undefined && doc['version'] !== 1) throw new UsageError(`${what}: unsupported "version" ${JSON.stringify(doc['version'])} (only 1)`);
}

function brokerId(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new UsageError(`${where}: broker ids must be non-negative integers, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Parses a reassignment JSON document. Throws UsageError naming the entry for: invalid JSON, a
 * wrong version, no "partitions" array, an entry without a topic name, a partition that is not a
 * non-negative integer, a replica list that is empty, has duplicates or non-integer ids, and a
 * partition listed twice. Kafka's optional "log_dirs" must be an array if present (ignored:
 * Strand has one log directory per broker).
 */
export function parseReassignmentJson(text: string, what = 'the reassignment JSON'): PartitionReplicas[] {
  const doc = parseJsonText(text, what);
  if (!isObject(doc)) throw new UsageError(`${what} must be an object like {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}`);
  checkVersion(doc, what);
  const list = doc['partitions'];
  if (!Array.isArray(list)) throw new UsageError(`${what} needs a "partitions" array`);
  if (list.length === 0) throw new UsageError(`${what}: "partitions" is empty`);
  const seen = new Set<string>();
  return list.map((entry: unknown, i) => {
    const where = `${what}: partitions[${i}]`;
    if (!isObject(entry)) throw new UsageError(`${where} must be an object with "topic", "partition" and "replicas"`);
    const topic = entry['topic'];
    if (typeof topic !== 'string' || topic === '') throw new UsageError(`${where}: "topic" must be a non-empty string`);
    const partition = entry['partition'];
    if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0) throw new UsageError(`${where}: "partition" must be a non-negative integer, got ${JSON.stringify(partition)}`);
    const replicas = entry['replicas'];
    if (!Array.isArray(replicas) || replicas.length === 0) throw new UsageError(`${where}: "replicas" must be a non-empty array of broker ids`);
    const ids = replicas.map((r: unknown) => brokerId(r, where));
    if (new Set(ids).size !== ids.length) throw new UsageError(`${where}: "replicas" ${JSON.stringify(ids)} lists a broker twice`);
    const logDirs = entry['log_dirs'];
    if (logDirs !== undefined && (!Array.isArray(logDirs) || logDirs.length !== ids.length)) throw new UsageError(`${where}: "log_dirs" must be an array with one entry per replica`);
    const key = `${topic}-${partition}`;
    if (seen.has(key)) throw new UsageError(`${where}: ${key} is listed twice`);
    seen.add(key);
    return { topic, partition, replicas: ids };
  });
}

/** Parses Kafka's topics-to-move JSON: {"version":1,"topics":[{"topic":"t"}]}. Returns the names. */
export function parseTopicsToMoveJson(text: string, what = 'the topics-to-move JSON'): string[] {
  const doc = parseJsonText(text, what);
  if (!isObject(doc)) throw new UsageError(`${what} must be an object like {"version":1,"topics":[{"topic":"t"}]}`);
  checkVersion(doc, what);
  const list = doc['topics'];
  if (!Array.isArray(list) || list.length === 0) throw new UsageError(`${what} needs a non-empty "topics" array`);
  const names = list.map((entry: unknown, i) => {
    const topic = isObject(entry) ? entry['topic'] : undefined;
    if (typeof topic !== 'string' || topic === '') throw new UsageError(`${what}: topics[${i}] must be {"topic":"name"}`);
    return topic;
  });
  return [...new Set(names)];
}

/** Parses `--broker-list 1,2,3`: distinct non-negative integers. */
export function parseBrokerList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const ids = parts.map((s) => {
    if (!/^\d+$/.test(s)) throw new UsageError(`--broker-list expects comma-separated broker ids like 1,2,3, got '${value}'`);
    return Number(s);
  });
  if (new Set(ids).size !== ids.length) throw new UsageError(`--broker-list lists a broker twice: '${value}'`);
  return ids;
}

/**
 * A proposed assignment of `topics` over `brokers`, keeping each partition's replication factor:
 * partition p's replicas are brokers[(start + p + i) mod n] for i < RF, where `start` differs
 * per topic, so leaders (the first replica) and replicas spread evenly over the brokers.
 */
export function proposeAssignment(topics: readonly TopicDescription[], brokers: readonly number[]): PartitionReplicas[] {
  const sorted = [...brokers].sort((a, b) => a - b);
  const out: PartitionReplicas[] = [];
  topics.forEach((t, ti) => {
    for (const p of t.partitions) {
      const rf = p.replicas.length;
      if (rf > sorted.length) throw new UsageError(`${t.name}-${p.partition} has ${rf} replicas but --broker-list names only ${sorted.length} brokers`);
      const replicas: number[] = [];
      for (let i = 0; i < rf; i++) replicas.push(sorted[(ti + p.partition + i) % sorted.length] as number);
      out.push({ topic: t.name, partition: p.partition, replicas });
    }
  });
  return out;
}

export function reassignmentJson(partitions: readonly PartitionReplicas[]): ReassignmentJson {
  return { version: 1, partitions: partitions.map((p) => ({ topic: p.topic, partition: p.partition, replicas: [...p.replicas] })) };
}

/** Reads a JSON file given to `option` (`-`: stdin); an unreadable file is a usage error. */
export function readJsonFile(file: string, option: string): string {
  if (file === '-') return fs.readFileSync(0, 'utf8');
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e: unknown) {
    throw new UsageError(`${option}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The current replica lists of `partitions` (by topic-partition); unknown ones are errors. */
async function currentAssignment(admin: Admin, partitions: readonly { topic: string; partition: number }[]): Promise<PartitionReplicas[]> {
  const topics = [...new Set(partitions.map((p) => p.topic))];
  const described = await admin.describeTopics(topics);
  return partitions.map(({ topic, partition }) => {
    const p = described.find((t) => t.name === topic)?.partitions.find((x) => x.partition === partition);
    if (p === undefined) throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `${topic}-${partition} does not exist`);
    return { topic, partition, replicas: [...p.replicas] };
  });
}

/** How long --verify waits for brokers' metadata to catch up with a finished move. */
const VERIFY_METADATA_WAIT_MS = 2_000;

type Mode = 'generate' | 'execute' | 'verify' | 'cancel' | 'list';

interface ReassignOptions extends CommonOptions {
  generate?: boolean;
  execute?: boolean;
  verify?: boolean;
  cancel?: boolean;
  list?: boolean;
  reassignmentJsonFile?: string;
  topicsToMoveJsonFile?: string;
  brokerList?: string;
}

/** Picks the one mode and checks its required options (before anything is sent). */
export function reassignMode(opts: Omit<ReassignOptions, keyof CommonOptions>): Mode {
  const modes = (['generate', 'execute', 'verify', 'cancel', 'list'] as const).filter((m) => opts[m] === true);
  if (modes.length !== 1) throw new UsageError('give exactly one of --generate, --execute, --verify, --cancel, --list');
  const mode = modes[0] as Mode;
  if (mode === 'generate') {
    if (opts.topicsToMoveJsonFile === undefined || opts.brokerList === undefined) throw new UsageError('--generate needs --topics-to-move-json-file FILE and --broker-list 1,2,3');
  } else if (mode !== 'list' && opts.reassignmentJsonFile === undefined) throw new UsageError(`--${mode} needs --reassignment-json-file FILE (- for stdin)`);
  return mode;
}

const tpName = (p: { topic: string; partition: number }): string => `${p.topic}-${p.partition}`;

export function registerReassign(program: Command): void {
  withCommon(program.command('reassign').description('move partitions between brokers (kafka-reassign-partitions): --generate, --execute, --verify, --cancel, --list'))
    .option('--generate', 'propose an assignment of --topics-to-move-json-file over --broker-list (changes nothing)')
    .option('--execute', 'start the reassignment in --reassignment-json-file')
    .option('--verify', 'check whether the reassignment in --reassignment-json-file has completed (exit 5 while in progress)')
    .option('--cancel', 'cancel the reassignments of the partitions in --reassignment-json-file')
    .option('--list', 'list the reassignments in progress')
    .option('--reassignment-json-file <file>', 'Kafka reassignment JSON: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]} (- for stdin)')
    .option('--topics-to-move-json-file <file>', 'for --generate: {"version":1,"topics":[{"topic":"t"}]} (- for stdin)')
    .option('--broker-list <ids>', 'for --generate: the brokers to spread the replicas over, e.g. 1,2,3')
    .action(
      action('reassign', async (opts: ReassignOptions) => {
        const mode = reassignMode(opts);
        if (mode === 'list') {
          const ongoing = await withAdmin(opts, (admin) => admin.listPartitionReassignments());
          if (opts.json) printJson(ongoing);
          else if (ongoing.length === 0) process.stdout.write('No partition reassignments in progress.\n');
          else printTable(['Topic', 'Partition', 'Replicas', 'Adding', 'Removing'], ongoing.map((r) => [r.topic, r.partition, r.replicas.join(','), r.addingReplicas.join(',') || '-', r.removingReplicas.join(',') || '-']));
          return EXIT_OK;
        }
        if (mode === 'generate') {
          const topics = parseTopicsToMoveJson(readJsonFile(opts.topicsToMoveJsonFile as string, '--topics-to-move-json-file'));
          const brokers = parseBrokerList(opts.brokerList as string);
          const { current, proposed } = await withAdmin(opts, async (admin) => {
            const cluster = await admin.describeCluster();
            const known = new Set(cluster.brokers.map((b) => b.id));
            const unknown = brokers.filter((b) => !known.has(b));
            if (unknown.length > 0) throw new UsageError(`--broker-list names brokers that are not registered: ${unknown.join(',')} (registered: ${[...known].sort((a, b) => a - b).join(',')})`);
            const described = await admin.describeTopics(topics);
            const proposedList = proposeAssignment(described, brokers);
            const currentList = described.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, replicas: [...p.replicas] })));
            return { current: reassignmentJson(currentList), proposed: reassignmentJson(proposedList) };
          });
          if (opts.json) printJson({ current, proposed });
          else process.stdout.write(`Current partition replica assignment\n${JSON.stringify(current)}\n\nProposed partition reassignment configuration\n${JSON.stringify(proposed)}\n`);
          return EXIT_OK;
        }
        const targets = parseReassignmentJson(readJsonFile(opts.reassignmentJsonFile as string, '--reassignment-json-file'));
        if (mode === 'execute') {
          const { current, results } = await withAdmin(opts, async (admin) => {
            const cur = await currentAssignment(admin, targets);
            return { current: cur, results: await admin.alterPartitionReassignments(targets) };
          });
          const failed = results.filter((r) => r.error !== undefined);
          if (opts.json) printJson({ current: reassignmentJson(current), results: results.map((r) => ({ topic: r.topic, partition: r.partition, error: r.error?.errorName ?? null, message: r.error?.message ?? null })) });
          else {
            process.stdout.write(`Current partition replica assignment\n\n${JSON.stringify(reassignmentJson(current))}\n\nSave this to use as the --reassignment-json-file option during rollback\n`);
            const ok = results.filter((r) => r.error === undefined);
            if (ok.length > 0) process.stdout.write(`Successfully started partition reassignment${ok.length > 1 ? 's' : ''} for ${ok.map(tpName).join(',')}\n`);
            for (const r of failed) process.stderr.write(`strand reassign: ${tpName(r)}: ${r.error?.errorName}: ${r.error?.message}\n`);
          }
          return failed.length > 0 ? EXIT_FAILED : EXIT_OK;
        }
        if (mode === 'cancel') {
          const results = await withAdmin(opts, (admin) => admin.alterPartitionReassignments(targets.map((t) => ({ topic: t.topic, partition: t.partition, replicas: null }))));
          const failed = results.filter((r) => r.error !== undefined);
          if (opts.json) printJson(results.map((r) => ({ topic: r.topic, partition: r.partition, error: r.error?.errorName ?? null, message: r.error?.message ?? null })));
          else {
            const ok = results.filter((r) => r.error === undefined);
            if (ok.length > 0) process.stdout.write(`Successfully cancelled partition reassignment${ok.length > 1 ? 's' : ''} for ${ok.map(tpName).join(',')}\n`);
            for (const r of failed) process.stderr.write(`strand reassign: ${tpName(r)}: ${r.error?.errorName}: ${r.error?.message}\n`);
          }
          return failed.length > 0 ? EXIT_FAILED : EXIT_OK;
        }
        // verify
        // The controller first, then the brokers' metadata: a move the controller reports as
        // finished shows its new replicas in a broker's metadata moments later, so while it still
        // trails (or the move finished between the two reads) the metadata is read again, up to
        // VERIFY_METADATA_WAIT_MS, before a replica set is reported as a mismatch.
        const { current, ongoing } = await withAdmin(opts, async (admin) => {
          const ongoing = await admin.listPartitionReassignments(targets);
          const moving = new Set(ongoing.map(tpName));
          const deadline = performance.now() + VERIFY_METADATA_WAIT_MS;
          let current = await currentAssignment(admin, targets);
          while (targets.some((t, i) => !moving.has(tpName(t)) && (current[i] as PartitionReplicas).replicas.join(',') !== t.replicas.join(',')) && performance.now() < deadline) {
            await new Promise<void>((resolve) => setTimeout(resolve, 100));
            current = await currentAssignment(admin, targets);
          }
          return { current, ongoing };
        });
        const inProgress = new Set(ongoing.map(tpName));
        const statuses = targets.map((t, i) => {
          const cur = (current[i] as PartitionReplicas).replicas;
          const status = inProgress.has(tpName(t)) ? 'in-progress' : cur.join(',') === t.replicas.join(',') ? 'completed' : 'mismatch';
          return { topic: t.topic, partition: t.partition, status, replicas: cur, target: t.replicas };
        });
        if (opts.json) printJson(statuses);
        else {
          process.stdout.write('Status of partition reassignment:\n');
          for (const s of statuses) {
            if (s.status === 'completed') process.stdout.write(`Reassignment of partition ${tpName(s)} is completed.\n`);
            else if (s.status === 'in-progress') process.stdout.write(`Reassignment of partition ${tpName(s)} is still in progress.\n`);
            else process.stdout.write(`There is no active reassignment of partition ${tpName(s)}, but replica set is ${JSON.stringify(s.replicas)} rather than ${JSON.stringify(s.target)}.\n`);
          }
        }
        if (statuses.some((s) => s.status === 'mismatch')) return EXIT_FAILED;
        return statuses.some((s) => s.status === 'in-progress') ? EXIT_IN_PROGRESS : EXIT_OK;
      }),
    );
}
