/**
 * `strand groups list|describe|delete|delete-offsets|remove-members|reset-offsets`, in the spirit of
 * kafka-consumer-groups: describe shows, as its --describe, per-partition committed offset, log end
 * offset and lag (LEO minus committed) with the partition's member (GROUP TOPIC PARTITION
 * CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID; "has no active members" and
 * "is rebalancing" notes on stderr), or --members / --state, one table per group for several groups
 * (arguments, Kafka's repeated --group) or --all-groups; delete and reset-offsets take the same.
 * reset-offsets prints the plan unless --execute is given (--dry-run, as Kafka's, says so
 * explicitly), and needs each group to be empty (an active one fails alone, with Kafka's
 * "Assignments can only be reset if the group 'G' is inactive, but the current state is S.", exit
 * 1); it prints Kafka's GROUP TOPIC PARTITION NEW-OFFSET table, one for all groups, or with
 * --export Kafka's CSV (topic,partition,offset for one named group, group,topic,partition,offset
 * for several), which --from-file reads back. delete-offsets (Kafka's --delete-offsets, KIP-496) deletes committed offsets
 * of some partitions and reports each one as Kafka's tool does (TOPIC PARTITION STATUS, where
 * STATUS is "Successful" or the error, e.g. GROUP_SUBSCRIBED_TO_TOPIC while members consume the
 * topic); exit 1 if any partition failed. remove-members (Kafka's Admin
 * removeMembersFromConsumerGroup, which kafka-consumer-groups lacks) reports each member the same
 * way (MEMBER-ID GROUP-INSTANCE-ID STATUS).
 */
import type { Command } from 'commander';
import type { Admin, GroupOffset, MemberToRemove, TopicPartition } from '@strand/client';
import { StrandError } from '@strand/protocol';
import { EXIT_FAILED, EXIT_OK, UsageError, action, collect, isUnreachable, parseIntArg, printJson, printTable, usageExit, withCommon } from './common';
import type { CommonOptions } from './common';
import { readJsonFile } from './reassign';
import { withAdmin } from './topics';

/** Kafka's consumer group states (ConsumerGroupState), as ListGroups filters them. */
export const GROUP_STATES = ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead'] as const;

/** `--state S,S`: Kafka's group state names, any case; usage errors name the bad one. */
export function parseGroupStates(value: string): string[] {
  return value.split(',').map((raw) => {
    const s = raw.trim();
    const known = GROUP_STATES.find((g) => g.toLowerCase() === s.toLowerCase());
    if (known === undefined) throw new UsageError(`--state must be among ${GROUP_STATES.join(', ')}, got '${s}'`);
    return known;
  });
}

interface RemoveMembersOptions extends CommonOptions {
  instanceId: string[];
  memberId: string[];
  allMembers?: boolean;
  reason?: string;
}

interface ResetOptions extends CommonOptions, GroupSelection {
  topic: string[];
  allTopics?: boolean;
  toEarliest?: boolean;
  toLatest?: boolean;
  toCurrent?: boolean;
  toOffset?: string;
  toDatetime?: string;
  byDuration?: string;
  shiftBy?: string;
  fromFile?: string;
  dryRun: boolean;
  execute: boolean;
  export: boolean;
}

/** One partition of a reset plan as Kafka's --export writes it and --from-file reads it. */
export interface ResetPlanEntry {
  topic: string;
  partition: number;
  offset: number;
}

/**
 * Reads reset plans in kafka-consumer-groups' CSV (what its --export writes, --from-file reads):
 * one partition per line, `group,topic,partition,offset` (Kafka's form for several groups), or
 * `topic,partition,offset` (its form for one group), whose lines are `soleGroup`'s: with several
 * groups (`soleGroup` undefined) such a file names no group and is a usage error, as Kafka's tool
 * reads it only for a single --group. Returns each group's partitions in the order first named;
 * blank lines are skipped; a partition named twice takes its last offset, as Kafka's tool does.
 * Usage errors name the line.
 */
