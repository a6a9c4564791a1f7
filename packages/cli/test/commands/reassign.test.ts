/**
 * `strand reassign`: the Kafka JSON parsers reject bad input with errors that name the entry,
 * the proposal spreads replicas over the broker list, and the binary exits 2 (usage) for bad
 * files and option combinations before sending anything. The moves themselves are tested across
 * real processes in test/reassign-cli.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TopicDescription } from '@strand/client';
import { parseBrokerList, parseReassignmentJson, parseTopicsToMoveJson, proposeAssignment, reassignMode } from '../../src/commands/reassign';
import { STRAND_CLI, runStrand, type StrandRun } from '../support/run-strand';
import { usage } from '../support/usage';

const BIN = STRAND_CLI;

describe('parseReassignmentJson', () => {
  it("reads Kafka's format, with or without version and log_dirs", () => {
    expect(parseReassignmentJson('{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]},{"topic":"t","partition":1,"replicas":[3],"log_dirs":["any"]}]}')).toEqual([
      { topic: 't', partition: 0, replicas: [1, 2, 3] },
      { topic: 't', partition: 1, replicas: [3] },
    ]);
    expect(parseReassignmentJson('{"partitions":[{"topic":"u","partition":2,"replicas":[2]}]}')).toEqual([{ topic: 'u', partition: 2, replicas: [2] }]);
  });

  it.each([
    ['', /is empty/],
    ['{"version":1,"partitions":[', /is not valid JSON/],
    ['[1,2]', /must be an object like/],
    ['{"version":2,"partitions":[]}', /unsupported "version" 2/],
    ['{"version":1}', /needs a "partitions" array/],
    ['{"version":1,"partitions":[]}', /"partitions" is empty/],
    ['{"version":1,"partitions":[7]}', /partitions\[0\] must be an object/],
    ['{"version":1,"partitions":[{"partition":0,"replicas":[1]}]}', /partitions\[0\]: "topic" must be a non-empty string/],
    ['{"version":1,"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}', /"partition" must be a non-negative integer, got -1/],
    ['{"version":1,"partitions":[{"topic":"t","partition":"0","replicas":[1]}]}', /"partition" must be a non-negative integer, got "0"/],
    ['{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}', /"replicas" must be a non-empty array/],
    ['{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1.5]}]}', /broker ids must be non-negative integers, got 1.5/],
    ['{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,2]}]}', /lists a broker twice/],
    ['{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":"any"}]}', /"log_dirs" must be an array/],
    ['{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}', /partitions\[1\]: t-0 is listed twice/],
  ])('rejects %s', (text, message) => {
    expect(usage(() => parseReassignmentJson(text))).toMatch(message);
  });
});

describe('parseTopicsToMoveJson and parseBrokerList', () => {
  it('reads the topics and broker ids', () => {
    expect(parseTopicsToMoveJson('{"version":1,"topics":[{"topic":"a"},{"topic":"b"},{"topic":"a"}]}')).toEqual(['a', 'b']);
    expect(parseBrokerList('3, 1,2')).toEqual([3, 1, 2]);
  });

  it('rejects bad input', () => {
    expect(usage(() => parseTopicsToMoveJson('{"version":1,"topics":[]}'))).toMatch(/non-empty "topics" array/);
    expect(usage(() => parseTopicsToMoveJson('{"version":1,"topics":["a"]}'))).toMatch(/topics\[0\] must be \{"topic":"name"\}/);
    expect(usage(() => parseTopicsToMoveJson('nope'))).toMatch(/not valid JSON/);
    expect(usage(() => parseBrokerList('1,x'))).toMatch(/comma-separated broker ids/);
    expect(usage(() => parseBrokerList(''))).toMatch(/comma-separated broker ids/);
    expect(usage(() => parseBrokerList('1,2,1'))).toMatch(/lists a broker twice/);
  });
});

describe('proposeAssignment', () => {
  const topic = (name: string, partitions: number, rf: number): TopicDescription => ({
    name,
    topicId: '',
    internal: false,
    partitions: Array.from({ length: partitions }, (_, p) => ({ partition: p, leader: 1, leaderEpoch: 0, replicas: Array.from({ length: rf }, (_, i) => i + 1), isr: [], offlineReplicas: [] })),
  });

  it('keeps the replication factor and spreads leaders and replicas evenly', () => {
    const plan = proposeAssignment([topic('t', 6, 2)], [6, 4, 5]);
    expect(plan.map((p) => p.replicas)).toEqual([[4, 5], [5, 6], [6, 4], [4, 5], [5, 6], [6, 4]]);
    const leaders = new Map<number, number>();
    for (const p of plan) leaders.set(p.replicas[0] as number, (leaders.get(p.replicas[0] as number) ?? 0) + 1);
    expect([...leaders.values()]).toEqual([2, 2, 2]);
  });

  it('refuses a replication factor larger than the broker list', () => {
    expect(usage(() => proposeAssignment([topic('t', 1, 3)], [1, 2]))).toMatch(/t-0 has 3 replicas but --broker-list names only 2 brokers/);
  });
});

describe('reassignMode', () => {
  it('needs exactly one mode and its files', () => {
    expect(reassignMode({ list: true })).toBe('list');
    expect(reassignMode({ verify: true, reassignmentJsonFile: 'f' })).toBe('verify');
    expect(usage(() => reassignMode({}))).toMatch(/exactly one of/);
    expect(usage(() => reassignMode({ execute: true, verify: true, reassignmentJsonFile: 'f' }))).toMatch(/exactly one of/);
    expect(usage(() => reassignMode({ cancel: true }))).toMatch(/--cancel needs --reassignment-json-file/);
    expect(usage(() => reassignMode({ generate: true, topicsToMoveJsonFile: 'f' }))).toMatch(/--broker-list/);
  });
});

describe('the strand reassign binary', () => {
  let dir: string;
  beforeAll(() => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npx tsc -b packages/cli\` before these tests`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-reassign-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Runs the CLI against a bootstrap address nothing listens on: usage errors must come first. */
  function run(args: string[], stdin = ''): Promise<StrandRun> {
    return runStrand(['reassign', '--bootstrap', '127.0.0.1:1', '--timeout-ms', '500', ...args], { stdin });
  }

  it('exits 2 with a message naming the problem', async () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":"1,2"}]}');
    const results = await Promise.all([
      run(['--execute', '--reassignment-json-file', bad]),
      run(['--verify', '--reassignment-json-file', '-'], '{"partitions":'),
      run(['--cancel', '--reassignment-json-file', path.join(dir, 'missing.json')]),
      run(['--generate', '--topics-to-move-json-file', '-', '--broker-list', '1,a'], '{"version":1,"topics":[{"topic":"t"}]}'),
      run(['--execute']),
    ]);
    expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(results[0]?.stderr).toMatch(/^strand reassign: the reassignment JSON: partitions\[0\]: "replicas" must be a non-empty array of broker ids\n$/);
    expect(results[1]?.stderr).toMatch(/is not valid JSON/);
    expect(results[2]?.stderr).toMatch(/cannot read .*missing\.json: ENOENT/);
    expect(results[3]?.stderr).toMatch(/--broker-list expects comma-separated broker ids/);
    expect(results[4]?.stderr).toMatch(/--execute needs --reassignment-json-file/);
    for (const r of results) expect(r.stdout).toBe('');
  }, 60_000);

  it('exits 3 when the cluster cannot be reached with a valid file', async () => {
    const r = await run(['--list']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach the cluster/);
  }, 30_000);
});
