// Unit tests of the Raft core driven through the simulated cluster with a fault-free network
// and scripted ticks: elections (Raft §5.2), replication and commitment (§5.3, §5.4),
// snapshots (§7), leadership transfer (thesis §3.10), ReadIndex (thesis §6.4) and single-server
// membership changes (thesis §4.1). Every step also runs the safety checker.

import { ConfChangeType, MessageType, Role, msg } from '../../src/core/types';
import { SimCluster } from '../../src/sim/sim-cluster';
import { RaftCore } from '../../src/core/raft';
import { SeededRng } from '../../src/core/rng';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => (b === undefined ? '' : new TextDecoder().decode(b));

function cluster(n: number, seed = 1, extra: Partial<ConstructorParameters<typeof SimCluster>[0]> = {}): SimCluster {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  return new SimCluster({ ids, seed, core: { electionTicks: 10, heartbeatTicks: 1 }, ...extra });
}

function electN1(c: SimCluster): void {
  c.campaign('n1');
  c.stabilize();
  expect(c.node('n1').role).toBe(Role.Leader);
}

describe('RaftCore', () => {
  test('a node that campaigns with pre-vote becomes leader and commits its no-op (Raft §5.2, §8)', () => {
    const c = cluster(3);
    electN1(c);
    const l = c.node('n1').core!;
    // Term 1 holds the bootstrap membership entries (indexes 1-3); the election makes term 2.
    expect(l.term).toBe(2);
    expect(l.log.committed).toBe(4);
    // Followers learn the commit index with the next heartbeat.
    c.tickAll(1);
    for (const id of c.ids) expect(c.node(id).core!.log.committed).toBe(4);
  });

  test('an election timeout starts an election without any explicit campaign', () => {
    const c = cluster(3);
    c.tickAll(30);
    expect(c.leader()).toBeDefined();
  });

  test('proposals commit and apply on every node in order (Raft §5.3)', () => {
    const c = cluster(3);
    electN1(c);
    for (let i = 0; i < 10; i++) expect(c.propose('n1', enc(`v${i}`)).ok).toBe(true);
    c.stabilize();
    for (const id of c.ids) {
      const n = c.node(id);
      expect(n.smIndex).toBe(14);
      expect(dec(n.appliedData.get(14))).toBe('v9');
    }
  });

  test('ticksUntilNextEvent counts the ticks until ticking next does something, so a driver may sleep that long', () => {
    for (const id of ['n1', 'n2', 'n3']) {
      const c = cluster(3, 7, { core: { electionTicks: 10, heartbeatTicks: 3 } });
      electN1(c);
      c.tickAll(2);
      const core = c.node(id).core!;
      for (let round = 0; round < 3; round++) {
        expect(core.hasReady()).toBe(false);
        const k = core.ticksUntilNextEvent();
        expect(k).toBeGreaterThanOrEqual(1);
        expect(k).toBeLessThanOrEqual(id === 'n1' ? 3 : 21);
        for (let i = 1; i < k; i++) {
          core.tick();
          expect(core.hasReady()).toBe(false);
        }
        core.tick();
        // The leader's heartbeat, or a follower's pre-vote campaign.
        expect(core.hasReady()).toBe(true);
        if (id !== 'n1') expect(core.role).toBe(Role.PreCandidate);
        core.ready();
        core.advance();
        if (id !== 'n1') break;
      }
    }
  });

  test('a follower refuses proposals and names the leader', () => {
    const c = cluster(3);
    electN1(c);
    const r = c.propose('n2', enc('x'));
    expect(r).toMatchObject({ ok: false, reason: 'not-leader', leader: 'n1' });
  });

  test('a lagging follower is caught up after the leader compacts its log, via chunked InstallSnapshot (Raft §7)', () => {
    const c = cluster(3, 1, { core: { electionTicks: 10, heartbeatTicks: 1, snapshotChunkBytes: 3 } });
    electN1(c);
    c.isolate('n3');
    for (let i = 0; i < 20; i++) c.propose('n1', enc(`v${i}`));
    c.stabilize();
    expect(c.node('n1').compact()).toBe(true);
    expect(c.node('n1').core!.log.firstIndex()).toBe(25);
    c.heal();
    c.tickAll(5);
    const n3 = c.node('n3');
    expect(n3.core!.log.snapshot.meta.index).toBe(24);
    expect(n3.smIndex).toBe(24);
    expect(n3.smHash).toBe(c.node('n1').smHash);
    c.propose('n1', enc('after'));
    c.stabilize();
    expect(dec(n3.appliedData.get(25))).toBe('after');
  });

  test('a snapshot taken at a captured point compacts the log up to that point only, with the membership as of it', () => {
    // An application that encodes its snapshot over several turns captures the point (applied
    // index, its term, membership) with its state; entries applied meanwhile stay in the log.
    const c = cluster(4);
    electN1(c);
    for (let i = 0; i < 5; i++) c.propose('n1', enc(`v${i}`));
    c.stabilize();
    const core = c.node('n1').core!;
    const point = core.snapshotPoint();
    expect(point.index).toBe(core.log.applied);
    expect(point.confState.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
    // Meanwhile: more entries and a membership change are applied.
    for (let i = 5; i < 10; i++) c.propose('n1', enc(`v${i}`));
    c.stabilize();
    expect(core.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'n4' }).ok).toBe(true);
    c.stabilize();
    expect(core.confState().voters).toEqual(['n1', 'n2', 'n3']);
    const applied = core.log.applied;
    expect(applied).toBeGreaterThan(point.index + 5);
    const snap = core.compact(enc('state'), point);
    expect(snap.meta).toEqual(point);
    expect(core.log.snapshot.meta.index).toBe(point.index);
    expect(core.log.firstIndex()).toBe(point.index + 1);
    expect(core.log.lastIndex()).toBe(applied);
    // A point the log has no such entry for (another term), or one beyond applied, is a bug.
    expect(() => core.compact(enc('x'), { ...point, index: applied, term: point.term + 7 })).toThrow(/term/);
    expect(() => core.compact(enc('x'), { ...point, index: applied + 1 })).toThrow(/beyond applied/);
  });

  test('leadership transfer hands over to an up-to-date follower with TimeoutNow (thesis §3.10)', () => {
    const c = cluster(3);
    electN1(c);
    c.node('n1').core!.transferLeadership('n2');
    c.stabilize();
    expect(c.node('n2').role).toBe(Role.Leader);
    expect(c.node('n1').role).toBe(Role.Follower);
  });

  test('a transfer to a lagging follower first catches it up', () => {
    const c = cluster(3);
    electN1(c);
    c.isolate('n3');
    for (let i = 0; i < 5; i++) c.propose('n1', enc(`v${i}`));
    c.stabilize();
    c.heal();
    c.node('n1').core!.transferLeadership('n3');
    c.stabilize();
    expect(c.node('n3').role).toBe(Role.Leader);
    expect(c.node('n3').core!.log.lastIndex()).toBeGreaterThanOrEqual(6);
  });

  test('proposals are refused while a transfer is in progress and the transfer is abandoned after an election timeout', () => {
    const c = cluster(3);
    electN1(c);
    c.isolate('n3');
    c.node('n1').core!.transferLeadership('n3');
    c.stabilize();
    expect(c.propose('n1', enc('x'))).toMatchObject({ ok: false, reason: 'transferring' });
    // n3 stays cut off; the leader keeps n2 so it survives check-quorum and drops the transfer.
    c.tickAll(10);
    expect(c.node('n1').role).toBe(Role.Leader);
    expect(c.propose('n1', enc('y')).ok).toBe(true);
  });

  test('ReadIndex on the leader and on a follower return the commit index after a heartbeat round (thesis §6.4)', () => {
    const c = cluster(3);
    electN1(c);
    c.propose('n1', enc('a'));
    c.stabilize();
    c.node('n1').core!.readIndex(7);
    c.stabilize();
    expect(c.node('n1').readStates).toEqual([{ requestId: 7, index: 5 }]);
    c.node('n2').core!.readIndex(9);
    c.stabilize();
    expect(c.node('n2').readStates).toEqual([{ requestId: 9, index: 5 }]);
  });

  test('ReadIndex is not answered by a leader cut off from the majority', () => {
    const c = cluster(3);
    electN1(c);
    c.isolate('n1');
    c.node('n1').core!.readIndex(1);
    c.stabilize();
    expect(c.node('n1').readStates).toEqual([]);
  });

  test('a learner catches up, then is promoted to voter; a voter is removed (thesis §4.1, §4.2.1)', () => {
    const c = cluster(4, 1, { voters: ['n1', 'n2', 'n3'] });
    electN1(c);
    for (let i = 0; i < 5; i++) c.propose('n1', enc(`v${i}`));
    c.stabilize();
    const l = c.node('n1').core!;
    // A voter cannot be added directly: it must catch up as a learner first.
    expect(l.proposeConfChange({ type: ConfChangeType.AddVoter, nodeId: 'n4' })).toMatchObject({ ok: false, reason: 'invalid' });
    expect(l.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'n4' }).ok).toBe(true);
    c.processReady(c.node('n1'));
    // Only one change at a time.
    expect(l.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'n2' })).toMatchObject({ ok: false, reason: 'conf-change-pending' });
    c.stabilize();
    c.tickAll(3);
    expect(c.node('n4').smIndex).toBe(l.log.committed);
    expect(l.confState()).toEqual({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
    expect(l.proposeConfChange({ type: ConfChangeType.AddVoter, nodeId: 'n4' }).ok).toBe(true);
    c.stabilize();
    c.tickAll(2);
    expect(l.confState()).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    expect(c.node('n4').core!.confState()).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    expect(l.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'n2' }).ok).toBe(true);
    c.stabilize();
    c.tickAll(2);
    expect(l.confState().voters).toEqual(['n1', 'n3', 'n4']);
    // The removed node no longer counts: with n2 and n3 down, n1+n4 are not a majority of 3... but with n2 gone only n3 down keeps a majority.
    c.crash('n3');
    expect(c.propose('n1', enc('z')).ok).toBe(true);
    c.stabilize();
    expect(c.node('n4').appliedData.size).toBeGreaterThan(0);
    expect(dec(c.node('n1').appliedData.get(l.log.lastIndex()))).toBe('z');
  });

  test('a leader persisting in the background counts itself only once durable; two followers commit without it (thesis §10.2.1)', () => {
    const c = cluster(3, 1, { asyncPersistRate: 1 });
    electN1(c);
    c.tickAll(1);
    c.node('n1').completeWrites();
    c.stabilize();
    const l = c.node('n1').core!;
    const before = l.log.committed;
    // n3 is cut off: the commit needs n2 and the leader's own (pending) write.
    c.net.cutOneWay('n1', 'n3');
    expect(c.propose('n1', enc('x')).ok).toBe(true);
    c.stabilize();
    expect(c.node('n1').pendingWriteCount).toBeGreaterThan(0);
    expect(l.log.committed).toBe(before);
    expect(l.log.stableIndex).toBe(before);
    c.node('n1').completeWrites();
    c.stabilize();
    expect(l.log.committed).toBe(before + 1);
    // With both followers up, they commit the next entry while the leader's write is in flight.
    c.heal();
    expect(c.propose('n1', enc('y')).ok).toBe(true);
    c.stabilize();
    expect(c.node('n1').pendingWriteCount).toBeGreaterThan(0);
    expect(l.log.committed).toBe(before + 2);
    expect(dec(c.node('n1').appliedData.get(before + 2))).toBe('y');
    // A crash loses the unfinished write; the entry survives on the followers.
    c.crash('n1');
    c.tickAll(40);
    const nl = c.leader()!;
    expect(dec(nl.appliedData.get(before + 2)) || dec(nl.core!.log.entry(before + 2)?.data)).toBe('y');
  });

  test('advanceAsync is refused for a Ready that must be persisted first (a vote, a follower)', () => {
    const c = cluster(3);
    const f = c.node('n2').core!;
    f.step(msg({ type: MessageType.Vote, from: 'n1', to: 'n2', term: 5, index: 3, logTerm: 1 }));
    const rd = f.ready();
    expect(rd.mayPersistAsync).toBe(false);
    expect(() => f.advanceAsync()).toThrow(/persisted first/);
  });

  test('conf-change contexts (addresses) are kept in the membership, carried by snapshots and dropped on removal', () => {
    const c = cluster(3, 1, { ids: ['n1', 'n2', 'n3', 'n4'], voters: ['n1', 'n2', 'n3'] });
    electN1(c);
    c.tickAll(1);
    const l = c.node('n1').core!;
    expect(l.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'n4', context: '10.0.0.4:9193' }).ok).toBe(true);
    c.stabilize();
    c.tickAll(3);
    for (const id of ['n1', 'n2', 'n3', 'n4']) expect(c.node(id).core!.confState().contexts).toEqual({ n4: '10.0.0.4:9193' });
    // Promotion without a context keeps the learner's.
    expect(l.proposeConfChange({ type: ConfChangeType.AddVoter, nodeId: 'n4' }).ok).toBe(true);
    c.stabilize();
    c.tickAll(2);
    expect(l.confState()).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [], contexts: { n4: '10.0.0.4:9193' } });
    // A snapshot carries it; a node restarting from that snapshot alone has it.
    expect(c.node('n2').compact()).toBe(true);
    expect(c.node('n2').durable.snapshot.meta.confState.contexts).toEqual({ n4: '10.0.0.4:9193' });
    c.crash('n2');
    c.restart('n2');
    expect(c.node('n2').core!.confState().contexts).toEqual({ n4: '10.0.0.4:9193' });
    expect(l.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'n4' }).ok).toBe(true);
    c.stabilize();
    c.tickAll(2);
    expect(l.confState()).toEqual({ voters: ['n1', 'n2', 'n3'], learners: [] });
  });

  test('a leader that removes itself steps down once the change is applied (thesis §4.2.2)', () => {
    const c = cluster(3);
    electN1(c);
    c.tickAll(1);
    expect(c.node('n1').core!.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'n1' }).ok).toBe(true);
    c.stabilize();
    expect(c.node('n1').role).toBe(Role.Follower);
    c.tickAll(40);
    const l = c.leader();
    expect(l?.id === 'n2' || l?.id === 'n3').toBe(true);
  });

  test('append rejection carries a hint that skips a divergent term in one round trip (Raft §5.3)', () => {
    const c = cluster(3);
    electN1(c);
    c.isolate('n1');
    // n1 appends 5 entries of term 1 nobody else sees.
    for (let i = 0; i < 5; i++) c.propose('n1', enc(`lost${i}`));
    c.stabilize();
    c.heal();
    c.isolate('n1');
    c.tickAll(40);
    const l = c.leader();
    expect(l).toBeDefined();
    expect(l?.id).not.toBe('n1');
    for (let i = 0; i < 3; i++) c.propose(l!.id, enc(`kept${i}`));
    c.stabilize();
    c.heal();
    let rejects = 0;
    const net = c.net;
    const orig = net.send.bind(net);
    net.send = (m, now) => {
      if (m.type === MessageType.AppResp && m.reject) rejects++;
      orig(m, now);
    };
    c.tickAll(5);
    expect(dec(c.node('n1').appliedData.get(l!.core!.log.lastIndex()))).toBe('kept2');
    expect(rejects).toBeLessThanOrEqual(2);
    expect(msg({ type: MessageType.App, from: 'a', to: 'b' }).entries).toEqual([]);
  });
});