export function parseResetPlansCsv(text: string, soleGroup: string | undefined): Map<string, ResetPlanEntry[]> {
  const lines = text.split(/\r?\n/).map((l, i) => ({ n: i + 1, fields: l.split(',').map((f) => f.trim()) })).filter((l) => l.fields.join('') !== '');
  if (lines.length === 0) throw new UsageError('--from-file: the file names no partition (Kafka\'s CSV: topic,partition,offset per line)');
  const width = lines[0]?.fields.length;
  if (width === 3 && soleGroup === undefined) throw new UsageError('--from-file: topic,partition,offset lines name no group: for several groups (or --all-groups) every line is group,topic,partition,offset, as --export writes it for several groups');
  const plans = new Map<string, Map<string, ResetPlanEntry>>();
  for (const { n, fields } of lines) {
    if ((width !== 3 && width !== 4) || fields.length !== width) throw new UsageError(`--from-file line ${n}: expected topic,partition,offset (or group,topic,partition,offset on every line), got '${fields.join(',')}'`);
    const [group, topic, partition, offset] = width === 4 ? fields : [soleGroup, ...fields];
    if (group === undefined || group === '') throw new UsageError(`--from-file line ${n}: no group name`);
    if (topic === undefined || topic === '') throw new UsageError(`--from-file line ${n}: no topic name`);
    const entry = { topic, partition: parseIntArg(partition ?? '', `--from-file line ${n} partition`, 0), offset: parseIntArg(offset ?? '', `--from-file line ${n} offset`, -Number.MAX_SAFE_INTEGER) };
    const plan = plans.get(group) ?? new Map<string, ResetPlanEntry>();
    plan.set(`${topic}\u0000${entry.partition}`, entry);
    plans.set(group, plan);
  }
  return new Map([...plans].map(([group, plan]) => [group, [...plan.values()]]));
}

/** The words for a group a reset plan names no partition of (Kafka's "No reset plan for group G found."). */
function noPlanFor(group: string): string {
  return `no reset plan for group ${group} found (its lines start with ${group},)`;
}

/** One group's plan from a CSV as parseResetPlansCsv reads it; none for `group` is a usage error. */
export function parseResetPlanCsv(text: string, group: string): ResetPlanEntry[] {
  const plan = parseResetPlansCsv(text, group).get(group);
  if (plan === undefined) throw new UsageError(`--from-file: ${noPlanFor(group)}`);
  return plan;
}

/**
 * `--to-datetime`: milliseconds since the epoch, or Kafka's 'YYYY-MM-DDTHH:mm:SS.sss' with an
 * optional zone ('Z', '+01:00', '+0100'); without one it is local time, as kafka-consumer-groups
 * reads it.
 */
export function parseDatetimeArg(value: string): number {
  const v = value.trim();
  if (/^\d+$/.test(v)) return parseIntArg(v, '--to-datetime', 0);
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?)(Z|[+-]\d{2}:?\d{2})?$/.exec(v);
  const zone = m?.[2] === undefined || m[2] === 'Z' ? (m?.[2] ?? '') : m[2].includes(':') ? m[2] : `${m[2].slice(0, 3)}:${m[2].slice(3)}`;
  const ms = m === null ? NaN : Date.parse(`${m[1]}${zone}`);
  if (!Number.isFinite(ms)) throw new UsageError(`--to-datetime must be milliseconds since the epoch or 'YYYY-MM-DDTHH:mm:SS.sss' (optionally with a zone such as Z or +01:00), got '${value}'`);
  return ms;
}

/** `--by-duration`: an ISO-8601 duration as Java's Duration.parse reads it (PnDTnHnMn.nS), in ms. */
export function parseDurationArg(value: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/i.exec(value.trim());
  if (m === null || m.slice(1).every((g) => g === undefined) || /T$/i.test(value.trim())) throw new UsageError(`--by-duration must be an ISO-8601 duration such as PT15M, P1DT2H or PT0.5S, got '${value}'`);
  const [d, h, min, sec] = m.slice(1).map((g) => Number(g ?? 0)) as [number, number, number, number];
  return Math.round(((d * 24 + h) * 60 + min) * 60_000 + sec * 1000);
}

/** One partition of a group's reset plan: its committed offset now (-1: none) and the new one. */
interface PlannedOffset {
  topic: string;
  partition: number;
  current: number;
  target: number;
}

/** reset-offsets' options, checked and parsed once, before any request, for every group alike. */
interface ResetSpec {
  opts: ResetOptions;
  toOffset?: number;
  shiftBy?: number;
  /** --to-datetime, or now minus --by-duration: one instant for every group (ms since the epoch). */
  timestamp?: number;
  /** --topic: the partitions of each topic, or 'all' of them (absent with --all-topics and --from-file). */
  topics?: Map<string, number[] | 'all'>;
  /** --from-file: each group's partitions and offsets. */
  fromFile?: Map<string, ResetPlanEntry[]>;
}

/**
 * Checks reset-offsets' options and reads --from-file (usage errors exit 2 with nothing sent).
 * `groups` is the selection: the named groups, or 'all' for --all-groups. As kafka-consumer-groups,
 * a file of topic,partition,offset lines goes with one named group only; a named group the file
 * has no line for is a usage error too.
 */
