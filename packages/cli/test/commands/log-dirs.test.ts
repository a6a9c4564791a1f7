/**
 * `strand log-dirs`: --topic-list parsing as a function (Kafka's topic name rules), and the built
 * binary against the in-memory broker twin of packages/client (three brokers): Kafka's two
 * header lines and JSON line with every broker's directory and the replicas held there (size,
 * offsetLag, isFuture, plus totalBytes/usableBytes), --json alone, --broker-list and --topic-list
 * narrowing it; a broker that is not registered or cannot be reached reported on stderr with
 * exit 1 while the others are printed; usage errors exit 2 before anything is sent. Against real
 * processes: test/reassign-cli.test.ts.
 */
import * as fs from 'node:fs';
import { encodeRecordBatch } from '@strand/protocol';
import { MemoryCluster } from '../../../client/test/support/memory-broker';
import { parseTopicList } from '../../src/commands/log-dirs';
import { UsageError } from '../../src/commands/common';
import { STRAND_CLI, runStrand, type StrandRun } from '../support/run-strand';

describe('parseTopicList', () => {
  it('reads comma-separated topic names, each once, and refuses illegal ones', () => {
    expect(parseTopicList('a, b.c,a,__consumer_offsets')).toEqual(['a', 'b.c', '__consumer_offsets']);
    for (const bad of ['', 'a,,b', 'a b', 'x/y', '..']) {
      expect(() => parseTopicList(bad)).toThrow(UsageError);
    }
    expect(() => parseTopicList('a,b c')).toThrow(/--topic-list expects comma-separated topic names.*'b c'/);
  });
});

describe('the strand log-dirs binary', () => {
  let mem: MemoryCluster;
  beforeAll(() => {
    if (!fs.existsSync(STRAND_CLI)) throw new Error(`${STRAND_CLI} is missing: run \`npx tsc -b packages/cli\` before these tests`);
  });
  beforeEach(async () => {
    mem = await MemoryCluster.start({ brokers: 3 });
    mem.createTopic('a', 2, 2); // a-0 on [1, 2], a-1 on [2, 3]
    mem.createTopic('b', 1); // b-0 on [1]
    mem.append('a', 0, encodeRecordBatch({ records: [{ value: Buffer.from('hello') }, { value: Buffer.from('world') }], baseTimestamp: 1 }));
  });
  afterEach(async () => {
    await mem.stop();
  });

  function strand(args: string[]): Promise<StrandRun> {
    return runStrand(['log-dirs', ...args], { limitMs: 20_000, env: { ...process.env, STRAND_BOOTSTRAP: mem.bootstrap } });
  }
  const dir = (broker: number, partitions: { partition: string; size: number }[]): unknown => ({
    logDir: `/memory/broker-${broker}/logs`,
    error: null,
    totalBytes: 2 ** 40,
    usableBytes: 400 * 2 ** 30,
    partitions: partitions.map((p) => ({ ...p, offsetLag: 0, isFuture: false })),
  });

  it("prints Kafka's header lines and JSON for every broker; --json, --broker-list and --topic-list narrow it", async () => {
    const size = mem.partition('a', 0).batches.reduce((n, b) => n + b.bytes.length, 0);
    const [all, some] = await Promise.all([strand(['--describe']), strand(['--describe', '--json', '--broker-list', '2,1', '--topic-list', 'a'])]);
    expect([all?.code, all?.stderr]).toEqual([0, '']);
    const lines = all?.stdout.split('\n') ?? [];
    expect(lines.slice(0, 2)).toEqual(['Querying brokers for log directories information', 'Received log directory information from brokers 1,2,3']);
    expect(lines.slice(3)).toEqual(['']);
    expect(JSON.parse(lines[2] ?? '')).toEqual({
      version: 1,
      brokers: [
        { broker: 1, logDirs: [dir(1, [{ partition: 'a-0', size }, { partition: 'b-0', size: 0 }])] },
        { broker: 2, logDirs: [dir(2, [{ partition: 'a-0', size }, { partition: 'a-1', size: 0 }])] },
        { broker: 3, logDirs: [dir(3, [{ partition: 'a-1', size: 0 }])] },
      ],
    });
    // Kafka's key order, so the line reads as Kafka's tool prints it.
    expect(lines[2]).toMatch(/^\{"version":1,"brokers":\[\{"broker":1,"logDirs":\[\{"logDir":"\/memory\/broker-1\/logs","error":null,"totalBytes":\d+,"usableBytes":\d+,"partitions":\[\{"partition":"a-0","size":\d+,"offsetLag":0,"isFuture":false\}/);
    expect([some?.code, some?.stderr]).toEqual([0, '']);
    expect(JSON.parse(some?.stdout ?? '')).toEqual({
      version: 1,
      brokers: [
        { broker: 1, logDirs: [dir(1, [{ partition: 'a-0', size }])] },
        { broker: 2, logDirs: [dir(2, [{ partition: 'a-0', size }, { partition: 'a-1', size: 0 }])] },
      ],
    });
  }, 60_000);

  it('reports an unregistered or unreachable broker on stderr with exit 1 and prints the others', async () => {
    const unknown = await strand(['--describe', '--broker-list', '1,9', '--json']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^strand log-dirs: broker 9: BROKER_NOT_AVAILABLE: .*not registered with the cluster \(registered brokers: 1,2,3\)\n$/);
    expect((JSON.parse(unknown.stdout) as { brokers: { broker: number }[] }).brokers.map((b) => b.broker)).toEqual([1]);

    mem.killNode(3);
    const down = await strand(['--describe', '--timeout-ms', '2000']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^strand log-dirs: broker 3: NETWORK_EXCEPTION: describe log dirs of broker 3 \(127\.0\.0\.1:\d+\)/);
    expect(down.stdout.split('\n')[1]).toBe('Received log directory information from brokers 1,2');
    expect((JSON.parse(down.stdout.split('\n')[2] ?? '') as { brokers: { broker: number }[] }).brokers.map((b) => b.broker)).toEqual([1, 2]);
  }, 60_000);

  it('exits 2 on usage errors, before anything is sent', async () => {
    const results = await Promise.all([
      strand([]),
      strand(['--describe', '--broker-list', '1,x']),
      strand(['--describe', '--broker-list', '1,1']),
      strand(['--describe', '--topic-list', 'a,b c']),
      strand(['--describe', '--bogus']),
    ]);
    expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(results.slice(0, 4).map((r) => r.stderr)).toEqual([
      'strand log-dirs: --describe is required\n',
      expect.stringMatching(/--broker-list expects comma-separated broker ids/),
      expect.stringMatching(/--broker-list lists a broker twice/),
      expect.stringMatching(/--topic-list expects comma-separated topic names/),
    ]);
    expect(results.every((r) => r.stdout === '')).toBe(true);
    expect(mem.calls.get('describeLogDirs')).toBeUndefined();
    expect(mem.calls.get('describeCluster')).toBeUndefined();
  }, 60_000);
});
