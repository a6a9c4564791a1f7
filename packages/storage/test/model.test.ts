/**
 * Model-based property test: random sequences of appends (leader and follower), reads from random
 * offsets, truncations, forced rolls, DeleteRecords, clean reopenings and crash reopenings
 * (abandon: files closed with no flush or clean-shutdown marker) run against PartitionLog and an
 * in-memory model (an array of records with offsets). After every command the log's start/end
 * offsets and its full contents must equal the model's. Tiny segments and index intervals make
 * rolls and sparse-index lookups happen constantly.
 */
import fc from 'fast-check';
import { PartitionLog, type PartitionLogOptions } from '../src';
import { batch, cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

interface ModelRecord {
  offset: number;
  value: string;
  epoch: number;
}

interface Model {
  records: ModelRecord[];
  start: number;
  end: number;
}

type Command =
  | { kind: 'append'; count: number; epochBump: boolean }
  | { kind: 'read'; at: number; maxBytes: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'roll' }
  | { kind: 'deleteRecords'; at: number }
  | { kind: 'reopen' }
  | { kind: 'crash' };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 6 }), epochBump: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), maxBytes: fc.integer({ min: 1, max: 600 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('roll' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteRecords' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const) }) },
);

function pick(model: Model, at: number): number {
  return Math.min(model.end, model.start + Math.floor(at * (model.end - model.start + 1)));
}

async function run(commands: Command[]): Promise<void> {
  const dir = tempDir();
  const options: PartitionLogOptions = { config: { 'segment.bytes': '512', 'index.interval.bytes': '64' } };
  let log = PartitionLog.open(dir, options);
  const model: Model = { records: [], start: 0, end: 0 };
  let epoch = 0;
  let serial = 0;
  try {
    for (const cmd of commands) {
      switch (cmd.kind) {
        case 'append': {
          if (cmd.epochBump) epoch++;
          const tag = `v${serial++}`;
          const info = log.appendAsLeader(batch(tag, cmd.count), epoch);
          expect(info.firstOffset).toBe(model.end);
          for (let i = 0; i < cmd.count; i++) model.records.push({ offset: model.end + i, value: `${tag}-${i}`, epoch });
          model.end += cmd.count;
          break;
        }
        case 'read': {
          const at = pick(model, cmd.at);
          const res = log.read(at, cmd.maxBytes);
          if (at === model.end) expect(res.batchCount).toBe(0);
          else {
            expect(res.batchCount).toBeGreaterThan(0);
            expect(res.firstOffset).toBeLessThanOrEqual(at);
            expect(res.nextOffset).toBeGreaterThan(at);
          }
          break;
        }
        case 'truncate': {
          const at = pick(model, cmd.at);
          log.truncateTo(at);
          // Whole batches go: the new end is the start of the batch holding `at`.
          const newEnd = log.logEndOffset;
          expect(newEnd).toBeLessThanOrEqual(at);
          model.records = model.records.filter((r) => r.offset < newEnd);
          model.end = Math.max(newEnd, model.start);
          if (model.end < model.start) model.start = model.end;
          break;
        }
        case 'roll':
          log.rollIfNotEmpty();
          break;
        case 'deleteRecords': {
          const at = pick(model, cmd.at);
          log.deleteRecordsBefore(at);
          model.start = Math.max(model.start, at);
          model.records = model.records.filter((r) => r.offset >= model.start);
          break;
        }
        case 'reopen':
          await log.close();
          log = PartitionLog.open(dir, options);
          break;
        case 'crash':
          // Page-cache contents survive a process crash, so nothing is lost; recovery must
          // still scan, rebuild indexes and keep exactly the same log.
          log.abandon();
          log = PartitionLog.open(dir, options);
          expect(log.recoveredTruncatedBytes).toBe(0);
          break;
      }
      expect([log.logStartOffset, log.logEndOffset]).toEqual([model.start, model.end]);
      if (cmd.kind === 'reopen' || cmd.kind === 'crash' || cmd.kind === 'truncate') {
        expect(readAll(log, log.logStartOffset, 300).map((r) => [r.offset, r.value, r.epoch])).toEqual(model.records.map((r) => [r.offset, r.value, r.epoch]));
      }
    }
    expect(readAll(log, log.logStartOffset, 300).map((r) => [r.offset, r.value, r.epoch])).toEqual(model.records.map((r) => [r.offset, r.value, r.epoch]));
  } finally {
    await log.close();
  }
}

describe('PartitionLog against an in-memory model', () => {
  it('agrees after every command sequence', async () => {
    await fc.assert(fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 60 }), run), { numRuns: 60 });
  });
});