describe('InstallSnapshot chunks (Raft §7)', () => {
  const voters = { voters: ['n1', 'n2', 'n3'], learners: [] };
  const chunk = (from: string, term: number, offset: number, bytes: number[]): ReturnType<typeof msg> =>
    msg({ type: MessageType.Snap, from, to: 'n2', term, snapshot: { meta: { index: 10, term: 3, confState: voters }, offset, totalBytes: 8, data: new Uint8Array(bytes) } });
  const follower = (): RaftCore =>
    new RaftCore({ id: 'n2', electionTicks: 10, heartbeatTicks: 1, rng: new SeededRng(1) }, { hardState: { term: 4, vote: '', commit: 0 }, snapshot: { meta: { index: 0, term: 0, confState: voters }, data: new Uint8Array(0) }, entries: [] });
  const replies = (c: RaftCore): string[] => {
    const r = c.ready();
    c.advance();
    return r.messages.filter((m) => m.type === MessageType.SnapResp).map((m) => `${m.to}:${m.reject ? 'reject' : 'ok'}:${m.rejectHint}`);
  };

  test('a chunk from another leader never continues a transfer in progress', () => {
    const c = follower();
    c.step(chunk('n1', 5, 0, [1, 1, 1, 1]));
    expect(replies(c)).toEqual(['n1:ok:4']);
    // n3 leads term 6 and sends the second half of its own copy (same index, term and size).
    c.step(chunk('n3', 6, 4, [2, 2, 2, 2]));
    expect(replies(c)).toEqual(['n3:reject:0']);
    c.step(chunk('n3', 6, 0, [2, 2, 2, 2]));
    c.step(chunk('n3', 6, 4, [2, 2, 2, 2]));
    const r = c.ready();
    expect(Array.from(r.snapshot?.data ?? [])).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
  });

  test('a chunk that runs past the snapshot size is refused', () => {
    const c = follower();
    c.step(chunk('n1', 5, 0, [1, 1, 1, 1]));
    replies(c);
    c.step(chunk('n1', 5, 4, [1, 1, 1, 1, 1]));
    expect(replies(c)).toEqual(['n1:reject:4']);
  });
});
