/**
 * Consumer groups across real processes: three combined nodes on loopback, a 6-partition topic,
 * and a group of minimal consumers written here over the generated BrokerClient (FindCoordinator,
 * JoinGroup with KIP-394 member ids, a range assignment computed by the leader, SyncGroup,
 * heartbeats, OffsetCommit of a synthetic position every ~100 ms, commit before rejoining).
 * Three members join; a fourth joins and one leaves; one stops without leaving (a crashed
 * consumer: its session expires) and a static one (group.instance.id) joins, then restarts and
 * takes its old place without a rebalance; then the coordinator's broker is killed
 * with SIGKILL while the members commit, and they find the new coordinator (which loads the
 * group from __consumer_offsets) and carry on.
 *
 * Afterwards: every generation's assignment (as the leader sent it, and as each member received
 * it) gave each of the 6 partitions to exactly one member; per partition the acknowledged
 * commits, in the order they were acknowledged, never went backwards; and the committed offsets
 * read back at the end are at least the highest acknowledged ones (nothing acknowledged was lost);
 * the group, Empty once all members left, is listed, loses one partition's offset with
 * OffsetDelete (the others stay), is deleted, and its offsets are gone.
 */
import type * as grpc from '@grpc/grpc-js';
import type {
  BrokerClient,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteGroupsRequest,
  DeleteGroupsResponse,
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  FindCoordinatorRequest,
  FindCoordinatorResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetDeleteRequest,
  OffsetDeleteResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from '@strand/protocol';
import { CoordinatorType, ErrorCode } from '@strand/protocol';
import { ProcessCluster } from './support/process-cluster';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(240_000);

const TOPIC = 'events';
const PARTITIONS = 6;
const GROUP = 'g1';
const SESSION_TIMEOUT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the test saw, shared by all members. */
interface Observations {
  /** generation -> the leader's full assignment (member -> partitions). */
  leaderAssignments: Map<number, Map<string, number[]>>;
  /** generation -> member -> partitions it received in SyncGroup. */
  received: Map<number, Map<string, number[]>>;
  /** Acknowledged commits in the order the test received the acknowledgements. */
  acked: { partition: number; offset: number; generation: number; member: string; atMs: number }[];
  errors: Map<string, number>;
}

/** Range assignment: partitions split in order over members sorted by id (Kafka's RangeAssignor for one topic). */
function rangeAssign(members: string[]): Map<string, number[]> {
  const sorted = [...members].sort();
  const out = new Map<string, number[]>();
  const per = Math.floor(PARTITIONS / sorted.length);
  const extra = PARTITIONS % sorted.length;
  let next = 0;
  sorted.forEach((m, i) => {
    const n = per + (i < extra ? 1 : 0);
    out.set(m, Array.from({ length: n }, (_, k) => next + k));
    next += n;
  });
  return out;
}

const E = ErrorCode;

type Unary<Req, Res> = (c: BrokerClient, req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

class TestMember {
  memberId = '';
  generation = -1;
  partitions: number[] = [];
  positions = new Map<number, number>();
  private coordinator: string | null = null;
  private running = true;
  private loop: Promise<void> | null = null;

  constructor(
    readonly name: string,
    private readonly brokers: TestBrokers,
    private readonly addresses: () => string[],
    private readonly obs: Observations,
    /** group.instance.id of a static member. */
    readonly instanceId?: string,
  ) {}

  private inst(): { groupInstanceId?: string } {
    return this.instanceId === undefined ? {} : { groupInstanceId: this.instanceId };
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(leave: boolean): Promise<void> {
    this.running = false;
    await this.loop;
    if (leave && this.memberId !== '' && this.coordinator !== null) {
      await this.rpc<LeaveGroupRequest, LeaveGroupResponse>((c, r, m, o, cb) => c.leaveGroup(r, m, o, cb), { groupId: GROUP, members: [{ memberId: this.memberId, reason: 'test' }] }).catch(() => undefined);
    }
  }

  private note(what: string): void {
    this.obs.errors.set(what, (this.obs.errors.get(what) ?? 0) + 1);
  }

  private rpc<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs = 5000): Promise<Res> {
    if (this.coordinator === null) return Promise.reject(new Error('no coordinator'));
    return this.brokers.call<Req, Res>(this.coordinator, method, req, timeoutMs);
  }

  private async findCoordinator(): Promise<void> {
    for (const a of this.addresses()) {
      try {
        const r = await this.brokers.call<FindCoordinatorRequest, FindCoordinatorResponse>(a, (c, q, m, o, cb) => c.findCoordinator(q, m, o, cb), { key: GROUP, keyType: CoordinatorType.COORDINATOR_GROUP }, 2000);
        if (r.errorCode === 0) {
          this.coordinator = `${r.host}:${r.port}`;
          return;
        }
        this.note(`find:${r.errorCode}`);
      } catch {
        this.note('find:unreachable');
      }
    }
    await sleep(200);
  }

  /** Reacts to a group error code; returns true when the member must rejoin. */
  private onError(where: string, code: number): boolean {
    this.note(`${where}:${code}`);
    if (code === E.NOT_COORDINATOR || code === E.COORDINATOR_NOT_AVAILABLE) this.coordinator = null;
    if (code === E.UNKNOWN_MEMBER_ID || code === E.FENCED_INSTANCE_ID) this.memberId = '';
    return code === E.REBALANCE_IN_PROGRESS || code === E.ILLEGAL_GENERATION || code === E.UNKNOWN_MEMBER_ID;
  }

  private async joinAndSync(): Promise<boolean> {
    const join = await this.rpc<JoinGroupRequest, JoinGroupResponse>((c, r, m, o, cb) => c.joinGroup(r, m, o, cb), {
      groupId: GROUP,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      rebalanceTimeoutMs: SESSION_TIMEOUT_MS,
      memberId: this.memberId,
      ...this.inst(),
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from(JSON.stringify({ topics: [TOPIC] })) }],
      reason: '',
    }, SESSION_TIMEOUT_MS + 5000);
    if (join.errorCode === E.MEMBER_ID_REQUIRED) {
      this.memberId = join.memberId;
      return false;
    }
    if (join.errorCode !== 0) {
      this.onError('join', join.errorCode);
      return false;
    }
    this.memberId = join.memberId;
    this.generation = join.generationId;
    let assignments: { memberId: string; assignment: Uint8Array }[] = [];
    if (join.leader === join.memberId) {
      const plan = rangeAssign(join.members.map((m) => m.memberId));
      // A static leader that restarted gets the member list again for the same generation: the
      // generation's assignment is the one made when it formed.
      if (!this.obs.leaderAssignments.has(join.generationId)) this.obs.leaderAssignments.set(join.generationId, plan);
      assignments = [...plan].map(([memberId, parts]) => ({ memberId, assignment: Buffer.from(JSON.stringify(parts)) }));
    }
    const sync = await this.rpc<SyncGroupRequest, SyncGroupResponse>((c, r, m, o, cb) => c.syncGroup(r, m, o, cb), { groupId: GROUP, generationId: join.generationId, memberId: this.memberId, ...this.inst(), protocolType: 'consumer', protocolName: 'range', assignments }, SESSION_TIMEOUT_MS + 5000);
    if (sync.errorCode !== 0) {
      this.onError('sync', sync.errorCode);
      return false;
    }
    this.partitions = JSON.parse(Buffer.from(sync.assignment).toString() || '[]') as number[];
    const seen = this.obs.received.get(join.generationId) ?? new Map<string, number[]>();
    // A static member's incarnations are one owner: key by instance id.
    seen.set(this.instanceId ?? this.memberId, this.partitions);
    this.obs.received.set(join.generationId, seen);
    // Resume from the committed offsets of the new assignment.
    const fetched = await this.rpc<OffsetFetchRequest, OffsetFetchResponse>((c, r, m, o, cb) => c.offsetFetch(r, m, o, cb), { groupId: GROUP, topics: [{ name: TOPIC, partitions: this.partitions }], requireStable: true });
    if (fetched.errorCode !== 0) {
      this.onError('fetch', fetched.errorCode);
      return false;
    }
    this.positions.clear();
    for (const p of fetched.topics[0]?.partitions ?? []) this.positions.set(p.partition, Math.max(0, p.committedOffset));
    return true;
  }

  /** Commits position+1 for every owned partition; returns true when the member must rejoin. */
  private async commit(): Promise<boolean> {
    if (this.partitions.length === 0) return false;
    const next = new Map(this.partitions.map((p) => [p, (this.positions.get(p) ?? 0) + 1]));
    const res = await this.rpc<OffsetCommitRequest, OffsetCommitResponse>((c, r, m, o, cb) => c.offsetCommit(r, m, o, cb), {
      groupId: GROUP,
      generationId: this.generation,
      memberId: this.memberId,
      ...this.inst(),
      topics: [{ name: TOPIC, partitions: [...next].map(([partition, offset]) => ({ partition, committedOffset: offset, committedLeaderEpoch: -1, metadata: '' })) }],
    });
    let rejoin = false;
    for (const p of res.topics[0]?.partitions ?? []) {
      if (p.errorCode === 0) {
        const offset = next.get(p.partition) as number;
        this.positions.set(p.partition, offset);
        this.obs.acked.push({ partition: p.partition, offset, generation: this.generation, member: this.memberId, atMs: performance.now() });
      } else {
        rejoin = this.onError('commit', p.errorCode) || rejoin;
      }
    }
    return rejoin;
  }

  private async run(): Promise<void> {
    let joined = false;
    let lastHeartbeat = 0;
    while (this.running) {
      try {
        if (this.coordinator === null) {
          await this.findCoordinator();
          continue;
        }
        if (!joined) {
          joined = await this.joinAndSync();
          continue;
        }
        if (await this.commit()) {
          joined = false;
          continue;
        }
        if (performance.now() - lastHeartbeat > 500) {
          lastHeartbeat = performance.now();
          const hb = await this.rpc<HeartbeatRequest, HeartbeatResponse>((c, r, m, o, cb) => c.heartbeat(r, m, o, cb), { groupId: GROUP, generationId: this.generation, memberId: this.memberId, ...this.inst() });
          if (hb.errorCode === E.REBALANCE_IN_PROGRESS) {
            // Commit on revoke: the current generation may still commit while the group prepares.
            await this.commit();
            joined = false;
            this.note('heartbeat:rebalance');
            continue;
          }
          if (hb.errorCode !== 0 && this.onError('heartbeat', hb.errorCode)) joined = false;
        }
        await sleep(100);
      } catch {
        // Unreachable coordinator (killed) or deadline: look it up again.
        this.note('rpc:failed');
        this.coordinator = null;
        await sleep(200);
      }
    }
  }
}

