/**
 * `strand dump-log`: a partition directory written by PartitionLog, dumped offline: batches with
 * their producer fields, records with --deep-iteration / --print-data-log, index entries checked
 * against the log, and a corrupt batch reported with exit 1; usage errors exit 2.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog, segmentFileName } from '@strand/storage';
import { dumpLog, dumpOffsetIndex, dumpTimeIndex } from '../../src/commands/dump-log';
import { runStrand } from '../support/run-strand';

let dir: string;
const file = (suffix: string): string => path.join(dir, segmentFileName(0, suffix));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-dump-'));
  const log = PartitionLog.open(dir, { config: { 'index.interval.bytes': '1' } });
  log.appendAsLeader(encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('hello') }], baseTimestamp: 1000 }), 0);
  log.appendAsLeader(encodeRecordBatch({ records: [{ value: Buffer.from('a'), headers: [{ key: 'h', value: null }] }, { value: null }], baseTimestamp: 2000, producerId: 7, producerEpoch: 1, baseSequence: 4 }), 2);
  await log.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a .log: batches, records and payloads', () => {
  const d = dumpLog(file('.log'), { data: true });
  expect(d.corruptAt).toBeUndefined();
  expect(d.batches.map((b) => [b.baseOffset, b.lastOffset, b.count, b.producerId, b.producerEpoch, b.baseSequence, b.lastSequence, b.partitionLeaderEpoch, b.isvalid])).toEqual([
    [0, 0, 1, -1, -1, -1, -1, 0, true],
    [1, 2, 2, 7, 1, 4, 5, 2, true],
  ]);
  expect(d.batches[1]!.position).toBe(d.batches[0]!.size);
  expect(d.batches[1]!.records).toEqual([
    { offset: 1, timestamp: 2000, keySize: -1, valueSize: 1, sequence: 4, headerKeys: ['h'], key: null, payload: 'a' },
    { offset: 2, timestamp: 2000, keySize: -1, valueSize: -1, sequence: 5, headerKeys: [], key: null, payload: null },
  ]);
});

test('index entries are listed and agree with the log', () => {
  const index = dumpOffsetIndex(file('.index'));
  expect(index.entries.map((e) => e.offset)).toEqual([0, 1]);
  expect(index.mismatches).toEqual([]);
  const time = dumpTimeIndex(file('.timeindex'));
  expect(time.entries).toEqual([{ timestamp: 1000, offset: 0 }, { timestamp: 2000, offset: 1 }]);
  expect(time.mismatches).toEqual([]);
});

test('the CLI prints Kafka-style lines, and exits 1 at a corrupt batch or a wrong index entry', async () => {
  const ok = await runStrand(['dump-log', '--files', `${file('.log')},${file('.index')}`, '--print-data-log']);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain(`Dumping ${file('.log')}\nLog starting offset: 0\nbaseOffset: 0 lastOffset: 0 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1`);
  expect(ok.stdout).toContain('| offset: 0 CreateTime: 1000 keySize: 1 valueSize: 5 sequence: -1 headerKeys: [] key: k payload: hello');
  expect(ok.stdout).toContain('offset: 1 position: ');

  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-dump-bad-'));
  try {
    const bad = Buffer.from(fs.readFileSync(file('.log')));
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff; // inside the second batch's CRC range
    fs.writeFileSync(path.join(copy, segmentFileName(0, '.log')), bad);
    const idx = Buffer.from(fs.readFileSync(file('.index')));
    idx.writeUInt32BE(3, 12); // entry 2 now points at byte 3, no batch boundary
    fs.writeFileSync(path.join(copy, segmentFileName(0, '.index')), idx);
    const res = await runStrand(['dump-log', '--files', path.join(copy, segmentFileName(0, '.log'))]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/isvalid: false\nFound a corrupt or torn batch at position \d+ .*CRC/);
    const index = await runStrand(['dump-log', '--json', '--files', path.join(copy, segmentFileName(0, '.index'))]);
    expect(index.code).toBe(1);
    expect(JSON.parse(index.stdout).mismatches).toEqual(['index offset 1, position 3: no batch starts at that position in the log']);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});

test('usage errors exit 2', async () => {
  expect((await runStrand(['dump-log'])).code).toBe(2);
  expect((await runStrand(['dump-log', '--files', path.join(dir, 'leader-epoch-checkpoint')])).code).toBe(2);
  expect((await runStrand(['dump-log', '--files', path.join(dir, 'missing.log')])).code).toBe(2);
});
