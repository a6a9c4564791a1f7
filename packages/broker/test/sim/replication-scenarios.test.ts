// The named replication failure scenarios of ../shared/SCENARIOS.md (1–6, 11, 12), each one a
// deterministic script: a SimCluster (three replicas, the controller model, an acks=all producer)
// driven by hand — no random faults, no drops, one-step delivery — with the simulator's safety
// checker running after every step (HW never past a durable ISR offset, one history below any
// HW, acknowledged writes never lost, epochs only grow). Each test cites the report the failure
// comes from and asserts the specific guard, then that the replicas converge once healed.
// Scenario 11 uses the real PartitionLog (RecordBatch v2 bytes with producer ids) to show the
// producer state is rebuilt from the log.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch, validateBatches } from '@strand/protocol';
import { PartitionLog } from '@strand/storage';
import { PartitionFollower } from '../../src/replication/partition-follower';
import { PartitionLeader } from '../../src/replication/partition-leader';
import { ProducerStateManager } from '../../src/replication/producer-state';
import { SimCluster, type SimClusterOptions } from '../../src/sim/sim-cluster';
import { SimLog } from '../../src/sim/sim-log';
import type { AlterPartitionRequest } from '../../src/replication/types';
import { CONTROLLER_ID, PRODUCER_ID } from '../../src/sim/sim-network';

function cluster(o: Partial<SimClusterOptions> = {}, trace?: string[]): SimCluster {
  const c = new SimCluster({
    seed: 1,
    produceRate: 0,
    flushRate: 1,
    hwCheckpointRate: 0,
    minInsyncReplicas: 2,
    replicaLagTimeMaxMs: 100,
    sessionTimeoutSteps: 20,
    producerMaxInFlight: 8,
    ...o,
    ...(trace !== undefined ? { trace: (l: string) => void trace.push(l) } : {}),
  });
  c.producer.enabled = false;
  c.run(10); // metadata reaches brokers and producer; followers start fetching
  return c;
}

/** Sends one write and waits for its answer; returns the value if acknowledged, else null. */
function produce(c: SimCluster, maxSteps = 100): string | null {
  const value = c.producer.produce(c.step);
  if (value === null) throw new Error('the producer has no leader or no room in its window');
  c.runUntil(() => c.producer.outcomes.has(value), maxSteps);
  return c.producer.outcomes.get(value) === 'ok' ? value : null;
}

function offsetOf(c: SimCluster, value: string): number {
  for (const [o, v] of c.checker.acked) if (v === value) return o;
  throw new Error(`${value} was not acknowledged`);
}

function values(c: SimCluster, id: number): string[] {
  return c.broker(id).log.slice().map((r) => r.value);
}

function converge(c: SimCluster): void {
  c.net.healAll();
  c.unpauseAll();
  for (const id of c.ids) c.restart(id);
  const ok = c.runUntil(() => c.notConvergedBecause() === null, 1000);
  if (!ok) throw new Error(`did not converge: ${c.notConvergedBecause() ?? ''}`);
  c.checkConverged();
}

describe('SCENARIOS.md 1: ISR shrinks to the leader alone (Jepsen, Kafka 0.8, 2013)', () => {
  test('min.insync.replicas refuses acks=all when only the leader is in sync, and no stale replica is elected', () => {
    const c = cluster({ minInsyncReplicas: 2 });
    const acked = [produce(c), produce(c)];
    expect(acked).not.toContain(null);
    // Followers keep their controller sessions but stop replicating: they fall out of the ISR.
    c.net.cutLink(1, 2);
    c.net.cutLink(1, 3);
    c.runUntil(() => c.controller.state.isr.length === 1, 200);
    expect(c.controller.state.isr).toEqual([1]);
    c.run(10);
    // acks=all now means "only the leader has it": refused.
    const refused = c.producer.produce(c.step) as string;
    c.run(5);
    expect(c.producer.outcomes.get(refused)).toBe('NOT_ENOUGH_REPLICAS');
    // The leader dies. Unclean election is off: the out-of-sync replicas are not elected.
    c.crash(1);
    c.run(60);
    expect(c.controller.state.leader).toBeNull();
    expect(c.controller.state.isr).toEqual([1]);
    // It comes back with everything acknowledged (it was fsynced) and leads again.
    converge(c);
    for (const v of acked) expect(values(c, 2)).toContain(v);
    expect(produce(c)).not.toBeNull();
  });
});

