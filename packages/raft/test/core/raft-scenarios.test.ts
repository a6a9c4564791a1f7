// Scenario tests for the known hard cases of Raft (../shared/SCENARIOS.md 7-10), each scripted
// on the simulated cluster with a fault-free network and explicit cuts, crashes and message
// filters, so every run is the same. Each cites the paper or thesis section it checks. The
// safety checker runs after every step, so a scenario that breaks a Raft invariant throws.

import { Message, MessageType, Role, msg } from '../../src/core/types';
import { SafetyViolation } from '../../src/sim/checker';
import { SimCluster } from '../../src/sim/sim-cluster';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => (b === undefined ? '' : new TextDecoder().decode(b));

function cluster(n: number, core: ConstructorParameters<typeof SimCluster>[0]['core'] = {}): SimCluster {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  return new SimCluster({ ids, seed: 42, core: { electionTicks: 10, heartbeatTicks: 1, ...core } });
}

/** Deliver messages until quiet, passing each through `edit`, which may rewrite or drop it. */
function deliverEdited(c: SimCluster, edit: (m: Message) => Message | null): void {
  for (let round = 0; round < 1000; round++) {
    c.processAllReady();
    const due = c.net.takeDue(c.now, false);
    if (due.length === 0) return;
    for (const m of due) {
      const e = edit(m);
      if (e !== null) c.deliver(e);
    }
  }
  throw new Error('deliverEdited: no quiescence');
}

/** Appends lose every entry above `max` (as if only a prefix had arrived). */
const truncateAbove = (max: number) => (m: Message): Message => (m.type === MessageType.App ? { ...m, entries: m.entries.filter((e) => e.index <= max) } : m);

