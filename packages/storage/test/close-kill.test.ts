/**
 * A kill in the middle of closing many logs at once (a broker SIGKILLed when its grace period
 * ends while it stops). Every log must then open either cleanly, its files trusted as they are,
 * or by recovery, with every record it held and consistent indexes (every offset readable, the
 * time index answering).
 *
 * The kill is real: a child process writes logs of several segments (some with an unflushed
 * tail, some flushed, some new and empty), closes them all at once and SIGKILLs itself when the
 * K-th fsync-family call of the close completes, for several K from the first to past the last.
 * The child runs the BUILT package (dist/), whose node:fs calls it wraps.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { PartitionLog } from '../src';
import { cleanupTempDirs, readAll, tempDir } from './helpers';

afterEach(cleanupTempDirs);

const LOGS = 12;
/** Records in log i: i * 3 (log 0 is empty). */
const records = (i: number): number => i * 3;
const options = { config: { 'segment.bytes': '300', 'index.interval.bytes': '0' } };

/** Runs the child; returns whether it was killed (false: every close finished first). */
function closeAndKill(parent: string, killAt: number): boolean {
  const child = `
    const fs = require('node:fs');
    const path = require('node:path');
    const { PartitionLog } = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
    const { encodeRecordBatch } = require('@strand/protocol');
    let completed = 0;
    const counted = (cb) => (...a) => {
      cb(...a);
      if (++completed === ${killAt}) process.kill(process.pid, 'SIGKILL');
    };
    (async () => {
      const logs = [];
      for (let i = 0; i < ${LOGS}; i++) {
        const log = PartitionLog.open(path.join(${JSON.stringify(parent)}, 't-' + i), ${JSON.stringify(options)});
        for (let r = 0; r < i * 3; r++) log.appendAsLeader(Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from(i + '-' + r) }], baseTimestamp: 1000 + r })), 1);
        if (i % 2 === 0) await log.flush();
        logs.push(log);
      }
      for (const name of ['fsync', 'fdatasync']) {
        const real = fs[name];
        fs[name] = (fd, cb) => real(fd, counted(cb));
      }
      const h = await fs.promises.open(__filename === '[eval]' ? '/dev/null' : __filename, 'r');
      const proto = Object.getPrototypeOf(h);
      await h.close();
      for (const name of ['sync', 'datasync']) {
        const real = proto[name];
        proto[name] = async function () {
          await real.call(this);
          if (++completed === ${killAt}) process.kill(process.pid, 'SIGKILL');
        };
      }
      await Promise.all(logs.map((l) => l.close()));
      process.stdout.write('closed ' + completed);
    })();
  `;
  const res = spawnSync(process.execPath, ['-e', child], { cwd: path.resolve(__dirname, '..'), timeout: 60_000, encoding: 'utf8' });
  expect(res.stderr).toBe('');
  return res.signal === 'SIGKILL';
}

test('a kill at any point of closing many logs at once leaves each clean or recoverable, with every record', () => {
  let killed = 0;
  let clean = 0;
  let recovered = 0;
  for (const killAt of [1, 3, 8, 15, 25, 40, 60, 1_000_000]) {
    const parent = tempDir('strand-close-kill-');
    if (closeAndKill(parent, killAt)) killed++;
    for (let i = 0; i < LOGS; i++) {
      const log = PartitionLog.open(path.join(parent, `t-${i}`), options);
      try {
        if (log.openedCleanly) clean++;
        else recovered++;
        expect([killAt, i, log.logEndOffset]).toEqual([killAt, i, records(i)]);
        const got = readAll(log, 0, 200);
        expect(got.map((r) => r.value)).toEqual(Array.from({ length: records(i) }, (_, r) => `${i}-${r}`));
        for (let r = 0; r < records(i); r++) {
          expect(log.read(r, 1).firstOffset).toBe(r);
          expect(log.offsetForTimestamp(1000 + r)?.offset).toBe(r);
        }
      } finally {
        log.abandon();
      }
    }
  }
  // Kills landed at different points: some logs were closed cleanly, others recovered.
  expect(killed).toBeGreaterThan(0);
  expect(clean).toBeGreaterThan(0);
  expect(recovered).toBeGreaterThan(0);
});
