// Drives the pure leader and follower cores over two REAL PartitionLogs (temporary directories,
// RecordBatch v2 bytes with several records per batch, the real leader-epoch cache and fsync), the
// way the broker's I/O layer does: the high watermark waits for the follower's fsync, and after
// a leader change the old leader's unreplicated batches are found by epoch and truncated so the
// two logs end byte-identical. Complements the simulator, which uses the in-memory SimLog.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { PartitionLog } from '@strand/storage';
import { partitionLogView } from '../../src/log/partition-log-view';
import { PartitionFollower } from '../../src/replication/partition-follower';
import { PartitionLeader } from '../../src/replication/partition-leader';

function batch(...values: string[]): Buffer {
  return encodeRecordBatch({ baseTimestamp: 1, records: values.map((v) => ({ value: Buffer.from(v), timestamp: 1 })) });
}

/** One fetch round trip: follower asks, leader decides, bytes are read and applied. */
function fetchOnce(leader: PartitionLeader, leaderLog: PartitionLog, follower: PartitionFollower, followerLog: PartitionLog, nowMs: number): string {
  const out = follower.pollFetch(nowMs, 1000);
  if (out === null) return 'none';
  const decision = leader.handleFollowerFetch(out.request, nowMs);
  const action = follower.onFetchResponse(out.correlationId, decision, nowMs);
  if (action.kind === 'append' && decision.kind === 'read') {
    const r = leaderLog.read(decision.fetchOffset, 1 << 20);
    if (r.batchCount > 0) followerLog.appendAsFollower(Buffer.from(r.records));
    follower.onAppended(decision.highWatermark);
  } else if (action.kind === 'truncate') {
    followerLog.truncateTo(action.offset);
    follower.onTruncated();
  }
  return action.kind;
}

function allBytes(log: PartitionLog): Buffer {
  const parts: Buffer[] = [];
  for (let offset = log.logStartOffset; offset < log.logEndOffset; ) {
    const r = log.read(offset, 1 << 20);
    parts.push(Buffer.from(r.records));
    offset = r.nextOffset;
  }
  return Buffer.concat(parts);
}

describe('replication cores over real PartitionLogs', () => {
  let root: string;
  let a: PartitionLog;
  let b: PartitionLog;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-broker-repl-'));
    a = PartitionLog.open(path.join(root, 'a'));
    b = PartitionLog.open(path.join(root, 'b'));
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the HW waits for the follower fsync; a leader change truncates the old leader by epoch to identical bytes', async () => {
    // Epoch 1: broker 1 (log a) leads, broker 2 (log b) follows.
    const l1 = new PartitionLeader({ localReplicaId: 1, state: { leader: 1, leaderEpoch: 1, partitionEpoch: 0, replicas: [1, 2], isr: [1, 2] }, log: partitionLogView(a), highWatermark: 0, nowMs: 0 });
    const f2 = new PartitionFollower({ localReplicaId: 2, leaderId: 1, leaderEpoch: 1, log: partitionLogView(b), highWatermark: 0 });
    a.appendAsLeader(batch('a0', 'a1'), 1);
    a.appendAsLeader(batch('a2', 'a3', 'a4'), 1);
    await a.flush();
    l1.onLocalLogChanged();
    expect(fetchOnce(l1, a, f2, b, 1)).toBe('append');
    expect(b.logEndOffset).toBe(5);
    expect(fetchOnce(l1, a, f2, b, 2)).toBe('append');
    expect(l1.highWatermark).toBe(0); // the follower has not fsynced: nothing counts yet
    await b.flush();
    fetchOnce(l1, a, f2, b, 3);
    expect(l1.highWatermark).toBe(5);
    fetchOnce(l1, a, f2, b, 4);
    expect(f2.highWatermark).toBe(5);

    // Broker 2 fetches x5 (the HW stays 5: its fsync has not reported), then broker 1 appends a
    // batch broker 2 never fetches, and loses leadership.
    a.appendAsLeader(batch('x5'), 1);
    await a.flush();
    l1.onLocalLogChanged();
    expect(fetchOnce(l1, a, f2, b, 5)).toBe('append');
    expect(l1.highWatermark).toBe(5);
    a.appendAsLeader(batch('lost6', 'lost7'), 1);
    await a.flush();
    await b.flush();
    // Epoch 2: broker 2 leads and writes at the offsets broker 1 used.
    const l2 = new PartitionLeader({ localReplicaId: 2, state: { leader: 2, leaderEpoch: 2, partitionEpoch: 1, replicas: [1, 2], isr: [1, 2] }, log: partitionLogView(b), highWatermark: f2.highWatermark, nowMs: 10 });
    b.appendAsLeader(batch('b6'), 2);
    b.appendAsLeader(batch('b7', 'b8'), 2);
    await b.flush();
    l2.onLocalLogChanged();
    const f1 = new PartitionFollower({ localReplicaId: 1, leaderId: 2, leaderEpoch: 2, log: partitionLogView(a), highWatermark: l1.highWatermark });
    l1.resign();
    // Broker 1's last epoch (1) ends at 6 on broker 2: truncate there — above its HW of 5, so x5,
    // which truncation to the HW would have thrown away (KIP-101), stays.
    expect(f1.highWatermark).toBe(5);
    expect(fetchOnce(l2, b, f1, a, 11)).toBe('truncate');
    expect(a.logEndOffset).toBe(6);
    expect(fetchOnce(l2, b, f1, a, 12)).toBe('append');
    await a.flush();
    fetchOnce(l2, b, f1, a, 13);
    expect(l2.highWatermark).toBe(9);
    expect(allBytes(a).equals(allBytes(b))).toBe(true);
    expect(a.leaderEpochs.list()).toEqual(b.leaderEpochs.list());
  });
});