test('a group of consumers: add and remove members, kill -9 the coordinator while committing', async () => {
  const cluster = await ProcessCluster.create({
    controllers: 3,
    combined: true,
    overrides: [
      'broker.session.timeout.ms=2500',
      'broker.heartbeat.interval.ms=300',
      'replica.lag.time.max.ms=5000',
      'auto.leader.rebalance.enable=false',
      'offsets.topic.num.partitions=6',
      'group.initial.rebalance.delay.ms=500',
    ],
  });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  const obs: Observations = { leaderAssignments: new Map(), received: new Map(), acked: [], errors: new Map() };
  const live = new Set<string>(cluster.brokerAddresses());
  const members: TestMember[] = [];
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const created = await until('the topic created', async () => {
      for (const a of cluster.brokerAddresses()) {
        const r = await brokers.call<CreateTopicsRequest, CreateTopicsResponse>(a, (c, q, m, o, cb) => c.createTopics(q, m, o, cb), {
          topics: [{ name: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, assignments: [], configs: [] }],
          validateOnly: false,
        }).catch(() => undefined);
        if (r !== undefined) return r;
      }
      return undefined;
    }, 30_000);
    expect(created.topics[0]?.errorCode).toBe(0);

    const add = (name: string, instanceId?: string): TestMember => {
      const m = new TestMember(name, brokers, () => [...live], obs, instanceId);
      members.push(m);
      m.start();
      return m;
    };
    const stableWith = async (n: number, timeoutMs: number): Promise<number> =>
      until(`a Stable generation of ${n} members`, async () => {
        const active = members.filter((m) => m.memberId !== '');
        const gens = new Set(active.map((m) => m.generation));
        const g = [...gens][0];
        if (gens.size !== 1 || g === undefined || active.length < n) return undefined;
        const got = obs.received.get(g);
        return got !== undefined && got.size === n ? g : undefined;
      }, timeoutMs);

    add('a');
    add('b');
    add('c');
    const g1 = await stableWith(3, 60_000);
    await sleep(1500);
    const d = add('d');
    const g2 = await stableWith(4, 60_000);
    expect(g2).toBeGreaterThan(g1);
    await sleep(1500);
    const leaving = members.shift() as TestMember;
    await leaving.stop(true);
    const g3 = await stableWith(3, 60_000);
    expect(g3).toBeGreaterThan(g2);
    // A consumer crashes (no LeaveGroup): the group rebalances once its session expires.
    await sleep(1000);
    members.splice(members.indexOf(d), 1);
    await d.stop(false);
    const g4 = await stableWith(2, SESSION_TIMEOUT_MS + 30_000);
    expect(g4).toBeGreaterThan(g3);
    const e = add('e', 'pod-e');
    const g5 = await stableWith(3, 60_000);
    expect(g5).toBeGreaterThan(g4);
    // The static member restarts (same group.instance.id, no member id): it takes its old place,
    // with the same partitions, and the group does not rebalance.
    await sleep(1000);
    const before = [...e.partitions];
    members.splice(members.indexOf(e), 1);
    await e.stop(false);
    const e2 = add('e2', 'pod-e');
    await until('the restarted static member back in its generation', async () => (e2.generation === g5 && e2.positions.size === before.length ? true : undefined), 30_000);
    expect(e2.partitions).toEqual(before);
    expect(e2.memberId).not.toBe(e.memberId);

    // Describe through the coordinator: Stable, three members, assignments visible.
    const coord = await brokers.call<FindCoordinatorRequest, FindCoordinatorResponse>(cluster.brokerAddresses()[0] as string, (c, r, m, o, cb) => c.findCoordinator(r, m, o, cb), { key: GROUP, keyType: CoordinatorType.COORDINATOR_GROUP });
    expect(coord.errorCode).toBe(0);
    const desc = await brokers.call<DescribeGroupsRequest, DescribeGroupsResponse>(`${coord.host}:${coord.port}`, (c, r, m, o, cb) => c.describeGroups(r, m, o, cb), { groups: [GROUP] });
    expect(desc.groups[0]).toMatchObject({ groupState: 'Stable', protocolData: 'range', generationId: g5 });
    expect(desc.groups[0]?.members).toHaveLength(3);

    // Kill the coordinator's process while the members commit.
    await sleep(1500);
    const ackedBeforeKill = obs.acked.length;
    const victim = coord.nodeId;
    const tKill = performance.now();
    await cluster.kill(victim);
    live.delete(`127.0.0.1:${cluster.node(victim).brokerPort}`);
    // Every partition gets commits acknowledged again, through the new coordinator.
    await until('commits on every partition after the failover', async () => {
      const after = new Set(obs.acked.filter((a) => a.atMs > tKill).map((a) => a.partition));
      return after.size === PARTITIONS ? true : undefined;
    }, 90_000);
    const recoveredMs = Math.round(Math.max(...[...Array(PARTITIONS).keys()].map((p) => obs.acked.find((a) => a.atMs > tKill && a.partition === p)?.atMs ?? 0)) - tKill);
    await sleep(1000);
    // (Members leaving one by one below start new generations: look at the failover before that.)
    const tStop = performance.now();
    const generationsBeforeStop = [...obs.leaderAssignments.keys()];
    for (const m of members) await m.stop(true);

    // Final committed offsets, from whichever broker now coordinates.
    const final = await until('the final committed offsets', async () => {
      for (const a of live) {
        const fc = await brokers.call<FindCoordinatorRequest, FindCoordinatorResponse>(a, (c, r, m, o, cb) => c.findCoordinator(r, m, o, cb), { key: GROUP, keyType: CoordinatorType.COORDINATOR_GROUP }, 2000).catch(() => undefined);
        if (fc === undefined || fc.errorCode !== 0) continue;
        const r = await brokers.call<OffsetFetchRequest, OffsetFetchResponse>(`${fc.host}:${fc.port}`, (c, q, m, o, cb) => c.offsetFetch(q, m, o, cb), { groupId: GROUP, topics: [{ name: TOPIC, partitions: [...Array(PARTITIONS).keys()] }], requireStable: true }, 2000);
        if (r.errorCode === 0) return new Map((r.topics[0]?.partitions ?? []).map((p) => [p.partition, p.committedOffset]));
      }
      return undefined;
    }, 30_000);

    process.stdout.write(
      `consumer groups: generations ${[...obs.leaderAssignments.keys()].join(',')}; ${obs.acked.length} commits acknowledged (${ackedBeforeKill} before the kill of node ${victim}); ` +
        `every partition committing again ${recoveredMs} ms after the kill; errors seen ${JSON.stringify(Object.fromEntries(obs.errors))}\n`,
    );

    // 1. Each generation's assignment gives every partition to exactly one member.
    expect(obs.leaderAssignments.size).toBeGreaterThanOrEqual(5);
    for (const [gen, plan] of obs.leaderAssignments) {
      const all = [...plan.values()].flat().sort((x, y) => x - y);
      expect({ gen, all }).toEqual({ gen, all: [...Array(PARTITIONS).keys()] });
    }
    for (const [gen, got] of obs.received) {
      const owners = new Map<number, string>();
      for (const [member, parts] of got) {
        for (const p of parts) {
          expect({ gen, p, other: owners.get(p) }).toEqual({ gen, p, other: undefined });
          owners.set(p, member);
        }
        // (Static members are keyed by instance id, the leader's plan by member id.)
        const planned = obs.leaderAssignments.get(gen)?.get(member);
        if (planned !== undefined) expect(parts).toEqual(planned);
      }
    }
    // Neither the static member's restart nor the coordinator's failover caused a rebalance: the
    // new coordinator loaded generation g5 with its members and assignments, and the members
    // carried on in it.
    expect(Math.max(...generationsBeforeStop)).toBe(g5);
    expect(obs.acked.filter((x) => x.atMs > tKill && x.atMs < tStop).every((x) => x.generation === g5)).toBe(true);
    // 2. Acknowledged commits never went backwards, per partition, in acknowledgement order.
    for (let p = 0; p < PARTITIONS; p++) {
      const seq = obs.acked.filter((a) => a.partition === p);
      expect(seq.length).toBeGreaterThan(0);
      for (let i = 1; i < seq.length; i++) {
        const prev = seq[i - 1]!;
        const cur = seq[i]!;
        if (cur.offset < prev.offset) throw new Error(`partition ${p}: commit ${cur.offset} (gen ${cur.generation}, ${cur.member}) acknowledged after ${prev.offset} (gen ${prev.generation}, ${prev.member})`);
      }
      // 3. Nothing acknowledged was lost across the coordinator's death.
      const maxAcked = Math.max(...seq.map((a) => a.offset));
      expect({ p, committed: final.get(p) ?? -1 }).toEqual({ p, committed: Math.max(maxAcked, final.get(p) ?? -1) });
      expect(final.get(p)).toBeGreaterThanOrEqual(maxAcked);
    }

    // 4. Administration: the group, Empty once every member left, is listed, loses partition 0's
    // offset with OffsetDelete, then is deleted, and its offsets go with it.
    const coordinator = await until('the coordinator of the empty group', async () => {
      for (const a of live) {
        const fc = await brokers.call<FindCoordinatorRequest, FindCoordinatorResponse>(a, (c, r, m, o, cb) => c.findCoordinator(r, m, o, cb), { key: GROUP, keyType: CoordinatorType.COORDINATOR_GROUP }, 2000).catch(() => undefined);
        if (fc === undefined || fc.errorCode !== 0) continue;
        const addr = `${fc.host}:${fc.port}`;
        const d2 = await brokers.call<DescribeGroupsRequest, DescribeGroupsResponse>(addr, (c, r, m, o, cb) => c.describeGroups(r, m, o, cb), { groups: [GROUP] }, 2000);
        if (d2.groups[0]?.groupState === 'Empty') return addr;
      }
      return undefined;
    }, SESSION_TIMEOUT_MS + 20_000);
    const listed = await brokers.call<ListGroupsRequest, ListGroupsResponse>(coordinator, (c, r, m, o, cb) => c.listGroups(r, m, o, cb), { statesFilter: [] });
    expect(listed.groups).toContainEqual({ groupId: GROUP, protocolType: 'consumer', groupState: 'Empty' });
    // LeaveGroup answers each member named (v3+): one no longer in the group is UNKNOWN_MEMBER_ID.
    const left = await brokers.call<LeaveGroupRequest, LeaveGroupResponse>(coordinator, (c, r, m, o, cb) => c.leaveGroup(r, m, o, cb), { groupId: GROUP, members: [{ memberId: 'gone', reason: 'test' }, { memberId: '', groupInstanceId: 'no-such-pod', reason: 'test' }] });
    expect(left).toEqual({ errorCode: 0, errorMessage: '', members: [{ memberId: 'gone', errorCode: ErrorCode.UNKNOWN_MEMBER_ID }, { memberId: '', groupInstanceId: 'no-such-pod', errorCode: ErrorCode.UNKNOWN_MEMBER_ID }] });
    const offsetDeleted = await brokers.call<OffsetDeleteRequest, OffsetDeleteResponse>(coordinator, (c, r, m, o, cb) => c.offsetDelete(r, m, o, cb), { groupId: GROUP, topics: [{ name: TOPIC, partitions: [0] }] });
    expect(offsetDeleted).toEqual({ errorCode: 0, topics: [{ name: TOPIC, partitions: [{ partition: 0, errorCode: 0 }] }] });
    const kept = await brokers.call<OffsetFetchRequest, OffsetFetchResponse>(coordinator, (c, r, m, o, cb) => c.offsetFetch(r, m, o, cb), { groupId: GROUP, topics: [{ name: TOPIC, partitions: [0, 1] }], requireStable: false });
    expect(kept.topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([-1, final.get(1)]);
    const deleted = await brokers.call<DeleteGroupsRequest, DeleteGroupsResponse>(coordinator, (c, r, m, o, cb) => c.deleteGroups(r, m, o, cb), { groups: [GROUP] });
    expect(deleted.results).toEqual([{ groupId: GROUP, errorCode: 0 }]);
    const after = await brokers.call<OffsetFetchRequest, OffsetFetchResponse>(coordinator, (c, r, m, o, cb) => c.offsetFetch(r, m, o, cb), { groupId: GROUP, topics: [{ name: TOPIC, partitions: [0] }], requireStable: false });
    expect(after.topics[0]?.partitions[0]?.committedOffset).toBe(-1);
  } catch (e: unknown) {
    // The nodes' last log lines explain most failures.
    for (const n of cluster.nodes) process.stdout.write(`--- node ${n.id} ---\n${cluster.logOf(n.id).split('\n').slice(-25).join('\n')}\n`);
    throw e;
  } finally {
    for (const m of members) await m.stop(false).catch(() => undefined);
    brokers.close();
    await cluster.close();
  }
});