function resetSpec(opts: ResetOptions, groups: readonly string[] | 'all'): ResetSpec {
  const modes = [opts.toEarliest, opts.toLatest, opts.toCurrent, opts.toOffset !== undefined, opts.toDatetime !== undefined, opts.byDuration !== undefined, opts.shiftBy !== undefined, opts.fromFile !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('give exactly one of --to-earliest, --to-latest, --to-current, --to-offset N, --to-datetime T, --by-duration D, --shift-by N, --from-file F');
  if (opts.allTopics && opts.topic.length > 0) throw new UsageError('give --topic or --all-topics, not both');
  // --from-file names its partitions: as kafka-consumer-groups, it needs no scope and takes none.
  const fromFile = opts.fromFile === undefined ? undefined : parseResetPlansCsv(readJsonFile(opts.fromFile, '--from-file'), groups !== 'all' && groups.length === 1 ? groups[0] : undefined);
  if (fromFile !== undefined && groups !== 'all') for (const g of groups) if (!fromFile.has(g)) throw new UsageError(`--from-file: ${noPlanFor(g)}`);
  if (fromFile !== undefined && (opts.allTopics || opts.topic.length > 0)) process.stderr.write('strand groups reset-offsets: --topic and --all-topics are ignored with --from-file: the file names the partitions (as kafka-consumer-groups)\n');
  if (fromFile === undefined && !opts.allTopics && opts.topic.length === 0) throw new UsageError('give --topic TOPIC (repeatable; TOPIC:P1,P2 for some partitions) or --all-topics');
  // Parsed before any request, so a bad value is a usage error whatever the cluster holds.
  return {
    opts,
    ...(fromFile === undefined && !opts.allTopics ? { topics: parseTopicPartitionSpecs(opts.topic) } : {}),
    ...(opts.toOffset === undefined ? {} : { toOffset: parseIntArg(opts.toOffset, '--to-offset', 0) }),
    ...(opts.shiftBy === undefined ? {} : { shiftBy: parseIntArg(opts.shiftBy, '--shift-by', -Number.MAX_SAFE_INTEGER) }),
    ...(opts.toDatetime !== undefined ? { timestamp: parseDatetimeArg(opts.toDatetime) } : opts.byDuration !== undefined ? { timestamp: Date.now() - parseDurationArg(opts.byDuration) } : {}),
    ...(fromFile === undefined ? {} : { fromFile }),
  };
}

/** `group`'s reset plan (`fromFile`: its lines of --from-file), read from the cluster now. */
async function plan(admin: Admin, group: string, spec: ResetSpec, fromFile: readonly ResetPlanEntry[] | undefined): Promise<PlannedOffset[]> {
  const { opts, toOffset, shiftBy, timestamp } = spec;
  // --all-topics: every topic the group has committed offsets for (Kafka's tool takes those of
  // the group's offsets, as it must be empty to be reset).
  const fileOffsets = new Map((fromFile ?? []).map((e) => [`${e.topic}\u0000${e.partition}`, e.offset]));
  const fileSpecs = new Map<string, number[]>();
  for (const e of fromFile ?? []) fileSpecs.set(e.topic, [...(fileSpecs.get(e.topic) ?? []), e.partition]);
  const specs: Map<string, number[] | 'all'> = fromFile !== undefined ? fileSpecs : (spec.topics ?? new Map([...new Set((await admin.groupOffsets(group)).map((o) => o.topic))].map((t): [string, 'all'] => [t, 'all'])));
  const out: PlannedOffset[] = [];
  for (const [topic, parts] of specs) {
    const earliest = await admin.listOffsets(topic, 'earliest');
    const latest = await admin.listOffsets(topic, 'latest');
    const wanted = parts === 'all' ? earliest.map((o) => o.partition) : parts;
    const committed = new Map((await admin.groupOffsets(group, [topic])).map((o: GroupOffset) => [o.partition, o.committedOffset]));
    const byTime = timestamp !== undefined ? await admin.listOffsets(topic, { timestamp }) : [];
    for (const partition of wanted) {
      const lo = earliest.find((o) => o.partition === partition)?.offset;
      const hi = latest.find((o) => o.partition === partition)?.offset;
      if (lo === undefined || hi === undefined) throw new UsageError(`${topic} has no partition ${partition}`);
      const current = committed.get(partition) ?? -1;
      let target: number;
      if (opts.toEarliest) target = lo;
      else if (opts.toLatest) target = hi;
      // Kafka's --to-current: a partition without a committed offset goes to the log end.
      else if (opts.toCurrent) target = current < 0 ? hi : current;
      else if (toOffset !== undefined) target = toOffset;
      else if (fromFile !== undefined) target = fileOffsets.get(`${topic}\u0000${partition}`) as number;
      else if (timestamp !== undefined) {
        // No record at or after the time (the broker answers -1): the log end, as
        // kafka-consumer-groups falls back to the latest offset.
        const found = byTime.find((o) => o.partition === partition)?.offset ?? -1;
        target = found < 0 ? hi : found;
      } else {
        if (current < 0) throw new UsageError(`cannot shift the offset of ${topic}-${partition}: the group has no committed offset there (as kafka-consumer-groups)`);
        target = current + (shiftBy as number);
      }
      // Like kafka-consumer-groups: targets outside the log are clamped into it.
      target = Math.min(hi, Math.max(lo, target));
      out.push({ topic, partition, current, target });
    }
  }
  return out;
}

/**
 * Parses delete-offsets' and reset-offsets' repeated `--topic T` / `--topic T:P1,P2` (Kafka's
 * --topic of both): per topic, its partitions in order, each once, or 'all' (a bare T wins over a
 * list). Usage errors name the bad one.
 */
export function parseTopicPartitionSpecs(specs: readonly string[]): Map<string, number[] | 'all'> {
  if (specs.length === 0) throw new UsageError('give --topic TOPIC (repeatable; TOPIC:P1,P2 for some partitions)');
  const out = new Map<string, number[] | 'all'>();
  for (const spec of specs) {
    const i = spec.indexOf(':');
    const topic = i < 0 ? spec : spec.slice(0, i);
    if (topic === '') throw new UsageError(`--topic needs a topic name, got '${spec}'`);
    if (i < 0) {
      out.set(topic, 'all');
      continue;
    }
    const listed = spec.slice(i + 1).split(',').map((p) => parseIntArg(p, `--topic ${topic} partition`, 0));
    const cur = out.get(topic);
    if (cur === 'all') continue;
    out.set(topic, [...new Set([...(cur ?? []), ...listed])]);
  }
  return out;
}

/** One partition's outcome of delete-offsets; `partition` null: the topic's partitions could not be listed. */
interface DeletedOffset {
  topic: string;
  partition: number | null;
  error?: StrandError;
}

async function deleteOffsets(admin: Admin, group: string, specs: Map<string, number[] | 'all'>): Promise<DeletedOffset[]> {
  const out: DeletedOffset[] = [];
  const partitions: TopicPartition[] = [];
  for (const [topic, wanted] of specs) {
    if (wanted !== 'all') {
      partitions.push(...wanted.map((partition) => ({ topic, partition })));
      continue;
    }
    // Every partition of the topic, as Kafka's tool lists them (describeTopics); an unknown topic
    // is reported on its own row without a partition.
    try {
      const [d] = await admin.describeTopics([topic]);
      partitions.push(...(d?.partitions ?? []).map((p) => ({ topic, partition: p.partition })));
    } catch (e: unknown) {
      if (!(e instanceof StrandError) || e.errorName !== 'UNKNOWN_TOPIC_OR_PARTITION') throw e;
      out.push({ topic, partition: null, error: e });
    }
  }
  try {
    out.push(...(await admin.deleteConsumerGroupOffsets(group, partitions)));
  } catch (e: unknown) {
    // The group's own errors, worded as kafka-consumer-groups words them.
    if (e instanceof StrandError && e.errorName === 'GROUP_ID_NOT_FOUND') throw new StrandError('GROUP_ID_NOT_FOUND', `consumer group '${group}' does not exist`);
    if (e instanceof StrandError && e.errorName === 'NON_EMPTY_GROUP') throw new StrandError('NON_EMPTY_GROUP', `deleting offsets of consumer group '${group}' is forbidden while it has members (of a protocol other than consumer)`);
    throw e;
  }
  return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : (a.partition ?? -1) - (b.partition ?? -1)));
}

