/**
 * `strand leader-election`, Kafka's kafka-leader-election:
 *
 *   --election-type preferred|unclean (any case), and exactly one of
 *   --topic T --partition P | --all-topic-partitions | --path-to-json-file F
 *
 * F is Kafka's election JSON, {"partitions":[{"topic":"t","partition":0},...]} (`-`: stdin).
 * Preferred: the first replica leads again where it is an active ISR member. Unclean: a partition
 * without a live leader gets one, out of sync if need be (records may be lost).
 *
 * Each partition is answered on its own, printed as Kafka's tool does: elected ("Successfully
 * completed leader election (PREFERRED) for partitions t-0, t-1"), not needed, i.e. the right
 * replica already leads ("Valid replica already elected for partitions t-2", not a failure), or
 * failed (on stderr, "Error completing leader election (PREFERRED) for partition: t-3: ERROR:
 * message"). Exit 0 when none failed, 1 when any did, 2 for usage errors (nothing sent).
 * With --all-topic-partitions the partitions that needed no election are left out, as Kafka's
 * controller leaves them out of its answer.
 */
import type { Command } from 'commander';
import type { TopicPartition } from '@strand/client';
import { EXIT_FAILED, EXIT_OK, UsageError, action, parseIntArg, printJson, withCommon } from './common';
import type { CommonOptions } from './common';
import { parseJsonText, readJsonFile } from './reassign';
import { withAdmin } from './topics';

export type ElectionType = 'preferred' | 'unclean';

interface LeaderElectionOptions extends CommonOptions {
  electionType?: string;
  topic?: string;
  partition?: string;
  allTopicPartitions?: boolean;
  pathToJsonFile?: string;
}

/** What to elect: the type, and the partitions (`'all'` for --all-topic-partitions). */
export interface ElectionPlan {
  type: ElectionType;
  partitions: TopicPartition[] | 'all';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses Kafka's election JSON, {"partitions":[{"topic":"t","partition":0}]}. Usage errors name
 * the entry: invalid JSON, no "partitions" array, an empty one (an empty list would mean every
 * partition to the Admin call, so it is refused rather than sent), an entry without a topic or
 * with a partition that is not a non-negative integer, and a partition listed twice (as Kafka).
 */
export function parseElectionJson(text: string, what = 'the election JSON'): TopicPartition[] {
  const doc = parseJsonText(text, what);
  if (!isObject(doc)) throw new UsageError(`${what} must be an object like {"partitions":[{"topic":"t","partition":0}]}`);
  const list = doc['partitions'];
  if (!Array.isArray(list)) throw new UsageError(`${what} needs a "partitions" array`);
  if (list.length === 0) throw new UsageError(`${what}: "partitions" is empty (use --all-topic-partitions for every partition)`);
  const seen = new Set<string>();
  return list.map((entry: unknown, i) => {
    const where = `${what}: partitions[${i}]`;
    if (!isObject(entry)) throw new UsageError(`${where} must be an object with "topic" and "partition"`);
    const topic = entry['topic'];
    if (typeof topic !== 'string' || topic === '') throw new UsageError(`${where}: "topic" must be a non-empty string`);
    const partition = entry['partition'];
    if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0) throw new UsageError(`${where}: "partition" must be a non-negative integer, got ${JSON.stringify(partition)}`);
    const key = `${topic}-${partition}`;
    if (seen.has(key)) throw new UsageError(`${where}: ${key} is listed twice`);
    seen.add(key);
    return { topic, partition };
  });
}

/** Parses --election-type: preferred or unclean, in any case (Kafka's enum converter). */
export function parseElectionType(value: string | undefined): ElectionType {
  if (value === undefined) throw new UsageError('--election-type preferred|unclean is required');
  const v = value.trim().toLowerCase();
  if (v !== 'preferred' && v !== 'unclean') throw new UsageError(`--election-type must be preferred or unclean, got '${value}'`);
  return v;
}

