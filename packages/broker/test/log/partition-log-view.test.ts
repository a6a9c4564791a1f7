// Checks that @strand/storage's PartitionLog, seen through partitionLogView(), answers the
// replication core's questions (log end, latest epoch, end of an epoch, countable end) the same
// way as the simulator's SimLog for the same history — the reason the simulator may stand in for
// the real log. Uses a real log in a temporary directory.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '@strand/storage';
import { partitionLogView } from '../../src/log/partition-log-view';
import { SimLog } from '../../src/sim/sim-log';

function batch(value: string): Buffer {
  return encodeRecordBatch({ baseOffset: 0, baseTimestamp: 1000, records: [{ value: Buffer.from(value), timestamp: 1000 }] });
}

describe('partitionLogView', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-broker-view-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('agrees with SimLog on offsets and the leader-epoch cache through appends and truncation', async () => {
    const log = PartitionLog.open(dir);
    const view = partitionLogView(log);
    const sim = new SimLog();
    const epochs = [1, 1, 2, 4, 4, 4, 7];
    epochs.forEach((e, i) => {
      log.appendAsLeader(batch(`v${i}`), e);
      sim.appendAsLeader(`v${i}`, e);
    });
    const same = (): void => {
      expect(view.logEndOffset).toBe(sim.logEndOffset);
      expect(view.latestEpoch).toBe(sim.latestEpoch);
      for (let e = 0; e <= 10; e++) expect(view.endOffsetForEpoch(e)).toEqual(sim.endOffsetForEpoch(e));
    };
    same();
    log.truncateTo(4);
    sim.truncateTo(4);
    same();
    // A new leader records its epoch at the log end; a truncation to the log end drops it.
    log.assignLeaderEpoch(8);
    sim.assignLeaderEpoch(8);
    same();
    expect(view.latestEpoch).toBe(8);
    log.truncateTo(4);
    sim.truncateTo(4);
    same();
    log.assignLeaderEpoch(9);
    sim.assignLeaderEpoch(9);
    log.appendAsLeader(batch('w'), 9);
    sim.appendAsLeader('w', 9);
    same();
    await log.flush();
    expect(view.countableEndOffset).toBe(5);
    await log.close();
  });
});