describe('SCENARIOS.md 2: truncation to a stale high watermark (KIP-101 scenario 1)', () => {
  test('a follower restarting with a stale HW keeps its log (truncation by epoch), and is later elected with every acknowledged write', () => {
    const trace: string[] = [];
    const c = cluster({ minInsyncReplicas: 2 }, trace);
    const acked = [produce(c), produce(c), produce(c)].filter((v): v is string => v !== null);
    expect(acked).toHaveLength(3);
    const b2 = c.broker(2);
    const logEnd = b2.log.logEndOffset;
    // The HW checkpoint never ran (hwCheckpointRate 0): broker 2 restarts believing HW = 0.
    c.crash(2);
    c.restart(2);
    expect(b2.highWatermark).toBe(0);
    c.run(30);
    // Pre-KIP-101 Kafka truncated to the HW here, dropping acknowledged writes. Strand asks the
    // leader where its last epoch ends: nothing to cut.
    expect(b2.log.logEndOffset).toBeGreaterThanOrEqual(logEnd);
    expect(trace.filter((l) => l.includes('broker 2 log cut'))).toEqual([]);
    c.runUntil(() => c.controller.state.isr.length === 3, 200);
    // Now the others die; broker 2 is the only electable replica and must hold every ack.
    c.crash(3);
    c.run(30);
    c.crash(1);
    c.runUntil(() => c.controller.state.leader === 2, 100);
    expect(c.controller.state.leader).toBe(2);
    c.run(5);
    for (const v of acked) expect(b2.log.at(offsetOf(c, v))?.value).toBe(v);
    converge(c);
  });
});

describe('SCENARIOS.md 3: divergent logs after a double crash (KIP-101 scenario 2)', () => {
  test('a replica returning with different bytes at an offset is detected by epoch and truncated', () => {
    const c = cluster({ replicas: 2, minInsyncReplicas: 1 });
    expect(produce(c)).not.toBeNull();
    // m2 reaches only the leader (and its disk): the follower is cut off.
    c.net.cutLink(1, 2);
    c.producer.produce(c.step);
    c.run(3);
    expect(c.broker(1).log.logEndOffset).toBe(2);
    expect(c.broker(2).log.logEndOffset).toBe(1);
    const m2 = c.broker(1).log.at(1);
    // Both crash at once. The controller fences the leader first, elects broker 2 (still in the
    // ISR, its session not yet expired), then fences it too: broker 2 is the last ISR member.
    c.crash(1);
    c.crash(2);
    c.run(30);
    expect(c.controller.state).toMatchObject({ leader: null, isr: [2] });
    // Broker 2 comes back first and is elected (it holds everything acknowledged, fsynced).
    c.net.healAll();
    c.restart(2);
    c.runUntil(() => c.controller.state.leader === 2 && c.broker(2).leaderEpoch !== null, 200);
    const m3 = produce(c);
    expect(m3).not.toBeNull();
    expect(c.broker(2).log.at(1)?.value).toBe(m3);
    // Broker 1 returns with m2 at offset 1: two histories at one offset.
    c.restart(1);
    expect(c.broker(1).log.at(1)).toEqual(m2);
    converge(c);
    // Its last epoch ended at offset 1 on the leader: m2 was cut, m3 fetched.
    expect(values(c, 1)).toEqual(values(c, 2));
    expect(c.broker(1).log.at(1)?.value).toBe(m3);
  });
});

