/**
 * Regression (found by the chaos work while building the power-loss hook): a truncation during an
 * in-flight fdatasync, followed by appends that leave the segment no longer than that flush's
 * target, must not make the new bytes count as fdatasynced. The test holds the first fdatasync,
 * truncates and appends, releases it, and checks that another fdatasync of the log file ran
 * before durableEndOffset covered the new records.
 *
 * It spies on fs.fdatasync through the BUILT package (dist/): its CommonJS `import * as fs` keeps
 * live bindings to the module object, which the swc-transformed sources do not. `npm test`
 * builds first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '../dist/index.js';

const one = (v: string): Buffer => Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: Date.now() }));

test('bytes appended after a truncation during an fdatasync are synced before they count as durable', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-flush-trunc-'));
  const held: (() => void)[] = [];
  const events: string[] = [];
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const real = nodeFs.fdatasync;
  let phase = 0;
  const spy = jest.spyOn(nodeFs, 'fdatasync').mockImplementation(((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const name = path.basename(fs.readlinkSync(`/proc/self/fd/${fd}`));
    if (name.endsWith('.log')) events.push(`fdatasync ${phase}`);
    if (phase === 0) held.push(() => real(fd, cb));
    else real(fd, cb);
  }) as typeof fs.fdatasync);
  try {
    const log = PartitionLog.open(dir);
    log.onDurable((d: number) => events.push(`durable ${d}`));
    log.appendAsLeader(Buffer.concat(Array.from({ length: 10 }, (_, i) => one(`a${i}`))), 1);
    expect(held.length).toBe(1);
    log.truncateTo(5);
    for (let i = 0; i < 3; i++) log.appendAsLeader(one(`b${i}`), 1); // offsets 5..7, written after the fdatasync began
    phase = 1;
    for (const h of held.splice(0)) h();
    await log.flush();
    expect(log.durableEndOffset).toBe(8);
    // An fdatasync of the log file ran after the new bytes were written, before 8 became durable.
    const synced = events.indexOf('fdatasync 1');
    expect(synced).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('durable 8')).toBeGreaterThan(synced);
    await log.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