/** How describe and delete name their groups: arguments and repeated --group, or --all-groups. */
interface GroupSelection {
  group: string[];
  allGroups?: boolean;
}

interface DescribeGroupsOptions extends CommonOptions, GroupSelection {
  offsets?: boolean;
  members?: boolean;
  verbose?: boolean;
  state?: boolean;
}

/**
 * The groups a command acts on, each once in the order given: those named (as arguments or by
 * Kafka's repeated --group), or with --all-groups every group the cluster lists, sorted.
 */
export async function selectGroups(admin: Pick<Admin, 'listGroups'>, names: readonly string[], opts: GroupSelection): Promise<string[]> {
  const named = groupSelection(names, opts);
  return named === 'all' ? (await admin.listGroups()).map((g) => g.groupId) : named;
}

/** The groups named, each once in the order given, or 'all' for --all-groups; checked before any request. */
export function groupSelection(names: readonly string[], opts: GroupSelection): string[] | 'all' {
  const named = [...new Set([...names, ...opts.group])];
  if (opts.allGroups === true && named.length > 0) throw new UsageError('give group names (arguments or --group) or --all-groups, not both');
  if (opts.allGroups === true) return 'all';
  if (named.length === 0) throw new UsageError('give a group (several: as arguments or a repeated --group G) or --all-groups');
  return named;
}

