/**
 * Checks the client commands of the `strand` CLI end to end: each test spawns the built binary
 * (`node packages/cli/dist/bin/strand.js ...`, so run `npx tsc -b packages/cli` first) against
 * the in-memory broker twin of packages/client (real gRPC on a loopback port), and checks
 * stdout, stderr (consume's "Processed a total of N messages" on each of its exits, signals
 * and a closed stdout included) and the documented exit codes: 0 ok, 1 refused by the cluster (for
 * `topics delete-records`: any partition refused), 2 usage, 3 unreachable, 4 records not
 * acknowledged. Every child has a hard time limit and is killed if it overstays; the twin is
 * stopped after each test.
 */
import * as net from 'node:net';
import type { StrandRun } from '../support/run-strand';
import { useTwinCluster } from '../support/twin-cluster';

/** Each CLI run starts a Node process (~1-3 s on a loaded 2-core machine); tests run a dozen. */
const CLI_TEST_TIMEOUT_MS = 180_000;
const twin = useTwinCluster();

/** Runs the CLI with `args` (and `stdin`) against the in-memory cluster, killing it after `limitMs`. */
function strand(args: string[], stdin = '', limitMs = 20_000): Promise<StrandRun> {
  return twin.strand(args, { stdin, limitMs });
}

describe('strand topics', () => {
  it('creates, lists, describes, alters and deletes topics with the documented exit codes', async () => {
    let r = await strand(['topics', 'create', 'orders', '--partitions', '3', '--replication-factor', '2', '--config', 'retention.ms=60000']);
    expect([r.code, r.stdout]).toEqual([0, 'Created topic orders.\n']);
    r = await strand(['topics', 'create', 'orders', '--partitions', '3', '--replication-factor', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TOPIC_ALREADY_EXISTS/);
    expect((await strand(['topics', 'create', 'orders', '-p', '3', '-r', '2', '--if-not-exists'])).code).toBe(0);
    r = await strand(['topics', 'create', 'x', '--partitions', 'many', '--replication-factor', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--partitions must be an integer/);
    // Without --partitions / --replication-factor: the cluster's num.partitions and
    // default.replication.factor (the request carries -1, as kafka-topics does).
    expect((await strand(['topics', 'create', 'x'])).code).toBe(0);
    expect(twin.mem.topics.get('x')?.partitions.length).toBe(1);
    expect((await strand(['topics', 'delete', 'x'])).code).toBe(0);
    r = await strand(['topics', 'list', '--json']);
    expect(JSON.parse(r.stdout)).toEqual(['orders']);
    r = await strand(['topics', 'describe', 'orders', '--json', '--configs']);
    const [d] = JSON.parse(r.stdout) as { name: string; partitions: { partition: number; leader: number; replicas: number[]; isr: number[] }[]; configs: Record<string, string> }[];
    expect(d?.partitions.map((p) => [p.partition, p.leader, p.replicas, p.isr])).toEqual([
      [0, 1, [1, 2], [1, 2]],
      [1, 2, [2, 3], [2, 3]],
      [2, 3, [3, 1], [3, 1]],
    ]);
    expect(d?.configs['retention.ms']).toBe('60000');
    // kafka-topics --describe's layout: the topic line with the configs that are not defaults,
    // then a tab-indented line per partition (no eligible leader replicas here: N/A, as Kafka
    // prints them for a cluster that does not report them).
    r = await strand(['topics', 'describe', 'orders']);
    expect(r.stdout.split('\n')).toEqual([
      expect.stringMatching(/^Topic: orders\tTopicId: \w+\tPartitionCount: 3\tReplicationFactor: 2\tConfigs: retention\.ms=60000$/),
      '\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\tElr: N/A\tLastKnownElr: N/A',
      '\tTopic: orders\tPartition: 1\tLeader: 2\tReplicas: 2,3\tIsr: 2,3\tElr: N/A\tLastKnownElr: N/A',
      '\tTopic: orders\tPartition: 2\tLeader: 3\tReplicas: 3,1\tIsr: 3,1\tElr: N/A\tLastKnownElr: N/A',
      '',
    ]);
    expect((await strand(['topics', 'alter', 'orders', '--config', 'retention.ms=1000', '--partitions', '4'])).code).toBe(0);
    expect(twin.mem.topics.get('orders')?.partitions.length).toBe(4);
    expect(twin.mem.topics.get('orders')?.configs.get('retention.ms')).toBe('1000');
    r = await strand(['topics', 'alter', 'orders', '--config', 'retention.ms=never']);
    expect(r.code).toBe(2); // a config value the cluster rejects is a usage error
    expect(r.stderr).toMatch(/INVALID_CONFIG/);
    expect((await strand(['topics', 'delete', 'orders'])).code).toBe(0);
    expect((await strand(['topics', 'delete', 'orders'])).code).toBe(1);
    expect((await strand(['topics', 'delete', 'orders', '--if-exists'])).code).toBe(0);
  }, CLI_TEST_TIMEOUT_MS);
});

describe('strand topics delete-records', () => {
  it('answers per partition: deletes where it can, reports each failure, exits 1 if any partition failed', async () => {
    twin.mem.createTopic('d', 2);
    expect((await strand(['produce', 'd', '--partition', '0'], 'a\nb\nc\nd\ne\n')).code).toBe(0);
    expect((await strand(['produce', 'd', '--partition', '1'], 'x\ny\nz\n')).code).toBe(0);
    // Partition 1 has 3 records: offset 10 is past its high watermark.
    let r = await strand(['topics', 'delete-records', 'd', '--offset', '0=2', '--offset', '1=10']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('partition: d-0\tlow_watermark: 2\n');
    expect(r.stderr).toMatch(/^strand topics delete-records: d-1: OFFSET_OUT_OF_RANGE: /);
    expect([twin.mem.partition('d', 0).logStartOffset, twin.mem.partition('d', 1).logStartOffset]).toEqual([2, 0]);
    r = await strand(['topics', 'delete-records', 'd', '--offset', '1=-1', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{ topic: 'd', partition: 1, lowWatermark: 3, error: null, message: null }]);
    expect(twin.mem.partition('d', 1).logStartOffset).toBe(3);
    for (const bad of [[], ['--offset', '0'], ['--offset', '0=-2'], ['--offset', '0=1', '--offset', '0=2']]) {
      r = await strand(['topics', 'delete-records', 'd', ...bad]);
      expect([bad, r.code]).toEqual([bad, 2]);
    }
  }, CLI_TEST_TIMEOUT_MS);
});

describe('strand produce and consume', () => {
  it('round-trips lines with keys and headers, and reads from offsets, partitions and timestamps', async () => {
    twin.mem.createTopic('t', 2);
    let r = await strand(['produce', 't', '--key-separator', ':', '--header', 'src=cli', '--acks', 'all'], 'a:1\nb:2\nc:3\nnokey\n');
    expect(r.code).toBe(0);
    const all = [...twin.mem.records('t', 0), ...twin.mem.records('t', 1)];
    expect(all.map((x) => `${x.key ?? '(null)'}=${x.value}`).sort()).toEqual(['(null)=nokey', 'a=1', 'b=2', 'c=3']);
    expect(all.every((x) => x.headers[0]?.key === 'src' && x.headers[0]?.value === 'cli')).toBe(true);
    r = await strand(['consume', 't', '--from-beginning', '--max-messages', '4', '--format', 'json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string | null; value: string; headers: Record<string, string>; partition: number; offset: number });
    expect(lines.map((l) => l.value).sort()).toEqual(['1', '2', '3', 'nokey']);
    expect(lines[0]?.headers).toEqual({ src: 'cli' });
    await strand(['produce', 't', '--partition', '1'], 'p1-a\np1-b\np1-c\n');
    const p1 = twin.mem.records('t', 1);
    r = await strand(['consume', 't', '--partition', '1', '--offset', String(p1.length - 2), '--max-messages', '2']);
    expect(r.stdout).toBe('p1-b\np1-c\n');
    r = await strand(['consume', 't', '--from-timestamp', String(Date.now() + 60_000), '--idle-timeout-ms', '300']);
    expect([r.code, r.stdout]).toEqual([0, '']);
    expect((await strand(['consume', 't', '--offset', '3'])).code).toBe(2);
    expect((await strand(['consume', 't', '--format', 'xml'])).code).toBe(2);
  });

  it("reads --timeout-ms as kafka-console-consumer does (exit once nothing arrived for T ms), the request timeout as --request-timeout-ms", async () => {
    twin.mem.createTopic('k', 1);
    expect((await strand(['produce', 'k'], 'a\nb\n')).code).toBe(0);
    // Drain the topic and stop: Kafka's `--from-beginning --timeout-ms T` (T generous enough
    // for the first fetch on a loaded machine: the test checks the exit, not its timing).
    let r = await strand(['consume', 'k', '--from-beginning', '--timeout-ms', '3000']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'a\nb\n', 'Processed a total of 2 messages\n']);
    r = await strand(['consume', 'k', '--from-beginning', '--timeout-ms', '3000', '--request-timeout-ms', '5000', '--group', 'kg']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'a\nb\n', 'Processed a total of 2 messages\n']);
    // --idle-timeout-ms, the older name, still works; both at once, or a bad value, is a usage error.
    r = await strand(['consume', 'k', '--offset', 'latest', '--partition', '0', '--idle-timeout-ms', '300']);
    expect([r.code, r.stdout]).toEqual([0, '']);
    r = await strand(['consume', 'k', '--timeout-ms', '300', '--idle-timeout-ms', '300']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--timeout-ms and --idle-timeout-ms are the same option/)]);
    r = await strand(['consume', 'k', '--timeout-ms', '300', '--request-timeout-ms', '0']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--request-timeout-ms must be an integer >= 1/)]);
  }, CLI_TEST_TIMEOUT_MS);

  it("reports kafka-console-consumer's 'Processed a total of N messages' on stderr at every exit: --max-messages, idle timeout, SIGINT, SIGTERM, a closed stdout", async () => {
    twin.mem.createTopic('n', 1);
    expect((await strand(['produce', 'n'], 'a\nb\nc\n')).code).toBe(0);
    const processed = (n: number): string => `Processed a total of ${n} messages\n`;
    let r = await strand(['consume', 'n', '--from-beginning', '--max-messages', '2']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'a\nb\n', processed(2)]);
    r = await strand(['consume', 'n', '--from-beginning', '--max-messages', '2', '--format', 'json', '--group', 'ng']);
    expect([r.code, r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { value: string }).value), r.stderr]).toEqual([0, ['a', 'b'], processed(2)]);
    r = await strand(['consume', 'n', '--offset', 'latest', '--partition', '0', '--timeout-ms', '300']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '', processed(0)]);
    // A signal once every record is printed: a clean close (exit 0), the count after it.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const c = twin.start(['consume', 'n', '--from-beginning', ...(signal === 'SIGTERM' ? ['--group', 'sg'] : [])]);
      await c.untilStdout((out) => out === 'a\nb\nc\n');
      c.child.kill(signal);
      expect([signal, await c.done]).toEqual([signal, { code: 0, stdout: 'a\nb\nc\n', stderr: processed(3) }]);
    }
    expect(twin.mem.groups.get('sg')?.offsets.get('n\u00000')?.offset).toBe(3);
    // The reader of stdout goes away (`strand consume ... | head -1`): the next write fails with
    // EPIPE and the command stops, still reporting on stderr.
    const c = twin.start(['consume', 'n', '--from-beginning']);
    await c.untilStdout((out) => out === 'a\nb\nc\n');
    c.child.stdout.destroy();
    expect((await strand(['produce', 'n'], 'd\n')).code).toBe(0);
    const end = await c.done;
    expect([end.code, end.stderr]).toEqual([0, processed(4)]);
    // A usage error consumes nothing and reports no count.
    r = await strand(['consume', 'n', '--partition', '7']);
    expect([r.code, r.stderr]).toEqual([2, expect.not.stringMatching(/Processed a total/)]);
  }, CLI_TEST_TIMEOUT_MS);

  it("takes the console tools' --property keys (parse.key, parse.headers / print.*), client configs in -X, and --offset earliest|latest", async () => {
    twin.mem.createTopic('kp', 1);
    // kafka-console-producer's line reader: headers, then key:value; a line without the key
    // separator is reported and not sent (exit 4); -X is a producer config.
    let r = await strand(['produce', 'kp', '--property', 'parse.key=true', '--property', 'key.separator=:', '--property', 'parse.headers=true', '--property', 'headers.delimiter=|', '-X', 'linger.ms=0'], 'src:cli|a:1\n|b:2\n|nokey\n');
    expect([r.code, r.stderr]).toEqual([4, expect.stringMatching(/line 3 not sent: no key separator \(":"\) found[\s\S]*2 of 3 records acknowledged/)]);
    expect(twin.mem.records('kp', 0).map((x) => [x.key, x.value, x.headers.map((h) => `${h.key}=${h.value}`).join(',')])).toEqual([
      ['a', '1', 'src=cli'],
      ['b', '2', ''],
    ]);
    // kafka-console-consumer's formatter, and --offset earliest/latest of one partition.
    r = await strand(['consume', 'kp', '--partition', '0', '--offset', 'earliest', '--max-messages', '2', '--property', 'print.key=true', '--property', 'print.offset=true', '--property', 'print.headers=true', '--property', 'key.separator=,', '-X', 'fetch.min.bytes=1']);
    expect([r.code, r.stdout]).toEqual([0, 'Offset:0,src:cli,a,1\nOffset:1,NO_HEADERS,b,2\n']);
    r = await strand(['consume', 'kp', '--partition', '0', '--offset', 'latest', '--idle-timeout-ms', '300']);
    expect([r.code, r.stdout]).toEqual([0, '']);
    r = await strand(['consume', 'kp', '--property', 'print.key=true', '--format', 'json']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/print.key is a formatter key: it does not go with --format json/)]);
    r = await strand(['produce', 'kp', '--key-separator', ':', '--property', 'parse.key=true'], 'a:1\n');
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/give --key-separator or --property parse.key/)]);
  }, CLI_TEST_TIMEOUT_MS);

  it('exits 4 when records are not acknowledged, and 2 for a bad --acks', async () => {
    let r = await strand(['produce', 'missing', '--timeout-ms', '300'], 'x\ny\n');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/line 1 not acknowledged: UNKNOWN_TOPIC_OR_PARTITION/);
    expect(r.stderr).toMatch(/0 of 2 records acknowledged/);
    r = await strand(['produce', 't', '--acks', '2'], 'x\n');
    expect(r.code).toBe(2);
  }, CLI_TEST_TIMEOUT_MS);
});