describe('Raft scenarios', () => {
  /**
   * Raft §5.4.2, figure 8: a leader may not commit an entry from an earlier term by counting
   * replicas. S1 (term 4) re-replicates its term-2 entry at index 7 to a majority; that entry can
   * still be overwritten by S5 (which holds a term-3 entry there), so it must not count as
   * committed until an entry of term 4 is on a majority too.
   */
  function figure8Prefix(): { c: SimCluster; idx: number } {
    const c = cluster(5, { maxEntriesPerMsg: 1 });
    c.campaign('n1');
    c.stabilize();
    const idx = c.node('n1').core!.log.lastIndex() + 1; // 7: after 5 bootstrap entries and the no-op
    // (a) S1, leader of term 2, replicates index 7 to S2 only.
    for (const o of ['n3', 'n4', 'n5']) c.net.cut('n1', o);
    expect(c.propose('n1', enc('t2')).ok).toBe(true);
    c.stabilize();
    expect(c.node('n2').core!.log.term(idx)).toBe(2);
    // (b) S1 crashes; S5 is elected for term 3 by S3, S4 and itself; its term-3 entry at index 7
    // (its no-op) stays on S5 alone.
    c.crash('n1');
    c.heal();
    c.net.cut('n5', 'n2');
    c.deliver(msg({ type: MessageType.TimeoutNow, from: 'n1', to: 'n5', term: 2 }));
    deliverEdited(c, (m) => (m.from === 'n5' && m.type === MessageType.App ? null : m));
    expect(c.node('n5').role).toBe(Role.Leader);
    expect(c.node('n5').term).toBe(3);
    expect(c.node('n5').core!.log.term(idx)).toBe(3);
    c.crash('n5');
    c.heal();
    // (c) S1 restarts and is elected for term 4 (S2, S3 vote: its log is as up to date).
    c.restart('n1');
    c.deliver(msg({ type: MessageType.TimeoutNow, from: 'n2', to: 'n1', term: 3 }));
    deliverEdited(c, truncateAbove(idx));
    expect(c.node('n1').role).toBe(Role.Leader);
    expect(c.node('n1').term).toBe(4);
    return { c, idx };
  }

  test('figure 8: an entry of an older term on a majority is not committed by counting (Raft §5.4.2)', () => {
    const { c, idx } = figure8Prefix();
    // Index 7 (term 2) is now on S1, S2 and S3: a majority of five. Term-4 entries are held back.
    for (const id of ['n1', 'n2', 'n3']) expect(c.node(id).core!.log.term(idx)).toBe(2);
    expect(c.node('n1').core!.log.committed).toBe(idx - 1);
    // (d) S1 crashes; S5 comes back, wins term 5 with S2, S3, S4 and overwrites index 7. That is
    // safe precisely because index 7 was never committed.
    c.crash('n1');
    c.restart('n5');
    c.deliver(msg({ type: MessageType.TimeoutNow, from: 'n2', to: 'n5', term: 4 }));
    c.stabilize();
    expect(c.node('n5').role).toBe(Role.Leader);
    c.tickAll(2);
    for (const id of ['n2', 'n3', 'n4', 'n5']) expect(c.node(id).core!.log.term(idx)).toBe(3);
    expect(c.node('n2').smIndex).toBeGreaterThanOrEqual(idx);
  });

  test('figure 8 (e): once a term-4 entry is on a majority, both commit and S5 cannot win', () => {
    const { c, idx } = figure8Prefix();
    c.tickAll(1);
    expect(c.node('n1').core!.log.committed).toBeGreaterThanOrEqual(idx + 1);
    c.crash('n1');
    c.restart('n5');
    c.deliver(msg({ type: MessageType.TimeoutNow, from: 'n2', to: 'n5', term: 4 }));
    c.stabilize();
    expect(c.node('n5').role).not.toBe(Role.Leader);
    c.tickAll(60);
    const l = c.leader()!;
    expect(l.id).not.toBe('n5');
    for (const id of ['n2', 'n3', 'n4', 'n5']) expect(dec(c.node(id).appliedData.get(idx))).toBe('t2');
  });

  test('disruptive rejoining node: pre-vote keeps a partitioned node from raising the term (thesis §9.6)', () => {
    const c = cluster(3);
    c.campaign('n1');
    c.stabilize();
    const term = c.node('n1').term;
    c.isolate('n3');
    c.tickAll(200);
    // Twenty election timeouts of failed pre-votes: n3's term never moved.
    expect(c.node('n3').term).toBe(term);
    c.heal();
    c.tickAll(20);
    expect(c.node('n1').role).toBe(Role.Leader);
    expect(c.node('n1').term).toBe(term);
    expect(c.node('n3').leader).toBe('n1');
  });

  test('disruptive node with a one-way link: check-quorum lease makes followers ignore its pre-votes (thesis §4.2.3, §9.6)', () => {
    const c = cluster(3);
    c.campaign('n1');
    c.stabilize();
    const term = c.node('n1').term;
    // n3 no longer hears n1 but still reaches n2: it times out and asks n2, which has heard
    // from the leader within the election timeout and refuses.
    c.net.cutOneWay('n1', 'n3');
    c.tickAll(200);
    expect(c.node('n1').role).toBe(Role.Leader);
    expect(c.node('n1').term).toBe(term);
    expect(c.node('n2').term).toBe(term);
    expect(c.propose('n1', enc('still-leader')).ok).toBe(true);
  });

  test('stranded peer with pre-vote: a node stuck at a higher term rejoins (etcd leader_step_down_stranded_peer_prevote)', () => {
    const c = cluster(3);
    c.campaign('n1');
    c.stabilize();
    // A transfer to n3 starts, and n3 is cut off right after it receives TimeoutNow: it
    // campaigns at term 3 and cannot win, and its pre-votes for term 4 can never win either.
    c.isolate('n3');
    c.deliver(msg({ type: MessageType.TimeoutNow, from: 'n1', to: 'n3', term: c.node('n1').term }));
    c.stabilize();
    expect(c.node('n3').term).toBe(3);
    expect(c.node('n3').role).toBe(Role.Candidate);
    for (let i = 0; i < 5; i++) c.propose('n1', enc(`w${i}`));
    c.tickAll(100);
    expect(c.node('n1').role).toBe(Role.Leader);
    expect(c.node('n1').term).toBe(2);
    c.heal();
    // n1's heartbeat at term 2 reaches n3 at term 3; n3 answers at its term, n1 steps down, and
    // a fresh election at a higher term includes n3 again.
    c.tickAll(60);
    const l = c.leader()!;
    expect(l).toBeDefined();
    const terms = new Set(c.ids.map((id) => c.node(id).term));
    expect(terms.size).toBe(1);
    expect(l.term).toBeGreaterThanOrEqual(3);
    const r = c.propose(l.id, enc('after-rejoin'));
    expect(r.ok).toBe(true);
    c.tickAll(2);
    for (const id of c.ids) expect(dec(c.node(id).appliedData.get(r.ok ? r.firstIndex : -1))).toBe('after-rejoin');
    for (const id of c.ids) expect([...c.node(id).appliedData.values()].map(dec)).toContain('w4');
  });

  test('leader isolated while a client keeps writing: nothing commits, it steps down, its entries are overwritten (thesis §6.2, Raft §5.3)', () => {
    const c = cluster(3);
    c.campaign('n1');
    c.stabilize();
    const commit0 = c.node('n1').core!.log.committed;
    c.isolate('n1');
    let accepted = 0;
    let refusedAfterStepDown = 0;
    let steppedDownAt = -1;
    for (let t = 0; t < 100; t++) {
      const r = c.propose('n1', enc(`zombie${t}`));
      if (r.ok) accepted++;
      else {
        expect(r.reason).toBe('not-leader');
        refusedAfterStepDown++;
      }
      c.tickAll(1);
      if (steppedDownAt < 0 && c.node('n1').role !== Role.Leader) steppedDownAt = t;
      expect(c.node('n1').core!.log.committed).toBe(commit0);
    }
    expect(accepted).toBeGreaterThan(0);
    expect(refusedAfterStepDown).toBeGreaterThan(0);
    // Check-quorum: down within two election timeouts.
    expect(steppedDownAt).toBeGreaterThanOrEqual(0);
    expect(steppedDownAt).toBeLessThanOrEqual(20);
    const l = c.leader()!;
    expect(['n2', 'n3']).toContain(l.id);
    const r = c.propose(l.id, enc('majority'));
    expect(r.ok).toBe(true);
    c.tickAll(1);
    c.heal();
    c.tickAll(20);
    const idx = r.ok ? r.firstIndex : -1;
    for (const id of c.ids) expect(dec(c.node(id).appliedData.get(idx))).toBe('majority');
    for (const id of c.ids) for (const d of c.node(id).appliedData.values()) expect(dec(d).startsWith('zombie')).toBe(false);
  });

  test('lost unsynced state: a vote lost in a crash before it was persisted was never sent, so no double vote (Raft figure 2)', () => {
    const c = cluster(3, { preVote: false });
    // n1 and n3 campaign for term 2 at once; n2 receives n1's request and votes in memory...
    c.node('n1').core!.campaign();
    c.node('n3').core!.campaign();
    c.processAllReady();
    const reqs = c.net.takeDue(c.now, false);
    const fromN1 = reqs.find((m) => m.from === 'n1' && m.to === 'n2')!;
    const fromN3 = reqs.find((m) => m.from === 'n3' && m.to === 'n2')!;
    c.deferReadyRate = 1;
    c.deliver(fromN1);
    expect(c.node('n2').core!.vote).toBe('n1');
    // ...and crashes before its driver persisted the vote. The grant was not sent either.
    c.crash('n2');
    c.deferReadyRate = 0;
    c.restart('n2');
    expect(c.node('n2').core!.term).toBe(1);
    // After restart n2 can vote for n3 in term 2: the only grant that ever left n2.
    c.deliver(fromN3);
    c.stabilize();
    expect(c.node('n3').role).toBe(Role.Leader);
  });

  test('lost unsynced state: a driver that sends before persisting lets a node vote twice, which the checker catches', () => {
    const c = cluster(3, { preVote: false });
    c.node('n1').core!.campaign();
    c.node('n3').core!.campaign();
    c.processAllReady();
    const reqs = c.net.takeDue(c.now, false);
    const fromN1 = reqs.find((m) => m.from === 'n1' && m.to === 'n2')!;
    const fromN3 = reqs.find((m) => m.from === 'n3' && m.to === 'n2')!;
    const n2 = c.node('n2');
    n2.core!.step(fromN1);
    // The broken driver: send first...
    const rd = n2.core!.ready();
    for (const m of rd.messages) if (m.type === MessageType.VoteResp && !m.reject) c.checker.voteGranted('n2', m.term, m.to);
    // ...and crash before persisting.
    c.crash('n2');
    c.restart('n2');
    expect(() => {
      c.deliver(fromN3);
      c.processAllReady();
    }).toThrow(SafetyViolation);
  });
});
