/**
 * `strand get-offsets`: --time and --partitions parsing as functions (usage errors name the bad
 * value), and the built binary against the in-memory broker twin of packages/client: Kafka's
 * `topic:partition:offset` lines sorted by partition for latest, earliest, max-timestamp and a
 * time; a partition with no offset for the time left out (listed with null in --json); a
 * partition the topic lacks reported on stderr with exit 1; usage errors exit 2 before anything
 * is sent. Against real processes: test/broker-restart.test.ts.
 */
import { encodeRecordBatch } from '@strand/protocol';
import { parseOffsetSpec, parsePartitionList } from '../../src/commands/get-offsets';
import type { StrandRun } from '../support/run-strand';
import { useTwinCluster } from '../support/twin-cluster';
import { usage } from '../support/usage';

describe('parseOffsetSpec and parsePartitionList', () => {
  it("reads Kafka's --time values and partition lists", () => {
    expect(['-1', 'latest', 'LATEST', '-2', 'earliest', '-3', 'max-timestamp', '0', '1700000000000'].map(parseOffsetSpec)).toEqual([
      'latest', 'latest', 'latest', 'earliest', 'earliest', 'max-timestamp', 'max-timestamp', { timestamp: 0 }, { timestamp: 1_700_000_000_000 },
    ]);
    expect(parsePartitionList('2, 0,2')).toEqual([0, 2]);
  });

  it('rejects what Strand cannot answer or cannot read', () => {
    expect(usage(() => parseOffsetSpec('-4'))).toMatch(/no tiered storage/);
    expect(usage(() => parseOffsetSpec('latest-tiered'))).toMatch(/no tiered storage/);
    expect(usage(() => parseOffsetSpec('-7'))).toMatch(/malformed time '-7'/);
    expect(usage(() => parseOffsetSpec('yesterday'))).toMatch(/malformed time 'yesterday'/);
    expect(usage(() => parsePartitionList('0,x'))).toMatch(/comma-separated partition ids/);
    expect(usage(() => parsePartitionList(''))).toMatch(/comma-separated partition ids/);
  });
});

describe('the strand get-offsets binary', () => {
  const twin = useTwinCluster();

  function strand(args: string[]): Promise<StrandRun> {
    return twin.strand(['get-offsets', ...args]);
  }
  const at = (...ts: number[]): Buffer => encodeRecordBatch({ records: ts.map((timestamp, i) => ({ value: Buffer.from(`v${i}`), timestamp })), baseTimestamp: Math.min(...ts) });

  it('prints topic:partition:offset per partition, sorted, for each kind of --time', async () => {
    twin.mem.createTopic('t', 3);
    twin.mem.append('t', 0, at(1000, 3000, 2000)); // offsets 0..2; the largest timestamp at 1
    twin.mem.append('t', 1, at(5000, 5000)); // 0..1: a tie, the first answers
    twin.mem.append('t', 1, at(4000)); // 2
    twin.mem.partition('t', 1).logStartOffset = 1; // as after delete-records
    // partition 2 stays empty
    const [latest, byDefault, earliest, max, time, late, some] = await Promise.all([
      strand(['--topic', 't', '--time', '-1']),
      strand(['--topic', 't']),
      strand(['--topic', 't', '--time', 'earliest']),
      strand(['--topic', 't', '--time', '-3']),
      strand(['--topic', 't', '--time', '2500']),
      strand(['--topic', 't', '--time', '4500', '--json']),
      strand(['--topic', 't', '--partitions', '2,0', '--time', '-2']),
    ]);
    expect([latest?.code, latest?.stdout, latest?.stderr]).toEqual([0, 't:0:3\nt:1:3\nt:2:0\n', '']);
    expect(byDefault?.stdout).toBe(latest?.stdout);
    expect([earliest?.code, earliest?.stdout]).toEqual([0, 't:0:0\nt:1:1\nt:2:0\n']);
    // No offset for the empty partition 2 (nor, below, for a time past partition 0's records):
    // left out, as Kafka's tool does.
    expect([max?.code, max?.stdout]).toEqual([0, 't:0:1\nt:1:1\n']);
    expect([time?.code, time?.stdout]).toEqual([0, 't:0:1\nt:1:1\n']);
    expect([late?.code, JSON.parse(late?.stdout ?? '')]).toEqual([0, [
      { topic: 't', partition: 0, offset: null, timestamp: null },
      { topic: 't', partition: 1, offset: 1, timestamp: 5000 },
      { topic: 't', partition: 2, offset: null, timestamp: null },
    ]]);
    expect([some?.code, some?.stdout]).toEqual([0, 't:0:0\nt:2:0\n']);
  }, 120_000);

  it('prints the other partitions when one cannot be answered (its leader is down), reports it on stderr and exits 1, as Kafka\'s tool skips it', async () => {
    twin.mem.createTopic('t', 3);
    for (const p of [0, 1, 2]) twin.mem.append('t', p, at(1000, 2000));
    const down = twin.mem.partition('t', 1).leaderId;
    expect([0, 2].map((p) => twin.mem.partition('t', p).leaderId)).not.toContain(down);
    twin.mem.killNode(down);
    const [text, json] = await Promise.all([strand(['--topic', 't']), strand(['--topic', 't', '--json'])]);
    expect([text?.code, text?.stdout]).toEqual([1, 't:0:2\nt:2:2\n']);
    expect(text?.stderr).toMatch(/^strand get-offsets: skipped t-1: NETWORK_EXCEPTION: /);
    expect([json?.code, JSON.parse(json?.stdout ?? '')]).toEqual([1, [
      { topic: 't', partition: 0, offset: 2, timestamp: null },
      { topic: 't', partition: 1, offset: null, timestamp: null, error: 'NETWORK_EXCEPTION' },
      { topic: 't', partition: 2, offset: 2, timestamp: null },
    ]]);
  }, 120_000);

  it('reports partitions the topic lacks and unknown topics with exit 1, usage errors with exit 2', async () => {
    twin.mem.createTopic('t', 2);
    twin.mem.append('t', 0, at(1000));
    const results = await Promise.all([
      strand(['--topic', 't', '--partitions', '0,7']),
      strand(['--topic', 'nope', '--timeout-ms', '1000']),
      strand([]),
      strand(['--topic', 't', '--time', 'soon']),
      strand(['--topic', 't', '--time', '-5']),
      strand(['--topic', 't', '--partitions', '1-3']),
    ]);
    expect(results.map((r) => r.code)).toEqual([1, 1, 2, 2, 2, 2]);
    expect([results[0]?.stdout, results[0]?.stderr]).toEqual(['t:0:1\n', 'strand get-offsets: t-7: UNKNOWN_TOPIC_OR_PARTITION: the topic has 2 partitions\n']);
    expect(results[1]?.stderr).toMatch(/^strand get-offsets: UNKNOWN_TOPIC_OR_PARTITION/);
    expect(results.slice(2).map((r) => r.stderr)).toEqual([
      'strand get-offsets: --topic <name> is required\n',
      expect.stringMatching(/malformed time 'soon'/),
      expect.stringMatching(/no tiered storage/),
      expect.stringMatching(/--partitions expects comma-separated partition ids/),
    ]);
  }, 120_000);
});