describe('strand cluster', () => {
  it('describes the cluster, and exits 3 when it cannot be reached', async () => {
    let r = await strand(['cluster', 'describe', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as { brokers: { id: number; state: string }[]; activeControllerId: number };
    expect(d.brokers.map((b) => [b.id, b.state])).toEqual([[1, 'running'], [2, 'running'], [3, 'running']]);
    r = await strand(['cluster', 'describe']);
    expect(r.stdout).toMatch(/leader \(active\)/);
    const s = net.createServer();
    await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((res) => s.close(() => res()));
    r = await strand(['cluster', 'describe', '--bootstrap', `127.0.0.1:${port}`, '--timeout-ms', '500']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach the cluster/);
  }, CLI_TEST_TIMEOUT_MS);
});

describe('usage errors', () => {
  it('exit 2 for strand itself and for the node commands too', async () => {
    for (const args of [['--bogus'], ['nosuch'], ['server', '--bogus'], ['dev', '--bogus']]) {
      const r = await strand(args);
      expect([args, r.code]).toEqual([args, 2]);
      expect(r.stderr).toMatch(/unknown (option|command)/);
    }
  }, CLI_TEST_TIMEOUT_MS);
});

describe('strand groups', () => {
  it('consumes as a group, then lists, describes with lag, resets offsets and deletes the group', async () => {
    twin.mem.createTopic('t', 2);
    await strand(['produce', 't', '--partition', '0'], 'a\nb\nc\nd\n');
    let r = await strand(['consume', 't', '--group', 'g', '--from-beginning', '--max-messages', '3']);
    expect([r.code, r.stdout]).toEqual([0, 'a\nb\nc\n']);
    r = await strand(['groups', 'list', '--json']);
    expect(JSON.parse(r.stdout)).toEqual([{ groupId: 'g', protocolType: 'consumer', state: 'Empty' }]);
    r = await strand(['groups', 'describe', 'g', '--json']);
    const d = JSON.parse(r.stdout) as { state: string; offsets: { partition: number; committedOffset: number; logEndOffset: number; lag: number }[] };
    expect(d.offsets.find((o) => o.partition === 0)).toMatchObject({ committedOffset: 3, logEndOffset: 4, lag: 1 });
    // kafka-consumer-groups --describe: its columns, its note on stderr (no member: '-').
    r = await strand(['groups', 'describe', 'g']);
    expect([r.code, r.stderr]).toEqual([0, "\nConsumer group 'g' has no active members.\n"]);
    expect(r.stdout.split('\n').map((l) => l.split(/\s+/).join(' '))[1]).toBe('GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID');
    expect(r.stdout.split('\n').map((l) => l.split(/\s+/).join(' '))).toContain('g t 0 3 4 1 - - -');
    expect((await strand(['groups', 'describe', 'g', '--offsets'])).stdout).toBe(r.stdout);
    expect((await strand(['groups', 'describe', 'g', '--offsets', '--state'])).code).toBe(2);
    // kafka-consumer-groups --reset-offsets: its table of new offsets after a blank line, and
    // without --dry-run or --execute its warning on stderr.
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--to-earliest']);
    expect([r.code, r.stdout.split('\n').map((l) => l.split(/\s+/).join(' ')), r.stderr]).toEqual([0, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'g t 0 0', ''], expect.stringMatching(/^WARN: No action will be performed as the --execute option is missing/)]);
    expect(twin.mem.groups.get('g')?.offsets.get('t\u00000')?.offset).toBe(3);
    // Kafka's explicit --dry-run: the same plan, nothing applied, no warning; with --execute, a usage error.
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--to-earliest', '--dry-run']);
    expect([r.code, r.stdout.split('\n').map((l) => l.split(/\s+/).join(' ')), r.stderr]).toEqual([0, ['', 'GROUP TOPIC PARTITION NEW-OFFSET', 'g t 0 0', ''], '']);
    expect(twin.mem.groups.get('g')?.offsets.get('t\u00000')?.offset).toBe(3);
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--to-earliest', '--dry-run', '--execute']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--dry-run or --execute, not both/)]);
    // No record at or after the time: the log end (Kafka's fallback), not the log start.
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--to-datetime', String(Date.now() + 3_600_000), '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ partitions: [{ partition: 0, current: 3, target: 4 }] });
    // --shift-by needs a committed offset to shift from.
    twin.mem.createTopic('u', 1);
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 'u', '--shift-by', '1']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/no committed offset/)]);
    // An active group is refused before any plan (its members would overwrite the offsets).
    twin.mem.groups.get('g')!.state = 'Stable';
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--to-earliest']);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/NON_EMPTY_GROUP.*inactive/)]);
    twin.mem.groups.get('g')!.state = 'Empty';
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--shift-by=-2', '--execute', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ executed: true, partitions: [{ topic: 't', partition: 0, current: 3, target: 1 }] });
    // --all-topics: the topics the group has offsets for; --to-current keeps each committed offset
    // (the log end where there is none).
    r = await strand(['groups', 'reset-offsets', 'g', '--all-topics', '--to-current', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ executed: false, partitions: [{ topic: 't', partition: 0, current: 1, target: 1 }, { topic: 't', partition: 1, target: 0 }] });
    // --by-duration: the first offset written at or after now minus the duration.
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't:0', '--by-duration', 'PT1H', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ partitions: [{ topic: 't', partition: 0, current: 1, target: 0 }] });
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't', '--all-topics', '--to-current']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--topic or --all-topics, not both/)]);
    r = await strand(['groups', 'reset-offsets', 'g', '--topic', 't', '--by-duration', '15m']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--by-duration must be an ISO-8601 duration/)]);
    r = await strand(['consume', 't', '--group', 'g', '--max-messages', '1']);
    expect(r.stdout).toBe('b\n');
    expect((await strand(['groups', 'reset-offsets', 'g', '--topic', 't'])).code).toBe(2);
    // Several groups at once, reported as kafka-consumer-groups --delete reports them.
    expect((await strand(['groups', 'reset-offsets', 'h', '--topic', 't:0', '--to-earliest', '--execute'])).code).toBe(0);
    r = await strand(['groups', 'delete', 'g', 'h']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, "Deletion of requested consumer groups ('g', 'h') was successful.\n", '']);
    expect((await strand(['groups', 'reset-offsets', 'h', '--topic', 't:0', '--to-earliest', '--execute'])).code).toBe(0);
    r = await strand(['groups', 'delete', 'g', 'h']);
    expect([r.code, r.stdout]).toEqual([1, "These consumer groups were deleted successfully: 'h'\n"]);
    expect(r.stderr).toMatch(/^Deletion of some consumer groups failed:\n\* Group 'g' could not be deleted due to: GROUP_ID_NOT_FOUND: /);
    expect((await strand(['groups', 'delete'])).code).toBe(2);
    r = await strand(['groups', 'describe', 'g']);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/GROUP_ID_NOT_FOUND.*does not exist/)]);
  }, CLI_TEST_TIMEOUT_MS);
});

