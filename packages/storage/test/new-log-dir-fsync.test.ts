/**
 * A new partition directory must itself be durable before its first records count as durable:
 * fsyncing the files in it and the directory does not make the directory's own entry in its
 * parent durable (Kafka's KAFKA-3968 lesson, one level up). The test opens a log in a directory
 * that does not exist yet, appends, and checks that the parent directory was fsynced before
 * durableEndOffset first moved, and only once.
 *
 * It spies on fs.fsync through the BUILT package (dist/): its CommonJS `import * as fs` keeps
 * live bindings to the module object, which the swc-transformed sources do not. `npm test`
 * builds first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '../dist/index.js';

const one = (v: string): Buffer => Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(v) }], baseTimestamp: Date.now() }));

test('the first flush of a new log fsyncs the parent directory before anything counts as durable', async () => {
  const parent = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'strand-new-dir-')));
  const dir = path.join(parent, 'topic-0');
  const events: string[] = [];
  const nodeFs = jest.requireActual<typeof fs>('node:fs');
  const real = nodeFs.fsync;
  const spy = jest.spyOn(nodeFs, 'fsync').mockImplementation(((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    if (fs.readlinkSync(`/proc/self/fd/${fd}`) === parent) events.push('fsync parent');
    real(fd, cb);
  }) as typeof fs.fsync);
  try {
    const log = PartitionLog.open(dir);
    log.onDurable((d: number) => events.push(`durable ${d}`));
    log.appendAsLeader(one('a'), 1);
    await log.flush();
    log.appendAsLeader(one('b'), 1);
    await log.flush();
    expect(events).toEqual(['fsync parent', 'durable 1', 'durable 2']);
    await log.close();
  } finally {
    spy.mockRestore();
    fs.rmSync(parent, { recursive: true, force: true });
  }
});