/**
 * Prints one group's describe view as kafka-consumer-groups prints it: its notes on stderr
 * ("has no active members", "is rebalancing"), then on stdout a blank line and the group's table,
 * left out when it would have no rows (Kafka's shouldPrintMemberState); --json: one line. A group
 * that does not exist throws GROUP_ID_NOT_FOUND.
 */
async function describeGroupView(admin: Admin, group: string, view: 'offsets' | 'members' | 'state', opts: DescribeGroupsOptions): Promise<void> {
  const notFound = (): StrandError => new StrandError('GROUP_ID_NOT_FOUND', `consumer group '${group}' does not exist`);
  const note = (state: string): void => {
    if (state === 'Empty' || state === 'Dead') process.stderr.write(`\nConsumer group '${group}' has no active members.\n`);
    else if (state === 'PreparingRebalance' || state === 'CompletingRebalance') process.stderr.write(`\nWarning: Consumer group '${group}' is rebalancing.\n`);
  };
  const table = (headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void => {
    if (rows.length === 0) return;
    process.stdout.write('\n');
    printTable(headers, rows);
  };
  if (view !== 'offsets') {
    const d = await admin.describeGroup(group);
    if (d.state === 'Dead' && d.members.length === 0) throw notFound();
    if (view === 'state') {
      if (opts.json) return printJson({ group: d.groupId, coordinator: d.coordinator, assignmentStrategy: d.protocol, state: d.state, members: d.members.length });
      note(d.state);
      table(['GROUP', 'COORDINATOR (ID)', 'ASSIGNMENT-STRATEGY', 'STATE', '#MEMBERS'], [[d.groupId, `${d.coordinator.host}:${d.coordinator.port} (${d.coordinator.id})`, d.protocol || '-', d.state, d.members.length]]);
      return;
    }
    const assignment = (tps: readonly TopicPartition[]): string => {
      const byTopic = new Map<string, number[]>();
      for (const tp of tps) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
      return [...byTopic].sort(([a], [b]) => (a < b ? -1 : 1)).map(([t, ps]) => `${t}(${ps.sort((x, y) => x - y).join(',')})`).join(',') || '-';
    };
    if (opts.json) return printJson(d.members.map((m) => ({ group: d.groupId, memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? null, host: m.clientHost, clientId: m.clientId, partitions: m.assignment.length, ...(opts.verbose === true ? { assignment: m.assignment } : {}) })));
    note(d.state);
    table(
      ['GROUP', 'CONSUMER-ID', 'GROUP-INSTANCE-ID', 'HOST', 'CLIENT-ID', '#PARTITIONS', ...(opts.verbose === true ? ['ASSIGNMENT'] : [])],
      d.members.map((m) => [d.groupId, m.memberId, m.groupInstanceId ?? '-', m.clientHost, m.clientId, m.assignment.length, ...(opts.verbose === true ? [assignment(m.assignment)] : [])]),
    );
    return;
  }
  const desc = await admin.describeGroup(group);
  const committed = await admin.groupOffsets(group);
  if (desc.state === 'Dead' && desc.members.length === 0 && committed.length === 0) throw notFound();
  // Like kafka-consumer-groups: every assigned partition has a row, committed or not.
  const have = new Set(committed.map((o) => `${o.topic}\u0000${o.partition}`));
  const unassigned = desc.members.flatMap((m) => m.assignment).filter((tp) => !have.has(`${tp.topic}\u0000${tp.partition}`));
  const ends = new Map<string, number>();
  for (const topic of new Set(unassigned.map((tp) => tp.topic))) for (const o of await admin.listOffsets(topic, 'latest')) ends.set(`${topic}\u0000${o.partition}`, o.offset);
  const offsets: GroupOffset[] = [...committed, ...unassigned.map((tp) => ({ topic: tp.topic, partition: tp.partition, committedOffset: -1, logEndOffset: ends.get(`${tp.topic}\u0000${tp.partition}`) ?? -1, lag: -1, metadata: '' }))];
  offsets.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  const owner = new Map<string, (typeof desc.members)[number]>();
  for (const m of desc.members) for (const tp of m.assignment) owner.set(`${tp.topic}-${tp.partition}`, m);
  if (opts.json) return printJson({ ...desc, error: desc.error?.errorName, offsets: offsets.map((o) => ({ ...o, memberId: owner.get(`${o.topic}-${o.partition}`)?.memberId ?? null })) });
  note(desc.state);
  table(
    ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'],
    offsets.map((o) => {
      const m = owner.get(`${o.topic}-${o.partition}`);
      return [desc.groupId, o.topic, o.partition, o.committedOffset < 0 ? '-' : o.committedOffset, o.logEndOffset < 0 ? '-' : o.logEndOffset, o.lag < 0 ? '-' : o.lag, m?.memberId ?? '-', m?.clientHost ?? '-', m?.clientId ?? '-'];
    }),
  );
}

export function registerGroups(program: Command): void {
  const groups = usageExit(program.command('groups').description('list, describe, delete consumer groups, remove their members, and reset or delete their offsets'));

  withCommon(groups.command('list').description('list consumer groups'))
    .option('--state <states>', `only groups in these states, comma-separated (Kafka's --state: ${GROUP_STATES.join(', ')})`)
    .action(
      action('groups list', async (opts: CommonOptions & { state?: string }) => {
        const states = opts.state === undefined ? [] : parseGroupStates(opts.state);
        const list = await withAdmin(opts, (admin) => admin.listGroups({ states }));
        if (opts.json) return printJson(list);
        printTable(['Group', 'State', 'Protocol'], list.map((g) => [g.groupId, g.state, g.protocolType]));
      }),
    );

  withCommon(groups.command('describe [groups...]').description("state, members and per-partition offsets and lag of groups (Kafka's --describe): each named group, or every group with --all-groups, a table each"))
    .option('-g, --group <group>', "a group to describe (repeatable; Kafka's --group), besides those named as arguments", collect, [] as string[])
    .option('--all-groups', "every group in the cluster (Kafka's --all-groups)")
    .option('--offsets', "per-partition offsets and lag, with each partition's member (Kafka's --offsets; the default)")
    .option('--members', "the members (Kafka's --members): CONSUMER-ID GROUP-INSTANCE-ID HOST CLIENT-ID #PARTITIONS")
    .option('--verbose', 'with --members, also each member\'s assignment')
    .option('--state', "the group's state (Kafka's --state): COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS")
    .action(
      action('groups describe', async (names: string[], opts: DescribeGroupsOptions) => {
        if ([opts.offsets, opts.members, opts.state].filter((x) => x === true).length > 1) throw new UsageError('give at most one of --offsets, --members and --state');
        if (opts.verbose === true && opts.members !== true) throw new UsageError('--verbose goes with --members');
        const view = opts.members === true ? 'members' : opts.state === true ? 'state' : 'offsets';
        const missing = await withAdmin(opts, async (admin) => {
          const notFound: StrandError[] = [];
          // One group at a time, each printed before the next is asked for, as kafka-consumer-groups
          // prints one table per group; a group that does not exist is reported and the others
          // still described.
          for (const group of await selectGroups(admin, names, opts)) {
            try {
              await describeGroupView(admin, group, view, opts);
            } catch (e: unknown) {
              if (!(e instanceof StrandError) || e.errorName !== 'GROUP_ID_NOT_FOUND') throw e;
              notFound.push(e);
            }
          }
          return notFound;
        });
        for (const e of missing) process.stderr.write(`strand groups describe: ${e.errorName}: ${e.message}\n`);
        return missing.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );

  withCommon(groups.command('delete [groups...]').description("delete empty groups and their committed offsets (Kafka's --delete): each named group, or every group with --all-groups"), false)
    .option('-g, --group <group>', "a group to delete (repeatable; Kafka's --group), besides those named as arguments", collect, [] as string[])
    .option('--all-groups', "every group in the cluster (Kafka's --all-groups); those with members are refused (NON_EMPTY_GROUP)")
    .action(
      action('groups delete', async (names: string[], opts: CommonOptions & GroupSelection) => {
        const results = await withAdmin(opts, async (admin) => admin.deleteGroups(await selectGroups(admin, names, opts)));
        // kafka-consumer-groups' wording: one line when all went, else the failures on stderr.
        const quoted = (rs: readonly { name: string }[]): string => rs.map((r) => `'${r.name}'`).join(', ');
        const failed = results.filter((r) => r.error !== undefined);
        const deleted = results.filter((r) => r.error === undefined);
        if (failed.length === 0) {
          process.stdout.write(`Deletion of requested consumer groups (${quoted(deleted)}) was successful.\n`);
          return EXIT_OK;
        }
        process.stderr.write(`Deletion of some consumer groups failed:\n${failed.map((r) => `* Group '${r.name}' could not be deleted due to: ${r.error?.errorName}: ${r.error?.message}\n`).join('')}`);
        if (deleted.length > 0) process.stdout.write(`These consumer groups were deleted successfully: ${quoted(deleted)}\n`);
        return EXIT_FAILED;
      }),
    );

  withCommon(groups.command('delete-offsets <group>').description('delete committed offsets of some partitions (Kafka\'s --delete-offsets): not of topics the group\'s members consume'))
    .option('-t, --topic <topic[:p1,p2]>', 'topic, optionally with partitions (repeatable; without: every partition)', collect, [] as string[])
    .action(
      action('groups delete-offsets', async (group: string, opts: CommonOptions & { topic: string[] }) => {
        const specs = parseTopicPartitionSpecs(opts.topic);
        const results = await withAdmin(opts, (admin) => deleteOffsets(admin, group, specs));
        const failed = results.filter((r) => r.error !== undefined);
        if (opts.json) {
          printJson(results.map((r) => ({ topic: r.topic, partition: r.partition, error: r.error?.errorName ?? null, message: r.error?.message ?? null })));
        } else {
          printTable(['TOPIC', 'PARTITION', 'STATUS'], results.map((r) => [r.topic, r.partition ?? '-', r.error === undefined ? 'Successful' : r.error.errorName]));
          for (const r of failed) process.stderr.write(`strand groups delete-offsets: ${r.topic}${r.partition === null ? '' : `-${r.partition}`}: ${r.error?.errorName}: ${r.error?.message}\n`);
        }
        return failed.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );

  withCommon(groups.command('remove-members <group>').description("remove members so the group rebalances without them (Kafka's Admin removeMembersFromConsumerGroup): static members by instance id, any by member id, or all"))
    .option('--instance-id <id>', "a static member's group.instance.id (repeatable)", collect, [] as string[])
    .option('--member-id <id>', 'a member id as groups describe shows it (repeatable)', collect, [] as string[])
    .option('--all-members', 'every member the group has now')
    .option('--reason <text>', "why, for the coordinator's log")
    .action(
      action('groups remove-members', async (group: string, opts: RemoveMembersOptions) => {
        const named: MemberToRemove[] = [...opts.instanceId.map((groupInstanceId) => ({ groupInstanceId })), ...opts.memberId.map((memberId) => ({ memberId }))];
        if (opts.allMembers === true && named.length > 0) throw new UsageError('give --instance-id / --member-id or --all-members, not both');
        if (opts.allMembers !== true && named.length === 0) throw new UsageError('give --instance-id ID or --member-id ID (repeatable), or --all-members');
        const results = await withAdmin(opts, (admin) => admin.removeMembersFromConsumerGroup(group, named, opts.reason === undefined ? {} : { reason: opts.reason }));
        const failed = results.filter((r) => r.error !== undefined);
        if (opts.json) {
          printJson(results.map((r) => ({ memberId: r.memberId, groupInstanceId: r.groupInstanceId ?? null, error: r.error?.errorName ?? null, message: r.error?.message ?? null })));
        } else if (results.length === 0) {
          process.stdout.write(`Group ${group} has no members.\n`);
        } else {
          printTable(['MEMBER-ID', 'GROUP-INSTANCE-ID', 'STATUS'], results.map((r) => [r.memberId === '' ? '-' : r.memberId, r.groupInstanceId ?? '-', r.error === undefined ? 'Removed' : r.error.errorName]));
          for (const r of failed) process.stderr.write(`strand groups remove-members: ${r.error?.errorName}: ${r.error?.message}\n`);
        }
        return failed.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );

  withCommon(groups.command('reset-offsets [groups...]').description("set committed offsets of empty groups (Kafka's --reset-offsets): each named group, or every group with --all-groups (prints the plan; --execute applies it)"))
    .option('-g, --group <group>', "a group to reset (repeatable; Kafka's --group), besides those named as arguments", collect, [] as string[])
    .option('--all-groups', "every group in the cluster (Kafka's --all-groups); those with members are refused (NON_EMPTY_GROUP)")
    .option('-t, --topic <topic[:p1,p2]>', 'topic, optionally with partitions (repeatable)', collect, [] as string[])
    .option('--all-topics', 'every topic the group has committed offsets for')
    .option('--to-earliest', 'to the log start offset')
    .option('--to-latest', 'to the log end offset')
    .option('--to-current', 'to the committed offset (the log end where there is none)')
    .option('--to-offset <n>', 'to an absolute offset')
    .option('--to-datetime <t>', "to the first offset at or after a time: ms since the epoch or 'YYYY-MM-DDTHH:mm:SS.sss' (local time unless it ends with Z or +hh:mm)")
    .option('--by-duration <d>', 'to the first offset at or after now minus an ISO-8601 duration (PT15M, P1DT2H)')
    .option('--shift-by <n>', 'move the committed offset by n (negative: back)')
    .option('--from-file <file>', "to the offsets of a CSV as --export writes it (Kafka's --from-file): topic,partition,offset per line for one group, group,topic,partition,offset for several (- for stdin)")
    .option('--dry-run', "only print the plan (Kafka's --dry-run; the default without --execute)", false)
    .option('--execute', 'apply the plan (without it, only print it)', false)
    .option('--export', "print the plan as Kafka's CSV instead of the table (for --from-file): topic,partition,offset per line for one named group, group,topic,partition,offset for several or --all-groups", false)
    .action(
      action('groups reset-offsets', async (names: string[], opts: ResetOptions) => {
        if (opts.dryRun && opts.execute) throw new UsageError('give --dry-run or --execute, not both');
        if (opts.export && opts.json) throw new UsageError('give --export or --json, not both');
        const selection = groupSelection(names, opts);
        const spec = resetSpec(opts, selection);
        // A group's own refusal (active, no line in the file, its commit refused) fails that group
        // only: reported on stderr, the others still reset, exit 1. Anything else stops the command.
        const failed: string[] = [];
        const plans = await withAdmin(opts, async (admin) => {
          const planned: { group: string; partitions: PlannedOffset[] }[] = [];
          // Every plan first, then (--execute) every commit: a usage error found while planning
          // (a missing partition, nothing to shift from) leaves every group as it was.
          for (const group of await selectGroups(admin, names, opts)) {
            // Kafka's tool refuses an active group: its members would overwrite the new offsets
            // with their next commits (the broker refuses the commit too).
            const state = (await admin.describeGroup(group)).state;
            if (state !== 'Empty' && state !== 'Dead') {
              failed.push(`NON_EMPTY_GROUP: Assignments can only be reset if the group '${group}' is inactive, but the current state is ${state}.`);
              continue;
            }
            const lines = spec.fromFile?.get(group);
            if (spec.fromFile !== undefined && lines === undefined) {
              failed.push(noPlanFor(group));
              continue;
            }
            planned.push({ group, partitions: await plan(admin, group, spec, lines) });
          }
          if (!opts.execute) return planned;
          const applied: typeof planned = [];
          for (const p of planned) {
            try {
              await admin.setGroupOffsets(p.group, p.partitions.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.target })));
              applied.push(p);
            } catch (e: unknown) {
              if (!(e instanceof StrandError) || isUnreachable(e)) throw e;
              failed.push(`${e.errorName}: ${e.message}`);
            }
          }
          return applied;
        });
        for (const f of failed) process.stderr.write(`strand groups reset-offsets: ${f}\n`);
        // kafka-consumer-groups warns (on stderr) when neither --dry-run nor --execute is given.
        if (!opts.execute && !opts.dryRun) process.stderr.write('WARN: No action will be performed as the --execute option is missing. Add --dry-run to ask for the plan explicitly, or --execute to apply it.\n');
        const code = failed.length > 0 ? EXIT_FAILED : EXIT_OK;
        if (opts.json) {
          for (const p of plans) printJson({ group: p.group, executed: opts.execute, partitions: p.partitions });
          return code;
        }
        // Nothing planned (every group failed): nothing on stdout.
        if (plans.length === 0 && failed.length > 0) return code;
        // --export: Kafka's CSV lines, and the blank line its println adds; the GROUP column unless
        // exactly one group was named, as Kafka's tool writes it.
        if (opts.export) {
          const withGroup = selection === 'all' || selection.length > 1;
          process.stdout.write(`${plans.flatMap((p) => p.partitions.map((r) => `${withGroup ? `${p.group},` : ''}${r.topic},${r.partition},${r.target}\n`)).join('')}\n`);
          return code;
        }
        // Kafka's table of the new offsets (the plan, or what --execute set) of every group, after a blank line.
        const rows = plans.flatMap((p) => p.partitions.map((r) => [p.group, r.topic, r.partition, r.target]));
        process.stdout.write('\n');
        if (rows.length > 0) printTable(['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET'], rows);
        return code;
      }),
    );
}
