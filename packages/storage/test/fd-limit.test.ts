/**
 * Many logs flushing, then closing, at once in a process with few free file descriptors. Each
 * flush of a new log fsyncs its directory and the common parent, and a close also writes its
 * recovery point and clean-shutdown marker: thousands at once asked for more descriptors than
 * `ulimit -n` allows, the opens failed with EMFILE, and every such log failed
 * (KAFKA_STORAGE_ERROR, the broker halts) although nothing had gone wrong with the disk. Now the
 * descriptors held at once are bounded, the parent's fsync shared, and EMFILE retried: every
 * flush and close succeeds, no log fails, and every log reopens cleanly.
 *
 * A real limit: a child Node process under `prlimit --nofile`, which opens the logs, then takes
 * every descriptor left but FREE with /dev/null, so the shortage does not depend on what Node
 * itself holds. It runs the BUILT package (dist/).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PartitionLog } from '../dist/index.js';
import { cleanupTempDirs, tempDir } from './helpers';

afterEach(cleanupTempDirs);

const LOGS = 60;
const FREE = 3;

test(`${LOGS} new logs flushing and closing at once with ${FREE} descriptors free all succeed, and reopen cleanly`, () => {
  const parent = tempDir('strand-fd-limit-');
  const child = `
    const fs = require('node:fs');
    const path = require('node:path');
    const { PartitionLog } = require(${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))});
    const { encodeRecordBatch } = require('@strand/protocol');
    (async () => {
      const failures = [];
      const logs = [];
      for (let i = 0; i < ${LOGS}; i++) logs.push(PartitionLog.open(path.join(${JSON.stringify(parent)}, 't-' + i), { onFailure: (e) => failures.push(e.message) }));
      const hold = [];
      for (;;) {
        try {
          hold.push(fs.openSync('/dev/null', 'r'));
        } catch (e) {
          if (e.code !== 'EMFILE') throw e;
          break;
        }
      }
      for (let i = 0; i < ${FREE}; i++) fs.closeSync(hold.pop());
      for (const l of logs) l.appendAsLeader(Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.from('v') }], baseTimestamp: 1 })), 0);
      const flushed = await Promise.allSettled(logs.map((l) => l.flush()));
      const durable = logs.filter((l) => l.durableEndOffset === 1).length;
      const closed = await Promise.allSettled(logs.map((l) => l.close()));
      for (const fd of hold) fs.closeSync(fd);
      const errors = (rs) => rs.filter((r) => r.status === 'rejected').map((r) => String(r.reason)).slice(0, 3);
      process.stdout.write(JSON.stringify({ held: hold.length, flushErrors: errors(flushed), durable, closeErrors: errors(closed), failures: failures.slice(0, 3) }));
    })();
  `;
  const res = spawnSync('prlimit', [`--nofile=${8 * LOGS}:${8 * LOGS}`, process.execPath, '-e', child], { cwd: path.resolve(__dirname, '..'), timeout: 60_000, encoding: 'utf8' });
  expect([res.status, res.stderr]).toEqual([0, '']);
  const out = JSON.parse(res.stdout) as { held: number; flushErrors: string[]; durable: number; closeErrors: string[]; failures: string[] };
  expect(out.held).toBeGreaterThan(0); // the limit was reached: only FREE descriptors were left
  expect(out).toMatchObject({ flushErrors: [], durable: LOGS, closeErrors: [], failures: [] });
  for (let i = 0; i < LOGS; i++) {
    const log = PartitionLog.open(path.join(parent, `t-${i}`));
    expect([i, log.openedCleanly, log.logEndOffset]).toEqual([i, true, 1]);
    log.abandon();
  }
  expect(fs.readdirSync(parent).length).toBe(LOGS);
});