describe('SCENARIOS.md 4: fast back-to-back leader changes (KIP-279)', () => {
  test('a follower holding an epoch the leader never had truncates to the end of the last common epoch, in rounds', () => {
    // Leader: epoch 1 at [0,3), then epoch 3 (it never saw epoch 2). Follower: epoch 1 at [0,2),
    // then epoch 2 at [2,5) written by a leader that died before replicating it.
    const leaderLog = new SimLog();
    ['a', 'b', 'c'].forEach((v) => leaderLog.appendAsLeader(v, 1));
    leaderLog.appendAsLeader('d', 3);
    leaderLog.flush();
    const followerLog = new SimLog();
    followerLog.appendAsFollower([
      { offset: 0, epoch: 1, value: 'a' },
      { offset: 1, epoch: 1, value: 'b' },
      { offset: 2, epoch: 2, value: 'x' },
      { offset: 3, epoch: 2, value: 'y' },
      { offset: 4, epoch: 2, value: 'z' },
    ]);
    const leader = new PartitionLeader({ localReplicaId: 1, state: { leader: 1, leaderEpoch: 3, partitionEpoch: 5, replicas: [1, 2], isr: [1] }, log: leaderLog, highWatermark: 2, nowMs: 0 });
    const follower = new PartitionFollower({ localReplicaId: 2, leaderId: 1, leaderEpoch: 3, log: followerLog, highWatermark: 2 });
    for (let round = 0; round < 5; round++) {
      const out = follower.pollFetch(round, 1000);
      if (out === null) throw new Error('no fetch');
      const decision = leader.handleFollowerFetch(out.request, round);
      const action = follower.onFetchResponse(out.correlationId, decision, round);
      if (action.kind === 'truncate') {
        followerLog.truncateTo(action.offset);
        follower.onTruncated();
      } else if (action.kind === 'append' && decision.kind === 'read') {
        followerLog.appendAsFollower(leaderLog.read(decision.fetchOffset, 10));
        follower.onAppended(decision.highWatermark);
      }
    }
    // Epoch 2 (never on the leader) is gone; the common epoch-1 prefix [a, b] was kept — not the
    // leader's HW of 2 by accident: offset 2 ('x' vs 'c') really differed.
    expect(followerLog.slice().map((r) => r.value)).toEqual(['a', 'b', 'c', 'd']);
  });

  test('a leader that has not learned its own epoch yet answers UNKNOWN_LEADER_EPOCH and the follower retries without truncating', () => {
    const log = new SimLog();
    log.appendAsLeader('a', 4);
    const leader = new PartitionLeader({ localReplicaId: 1, state: { leader: 1, leaderEpoch: 4, partitionEpoch: 1, replicas: [1, 2], isr: [1, 2] }, log, highWatermark: 0, nowMs: 0 });
    const flog = new SimLog();
    flog.appendAsFollower([{ offset: 0, epoch: 4, value: 'a' }]);
    const follower = new PartitionFollower({ localReplicaId: 2, leaderId: 1, leaderEpoch: 5, log: flog, highWatermark: 0, retryBackoffMs: 10 });
    const out = follower.pollFetch(0, 1000);
    const action = follower.onFetchResponse(out?.correlationId ?? -1, leader.handleFollowerFetch(out?.request ?? { replicaId: 2, currentLeaderEpoch: 5, fetchOffset: 0, lastFetchedEpoch: -1, countableEndOffset: 0, logStartOffset: 0 }, 0), 0);
    expect(action).toEqual({ kind: 'backoff' });
    expect(flog.logEndOffset).toBe(1);
  });

  test('three elections in quick succession under load: no ack lost, logs converge', () => {
    const c = cluster({ minInsyncReplicas: 1, sessionTimeoutSteps: 8 });
    for (let i = 0; i < 3; i++) expect(produce(c)).not.toBeNull();
    for (const victim of [1, 2, 3]) {
      // Cut the current leader off from the controller: fenced after 8 steps, a new one elected.
      const leader = c.controller.state.leader ?? victim;
      c.net.cutLink(leader, CONTROLLER_ID);
      c.producer.produce(c.step);
      c.run(12);
      c.net.healAll();
      c.run(2);
    }
    expect(c.controller.state.leaderEpoch).toBeGreaterThanOrEqual(3);
    converge(c);
    expect(produce(c)).not.toBeNull();
  });
});

