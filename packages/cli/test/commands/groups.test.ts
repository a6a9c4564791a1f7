/**
 * `strand groups delete-offsets` (Kafka's kafka-consumer-groups --delete-offsets): the --topic
 * specs are checked as a function (usage errors name the bad one), and the built binary runs
 * against the in-memory broker twin of packages/client while an in-process consumer is a member
 * of the group: one row per partition (TOPIC PARTITION STATUS, "Successful" or the error),
 * GROUP_SUBSCRIBED_TO_TOPIC for the topic the member consumes, an unknown topic on its own row,
 * --json, and exit 0 / 1 (any partition failed, or the group itself) / 2. The broker's own rules
 * are tested in packages/broker/test/group. Also against the twin: describe and delete of several
 * groups and --all-groups (one table per group, as kafka-consumer-groups prints them),
 * reset-offsets --export / --from-file with Kafka's CSV reset plans (the parser as a function too),
 * and reset-offsets of several groups or --all-groups: one table, an active group (a consumer in
 * it) refused alone with exit 1, group,topic,partition,offset CSV out and in.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Consumer } from '@strand/client';
import { parseDatetimeArg, parseDurationArg, parseGroupStates, parseResetPlanCsv, parseResetPlansCsv, parseTopicPartitionSpecs } from '../../src/commands/groups';
import type { StrandRun } from '../support/run-strand';
import { useTwinCluster } from '../support/twin-cluster';
import { usage } from '../support/usage';

describe('parseTopicPartitionSpecs', () => {
  it('reads T and T:P1,P2, merges repeats, and lets a bare topic mean every partition', () => {
    expect(parseTopicPartitionSpecs(['t:1,0', 'u', 't:0,2', 'v:3', 'v'])).toEqual(
      new Map<string, number[] | 'all'>([
        ['t', [1, 0, 2]],
        ['u', 'all'],
        ['v', 'all'],
      ]),
    );
    expect(usage(() => parseTopicPartitionSpecs([]))).toMatch(/give --topic TOPIC/);
    expect(usage(() => parseTopicPartitionSpecs([':0']))).toMatch(/--topic needs a topic name, got ':0'/);
    expect(usage(() => parseTopicPartitionSpecs(['t:']))).toMatch(/--topic t partition must be an integer/);
    expect(usage(() => parseTopicPartitionSpecs(['t:0,x']))).toMatch(/--topic t partition must be an integer, got 'x'/);
    expect(usage(() => parseTopicPartitionSpecs(['t:-1']))).toMatch(/--topic t partition must be an integer >= 0/);
  });
});

describe("reset-offsets' --to-datetime and --by-duration", () => {
  it("reads milliseconds and Kafka's YYYY-MM-DDTHH:mm:SS.sss with or without a zone (local time without)", () => {
    expect(parseDatetimeArg('1700000000000')).toBe(1_700_000_000_000);
    expect(parseDatetimeArg('2020-01-01T00:00:00.000Z')).toBe(Date.UTC(2020, 0, 1));
    expect(parseDatetimeArg('2020-01-01T01:30:00+01:30')).toBe(Date.UTC(2020, 0, 1));
    expect(parseDatetimeArg('2020-01-01T02:00:00.5+0200')).toBe(Date.UTC(2020, 0, 1, 0, 0, 0, 500));
    expect(parseDatetimeArg('2020-01-01T00:00:00')).toBe(new Date(2020, 0, 1).getTime());
    for (const bad of ['yesterday', '2020-01-01', '2020-13-01T00:00:00', '2020-01-01 00:00:00', '-5']) expect(usage(() => parseDatetimeArg(bad))).toMatch(/--to-datetime must be/);
  });

  it('reads ISO-8601 durations as Java does (PnDTnHnMn.nS)', () => {
    expect(parseDurationArg('PT15M')).toBe(15 * 60_000);
    expect(parseDurationArg('P1DT2H')).toBe(26 * 3_600_000);
    expect(parseDurationArg('pt0.5s')).toBe(500);
    expect(parseDurationArg('P2D')).toBe(2 * 86_400_000);
    for (const bad of ['P', 'PT', 'P1DT', '15M', 'PT-1M', 'P1H']) expect(usage(() => parseDurationArg(bad))).toMatch(/--by-duration must be/);
  });
});

describe('strand groups delete-offsets', () => {
  const twin = useTwinCluster();
  const strand = (args: string[]): Promise<StrandRun> => twin.strand(args);
  const committed = (topic: string, partition: number): number | undefined => twin.mem.groups.get('g')?.offsets.get(`${topic}\u0000${partition}`)?.offset;


  it('deletes per partition, refuses the topics a member consumes, and exits 1 when any partition or the group failed', async () => {
    twin.mem.createTopic('t', 2);
    twin.mem.createTopic('u', 1);
    // A member of g subscribed to t, committing offsets of t and of u (no auto commit: the offsets
    // stay exactly these).
    const c = new Consumer({ 'bootstrap.servers': twin.mem.bootstrap, 'group.id': 'g', 'enable.auto.commit': false, 'fetch.max.wait.ms': 20, 'heartbeat.interval.ms': 50 });
    try {
      c.subscribe(['t']);
      const deadline = performance.now() + 10_000;
      while (twin.mem.groups.get('g')?.state !== 'Stable' && performance.now() < deadline) await c.poll(50);
      await c.commit([{ topic: 't', partition: 0, offset: 2 }, { topic: 't', partition: 1, offset: 1 }, { topic: 'u', partition: 0, offset: 4 }]);

      const r = await strand(['groups', 'delete-offsets', 'g', '--topic', 't', '--topic', 'u:0']);
      expect(r.code).toBe(1);
      expect(r.stdout.split('\n').map((l) => l.split(/\s+/).join(' '))).toEqual(['TOPIC PARTITION STATUS', 't 0 GROUP_SUBSCRIBED_TO_TOPIC', 't 1 GROUP_SUBSCRIBED_TO_TOPIC', 'u 0 Successful', '']);
      expect(r.stderr).toMatch(/^strand groups delete-offsets: t-0: GROUP_SUBSCRIBED_TO_TOPIC: delete the offset of g on t-0: /m);
      expect([committed('t', 0), committed('t', 1), committed('u', 0)]).toEqual([2, 1, undefined]);
    } finally {
      await c.close();
    }

    // Empty now: t's offsets can go.
    let r = await strand(['groups', 'delete-offsets', 'g', '--topic', 't:0', '--json']);
    expect([r.code, JSON.parse(r.stdout)]).toEqual([0, [{ topic: 't', partition: 0, error: null, message: null }]]);
    expect([committed('t', 0), committed('t', 1)]).toEqual([undefined, 1]);
    // A bare topic means every partition; a topic the cluster does not know is a row of its own.
    r = await strand(['groups', 'delete-offsets', 'g', '--topic', 't', '--topic', 'nosuch']);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').map((l) => l.split(/\s+/).join(' '))).toEqual(['TOPIC PARTITION STATUS', 'nosuch - UNKNOWN_TOPIC_OR_PARTITION', 't 0 Successful', 't 1 Successful', '']);
    expect(committed('t', 1)).toBeUndefined();

    r = await strand(['groups', 'delete-offsets', 'none', '--topic', 't']);
    expect([r.code, r.stdout]).toEqual([1, '']);
    expect(r.stderr).toMatch(/GROUP_ID_NOT_FOUND: consumer group 'none' does not exist/);
    r = await strand(['groups', 'delete-offsets', 'g']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/give --topic TOPIC/)]);
  }, 120_000);
});

describe('strand groups remove-members', () => {
  const twin = useTwinCluster();
  const strand = (args: string[]): Promise<StrandRun> => twin.strand(args);
  const rows = (stdout: string): string[] => stdout.split('\n').map((l) => l.split(/\s+/).join(' '));

  it('removes static members by instance id and any member by id or all of them, one row each, exit 1 when one failed', async () => {
    twin.mem.createTopic('t', 2);
    const common = { 'bootstrap.servers': twin.mem.bootstrap, 'group.id': 'g', 'enable.auto.commit': false, 'fetch.max.wait.ms': 20, 'heartbeat.interval.ms': 50 };
    const pod = new Consumer({ ...common, 'group.instance.id': 'pod-a' });
    const dyn = new Consumer(common);
    try {
      pod.subscribe(['t']);
      dyn.subscribe(['t']);
      const g = (): { state: string; ids: string[] } => ({ state: twin.mem.groups.get('g')?.state ?? 'none', ids: [...(twin.mem.groups.get('g')?.members.keys() ?? [])] });
      const deadline = performance.now() + 10_000;
      while ((g().state !== 'Stable' || g().ids.length !== 2) && performance.now() < deadline) await Promise.all([pod.poll(50), dyn.poll(50)]);
      expect(g()).toMatchObject({ state: 'Stable', ids: expect.arrayContaining([expect.any(String), expect.any(String)]) });

      // By instance id: the member holding pod-a goes; an instance nobody holds is UNKNOWN_MEMBER_ID.
      let r = await strand(['groups', 'remove-members', 'g', '--instance-id', 'pod-a', '--instance-id', 'pod-z', '--reason', 'drained']);
      expect(r.code).toBe(1);
      expect(rows(r.stdout)).toEqual(['MEMBER-ID GROUP-INSTANCE-ID STATUS', '- pod-a Removed', '- pod-z UNKNOWN_MEMBER_ID', '']);
      expect(r.stderr).toMatch(/^strand groups remove-members: UNKNOWN_MEMBER_ID: remove instance pod-z from g: /m);
      expect(twin.mem.leaveReasons).toContain('member was removed by an admin: drained');

      // All members the group has now, by their ids (whoever has rejoined since).
      const before = g().ids;
      expect(before).toHaveLength(1); // pod-a rejoins only when it polls again
      r = await strand(['groups', 'remove-members', 'g', '--all-members', '--json']);
      const removed = JSON.parse(r.stdout) as { memberId: string; error: string | null }[];
      expect(r.code).toBe(0);
      expect(removed.map((m) => m.error)).toEqual(before.map(() => null));
      expect(removed.map((m) => m.memberId).sort()).toEqual([...before].sort());
    } finally {
      await Promise.all([pod.close(), dyn.close()]);
    }

    let r = await strand(['groups', 'remove-members', 'g', '--member-id', 'nobody', '--json']);
    expect([r.code, JSON.parse(r.stdout)]).toEqual([1, [{ memberId: 'nobody', groupInstanceId: null, error: 'UNKNOWN_MEMBER_ID', message: expect.stringMatching(/remove nobody from g/) }]]);
    r = await strand(['groups', 'remove-members', 'g']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/give --instance-id ID or --member-id ID \(repeatable\), or --all-members/)]);
    r = await strand(['groups', 'remove-members', 'g', '--all-members', '--member-id', 'x']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/not both/)]);
  }, 120_000);
});

describe("groups list --state and describe --members / --state (Kafka's kafka-consumer-groups views)", () => {
  const twin = useTwinCluster();
  const rows = (stdout: string): string[] => stdout.split('\n').map((l) => l.split(/\s+/).join(' '));

  it('parses --state as Kafka names the states, any case', () => {
    expect(parseGroupStates('stable,Empty, PREPARINGREBALANCE')).toEqual(['Stable', 'Empty', 'PreparingRebalance']);
    expect(usage(() => parseGroupStates('Stable,Rebalancing'))).toMatch(/--state must be among Empty, PreparingRebalance, CompletingRebalance, Stable, Dead, got 'Rebalancing'/);
  });

  it('filters the list by state and shows a group\'s members and state', async () => {
    twin.mem.createTopic('t', 3);
    const c = new Consumer({ 'bootstrap.servers': twin.mem.bootstrap, 'group.id': 'g', 'client.id': 'reader', 'enable.auto.commit': false, 'fetch.max.wait.ms': 20, 'heartbeat.interval.ms': 50 });
    try {
      c.subscribe(['t']);
      const deadline = performance.now() + 10_000;
      while (twin.mem.groups.get('g')?.state !== 'Stable' && performance.now() < deadline) await c.poll(50);
      await c.commit([{ topic: 't', partition: 0, offset: 1 }]);
      // A second group with only offsets: Empty.
      const admin = await twin.strand(['groups', 'reset-offsets', 'h', '--topic', 't:0', '--to-earliest', '--execute']);
      expect(admin.code).toBe(0);

      let r = await twin.strand(['groups', 'list', '--state', 'stable']);
      expect(rows(r.stdout)).toEqual(['Group State Protocol', 'g Stable consumer', '']);
      r = await twin.strand(['groups', 'list', '--state', 'Empty', '--json']);
      expect(JSON.parse(r.stdout)).toEqual([{ groupId: 'h', protocolType: 'consumer', state: 'Empty' }]);

      const memberId = [...(twin.mem.groups.get('g')?.members.keys() ?? [])][0] as string;
      r = await twin.strand(['groups', 'describe', 'g', '--members', '--verbose']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(rows(r.stdout)).toEqual(['', 'GROUP CONSUMER-ID GROUP-INSTANCE-ID HOST CLIENT-ID #PARTITIONS ASSIGNMENT', `g ${memberId} - /127.0.0.1 reader 3 t(0,1,2)`, '']);
      // The default view (Kafka's --offsets): every assigned partition, committed or not, with its member.
      r = await twin.strand(['groups', 'describe', 'g']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(rows(r.stdout)).toEqual([
        '',
        'GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID',
        `g t 0 1 0 0 ${memberId} /127.0.0.1 reader`,
        `g t 1 - 0 - ${memberId} /127.0.0.1 reader`,
        `g t 2 - 0 - ${memberId} /127.0.0.1 reader`,
        '',
      ]);
      r = await twin.strand(['groups', 'describe', 'g', '--state', '--json']);
      expect(JSON.parse(r.stdout)).toMatchObject({ group: 'g', assignmentStrategy: 'range', state: 'Stable', members: 1, coordinator: { id: expect.any(Number), host: '127.0.0.1', port: expect.any(Number) } });
      r = await twin.strand(['groups', 'describe', 'g', '--state']);
      expect(rows(r.stdout)[2]).toMatch(/^g 127\.0\.0\.1:\d+ \(\d+\) range Stable 1$/);
      r = await twin.strand(['groups', 'describe', 'g', '--members', '--state']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/at most one of --offsets, --members and --state/)]);
      r = await twin.strand(['groups', 'list', '--state', 'bogus']);
      expect(r.code).toBe(2);
    } finally {
      await c.close();
    }
  }, 60_000);
});

describe("groups describe and delete of several groups, or --all-groups (kafka-consumer-groups' --group ... / --all-groups)", () => {
  const twin = useTwinCluster();
  const rows = (stdout: string): string[] => stdout.split('\n').map((l) => l.split(/\s+/).join(' '));
  const header = 'GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID';

  it('prints one table per group, reports a missing group and describes the others, and deletes every group', async () => {
    twin.mem.createTopic('t', 1);
    for (const g of ['b', 'a']) expect((await twin.strand(['groups', 'reset-offsets', g, '--topic', 't', '--to-earliest', '--execute'])).code).toBe(0);
    // As kafka-consumer-groups: each group's notes on stderr, its table on stdout after a blank line.
    const both = ['', header, 'a t 0 0 0 0 - - -', '', header, 'b t 0 0 0 0 - - -', ''];
    let r = await twin.strand(['groups', 'describe', 'a', '--group', 'b']);
    expect([r.code, rows(r.stdout), r.stderr]).toEqual([0, both, "\nConsumer group 'a' has no active members.\n\nConsumer group 'b' has no active members.\n"]);
    r = await twin.strand(['groups', 'describe', '--all-groups']);
    expect([r.code, rows(r.stdout)]).toEqual([0, both]);
    r = await twin.strand(['groups', 'describe', '--all-groups', '--state']);
    expect(rows(r.stdout).filter((l) => l !== '').map((l) => l.split(' ')[0])).toEqual(['GROUP', 'a', 'GROUP', 'b']);
    // --json: one line per group.
    r = await twin.strand(['groups', 'describe', '-g', 'b', '-g', 'a', '--json']);
    expect(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { groupId: string }).groupId)).toEqual(['b', 'a']);
    // A group that does not exist: reported, the others still described, exit 1.
    r = await twin.strand(['groups', 'describe', 'a', 'nosuch', 'b']);
    expect([r.code, rows(r.stdout)]).toEqual([1, both]);
    expect(r.stderr).toMatch(/^strand groups describe: GROUP_ID_NOT_FOUND: consumer group 'nosuch' does not exist$/m);
    for (const args of [['describe'], ['describe', 'a', '--all-groups'], ['delete'], ['delete', '--group', 'a', '--all-groups']]) {
      r = await twin.strand(['groups', ...args]);
      expect([args, r.code]).toEqual([args, 2]);
    }

    r = await twin.strand(['groups', 'delete', '--all-groups']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, "Deletion of requested consumer groups ('a', 'b') was successful.\n", '']);
    expect([...twin.mem.groups.keys()]).toEqual([]);
    expect((await twin.strand(['groups', 'reset-offsets', 'a', '--topic', 't', '--to-earliest', '--execute'])).code).toBe(0);
    r = await twin.strand(['groups', 'delete', '--group', 'a']);
    expect([r.code, r.stdout]).toEqual([0, "Deletion of requested consumer groups ('a') was successful.\n"]);
  }, 120_000);
});

describe("reset-offsets --export and --from-file (kafka-consumer-groups' CSV reset plans)", () => {
  const twin = useTwinCluster();
  const rows = (stdout: string): string[] => stdout.split('\n').map((l) => l.split(/\s+/).join(' '));

  it('reads topic,partition,offset lines, or group,topic,partition,offset keeping the lines of the group', () => {
    expect(parseResetPlanCsv('t,0,5\r\n\nt,1,3\nt,0,4\n', 'g')).toEqual([
      { topic: 't', partition: 0, offset: 4 },
      { topic: 't', partition: 1, offset: 3 },
    ]);
    expect(parseResetPlanCsv('g,t,0,1\nh,t,1,9\ng,u,2,7\n', 'g')).toEqual([
      { topic: 't', partition: 0, offset: 1 },
      { topic: 'u', partition: 2, offset: 7 },
    ]);
    expect(usage(() => parseResetPlanCsv('h,t,0,1\n', 'g'))).toMatch(/no reset plan for group g found/);
    expect(usage(() => parseResetPlanCsv('t,0,5\ng,t,1,3\n', 'g'))).toMatch(/--from-file line 2: expected topic,partition,offset/);
    expect(usage(() => parseResetPlanCsv('t,x,5\n', 'g'))).toMatch(/--from-file line 1 partition must be an integer, got 'x'/);
    expect(usage(() => parseResetPlanCsv('t,0\n', 'g'))).toMatch(/--from-file line 1: expected/);
    expect(usage(() => parseResetPlanCsv('\n', 'g'))).toMatch(/names no partition/);
    // Several groups: each group's lines; without a GROUP column the lines name no group.
    expect(parseResetPlansCsv('g,t,0,1\nh,t,1,9\ng,t,0,2\n', undefined)).toEqual(
      new Map([
        ['g', [{ topic: 't', partition: 0, offset: 2 }]],
        ['h', [{ topic: 't', partition: 1, offset: 9 }]],
      ]),
    );
    expect(usage(() => parseResetPlansCsv('t,0,1\n', undefined))).toMatch(/topic,partition,offset lines name no group/);
    expect(usage(() => parseResetPlansCsv(',t,0,1\n', undefined))).toMatch(/--from-file line 1: no group name/);
  });

  it('exports a plan as CSV and resets a group to the offsets of such a file, clamped into the log', async () => {
    twin.mem.createTopic('t', 2);
    expect((await twin.strand(['produce', 't', '--partition', '0'], { stdin: 'a\nb\nc\nd\ne\n' })).code).toBe(0);
    expect((await twin.strand(['produce', 't', '--partition', '1'], { stdin: 'x\ny\nz\n' })).code).toBe(0);
    const committed = (): (number | undefined)[] => [0, 1].map((p) => twin.mem.groups.get('g')?.offsets.get(`t\u0000${p}`)?.offset);
    expect((await twin.strand(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-offset', '2', '--execute'])).code).toBe(0);

    // --export: Kafka's CSV of the plan on stdout (and the blank line its println adds); a dry run.
    let r = await twin.strand(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-latest', '--export', '--dry-run']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 't,0,5\nt,1,3\n\n', '']);
    expect(committed()).toEqual([2, 2]);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-reset-plan-'));
    try {
      const file = path.join(dir, 'plan.csv');
      fs.writeFileSync(file, r.stdout);
      expect((await twin.strand(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-earliest', '--execute'])).code).toBe(0);
      expect(committed()).toEqual([0, 0]);
      // --from-file needs no --topic: the file names the partitions.
      r = await twin.strand(['groups', 'reset-offsets', 'g', '--from-file', file, '--execute']);
      expect([r.code, rows(r.stdout), r.stderr]).toEqual([0, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'g t 0 5', 'g t 1 3', ''], '']);
      expect(committed()).toEqual([5, 3]);
      // Several groups' plan (from stdin): g's lines; an offset past the log end goes to it.
      r = await twin.strand(['groups', 'reset-offsets', 'g', '--from-file', '-', '--execute'], { stdin: 'g,t,0,1\nother,t,0,4\ng,t,1,99\n' });
      expect([r.code, rows(r.stdout)]).toEqual([0, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'g t 0 1', 'g t 1 3', '']]);
      expect(committed()).toEqual([1, 3]);
      r = await twin.strand(['groups', 'reset-offsets', 'g', '--from-file', '-', '--execute'], { stdin: 'other,t,0,4\n' });
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/no reset plan for group g found/)]);
      r = await twin.strand(['groups', 'reset-offsets', 'g', '--from-file', file, '--to-earliest']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/give exactly one of/)]);
      r = await twin.strand(['groups', 'reset-offsets', 'g', '--from-file', path.join(dir, 'missing.csv')]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--from-file: cannot read/)]);
      r = await twin.strand(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-latest', '--export', '--json']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--export or --json, not both/)]);
      expect(committed()).toEqual([1, 3]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("reset-offsets of several groups, or --all-groups (kafka-consumer-groups --reset-offsets --group ... / --all-groups)", () => {
  const twin = useTwinCluster();
  const rows = (stdout: string): string[] => stdout.split('\n').map((l) => l.split(/\s+/).join(' '));
  const committed = (group: string): (number | undefined)[] => [0, 1].map((p) => twin.mem.groups.get(group)?.offsets.get(`t\u0000${p}`)?.offset);

  it('plans and applies each group, refuses only the active one (exit 1), and exports / reads group,topic,partition,offset', async () => {
    twin.mem.createTopic('t', 2);
    expect((await twin.strand(['produce', 't', '--partition', '0'], { stdin: 'a\nb\nc\nd\n' })).code).toBe(0);
    expect((await twin.strand(['produce', 't', '--partition', '1'], { stdin: 'x\ny\n' })).code).toBe(0);
    for (const g of ['a', 'b']) expect((await twin.strand(['groups', 'reset-offsets', g, '--topic', 't', '--to-offset', '1', '--execute'])).code).toBe(0);
    // c has a member: Stable, so Kafka's tool refuses to reset it.
    const c = new Consumer({ 'bootstrap.servers': twin.mem.bootstrap, 'group.id': 'c', 'enable.auto.commit': false, 'fetch.max.wait.ms': 20, 'heartbeat.interval.ms': 50 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-reset-groups-'));
    try {
      c.subscribe(['t']);
      const deadline = performance.now() + 10_000;
      while (twin.mem.groups.get('c')?.state !== 'Stable' && performance.now() < deadline) await c.poll(50);
      await c.commit([{ topic: 't', partition: 0, offset: 2 }]);

      // One table for all groups, as Kafka's tool prints it; nothing applied without --execute.
      let r = await twin.strand(['groups', 'reset-offsets', 'a', '--group', 'b', '--topic', 't', '--to-earliest', '--dry-run']);
      expect([r.code, rows(r.stdout), r.stderr]).toEqual([0, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'a t 0 0', 'a t 1 0', 'b t 0 0', 'b t 1 0', ''], '']);
      expect([committed('a'), committed('b')]).toEqual([[1, 1], [1, 1]]);

      // --execute: a and b are reset; c is refused with Kafka's sentence and keeps its offsets.
      r = await twin.strand(['groups', 'reset-offsets', 'a', 'c', 'b', '--topic', 't', '--to-latest', '--execute']);
      expect([r.code, rows(r.stdout)]).toEqual([1, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'a t 0 4', 'a t 1 2', 'b t 0 4', 'b t 1 2', '']]);
      expect(r.stderr).toBe("strand groups reset-offsets: NON_EMPTY_GROUP: Assignments can only be reset if the group 'c' is inactive, but the current state is Stable.\n");
      expect([committed('a'), committed('b'), committed('c')]).toEqual([[4, 2], [4, 2], [2, undefined]]);
      // --json: one line per group reset.
      r = await twin.strand(['groups', 'reset-offsets', '-g', 'b', '-g', 'c', '-g', 'a', '--topic', 't:1', '--to-offset', '1', '--dry-run', '--json']);
      expect(r.code).toBe(1);
      expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
        { group: 'b', executed: false, partitions: [{ topic: 't', partition: 1, current: 2, target: 1 }] },
        { group: 'a', executed: false, partitions: [{ topic: 't', partition: 1, current: 2, target: 1 }] },
      ]);
    } finally {
      await c.close();
    }

    try {
      // Now c is empty too. --export of several groups (or --all-groups) is Kafka's group,topic,partition,offset CSV.
      let r = await twin.strand(['groups', 'reset-offsets', '--all-groups', '--topic', 't', '--to-earliest', '--export']);
      expect([r.code, r.stdout]).toEqual([0, 'a,t,0,0\na,t,1,0\nb,t,0,0\nb,t,1,0\nc,t,0,0\nc,t,1,0\n\n']);
      r = await twin.strand(['groups', 'reset-offsets', 'a', 'b', '--topic', 't:0', '--shift-by', '-1', '--export']);
      expect([r.code, r.stdout]).toEqual([0, 'a,t,0,3\nb,t,0,3\n\n']);
      const file = path.join(dir, 'plan.csv');
      fs.writeFileSync(file, 'a,t,0,1\nb,t,0,2\nb,t,1,0\nc,t,1,1\n');
      // --from-file with several groups: each group takes its own lines.
      r = await twin.strand(['groups', 'reset-offsets', 'a', 'b', '--from-file', file, '--execute']);
      expect([r.code, rows(r.stdout)]).toEqual([0, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'a t 0 1', 'b t 0 2', 'b t 1 0', '']]);
      expect([committed('a'), committed('b'), committed('c')]).toEqual([[1, 2], [2, 0], [2, undefined]]);
      r = await twin.strand(['groups', 'reset-offsets', '--all-groups', '--from-file', '-', '--execute'], { stdin: 'c,t,1,1\nb,t,1,1\n' });
      expect([r.code, rows(r.stdout)]).toEqual([1, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'b t 1 1', 'c t 1 1', '']]);
      expect(r.stderr).toMatch(/^strand groups reset-offsets: no reset plan for group a found/m);
      expect([committed('a'), committed('b'), committed('c')]).toEqual([[1, 2], [2, 1], [2, 1]]);
      // A named group without lines, or a plan without the GROUP column for several groups: exit 2, nothing applied.
      r = await twin.strand(['groups', 'reset-offsets', 'a', 'd', '--from-file', file, '--execute']);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/no reset plan for group d found/)]);
      r = await twin.strand(['groups', 'reset-offsets', 'a', 'b', '--from-file', '-', '--execute'], { stdin: 't,0,0\n' });
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/group,topic,partition,offset/)]);
      expect([committed('a'), committed('b')]).toEqual([[1, 2], [2, 1]]);
      for (const args of [['--topic', 't', '--to-earliest'], ['a', '--all-groups', '--topic', 't', '--to-earliest']]) {
        r = await twin.strand(['groups', 'reset-offsets', ...args]);
        expect([args, r.code]).toEqual([args, 2]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
