/**
 * `strand leader-election`: the option rules and Kafka's election JSON are checked as functions
 * (usage errors name the problem), and the built binary runs against the in-memory broker twin
 * of packages/client: per-partition outcomes printed as Kafka's tool prints them (elected, not
 * needed, failed on stderr), exit 0 / 1 / 2. A preferred election across real processes (after a
 * broker restart) is tested in test/broker-restart.test.ts.
 */
import { ErrorCode } from '@strand/protocol';
import { electionPlan, parseElectionJson } from '../../src/commands/leader-election';
import type { StrandRun } from '../support/run-strand';
import { useTwinCluster } from '../support/twin-cluster';
import { usage } from '../support/usage';

describe('electionPlan', () => {
  it('takes the election type in any case and exactly one way to name partitions', () => {
    expect(electionPlan({ electionType: 'PREFERRED', topic: 't', partition: '2' })).toEqual({ type: 'preferred', partitions: [{ topic: 't', partition: 2 }] });
    expect(electionPlan({ electionType: 'Unclean', allTopicPartitions: true })).toEqual({ type: 'unclean', partitions: 'all' });
    expect(usage(() => electionPlan({ topic: 't', partition: '0' }))).toMatch(/--election-type preferred\|unclean is required/);
    expect(usage(() => electionPlan({ electionType: 'random', allTopicPartitions: true }))).toMatch(/must be preferred or unclean, got 'random'/);
    expect(usage(() => electionPlan({ electionType: 'preferred' }))).toMatch(/exactly one of/);
    expect(usage(() => electionPlan({ electionType: 'preferred', topic: 't', partition: '0', allTopicPartitions: true }))).toMatch(/exactly one of/);
    expect(usage(() => electionPlan({ electionType: 'preferred', topic: 't' }))).toMatch(/--topic needs --partition/);
    expect(usage(() => electionPlan({ electionType: 'preferred', partition: '0', allTopicPartitions: true }))).toMatch(/--partition is only allowed with --topic/);
    expect(usage(() => electionPlan({ electionType: 'preferred', topic: 't', partition: '-1' }))).toMatch(/--partition must be an integer >= 0/);
  });
});

describe('parseElectionJson', () => {
  it("reads Kafka's format", () => {
    expect(parseElectionJson('{"partitions":[{"topic":"a","partition":1},{"topic":"b","partition":0}]}')).toEqual([
      { topic: 'a', partition: 1 },
      { topic: 'b', partition: 0 },
    ]);
  });

  it.each([
    ['', /is empty/],
    ['{"partitions":', /is not valid JSON/],
    ['[]', /must be an object like/],
    ['{"version":1}', /needs a "partitions" array/],
    // Empty would mean every partition to the Admin call: refused, not sent.
    ['{"partitions":[]}', /"partitions" is empty \(use --all-topic-partitions/],
    ['{"partitions":[{"partition":0}]}', /partitions\[0\]: "topic" must be a non-empty string/],
    ['{"partitions":[{"topic":"t","partition":"0"}]}', /"partition" must be a non-negative integer, got "0"/],
    ['{"partitions":[{"topic":"t","partition":0},{"topic":"t","partition":0}]}', /partitions\[1\]: t-0 is listed twice/],
  ])('rejects %s', (text, message) => {
    expect(usage(() => parseElectionJson(text))).toMatch(message);
  });
});

describe('the strand leader-election binary', () => {
  const twin = useTwinCluster();

  function strand(args: string[], stdin = ''): Promise<StrandRun> {
    return twin.strand(['leader-election', ...args], { stdin });
  }

  it('reports elected, not-needed and failed partitions, and exits 1 if any failed', async () => {
    twin.mem.createTopic('t', 4, 2); // preferred leaders: 1, 2, 3, 1
    twin.mem.moveLeader('t', 0, 2);
    twin.mem.moveLeader('t', 1, 3);
    twin.mem.moveLeader('t', 3, 2);
    twin.mem.electionErrors.set('t-3', ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE);
    const json = JSON.stringify({ partitions: [3, 2, 1, 0].map((partition) => ({ topic: 't', partition })).concat([{ topic: 'nope', partition: 0 }]) });
    let r = await strand(['--election-type', 'PREFERRED', '--path-to-json-file', '-'], json);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('Successfully completed leader election (PREFERRED) for partitions t-0, t-1\nValid replica already elected for partitions t-2\n');
    expect(r.stderr).toMatch(/^Error completing leader election \(PREFERRED\) for partition: nope-0: UNKNOWN_TOPIC_OR_PARTITION: .*\nError completing leader election \(PREFERRED\) for partition: t-3: PREFERRED_LEADER_NOT_AVAILABLE: .*\nstrand leader-election: 2 partition\(s\) could not be elected\n$/);
    expect([0, 1, 2, 3].map((p) => twin.mem.partition('t', p).leaderId)).toEqual([1, 2, 3, 2]);

    // Only ELECTION_NOT_NEEDED is no failure: exit 0. Unclean elections find every leader live.
    twin.mem.electionErrors.delete('t-3');
    r = await strand(['--election-type', 'unclean', '--topic', 't', '--partition', '3', '--json']);
    expect([r.code, JSON.parse(r.stdout)]).toEqual([0, [{ topic: 't', partition: 3, status: 'not-needed', error: 'ELECTION_NOT_NEEDED', message: 'elect leader of t-3: Leader election not needed for topic partition.' }]]);
    expect(twin.mem.partition('t', 3).leaderId).toBe(2);

    // Every partition: the ones that needed no election are left out, as Kafka's controller does.
    r = await strand(['--election-type', 'preferred', '--all-topic-partitions']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'Successfully completed leader election (PREFERRED) for partitions t-3\n', '']);
    r = await strand(['--election-type', 'preferred', '--all-topic-partitions', '--json']);
    expect([r.code, r.stdout]).toEqual([0, '[]\n']);
  }, 120_000);

  it('exits 2 for usage errors before sending anything', async () => {
    const results = await Promise.all([
      strand(['--topic', 't', '--partition', '0']),
      strand(['--election-type', 'fair', '--all-topic-partitions']),
      strand(['--election-type', 'preferred', '--topic', 't']),
      strand(['--election-type', 'preferred', '--all-topic-partitions', '--path-to-json-file', '-'], '{"partitions":[{"topic":"t","partition":0}]}'),
      strand(['--election-type', 'preferred', '--path-to-json-file', '-'], '{"partitions":[]}'),
      strand(['--election-type', 'preferred', '--path-to-json-file', '/nonexistent/election.json']),
    ]);
    expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(results.map((r) => r.stderr)).toEqual([
      expect.stringMatching(/^strand leader-election: --election-type preferred\|unclean is required\n$/),
      expect.stringMatching(/must be preferred or unclean/),
      expect.stringMatching(/--topic needs --partition/),
      expect.stringMatching(/exactly one of/),
      expect.stringMatching(/"partitions" is empty/),
      expect.stringMatching(/cannot read \/nonexistent\/election\.json: ENOENT/),
    ]);
    expect(twin.mem.calls.get('electLeaders') ?? 0).toBe(0);
  }, 60_000);
});