describe('leaders that write nothing in their epochs (Kafka\'s makeLeader records the epoch)', () => {
  test('each new leader records its epoch at its log end; former leaders follow without a lost record or a livelock', () => {
    const c = cluster({ minInsyncReplicas: 1, sessionTimeoutSteps: 8 });
    for (let i = 0; i < 3; i++) expect(produce(c)).not.toBeNull();
    c.runUntil(() => c.notConvergedBecause() === null, 200);
    const formerLeaders = new Set<number>();
    for (let round = 0; round < 3; round++) {
      const old = c.controller.state.leader as number;
      formerLeaders.add(old);
      // Cut the leader off from the controller: fenced, another replica elected; nobody writes.
      c.net.cutLink(old, CONTROLLER_ID);
      expect(c.runUntil(() => {
        const st = c.controller.state;
        return st.leader !== null && st.leader !== old && c.broker(st.leader).leaderEpoch === st.leaderEpoch;
      }, 100)).toBe(true);
      const st = c.controller.state;
      const log = c.broker(st.leader as number).log;
      expect(log.latestEpoch).toBe(st.leaderEpoch);
      expect(log.endOffsetForEpoch(st.leaderEpoch)).toEqual({ epoch: st.leaderEpoch, endOffset: 3 });
      expect(log.endOffsetForEpoch(st.leaderEpoch - 1).endOffset).toBe(3);
      c.net.healAll();
      c.run(2);
    }
    expect(formerLeaders.size).toBeGreaterThan(1);
    // No restarts (a restart would drop the recorded epochs): the former leaders, each holding an
    // epoch it wrote nothing in, must drop it and take the new leader's write.
    expect(produce(c)).not.toBeNull();
    expect(c.runUntil(() => c.notConvergedBecause() === null, 500)).toBe(true);
    c.checkConverged();
    for (const id of c.ids) {
      expect(c.broker(id).log.logEndOffset).toBe(4);
      expect(c.broker(id).log.latestEpoch).toBe(c.controller.state.leaderEpoch);
    }
  });
});

describe('SCENARIOS.md 5: last replica standing loses its page cache (KIP-966)', () => {
  function lastStanding(flushPolicy: 'fsync' | 'page-cache'): { c: SimCluster; w: string } {
    const c = cluster({ flushPolicy, minInsyncReplicas: 2, flushRate: flushPolicy === 'fsync' ? 1 : 0 });
    // Broker 3 leaves the ISR; a write is acknowledged by {1, 2}.
    c.net.cutLink(1, 3);
    c.runUntil(() => c.controller.state.isr.length === 2, 200);
    const w = produce(c);
    if (w === null) throw new Error('write not acknowledged');
    // Broker 2 leaves too: broker 1 is the last replica standing.
    c.net.cutLink(1, 2);
    c.runUntil(() => c.controller.state.isr.length === 1, 200);
    // It loses power: whatever was only in its page cache is gone.
    c.crash(1);
    c.run(30);
    c.restart(1);
    c.run(30);
    return { c, w };
  }

  test('page-cache durability: the uncleanly restarted last replica is not elected (it lost the acknowledged write)', () => {
    const { c, w } = lastStanding('page-cache');
    expect(c.broker(1).log.logEndOffset).toBe(0);
    expect(c.controller.state.leader).toBeNull();
    // The acknowledged write survives on broker 2, which was not truncated to broker 1's empty log.
    expect(values(c, 2)).toContain(w);
  });

  test('fsync durability (the default): the restart lost only bytes that never counted, so it is safely elected', () => {
    const { c, w } = lastStanding('fsync');
    expect(c.controller.state.leader).toBe(1);
    expect(c.broker(1).log.at(offsetOf(c, w))?.value).toBe(w);
    converge(c);
    expect(values(c, 2)).toContain(w);
  });
});

describe('SCENARIOS.md 6: zombie leader', () => {
  test('a leader cut off from controller and followers accepts writes but never acknowledges them; its AlterPartition is rejected', () => {
    const c = cluster({ minInsyncReplicas: 2 });
    expect(produce(c)).not.toBeNull();
    // Broker 1 keeps only its producer; the producer loses the controller (stale metadata).
    c.net.cutLink(1, 2);
    c.net.cutLink(1, 3);
    c.net.cutLink(1, CONTROLLER_ID);
    c.net.cutLink(PRODUCER_ID, CONTROLLER_ID);
    const acks = c.producer.acks;
    for (let i = 0; i < 5; i++) c.producer.produce(c.step), c.run(10);
    c.runUntil(() => c.controller.state.leader !== 1, 100);
    const newLeader = c.controller.state.leader;
    expect(newLeader).not.toBe(1);
    expect(c.broker(1).leaderEpoch).toBe(0); // it still believes it leads epoch 0
    c.run(60);
    expect(c.producer.acks).toBe(acks); // nothing written to the zombie was acknowledged
    const zombieWrites = values(c, 1).slice(c.broker(1).highWatermark);
    expect(zombieWrites.length).toBeGreaterThan(0);
    // It wants its lagging followers out of the ISR; that proposal, carrying its stale leader
    // epoch, is rejected by the controller.
    const stale = c.broker(1).leader?.pendingAlterPartition;
    expect(stale).toMatchObject({ leaderId: 1, leaderEpoch: 0, newIsr: [1] });
    expect(c.controller.onAlterPartition(stale as AlterPartitionRequest)).toEqual({ error: 'FENCED_LEADER_EPOCH' });
    // Once it hears from the controller it steps down and its clients are told so.
    c.net.healLink(1, CONTROLLER_ID);
    c.run(10);
    expect(c.broker(1).leaderEpoch).toBeNull();
    expect([...c.producer.outcomes.values()]).toContain('REQUEST_TIMED_OUT');
    converge(c);
    for (const v of zombieWrites) expect(values(c, 1)).not.toContain(v);
  });
});