/** Checks the options (exactly one way to name partitions) and reads the JSON file, before anything is sent. */
export function electionPlan(opts: Omit<LeaderElectionOptions, keyof CommonOptions>): ElectionPlan {
  const type = parseElectionType(opts.electionType);
  const ways = [opts.topic !== undefined, opts.allTopicPartitions === true, opts.pathToJsonFile !== undefined].filter(Boolean).length;
  if (ways !== 1) throw new UsageError('give exactly one of --topic T --partition P, --all-topic-partitions, --path-to-json-file FILE');
  if (opts.partition !== undefined && opts.topic === undefined) throw new UsageError('--partition is only allowed with --topic');
  if (opts.topic !== undefined) {
    if (opts.topic === '') throw new UsageError('--topic must not be empty');
    if (opts.partition === undefined) throw new UsageError('--topic needs --partition P');
    return { type, partitions: [{ topic: opts.topic, partition: parseIntArg(opts.partition, '--partition', 0) }] };
  }
  if (opts.pathToJsonFile !== undefined) return { type, partitions: parseElectionJson(readJsonFile(opts.pathToJsonFile, '--path-to-json-file')) };
  return { type, partitions: 'all' };
}

const tpName = (p: TopicPartition): string => `${p.topic}-${p.partition}`;
const byTopicPartition = (a: TopicPartition, b: TopicPartition): number => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);

export function registerLeaderElection(program: Command): void {
  withCommon(program.command('leader-election').description('elect the preferred replica as leader, or a leader for leaderless partitions (kafka-leader-election)'))
    .option('--election-type <type>', 'preferred: the first replica leads again where it is in sync; unclean: leaderless partitions get an out-of-sync leader (may lose records). Required')
    .option('--topic <name>', 'the topic of the one partition to elect (with --partition)')
    .option('--partition <n>', 'the partition of --topic to elect')
    .option('--all-topic-partitions', 'elect every partition of every topic')
    .option('--path-to-json-file <file>', 'the partitions to elect: {"partitions":[{"topic":"t","partition":0}]} (- for stdin)')
    .action(
      action('leader-election', async (opts: LeaderElectionOptions) => {
        const plan = electionPlan(opts);
        const all = plan.partitions === 'all';
        const results = (await withAdmin(opts, (admin) => admin.electLeaders(plan.type, all ? [] : (plan.partitions as TopicPartition[]))))
          .filter((r) => !(all && r.error?.errorName === 'ELECTION_NOT_NEEDED'))
          .sort(byTopicPartition);
        const status = (r: (typeof results)[number]): 'elected' | 'not-needed' | 'failed' => (r.error === undefined ? 'elected' : r.error.errorName === 'ELECTION_NOT_NEEDED' ? 'not-needed' : 'failed');
        const failed = results.filter((r) => status(r) === 'failed');
        if (opts.json) {
          printJson(results.map((r) => ({ topic: r.topic, partition: r.partition, status: status(r), error: r.error?.errorName ?? null, message: r.error?.message ?? null })));
        } else {
          const label = plan.type.toUpperCase();
          const elected = results.filter((r) => status(r) === 'elected');
          const noop = results.filter((r) => status(r) === 'not-needed');
          if (elected.length > 0) process.stdout.write(`Successfully completed leader election (${label}) for partitions ${elected.map(tpName).join(', ')}\n`);
          if (noop.length > 0) process.stdout.write(`Valid replica already elected for partitions ${noop.map(tpName).join(', ')}\n`);
          if (results.length === 0) process.stdout.write(`No partition needed a leader election (${label}).\n`);
          for (const r of failed) process.stderr.write(`Error completing leader election (${label}) for partition: ${tpName(r)}: ${r.error?.errorName}: ${r.error?.message}\n`);
          if (failed.length > 0) process.stderr.write(`strand leader-election: ${failed.length} partition(s) could not be elected\n`);
        }
        return failed.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );
}