describe('strand bench', () => {
  it('reports produce and consume figures as one JSON object on the last line', async () => {
    let r = await strand(['bench', 'produce', '--topic', 'b', '--create', '--partitions', '3', '--replication-factor', '1', '--records', '3000', '--record-size', '100', '--json'], '', 60_000);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { kind: string; records: number; recordsPerSec: number; latencyMs: { p50: number; p999: number; max: number } };
    expect(p).toMatchObject({ kind: 'produce', records: 3000 });
    expect(p.recordsPerSec).toBeGreaterThan(0);
    expect(p.latencyMs.max).toBeGreaterThanOrEqual(p.latencyMs.p50);
    r = await strand(['bench', 'consume', '--topic', 'b', '--records', '3000', '--json'], '', 60_000);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toMatchObject({ kind: 'consume', records: 3000, bytes: 300_000 });
    r = await strand(['bench', 'produce', '--topic', 'b', '--records', '100', '--throughput', 'fast']);
    expect(r.code).toBe(2);
  }, CLI_TEST_TIMEOUT_MS);

  it('leaves --warmup-records out of a separate steady-state summary', async () => {
    let r = await strand(['bench', 'produce', '--topic', 'w', '--create', '--partitions', '1', '--replication-factor', '1', '--records', '2000', '--warmup-records', '500', '--throughput', '20000', '--json'], '', 60_000);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { records: number; seconds: number; latencyMs: { p50: number; max: number }; steadyState: { warmupRecords: number; records: number; seconds: number; latencyMs: { p50: number; max: number } } };
    expect(p.records).toBe(2000);
    expect(p.steadyState).toMatchObject({ warmupRecords: 500, records: 1500 });
    // The steady state starts once 500 records at 20k/s (25 ms) have been sent.
    expect(p.steadyState.seconds).toBeLessThanOrEqual(p.seconds - 0.02);
    expect(p.steadyState.latencyMs.max).toBeLessThanOrEqual(p.latencyMs.max);
    expect(p.steadyState.latencyMs.p50).toBeGreaterThan(0);
    r = await strand(['bench', 'produce', '--topic', 'w', '--records', '2000', '--warmup-records', '500', '--throughput', '20000']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^steady state, after 500 warm-up records: 1500 records in [\d.]+ s/m);
    r = await strand(['bench', 'consume', '--topic', 'w', '--records', '4000', '--warmup-records', '3000', '--json'], '', 60_000);
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { records: number; steadyState: { warmupRecords: number; records: number } };
    expect(c.records).toBe(4000);
    expect(c.steadyState).toMatchObject({ warmupRecords: 3000, records: 1000 });
    r = await strand(['bench', 'produce', '--topic', 'w', '--records', '100', '--warmup-records', '100']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--warmup-records must be less than --records/);
  }, CLI_TEST_TIMEOUT_MS);
});
