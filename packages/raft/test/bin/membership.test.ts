// Membership changes across real processes over gRPC (issue 3): every node is configured with
// the founders' addresses only, so a node added at runtime is reachable only through the address
// its conf change carries (RaftNode hands the entry's context to the transport on apply, and a
// node restoring a snapshot gets it from the snapshot's membership).
//
// 1. three founders; 200 proposals (snapshots every 50 entries, so the joiner catches up by
//    InstallSnapshot); 2. n4 starts empty and is added as a learner with its address, catches
//    up, is promoted; 3. the leader is killed: with four voters a new leader needs three votes,
//    so n4 votes, and commits need n4's copy; 4. the dead node is removed; 5. a founder restarts
//    from a snapshot taken after n4 joined (the add-learner entry is compacted away) and must
//    learn n4's address from the snapshot. Requires the compiled dist/ (npx tsc -b packages/raft).

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ProcessCluster } from '../../src/bin/process-cluster';
import { ProcessEvent, ProcessReply } from '../../src/bin/process-protocol';

type LeaderReady = Extract<ProcessEvent, { ev: 'leader-ready' }>;
const isLeaderReady = (e: ProcessEvent): e is LeaderReady => e.ev === 'leader-ready';

jest.setTimeout(90_000);

function ok<T extends ProcessReply>(r: ProcessReply, what: string, has: (r: ProcessReply) => r is T): T {
  if (!has(r)) throw new Error(`${what} failed: ${JSON.stringify(r)}`);
  return r;
}
const withIndex = (r: ProcessReply): r is Extract<ProcessReply, { index: number }> => r.ok && 'index' in r;
const withValues = (r: ProcessReply): r is Extract<ProcessReply, { values: readonly string[] }> => r.ok && 'values' in r;
const withStatus = (r: ProcessReply): r is Extract<ProcessReply, { status: unknown }> => r.ok && 'status' in r;

test('add a 4th node at runtime over gRPC: it catches up, is promoted and votes; remove a node; a restart learns the address from a snapshot', async () => {
  const cluster = new ProcessCluster({
    nodes: 3,
    tickMs: 20,
    // 1.02-2 s election timeouts: requests go to the cached leader, so a process stalled for a
    // few hundred ms on a loaded machine must not cost it its leadership (this test is about
    // membership, not election speed; the kill in step 3 waits for the next leader).
    electionTicks: 50,
    snapshotEveryEntries: 50,
    keepValues: true,
    script: join(__dirname, '../../dist/bin/raft-process.js'),
  });
  try {
    const first = cluster.waitEvent(isLeaderReady, 20_000, 'first leader');
    first.catch(() => {});
    await cluster.start();
    let leader = (await first).id;
    const propose = async (on: string, n: number, tag: string): Promise<number> => {
      let last = 0;
      for (let i = 0; i < n; i++) last = ok(await cluster.request(on, { op: 'propose', data: `${tag}-${i}` }), `propose on ${on}`, withIndex).index;
      return last;
    };
    await propose(leader, 200, 'a');

    // 2. Join: n4 knows the founders; the founders learn n4's address only from the conf change.
    const addr4 = await cluster.spawnJoiner('n4');
    const added = ok(await cluster.request(leader, { op: 'change', change: 'add-learner', nodeId: 'n4', address: addr4 }), 'add-learner', withIndex);
    for (const id of cluster.ids) {
      // The read barrier makes sure this node applied the change (it resolved on the leader).
      ok(await cluster.request(id, { op: 'dump' }, 20_000), `dump ${id}`, withValues);
      const st = ok(await cluster.request(id, { op: 'status' }), `status of ${id}`, withStatus);
      expect(st.peers['n4']).toBe(addr4);
      expect(st.status.learners).toEqual(['n4']);
    }
    const leaderDump = ok(await cluster.request(leader, { op: 'dump' }, 20_000), 'dump leader', withValues);
    // A learner's read barrier goes through the leader: once it passes, n4 has applied everything
    // committed before it (here, all 200 values, received as a snapshot plus entries).
    const n4Dump = ok(await cluster.request('n4', { op: 'dump' }, 20_000), 'dump n4', withValues);
    expect(n4Dump.values).toEqual(leaderDump.values);
    const n4Status = ok(await cluster.request('n4', { op: 'status' }), 'status n4', withStatus);
    expect(n4Status.status.snapshotIndex).toBeGreaterThan(0);

    // The leader promotes a learner only once its match reaches the commit index; n4 has applied
    // it, but the leader may not have processed n4's last acknowledgement yet: wait for that
    // refusal (and only that one) to clear, with a deadline.
    const deadline = performance.now() + 10_000;
    for (;;) {
      const r = await cluster.request(leader, { op: 'change', change: 'promote', nodeId: 'n4' }, 20_000);
      if (withIndex(r)) break;
      if (r.ok || !/has not caught up/.test(r.error.message) || performance.now() > deadline) throw new Error(`promote n4 failed: ${JSON.stringify(r)}`);
    }
    const afterPromote = ok(await cluster.request(leader, { op: 'status' }), 'status leader', withStatus);
    expect(afterPromote.status.voters).toEqual(['n1', 'n2', 'n3', 'n4']);

    // 3. Kill the leader: 3 of the 4 voters are left, and a leader needs 3 votes: n4's included.
    const victim = leader;
    const next = cluster.waitEvent((e): e is LeaderReady => isLeaderReady(e) && e.id !== victim, 20_000, 'a new leader');
    await cluster.kill9(victim);
    leader = (await next).id;
    const committed = await propose(leader, 60, 'b'); // needs n4's copy: quorum 3 of 4 with one down
    expect(committed).toBeGreaterThan(added.index);

    // 4. Remove the dead node.
    ok(await cluster.request(leader, { op: 'change', change: 'remove', nodeId: victim }, 20_000), `remove ${victim}`, withIndex);
    const afterRemove = ok(await cluster.request(leader, { op: 'status' }), 'status leader', withStatus);
    expect(afterRemove.status.voters).toEqual(['n1', 'n2', 'n3', 'n4'].filter((id) => id !== victim));
    expect(afterRemove.peers[victim]).toBeUndefined();
    await propose(leader, 60, 'c'); // 3 voters, one snapshot later (50 entries)

    // 5. Restart a founder that is not the leader from its snapshot: its configuration names the
    //    founders only, and the add-learner entry is compacted away, so n4's address can only
    //    come from the snapshot's membership.
    const founder = cluster.ids.find((id) => id !== victim && id !== leader) ?? '';
    await cluster.kill9(founder);
    await cluster.restart(founder);
    const restarted = ok(await cluster.request(founder, { op: 'status' }), `status ${founder}`, withStatus);
    expect(restarted.status.snapshotIndex).toBeGreaterThan(added.index);
    expect(restarted.peers['n4']).toBe(addr4);
    await propose(leader, 20, 'd');
    const final = ok(await cluster.request(leader, { op: 'dump' }, 20_000), 'dump leader', withValues);
    for (const id of [founder, 'n4']) {
      const d = ok(await cluster.request(id, { op: 'dump' }, 20_000), `dump ${id}`, withValues);
      expect(d.values).toEqual(final.values);
    }
    expect(final.values.length).toBe(340);
  } finally {
    await cluster.close();
  }
});