describe('SCENARIOS.md 11: duplicates from a retried batch (Jepsen, Redpanda 2022, #3039)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-broker-dup-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a retry of any of the last five batches is answered with its original offsets, also after a restart rebuilt the state from the log', async () => {
    const batch = (seq: number): Buffer =>
      encodeRecordBatch({ baseTimestamp: 1, producerId: 42, producerEpoch: 0, baseSequence: seq, records: [0, 1, 2].map((i) => ({ value: Buffer.from(`s${seq + i}`), timestamp: 1 })) });
    let log = PartitionLog.open(dir);
    const state = new ProducerStateManager();
    const original = new Map<number, [number, number]>();
    for (let seq = 0; seq < 18; seq += 3) {
      expect(state.check(42, 0, seq, 2)).toEqual({ kind: 'append' });
      const info = log.appendAsLeader(batch(seq), 1);
      state.onAppended({ producerId: 42, producerEpoch: 0, baseSequence: seq, baseOffset: info.firstOffset, lastOffsetDelta: 2 });
      original.set(seq, [info.firstOffset, info.lastOffset]);
    }
    // The answers to batches 9.. were lost; the client retries them in order (not a reset).
    for (const seq of [9, 12, 15]) {
      const [firstOffset, lastOffset] = original.get(seq) as [number, number];
      expect(state.check(42, 0, seq, 2)).toEqual({ kind: 'duplicate', firstOffset, lastOffset });
    }
    // The broker restarts: producer state is rebuilt from the batch headers in the log.
    await log.close();
    log = PartitionLog.open(dir);
    const headers = [];
    for (let offset = 0; offset < log.logEndOffset; ) {
      const r = log.read(offset, 1 << 20);
      headers.push(...validateBatches(r.records).map((v) => v.header));
      offset = r.nextOffset;
    }
    const rebuilt = ProducerStateManager.rebuild(headers);
    const [firstOffset, lastOffset] = original.get(15) as [number, number];
    expect(rebuilt.check(42, 0, 15, 2)).toEqual({ kind: 'duplicate', firstOffset, lastOffset });
    expect(rebuilt.check(42, 0, 21, 2)).toEqual({ kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(rebuilt.check(42, 0, 18, 2)).toEqual({ kind: 'append' });
    expect(log.logEndOffset).toBe(18); // nothing was appended twice
    await log.close();
  });
});

describe('SCENARIOS.md 12: inconsistent offsets', () => {
  test('reading only below the HW never shows two values at one offset, although the log end did', () => {
    const c = cluster({ replicas: 3, minInsyncReplicas: 2 });
    expect(produce(c)).not.toBeNull();
    // The leader takes a write its followers never see, then is replaced.
    c.net.isolate(1, [2, 3, CONTROLLER_ID]);
    c.producer.produce(c.step);
    c.run(3);
    const lost = c.broker(1).log.at(1);
    expect(lost).toBeDefined();
    expect(c.broker(1).highWatermark).toBe(1); // not exposed to consumers
    c.net.healAll();
    c.net.cutLink(1, 2);
    c.net.cutLink(1, 3);
    c.net.cutLink(1, CONTROLLER_ID);
    c.runUntil(() => c.controller.state.leader !== 1 && c.controller.state.leader !== null, 100);
    c.run(20);
    const replacement = produce(c);
    expect(replacement).not.toBeNull();
    converge(c);
    // A reader of the log end saw `lost` at offset 1 and later `replacement`: two values. The
    // checker (run every step) saw one history below every leader's HW.
    expect(c.broker(1).log.at(1)?.value).toBe(replacement);
    expect(lost?.value).not.toBe(replacement);
    expect(c.checker.committed.get(1)?.value).toBe(replacement);
    // The simulated consumer (fetching with its leader epoch, bounded by the HW) read only that.
    expect(c.consumer.read.get(1)).toBe(replacement);
  });
});
