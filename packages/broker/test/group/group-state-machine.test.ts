/**
 * The pure group state machine, one transition or rejection path per test. A small driver feeds
 * requests with an explicit clock, collects the Ready batch (replies by requestId, appends), acks
 * or fails appends, and checks the machine's invariants after every step. Member ids come from a
 * counter, so every run is identical.
 */
import { ErrorCode, KafkaWriter, type ErrorName, type JoinGroupResponse, type LeaveGroupResponse, type OffsetDeleteResponse } from '@strand/protocol';
import { GroupStateMachine, MAX_NAME_BYTES, TOMBSTONE_RETRY_BACKOFF_MAX_MS, TOMBSTONE_RETRY_BACKOFF_MS, type GroupAppend, type GroupConfig, type GroupReply, type JoinInput } from '../../src/group/group-state-machine';
import { decodeGroupRecordKey, encodeGroupRecordKey } from '../../src/group/group-records';
import { consumerSubscription } from '../support/consumer-subscription';

const CONFIG: GroupConfig = {
  minSessionTimeoutMs: 100,
  maxSessionTimeoutMs: 60_000,
  initialRebalanceDelayMs: 100,
  maxSize: 4,
  maxGroups: 10,
  offsetMetadataMaxBytes: 16,
  offsetsRetentionMs: 10_000,
};

const E = (name: ErrorName): number => ErrorCode[name];

class Driver {
  readonly sm: GroupStateMachine;
  now = 0;
  private nextRequest = 1;
  private ids = 0;
  readonly replies = new Map<number, GroupReply>();
  appends: GroupAppend[] = [];
  /** Every append ever made, acknowledged or not (what a reload would read if all succeeded). */
  readonly log: GroupAppend[] = [];

  /** With `loadFrom`, the machine starts as a coordinator loading those records (at time 0). */
  constructor(config: Partial<GroupConfig> = {}, loadFrom: readonly GroupAppend[] = []) {
    this.sm = new GroupStateMachine({ ...CONFIG, ...config }, () => `m${++this.ids}`);
    if (loadFrom.length === 0) return;
    for (const a of loadFrom) for (const r of a.records) this.sm.replay(r.key, r.value);
    this.sm.finishLoad(this.now);
    this.step();
  }

  private step(): void {
    const r = this.sm.takeReady();
    for (const x of r.replies) {
      expect(this.replies.has(x.requestId)).toBe(false); // every request is answered exactly once
      this.replies.set(x.requestId, x);
    }
    this.appends.push(...r.appends);
    this.log.push(...r.appends);
    this.sm.checkInvariants();
  }

  reply(id: number): GroupReply | undefined {
    return this.replies.get(id);
  }

  join(memberId: string, extra: Partial<JoinInput> = {}): number {
    const id = this.nextRequest++;
    this.sm.join(id, { groupId: 'g', memberId, sessionTimeoutMs: 1000, rebalanceTimeoutMs: 2000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('sub') }], clientId: 'c', clientHost: 'h', ...extra }, this.now);
    this.step();
    return id;
  }

  joinResponse(id: number): JoinGroupResponse {
    const r = this.reply(id);
    if (r?.kind !== 'join') throw new Error(`no join reply for ${id}: ${JSON.stringify(r)}`);
    return r.response;
  }

  /** First join with KIP-394: MEMBER_ID_REQUIRED then a join with the id (parked until the rebalance completes). */
  joinNew(extra: Partial<JoinInput> = {}): { memberId: string; request: number } {
    const first = this.joinResponse(this.join('', extra));
    expect(first.errorCode).toBe(E('MEMBER_ID_REQUIRED'));
    return { memberId: first.memberId, request: this.join(first.memberId, extra) };
  }

  sync(memberId: string, generationId: number, assignments: { memberId: string; assignment: Uint8Array }[] = [], extra: { groupInstanceId?: string } = {}): number {
    const id = this.nextRequest++;
    this.sm.sync(id, { groupId: 'g', generationId, memberId, protocolType: '', protocolName: '', assignments, ...extra }, this.now);
    this.step();
    return id;
  }

  heartbeat(memberId: string, generationId: number, extra: { groupInstanceId?: string } = {}): number {
    const id = this.nextRequest++;
    this.sm.heartbeat(id, { groupId: 'g', generationId, memberId, ...extra }, this.now);
    this.step();
    return this.errorOf(id);
  }

  /** The LeaveGroup answer's error as Kafka's LeaveGroupResponse.error(): top-level, else the first member's. */
  leave(members: { memberId: string; groupInstanceId?: string }[]): number {
    const r = this.leaveResponse(members);
    return r.errorCode !== 0 ? r.errorCode : (r.members.find((m) => m.errorCode !== 0)?.errorCode ?? 0);
  }

  leaveResponse(members: { memberId: string; groupInstanceId?: string }[], groupId = 'g'): LeaveGroupResponse {
    const id = this.nextRequest++;
    this.sm.leave(id, { groupId, members }, this.now);
    this.step();
    const r = this.reply(id);
    if (r?.kind !== 'leave') throw new Error(`request ${id} not answered with a leave`);
    return r.response;
  }

  commit(memberId: string, generationId: number, offset: number, extra: { groupInstanceId?: string; metadata?: string; partition?: number; topic?: string } = {}): number {
    const id = this.nextRequest++;
    const { metadata = '', partition = 0, topic = 't', ...rest } = extra;
    this.sm.commit(id, { groupId: 'g', generationId, memberId, topics: [{ name: topic, partitions: [{ partition, committedOffset: offset, committedLeaderEpoch: 1, metadata }] }], ...rest }, this.now);
    this.step();
    return id;
  }

  commitError(id: number): number | undefined {
    const r = this.reply(id);
    if (r === undefined) return undefined;
    if (r.kind !== 'commit') throw new Error('not a commit reply');
    return r.response.topics[0]?.partitions[0]?.errorCode;
  }

  errorOf(id: number): number {
    const r = this.reply(id);
    if (r === undefined) throw new Error(`request ${id} not answered`);
    if (r.kind === 'delete') return r.response.errorCode;
    if (r.kind === 'commit') return r.response.topics[0]?.partitions[0]?.errorCode ?? -999;
    return r.response.errorCode;
  }

  ackAll(error: ErrorName | null = null): void {
    const list = this.appends;
    this.appends = [];
    for (const a of list) {
      this.sm.onAppended(a.appendId, error, this.now);
      this.step();
    }
  }

  tick(toMs: number): void {
    this.now = toMs;
    this.sm.tick(this.now);
    this.step();
  }

  committed(partition = 0, topic = 't'): number {
    return this.sm.fetchOffsets({ groupId: 'g', topics: [{ name: topic, partitions: [partition] }] }).topics[0]?.partitions[0]?.committedOffset ?? -2;
  }

  deleteOffsets(topics: { name: string; partitions: number[] }[], groupId = 'g'): number {
    const id = this.nextRequest++;
    this.sm.deleteOffsets(id, { groupId, topics });
    this.step();
    return id;
  }

  /** The OffsetDelete answer of request `id`, or undefined while its tombstones are in flight. */
  deleteOffsetsResponse(id: number): OffsetDeleteResponse | undefined {
    const r = this.reply(id);
    if (r === undefined) return undefined;
    if (r.kind !== 'deleteOffsets') throw new Error(`not an OffsetDelete reply: ${JSON.stringify(r)}`);
    return r.response;
  }

  /** Two members joined and synced: a Stable generation 1 with m1 the leader. */
  stableTwo(): { a: string; b: string } {
    const a = this.joinNew();
    const b = this.joinNew();
    // Both joined; the join completes at the end of the initial delay.
    this.tick(this.now + CONFIG.initialRebalanceDelayMs);
    expect(this.joinResponse(a.request).generationId).toBe(1);
    expect(this.joinResponse(b.request).generationId).toBe(1);
    const leader = this.joinResponse(a.request).leader;
    expect(leader).toBe(a.memberId);
    const sa = this.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }, { memberId: b.memberId, assignment: Buffer.from('B') }]);
    const sb = this.sync(b.memberId, 1);
    expect(this.reply(sa)).toBeUndefined(); // answered only after the assignment is persisted
    this.ackAll();
    expect(this.sm.stateOf('g')).toBe('Stable');
    const ra = this.reply(sa);
    const rb = this.reply(sb);
    expect(ra?.kind === 'sync' && Buffer.from(ra.response.assignment).toString()).toBe('A');
    expect(rb?.kind === 'sync' && Buffer.from(rb.response.assignment).toString()).toBe('B');
    return { a: a.memberId, b: b.memberId };
  }
}

describe('JoinGroup', () => {
  test('KIP-394: the first join gets MEMBER_ID_REQUIRED and an id; the join with it starts a rebalance', () => {
    const d = new Driver();
    const first = d.joinResponse(d.join(''));
    expect(first.errorCode).toBe(E('MEMBER_ID_REQUIRED'));
    expect(first.memberId).toBe('m1');
    expect(d.sm.stateOf('g')).toBe('Empty');
    const j = d.join('m1');
    expect(d.reply(j)).toBeUndefined();
    d.tick(100);
    // Alone in the group at the end of the initial delay: the member is the leader.
    const r = d.joinResponse(j);
    expect(r).toMatchObject({ errorCode: 0, generationId: 1, leader: 'm1', memberId: 'm1', protocolName: 'range', protocolType: 'consumer' });
    expect(r.members.map((m) => m.memberId)).toEqual(['m1']);
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
  });

  test('the initial rebalance delay holds the first join, and each newcomer extends it', () => {
    const d = new Driver({ initialRebalanceDelayMs: 300 });
    const a = d.joinNew();
    expect(d.reply(a.request)).toBeUndefined();
    d.tick(200);
    const b = d.joinNew();
    d.tick(400); // a's delay ended at 300 but b's join extended it to 500
    expect(d.reply(a.request)).toBeUndefined();
    d.tick(500);
    expect(d.joinResponse(a.request).generationId).toBe(1);
    expect(d.joinResponse(b.request).members).toEqual([]); // followers get no member list
    expect(d.joinResponse(a.request).members).toHaveLength(2);
  });

  test('rejections: bad session timeout, unknown member, empty or inconsistent protocols, empty group id', () => {
    const d = new Driver();
    expect(d.joinResponse(d.join('', { sessionTimeoutMs: 99 })).errorCode).toBe(E('INVALID_SESSION_TIMEOUT'));
    expect(d.joinResponse(d.join('', { sessionTimeoutMs: 60_001 })).errorCode).toBe(E('INVALID_SESSION_TIMEOUT'));
    expect(d.joinResponse(d.join('nobody')).errorCode).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.joinResponse(d.join('', { protocols: [] })).errorCode).toBe(E('INCONSISTENT_GROUP_PROTOCOL'));
    expect(d.joinResponse(d.join('', { protocolType: '' })).errorCode).toBe(E('INCONSISTENT_GROUP_PROTOCOL'));
    expect(d.joinResponse(d.join('', { groupId: '' })).errorCode).toBe(E('INVALID_GROUP_ID'));
    d.sm.sync(900, { groupId: '', generationId: 1, memberId: 'm', protocolType: '', protocolName: '', assignments: [] }, 0);
    d.sm.heartbeat(901, { groupId: '', generationId: 1, memberId: 'm' }, 0);
    d.sm.leave(902, { groupId: '', members: [{ memberId: 'm' }] }, 0);
    expect(d.sm.takeReady().replies.map((r) => r.response.errorCode)).toEqual([E('INVALID_GROUP_ID'), E('INVALID_GROUP_ID'), E('INVALID_GROUP_ID')]);
    d.stableTwo();
    expect(d.joinResponse(d.join('', { protocolType: 'connect' })).errorCode).toBe(E('INCONSISTENT_GROUP_PROTOCOL'));
    expect(d.joinResponse(d.join('', { protocols: [{ name: 'roundrobin', metadata: Buffer.alloc(0) }] })).errorCode).toBe(E('INCONSISTENT_GROUP_PROTOCOL'));
  });

  test('names longer than MAX_NAME_BYTES are refused before anything is stored', () => {
    const d = new Driver();
    const long = 'x'.repeat(MAX_NAME_BYTES + 1);
    expect(d.joinResponse(d.join('', { groupId: long })).errorCode).toBe(E('INVALID_GROUP_ID'));
    expect(d.joinResponse(d.join('', { groupInstanceId: long })).errorCode).toBe(E('INVALID_REQUEST'));
    expect(d.joinResponse(d.join('', { protocols: [{ name: long, metadata: Buffer.alloc(0) }] })).errorCode).toBe(E('INVALID_REQUEST'));
    const id = 77;
    d.sm.commit(id, { groupId: 'g', generationId: -1, memberId: '', topics: [{ name: long, partitions: [{ partition: 0, committedOffset: 1, committedLeaderEpoch: -1, metadata: '' }] }] }, 0);
    const r = d.sm.takeReady();
    expect(r.appends).toEqual([]);
    expect(r.replies[0]?.kind === 'commit' && r.replies[0].response.topics[0]?.partitions[0]?.errorCode).toBe(E('INVALID_COMMIT_OFFSET_SIZE'));
    expect(d.sm.groupCount).toBeLessThanOrEqual(1);
  });

  test('group.max.size counts members and ids awaiting their join; a full group refuses newcomers', () => {
    const d = new Driver({ maxSize: 2 });
    d.stableTwo();
    expect(d.joinResponse(d.join('')).errorCode).toBe(E('GROUP_MAX_SIZE_REACHED'));
  });

  test('group.coordinator.max.groups bounds the groups of one state machine', () => {
    const d = new Driver({ maxGroups: 1 });
    d.joinNew();
    expect(d.joinResponse(d.join('', { groupId: 'other' })).errorCode).toBe(E('COORDINATOR_NOT_AVAILABLE'));
  });

  test('protocol selection: among protocols all support, the most voted wins', () => {
    const d = new Driver();
    const both = [{ name: 'range', metadata: Buffer.alloc(0) }, { name: 'roundrobin', metadata: Buffer.alloc(0) }];
    const rrFirst = [{ name: 'roundrobin', metadata: Buffer.alloc(0) }, { name: 'range', metadata: Buffer.alloc(0) }];
    const a = d.joinNew({ protocols: both });
    d.joinNew({ protocols: rrFirst });
    d.joinNew({ protocols: rrFirst });
    d.tick(100);
    expect(d.joinResponse(a.request)).toMatchObject({ generationId: 1, protocolName: 'roundrobin' });
    const alone = new Driver();
    const x = alone.joinNew({ protocols: both });
    alone.tick(100);
    expect(alone.joinResponse(x.request).protocolName).toBe('range');
  });

  test('Stable: a follower rejoining unchanged gets the current generation; the leader rejoining starts a rebalance', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    const rb = d.joinResponse(d.join(b));
    expect(rb).toMatchObject({ errorCode: 0, generationId: 1 });
    expect(d.sm.stateOf('g')).toBe('Stable');
    const ra = d.join(a);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.reply(ra)).toBeUndefined();
    expect(d.heartbeat(b, 1)).toBe(E('REBALANCE_IN_PROGRESS'));
    const rb2 = d.join(b);
    expect(d.joinResponse(ra).generationId).toBe(2);
    expect(d.joinResponse(rb2).generationId).toBe(2);
  });

  test('Stable: a member with changed subscription metadata starts a rebalance', () => {
    const d = new Driver();
    const { b } = d.stableTwo();
    d.join(b, { protocols: [{ name: 'range', metadata: Buffer.from('new-topics') }] });
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
  });

  test('CompletingRebalance: a repeated join gets the same generation again', () => {
    const d = new Driver();
    const a = d.joinNew();
    d.tick(100);
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
    const again = d.joinResponse(d.join(a.memberId));
    expect(again).toMatchObject({ errorCode: 0, generationId: 1 });
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
  });

  test('CompletingRebalance: the leader repeating its join gets the member list again (else it would assign nothing)', () => {
    const d = new Driver();
    const a = d.joinNew();
    const b = d.joinNew();
    d.tick(100);
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
    const leader = d.sm.leaderOf('g') as string;
    const follower = leader === a.memberId ? b.memberId : a.memberId;
    const again = d.joinResponse(d.join(leader));
    expect(again).toMatchObject({ errorCode: 0, generationId: 1, leader });
    expect(again.members.map((m) => m.memberId).sort()).toEqual([a.memberId, b.memberId].sort());
    expect(d.joinResponse(d.join(follower)).members).toEqual([]);
  });

  test('the rebalance timeout removes members that do not rejoin', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.now = 100;
    const ra = d.join(a);
    // b keeps heartbeating (so its session does not end) but never rejoins.
    for (let t = 500; t < 2100; t += 500) {
      d.tick(t);
      if (t < 2100) d.heartbeat(b, 1);
    }
    d.tick(2100); // rebalance timeout 2000 from t=100
    expect(d.joinResponse(ra)).toMatchObject({ generationId: 2, leader: a });
    expect(d.sm.membersOf('g')).toEqual([a]);
    expect(d.heartbeat(b, 1)).toBe(E('UNKNOWN_MEMBER_ID'));
  });

  /** `n` members (static when `instances`), joined and synced: Stable in generation 1; their ids, in join order. */
  function stableGroupOf(d: Driver, n: number, instances = false): string[] {
    const requests = Array.from({ length: n }, (_, i) => {
      const extra = instances ? { groupInstanceId: `pod-${i}` } : {};
      if (instances) return { request: d.join('', extra), extra };
      const { request } = d.joinNew(extra);
      return { request, extra };
    });
    d.tick(d.now + CONFIG.initialRebalanceDelayMs);
    const ids = requests.map((r) => d.joinResponse(r.request).memberId);
    requests.forEach((r, i) => d.sync(ids[i] as string, 1, i === 0 ? ids.map((memberId) => ({ memberId, assignment: Buffer.from(memberId) })) : [], r.extra));
    d.ackAll();
    expect(d.sm.stateOf('g')).toBe('Stable');
    return ids;
  }

  test('KIP-389: a group loaded with more members than a lowered group.max.size rebalances; rejoins beyond the limit are GROUP_MAX_SIZE_REACHED and removed', () => {
    const before = new Driver({ maxSize: 4 });
    const [m1, m2, m3, m4] = stableGroupOf(before, 4) as [string, string, string, string];
    // The coordinator restarts (or fails over) with group.max.size=2.
    const d = new Driver({ maxSize: 2 }, before.log);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.heartbeat(m1, 1)).toBe(E('REBALANCE_IN_PROGRESS'));
    const j1 = d.join(m1);
    const j2 = d.join(m2);
    expect(d.reply(j1)).toBeUndefined(); // parked: m3 and m4 have not rejoined yet
    const j3 = d.join(m3);
    expect(d.joinResponse(j3)).toMatchObject({ errorCode: E('GROUP_MAX_SIZE_REACHED'), memberId: '' });
    expect(d.sm.membersOf('g')).not.toContain(m3);
    expect(d.joinResponse(d.join(m3)).errorCode).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.joinResponse(d.join('')).errorCode).toBe(E('GROUP_MAX_SIZE_REACHED'));
    // The last one out completes the join for the two accepted.
    expect(d.joinResponse(d.join(m4)).errorCode).toBe(E('GROUP_MAX_SIZE_REACHED'));
    expect(d.joinResponse(j1)).toMatchObject({ errorCode: 0, generationId: 2, leader: m1 });
    expect(d.joinResponse(j2)).toMatchObject({ errorCode: 0, generationId: 2 });
    expect(d.joinResponse(j1).members.map((m) => m.memberId)).toEqual([m1, m2]);
    expect(d.sm.membersOf('g')).toEqual([m1, m2]);
  });

  test('KIP-389: members of an over-size loaded group that do not rejoin are out at the rebalance deadline, static ones beyond the limit too', () => {
    const before = new Driver({ maxSize: 4 });
    const [s0, s1, s2] = stableGroupOf(before, 3, true) as [string, string, string];
    const d = new Driver({ maxSize: 2 }, before.log);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    const j2 = d.join(s2, { groupInstanceId: 'pod-2' });
    // The absent two keep their sessions (1000 ms) alive without rejoining.
    for (const t of [900, 1800]) {
      d.tick(t);
      expect(d.heartbeat(s0, 1, { groupInstanceId: 'pod-0' })).toBe(E('REBALANCE_IN_PROGRESS'));
      expect(d.heartbeat(s1, 1, { groupInstanceId: 'pod-1' })).toBe(E('REBALANCE_IN_PROGRESS'));
    }
    d.tick(1999);
    expect(d.reply(j2)).toBeUndefined();
    d.tick(2000); // the rebalance timeout (2000) from the load at 0
    // The joined member stays; of the absent static members, the first up to the limit.
    expect(d.joinResponse(j2)).toMatchObject({ errorCode: 0, generationId: 2, leader: s2 });
    expect(d.sm.membersOf('g').sort()).toEqual([s0, s2].sort());
    expect(d.joinResponse(d.join('', { groupInstanceId: 'pod-1' })).errorCode).toBe(E('GROUP_MAX_SIZE_REACHED'));
  });

  test('KIP-389: a static member restarting into an over-size loaded group is refused once the limit has rejoined', () => {
    const before = new Driver({ maxSize: 4 });
    const [s0, s1, s2] = stableGroupOf(before, 3, true) as [string, string, string];
    const d = new Driver({ maxSize: 1 }, before.log);
    const j2 = d.join(s2, { groupInstanceId: 'pod-2' });
    expect(d.joinResponse(d.join('', { groupInstanceId: 'pod-0' }))).toMatchObject({ errorCode: E('GROUP_MAX_SIZE_REACHED'), memberId: '' });
    expect(d.sm.membersOf('g')).not.toContain(s0);
    d.tick(2000);
    expect(d.joinResponse(j2)).toMatchObject({ errorCode: 0, generationId: 2 });
    expect(d.sm.membersOf('g')).toEqual([s2]);
    expect(d.heartbeat(s1, 1, { groupInstanceId: 'pod-1' })).toBe(E('UNKNOWN_MEMBER_ID'));
  });

  test('an unused member id from MEMBER_ID_REQUIRED expires after a session', () => {
    const d = new Driver({ maxSize: 1 });
    const first = d.joinResponse(d.join(''));
    expect(d.joinResponse(d.join('')).errorCode).toBe(E('GROUP_MAX_SIZE_REACHED'));
    d.tick(1000);
    expect(d.joinResponse(d.join(first.memberId)).errorCode).toBe(E('UNKNOWN_MEMBER_ID'));
  });
});

describe('SyncGroup', () => {
  test('rejections: unknown member, wrong generation, inconsistent protocol, rebalance in progress', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    expect(d.errorOf(d.sync('nobody', 1))).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.errorOf(d.sync(a, 0))).toBe(E('ILLEGAL_GENERATION'));
    const id = 999;
    d.sm.sync(id, { groupId: 'g', generationId: 1, memberId: a, protocolType: 'connect', protocolName: '', assignments: [] }, d.now);
    expect(d.sm.takeReady().replies[0]?.response.errorCode).toBe(E('INCONSISTENT_GROUP_PROTOCOL'));
    d.join(a);
    expect(d.errorOf(d.sync(b, 1))).toBe(E('REBALANCE_IN_PROGRESS'));
    const other = 998;
    d.sm.sync(other, { groupId: 'nope', generationId: 1, memberId: a, protocolType: '', protocolName: '', assignments: [] }, d.now);
    expect(d.sm.takeReady().replies[0]?.response.errorCode).toBe(E('UNKNOWN_MEMBER_ID'));
  });

  test('Stable: a sync returns the member\'s stored assignment', () => {
    const d = new Driver();
    const { b } = d.stableTwo();
    const r = d.reply(d.sync(b, 1));
    expect(r?.kind === 'sync' && Buffer.from(r.response.assignment).toString()).toBe('B');
  });

  test('a failed assignment write answers the syncs with the error and rebalances', () => {
    const d = new Driver();
    const a = d.joinNew();
    d.tick(100);
    const s = d.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }]);
    d.ackAll('NOT_LEADER_OR_FOLLOWER');
    expect(d.errorOf(s)).toBe(E('NOT_COORDINATOR'));
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
  });

  test('a leader that never syncs: at the sync deadline silent members are removed', () => {
    const d = new Driver();
    // a's session outlives the sync deadline: only the deadline removes it.
    const a = d.joinNew({ sessionTimeoutMs: 5000 });
    const b = d.joinNew({ sessionTimeoutMs: 5000 });
    d.tick(100);
    expect(d.joinResponse(a.request).generationId).toBe(1);
    const sb = d.sync(b.memberId, 1);
    d.tick(2099);
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
    d.tick(2100); // sync deadline: rebalance timeout 2000 after the join completed
    expect(d.sm.membersOf('g')).toEqual([b.memberId]);
    expect(d.errorOf(sb)).toBe(E('REBALANCE_IN_PROGRESS'));
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance'); // b must rejoin
  });
});

describe('Heartbeat, session timeout, LeaveGroup', () => {
  test('heartbeat errors: unknown group/member, illegal generation', () => {
    const d = new Driver();
    expect(d.heartbeat('x', 0)).toBe(E('UNKNOWN_MEMBER_ID'));
    const { a } = d.stableTwo();
    expect(d.heartbeat('x', 1)).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.heartbeat(a, 0)).toBe(E('ILLEGAL_GENERATION'));
    expect(d.heartbeat(a, 1)).toBe(0);
  });

  test('a member whose session expires is removed and the group rebalances', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.tick(600);
    expect(d.heartbeat(a, 1)).toBe(0);
    d.tick(1100); // b silent for its whole 1000 ms session (last seen at its sync, t=100)
    expect(d.sm.membersOf('g')).toEqual([a]);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.heartbeat(b, 1)).toBe(E('UNKNOWN_MEMBER_ID'));
    const ra = d.join(a);
    expect(d.joinResponse(ra).generationId).toBe(2);
  });

  test('leave: the group rebalances without the member; the last leaving member empties the group', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    expect(d.leave([{ memberId: b }])).toBe(0);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.leave([{ memberId: 'nobody' }])).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.leave([{ memberId: a }])).toBe(0);
    expect(d.sm.stateOf('g')).toBe('Empty');
    expect(d.sm.generationOf('g')).toBe(2);
    expect(d.log.at(-1)?.records.map((r) => decodeGroupRecordKey(r.key).kind)).toEqual(['group']);
  });

  test('leave answers each member on its own (LeaveGroup v3+), and an unknown group each with UNKNOWN_MEMBER_ID', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    const r = d.leaveResponse([{ memberId: 'nobody' }, { memberId: b }, { memberId: '', groupInstanceId: 'no-such-pod' }]);
    expect(r).toEqual({
      errorCode: 0,
      errorMessage: '',
      members: [
        { memberId: 'nobody', errorCode: E('UNKNOWN_MEMBER_ID') },
        { memberId: b, errorCode: 0 },
        { memberId: '', groupInstanceId: 'no-such-pod', errorCode: E('UNKNOWN_MEMBER_ID') },
      ],
    });
    // The known member left although others in the same request were unknown.
    expect(d.sm.membersOf('g')).toEqual([a]);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.leaveResponse([{ memberId: 'x' }, { memberId: 'y' }], 'other')).toEqual({
      errorCode: 0,
      errorMessage: '',
      members: [
        { memberId: 'x', errorCode: E('UNKNOWN_MEMBER_ID') },
        { memberId: 'y', errorCode: E('UNKNOWN_MEMBER_ID') },
      ],
    });
  });

  test('a member leaving during the join phase lets the join complete for the others', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    const ra = d.join(a);
    expect(d.reply(ra)).toBeUndefined();
    d.leave([{ memberId: b }]);
    expect(d.joinResponse(ra)).toMatchObject({ generationId: 2, leader: a });
  });

  test('a member parked in a join is not expired while it waits', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    const ra = d.join(a);
    d.tick(1500); // a's session (1000) passed, but it is waiting on the coordinator
    expect(d.sm.membersOf('g')).toContain(a);
    expect(d.sm.membersOf('g')).not.toContain(b); // b neither heartbeat nor rejoined
    expect(d.joinResponse(ra).generationId).toBe(2);
  });
});

describe('static membership (group.instance.id)', () => {
  test('a restarted static member takes its old place without a rebalance', () => {
    const d = new Driver();
    const a = d.joinNew();
    const s = d.join('', { groupInstanceId: 'pod-b' }); // static members join directly
    const sId = 'm2';
    d.tick(100);
    expect(d.joinResponse(s)).toMatchObject({ generationId: 1, memberId: sId });
    d.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }, { memberId: sId, assignment: Buffer.from('S') }]);
    d.sync(sId, 1, [], { groupInstanceId: 'pod-b' });
    d.ackAll();
    expect(d.sm.stateOf('g')).toBe('Stable');
    // The pod restarts: no member id, same instance id.
    const rejoin = d.join('', { groupInstanceId: 'pod-b' });
    d.ackAll(); // answered once the new member id is persisted
    const again = d.joinResponse(rejoin);
    expect(again).toMatchObject({ errorCode: 0, generationId: 1 });
    expect(again.memberId).not.toBe(sId);
    expect(d.sm.stateOf('g')).toBe('Stable');
    const r = d.reply(d.sync(again.memberId, 1, [], { groupInstanceId: 'pod-b' }));
    expect(r?.kind === 'sync' && Buffer.from(r.response.assignment).toString()).toBe('S');
    // The old incarnation is fenced everywhere.
    expect(d.heartbeat(sId, 1, { groupInstanceId: 'pod-b' })).toBe(E('FENCED_INSTANCE_ID'));
    expect(d.errorOf(d.sync(sId, 1, [], { groupInstanceId: 'pod-b' }))).toBe(E('FENCED_INSTANCE_ID'));
    expect(d.commitError(d.commit(sId, 1, 5, { groupInstanceId: 'pod-b' }))).toBe(E('FENCED_INSTANCE_ID'));
    expect(d.joinResponse(d.join(sId, { groupInstanceId: 'pod-b' })).errorCode).toBe(E('FENCED_INSTANCE_ID'));
    expect(d.leave([{ memberId: sId, groupInstanceId: 'pod-b' }])).toBe(E('FENCED_INSTANCE_ID'));
    // A static member survives its session only by heartbeating, like any other.
    expect(d.heartbeat(again.memberId, 1, { groupInstanceId: 'pod-b' })).toBe(0);
  });

  test('a join with a pending member id cannot claim an instance id another member holds (FENCED_INSTANCE_ID)', () => {
    const d = new Driver();
    const s = d.join('', { groupInstanceId: 'pod-a' });
    d.tick(100);
    const sId = d.joinResponse(s).memberId;
    const pending = d.joinResponse(d.join('')).memberId; // MEMBER_ID_REQUIRED
    // A misbehaving client joins with that id and pod-a's instance id: refused, and nothing
    // changes (two members must never hold one instance id).
    expect(d.joinResponse(d.join(pending, { groupInstanceId: 'pod-a' })).errorCode).toBe(E('FENCED_INSTANCE_ID'));
    expect(d.sm.membersOf('g')).toEqual([sId]);
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
  });

  test('an administrative leave by instance id alone removes the static member', () => {
    const d = new Driver();
    const s = d.join('', { groupInstanceId: 'pod-a' });
    d.tick(100);
    expect(d.joinResponse(s).generationId).toBe(1);
    expect(d.leave([{ memberId: '', groupInstanceId: 'pod-a' }])).toBe(0);
    expect(d.sm.stateOf('g')).toBe('Empty');
  });

  test('a static member replaced while parked in a join: the old request is fenced', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    const s = d.join('', { groupInstanceId: 'pod-c' }); // PreparingRebalance, parked
    const again = d.join('', { groupInstanceId: 'pod-c' });
    expect(d.joinResponse(s).errorCode).toBe(E('FENCED_INSTANCE_ID'));
    expect(d.reply(again)).toBeUndefined();
    d.join(a);
    d.tick(2100);
    expect(d.joinResponse(again).errorCode).toBe(0);
  });

  /** ConsumerProtocol subscription v1 of topic `t`, listing the partitions of `t` the member owns (as a rejoining consumer sends). */
  const owning = (...partitions: number[]): Buffer => {
    const w = new KafkaWriter().int16(1).int32(1).string('t').bytes(null).int32(partitions.length > 0 ? 1 : 0);
    if (partitions.length > 0) {
      w.string('t').int32(partitions.length);
      for (const p of partitions) w.int32(p);
    }
    return w.done();
  };

  test('a restart in Stable is no rebalance when only owned partitions or user data differ from the old incarnation\'s last join (Kafka: only a change of protocol rebalances)', () => {
    const d = new Driver();
    const proto = (metadata: Buffer): Partial<JoinInput> => ({ groupInstanceId: 'pod-s', sessionTimeoutMs: 5000, protocols: [{ name: 'range', metadata }] });
    const s = d.join('', proto(owning()));
    const b = d.joinNew({ protocols: [{ name: 'range', metadata: owning() }] });
    d.tick(100);
    const sId = d.joinResponse(s).memberId;
    d.sync(sId, 1, [{ memberId: sId, assignment: Buffer.from('S1') }, { memberId: b.memberId, assignment: Buffer.from('B1') }], { groupInstanceId: 'pod-s' });
    d.sync(b.memberId, 1);
    d.ackAll();
    // A second generation, which pod-s joins owning partition 0 (its subscription v1 says so).
    const rs = d.join(sId, proto(owning(0)));
    const rb = d.join(b.memberId, { protocols: [{ name: 'range', metadata: owning(1) }] });
    expect(d.joinResponse(rs).generationId).toBe(2);
    expect(d.joinResponse(rb).generationId).toBe(2);
    d.sync(sId, 2, [{ memberId: sId, assignment: Buffer.from('S2') }, { memberId: b.memberId, assignment: Buffer.from('B2') }], { groupInstanceId: 'pod-s' });
    d.sync(b.memberId, 2);
    d.ackAll();
    expect(d.sm.stateOf('g')).toBe('Stable');
    // The pod restarts: same topics, owning nothing yet.
    d.now = 1000;
    const restart = d.join('', proto(owning()));
    expect(d.sm.stateOf('g')).toBe('Stable');
    d.ackAll();
    const again = d.joinResponse(restart);
    expect(again).toMatchObject({ errorCode: 0, generationId: 2, leader: again.memberId });
    const r = d.reply(d.sync(again.memberId, 2, [], { groupInstanceId: 'pod-s' }));
    expect(r?.kind === 'sync' && Buffer.from(r.response.assignment).toString()).toBe('S2');
    // Other topics are another matter: that restart rebalances.
    d.join('', { ...proto(consumerSubscription('t', 'u')) });
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
  });

  test('after a coordinator failover a static restart offering several assignors is no rebalance either', () => {
    const d = new Driver();
    const both = (metadata: Buffer): { name: string; metadata: Buffer }[] => [{ name: 'range', metadata }, { name: 'roundrobin', metadata }];
    const s = d.join('', { groupInstanceId: 'pod-s', protocols: both(consumerSubscription('t')) });
    d.tick(100);
    const sId = d.joinResponse(s).memberId;
    d.sync(sId, 1, [{ memberId: sId, assignment: Buffer.from('S') }], { groupInstanceId: 'pod-s' });
    d.ackAll();
    const loaded = reload(d);
    loaded.join(1, { groupId: 'g', memberId: '', groupInstanceId: 'pod-s', sessionTimeoutMs: 1000, rebalanceTimeoutMs: 2000, protocolType: 'consumer', protocols: both(consumerSubscription('t')), clientId: 'c', clientHost: 'h' }, d.now);
    loaded.checkInvariants();
    expect(loaded.stateOf('g')).toBe('Stable');
    const ready = loaded.takeReady();
    expect(ready.replies).toEqual([]); // answered once the new id is persisted
    expect(ready.appends).toHaveLength(1);
    loaded.onAppended(ready.appends[0]!.appendId, null, d.now);
    const r = loaded.takeReady().replies[0];
    expect(r?.kind === 'join' && r.response).toMatchObject({ errorCode: 0, generationId: 1, protocolName: 'range' });
  });
});

describe('static members that miss the join deadline (KIP-345: only their session removes them)', () => {
  /**
   * Static pod-s (the leader, session 5000) and dynamic b, Stable in generation 1 at t=100; at
   * t=200 b rejoins with new metadata and pod-s never does: the rebalance deadline is t=2200.
   */
  function staticMissesJoin(d: Driver): { s: string; b: string; rb: number } {
    const s = d.join('', { groupInstanceId: 'pod-s', sessionTimeoutMs: 5000 });
    const b = d.joinNew();
    d.tick(100);
    const sId = d.joinResponse(s).memberId;
    expect(d.joinResponse(s)).toMatchObject({ generationId: 1, leader: sId });
    d.sync(sId, 1, [{ memberId: sId, assignment: Buffer.from('S') }, { memberId: b.memberId, assignment: Buffer.from('B') }], { groupInstanceId: 'pod-s' });
    d.sync(b.memberId, 1);
    d.ackAll();
    expect(d.sm.stateOf('g')).toBe('Stable');
    d.now = 200;
    const rb = d.join(b.memberId, { protocols: [{ name: 'range', metadata: Buffer.from('sub2') }] });
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    d.tick(2199);
    expect(d.reply(rb)).toBeUndefined(); // the join waits for the static member until the deadline
    d.tick(2200);
    return { s: sId, b: b.memberId, rb };
  }

  test('the join completes for the others at the deadline; the static member stays, gets an assignment, and restarts without a rebalance', () => {
    const d = new Driver();
    const { s, b, rb } = staticMissesJoin(d);
    // A joined member leads (the old leader did not rejoin) and is told about the static member.
    const jb = d.joinResponse(rb);
    expect(jb).toMatchObject({ errorCode: 0, generationId: 2, leader: b });
    expect(jb.members.map((m) => [m.memberId, m.groupInstanceId, Buffer.from(m.metadata).toString()])).toEqual([
      [s, 'pod-s', 'sub'],
      [b, undefined, 'sub2'],
    ]);
    expect(d.sm.membersOf('g')).toEqual([s, b]);
    d.sync(b, 2, [{ memberId: s, assignment: Buffer.from('S2') }, { memberId: b, assignment: Buffer.from('B2') }]);
    d.ackAll();
    expect(d.sm.stateOf('g')).toBe('Stable');
    // The pod comes back within its session: same generation, its assignment, no rebalance.
    d.now = 3000;
    expect(d.heartbeat(b, 2)).toBe(0);
    const rejoin = d.join('', { groupInstanceId: 'pod-s', sessionTimeoutMs: 5000 });
    d.ackAll(); // answered once the new member id is persisted
    const again = d.joinResponse(rejoin);
    expect(again).toMatchObject({ errorCode: 0, generationId: 2, leader: b });
    expect(d.sm.stateOf('g')).toBe('Stable');
    const r = d.reply(d.sync(again.memberId, 2, [], { groupInstanceId: 'pod-s' }));
    expect(r?.kind === 'sync' && Buffer.from(r.response.assignment).toString()).toBe('S2');
    expect(d.sm.generationOf('g')).toBe(2);
  });

  test('a static member that is truly gone is removed when its session (restarted at the join) ends, and the group rebalances', () => {
    const d = new Driver();
    const { s, b } = staticMissesJoin(d);
    d.sync(b, 2, [{ memberId: s, assignment: Buffer.from('S2') }, { memberId: b, assignment: Buffer.from('B2') }]);
    d.ackAll();
    // b heartbeats; pod-s stays silent. Its session restarted when the join completed (t=2200).
    for (let t = 2700; t < 7200; t += 500) {
      d.tick(t);
      expect(d.heartbeat(b, 2)).toBe(0);
    }
    d.tick(7199);
    expect(d.sm.membersOf('g')).toEqual([s, b]);
    d.tick(7200);
    expect(d.sm.membersOf('g')).toEqual([b]);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.joinResponse(d.join(b, { protocols: [{ name: 'range', metadata: Buffer.from('sub2') }] }))).toMatchObject({ errorCode: 0, generationId: 3, leader: b });
    // Its instance id is free again: a new incarnation joins as a new member.
    expect(d.heartbeat(s, 2, { groupInstanceId: 'pod-s' })).toBe(E('UNKNOWN_MEMBER_ID'));
  });

  test('when no member rejoined by the deadline the join phase waits another rebalance timeout (Kafka), then completes for whoever joined', () => {
    const d = new Driver();
    const s1 = d.join('', { groupInstanceId: 'pod-1', sessionTimeoutMs: 5000 });
    const s2 = d.join('', { groupInstanceId: 'pod-2', sessionTimeoutMs: 5000 });
    d.tick(100);
    const id1 = d.joinResponse(s1).memberId;
    const id2 = d.joinResponse(s2).memberId;
    d.sync(id1, 1, [{ memberId: id1, assignment: Buffer.from('1') }, { memberId: id2, assignment: Buffer.from('2') }], { groupInstanceId: 'pod-1' });
    d.sync(id2, 1, [], { groupInstanceId: 'pod-2' });
    d.ackAll();
    // A newcomer starts a rebalance (deadline 2200) and leaves again; neither static member rejoins.
    d.now = 200;
    const n = d.joinNew();
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.leave([{ memberId: n.memberId }])).toBe(0);
    d.tick(2200);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    expect(d.sm.generationOf('g')).toBe(1);
    expect(d.sm.membersOf('g')).toEqual([id1, id2]);
    // pod-1 rejoins; the postponed deadline (2200 + 2000) completes the join without pod-2.
    d.now = 3000;
    const r1 = d.join(id1, { groupInstanceId: 'pod-1', sessionTimeoutMs: 5000 });
    d.tick(4199);
    expect(d.reply(r1)).toBeUndefined();
    d.tick(4200);
    expect(d.joinResponse(r1)).toMatchObject({ errorCode: 0, generationId: 2, leader: id1 });
    expect(d.sm.membersOf('g')).toEqual([id1, id2]);
  });
});

describe('OffsetCommit and OffsetFetch (SCENARIOS 13: generation fencing)', () => {
  test('a member of the current generation commits; the offset is visible only once acknowledged', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    const c = d.commit(a, 1, 10);
    expect(d.reply(c)).toBeUndefined();
    expect(d.committed()).toBe(-1);
    d.ackAll();
    expect(d.commitError(c)).toBe(0);
    expect(d.committed()).toBe(10);
  });

  test('a commit of an older generation is ILLEGAL_GENERATION and does not move the offset', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.ackAll();
    const ra = d.join(a);
    const rb = d.join(b);
    expect(d.joinResponse(ra).generationId).toBe(2);
    expect(d.joinResponse(rb).generationId).toBe(2);
    // Generation 2 is CompletingRebalance: commits wait for the assignment.
    expect(d.commitError(d.commit(a, 2, 7))).toBe(E('REBALANCE_IN_PROGRESS'));
    d.sync(a, 2, [{ memberId: b, assignment: Buffer.from('p0') }]);
    d.sync(b, 2);
    d.ackAll();
    const fresh = d.commit(b, 2, 20);
    d.ackAll();
    expect(d.commitError(fresh)).toBe(0);
    // The old owner of p0 (generation 1) tries to commit a smaller offset: fenced.
    expect(d.commitError(d.commit(a, 1, 5))).toBe(E('ILLEGAL_GENERATION'));
    expect(d.commitError(d.commit('stranger', 2, 5))).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.committed()).toBe(20);
  });

  test('in CompletingRebalance only a current member of the new generation is told REBALANCE_IN_PROGRESS; the others are fenced as in Stable (Kafka validateOffsetCommit)', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.join(a);
    d.join(b);
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
    expect(d.sm.generationOf('g')).toBe(2);
    // A member still on generation 1 lost its partitions: ILLEGAL_GENERATION (its client treats
    // them as lost), not REBALANCE_IN_PROGRESS (which would leave it in its old generation).
    expect(d.commitError(d.commit(a, 1, 5))).toBe(E('ILLEGAL_GENERATION'));
    // Neither a removed member nor a standalone consumer is a member of a group with members.
    expect(d.commitError(d.commit('stranger', 2, 5))).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.commitError(d.commit('', -1, 5))).toBe(E('UNKNOWN_MEMBER_ID'));
    expect(d.commitError(d.commit(a, 2, 5))).toBe(E('REBALANCE_IN_PROGRESS'));
    expect(d.appends).toEqual([]);
  });

  test('commits of the current generation are accepted during PreparingRebalance (commit on revoke)', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.join(a);
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    const c = d.commit(b, 1, 30);
    d.ackAll();
    expect(d.commitError(c)).toBe(0);
  });

  test('generation -1 (standalone consumer) commits only to an Empty or new group', () => {
    const d = new Driver();
    const c = d.commit('', -1, 3);
    d.ackAll();
    expect(d.commitError(c)).toBe(0);
    expect(d.sm.stateOf('g')).toBe('Empty');
    expect(d.committed()).toBe(3);
    d.stableTwo();
    expect(d.commitError(d.commit('', -1, 4))).toBe(E('UNKNOWN_MEMBER_ID'));
    const other = new Driver();
    expect(other.commitError(other.commit('m', 3, 1))).toBe(E('ILLEGAL_GENERATION'));
  });

  test('a failed append answers COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR and keeps the old offset', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    const ok = d.commit(a, 1, 10);
    d.ackAll();
    const c1 = d.commit(a, 1, 11);
    d.ackAll('REQUEST_TIMED_OUT');
    const c2 = d.commit(a, 1, 12);
    d.ackAll('NOT_LEADER_OR_FOLLOWER');
    expect(d.commitError(ok)).toBe(0);
    expect(d.commitError(c1)).toBe(E('COORDINATOR_NOT_AVAILABLE'));
    expect(d.commitError(c2)).toBe(E('NOT_COORDINATOR'));
    expect(d.committed()).toBe(10);
  });

  test('acknowledgements out of order never let an older commit overwrite a newer one', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    d.commit(a, 1, 10);
    d.commit(a, 1, 20);
    const [first, second] = d.appends;
    d.appends = [];
    d.sm.onAppended(second!.appendId, null, 0);
    d.sm.onAppended(first!.appendId, null, 0);
    d.sm.takeReady();
    expect(d.committed()).toBe(20);
  });

  test('metadata longer than offset.metadata.max.bytes is refused per partition', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    expect(d.commitError(d.commit(a, 1, 1, { metadata: 'x'.repeat(17) }))).toBe(E('OFFSET_METADATA_TOO_LARGE'));
  });

  test('fetch of all partitions lists every committed offset, sorted', () => {
    const d = new Driver();
    d.commit('', -1, 5, { partition: 2 });
    d.commit('', -1, 6, { partition: 0 });
    d.ackAll();
    const all = d.sm.fetchOffsets({ groupId: 'g', topics: [] });
    expect(all.topics).toEqual([{ name: 't', partitions: [{ partition: 0, committedOffset: 6, committedLeaderEpoch: 1, metadata: '', errorCode: 0 }, { partition: 2, committedOffset: 5, committedLeaderEpoch: 1, metadata: '', errorCode: 0 }] }]);
    expect(d.sm.fetchOffsets({ groupId: 'none', topics: [{ name: 't', partitions: [0] }] }).topics[0]?.partitions[0]?.committedOffset).toBe(-1);
  });
});

describe('offsets expiry, deletion, listing', () => {
  test('offsets of an Empty group expire offsets.retention after it became empty; then the group is gone', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.commit(a, 1, 9);
    d.ackAll();
    d.now = 5000;
    d.leave([{ memberId: a }, { memberId: b }]);
    expect(d.sm.stateOf('g')).toBe('Empty');
    d.sm.expireOffsets(14_000);
    d.sm.takeReady();
    expect(d.committed()).toBe(9); // empty since 5000: expires at 15000
    d.sm.expireOffsets(15_000);
    const ready = d.sm.takeReady();
    expect(ready.appends[0]?.records.map((r) => [decodeGroupRecordKey(r.key).kind, r.value])).toEqual([['offset', null], ['group', null]]);
    expect(d.sm.stateOf('g')).toBeUndefined();
  });

  /** Acknowledges the appends made so far with `error` (null: written), returning those written. */
  const settle = (d: Driver, error: ErrorName | null): GroupAppend[] => {
    const list = d.appends;
    d.appends = [];
    for (const a of list) d.sm.onAppended(a.appendId, error, d.now);
    d.tick(d.now);
    return error === null ? list : [];
  };

  const replayOf = (written: readonly GroupAppend[]): GroupStateMachine => {
    const loaded = new GroupStateMachine(CONFIG, () => 'x');
    for (const a of written) for (const r of a.records) loaded.replay(r.key, r.value);
    loaded.finishLoad(0);
    return loaded;
  };

  test('expiry tombstones that fail to be written are written again, so a reload does not bring the expired offsets back', () => {
    const d = new Driver();
    d.commit('', -1, 9);
    d.commit('', -1, 4, { partition: 1 });
    const written = settle(d, null);
    d.now = 20_000;
    d.sm.expireOffsets(d.now);
    d.tick(d.now);
    expect(d.sm.stateOf('g')).toBeUndefined();
    settle(d, 'NOT_ENOUGH_REPLICAS'); // refused: not in the log
    expect(d.appends).toEqual([]); // not at once: after a backoff
    d.tick(d.now + TOMBSTONE_RETRY_BACKOFF_MS);
    expect(d.appends).toHaveLength(1);
    written.push(...settle(d, null));
    expect(d.appends).toEqual([]);
    const loaded = replayOf(written);
    expect(loaded.stateOf('g')).toBeUndefined();
    expect(loaded.fetchOffsets({ groupId: 'g', topics: [] }).topics).toEqual([]);
  });

  test('failed tombstone writes are repeated with an exponential backoff, capped, that a success ends', () => {
    const d = new Driver();
    d.commit('', -1, 9);
    const written = settle(d, null);
    d.now = 20_000;
    d.sm.expireOffsets(d.now);
    d.tick(d.now);
    expect(d.appends).toHaveLength(1);
    // Every write is refused the moment it is issued; the coordinator ticks every 100 ms.
    const issuedAt: number[] = [];
    const due: (number | null)[] = [];
    for (let t = 20_000; t <= 26_000; t += 100) {
      d.tick(t);
      if (d.appends.length === 0) continue;
      issuedAt.push(t);
      settle(d, 'NOT_ENOUGH_REPLICAS');
      due.push(d.sm.tombstoneRetryDueMs());
    }
    // Waits of 100, 200, 400, 800 ms, then 1000 ms (the cap) each time.
    expect(issuedAt).toEqual([20_000, 20_100, 20_300, 20_700, 21_500, 22_500, 23_500, 24_500, 25_500]);
    expect(due).toEqual([...issuedAt.slice(1), 26_500]);
    expect(TOMBSTONE_RETRY_BACKOFF_MAX_MS).toBe(1000);
    expect(d.sm.nextDeadlineMs()).toBe(26_500);
    d.tick(26_500);
    written.push(...settle(d, null));
    expect(d.sm.tombstoneRetryDueMs()).toBeNull();
    expect(d.sm.nextDeadlineMs()).toBeNull();
    d.tick(40_000);
    expect(d.appends).toEqual([]);
    expect(replayOf(written).fetchOffsets({ groupId: 'g', topics: [] }).topics).toEqual([]);
  });

  test('deleted-topic tombstones that fail are written again, except for a partition committed again meanwhile', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    d.commit(a, 1, 9);
    d.commit(a, 1, 4, { partition: 1 });
    const written = [...d.log];
    d.ackAll();
    d.sm.deleteTopicOffsets(new Set(['t']));
    d.tick(d.now);
    const [tombstones] = d.appends;
    d.appends = [];
    d.sm.onAppended(tombstones!.appendId, 'REQUEST_TIMED_OUT', d.now);
    // The topic is re-created and partition 1 committed before the next tick.
    d.commit(a, 1, 2, { partition: 1 });
    const commit = d.appends;
    d.appends = [];
    d.sm.onAppended(commit[0]!.appendId, null, d.now);
    written.push(...commit);
    expect(d.committed(1)).toBe(2);
    d.tick(d.now + TOMBSTONE_RETRY_BACKOFF_MS);
    expect(d.appends.flatMap((x) => x.records.map((r) => decodeGroupRecordKey(r.key)))).toEqual([{ kind: 'offset', group: 'g', topic: 't', partition: 0 }]);
    written.push(...settle(d, null));
    expect(d.appends).toEqual([]);
    const loaded = replayOf(written);
    expect(loaded.fetchOffsets({ groupId: 'g', topics: [{ name: 't', partitions: [0, 1] }] }).topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([-1, 2]);
    expect(d.committed(0)).toBe(-1);
  });

  test('offsets of a non-empty group never expire', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    d.commit(a, 1, 9);
    d.ackAll();
    d.now = 100_000;
    d.heartbeat(a, 1);
    d.sm.expireOffsets(100_000);
    expect(d.committed()).toBe(9);
  });

  test('delete: only an Empty group, answered after its tombstones are written', () => {
    const d = new Driver();
    d.stableTwo();
    d.sm.deleteGroup(500, 'g');
    d.sm.deleteGroup(501, 'none');
    const r = d.sm.takeReady().replies;
    expect(r.map((x) => x.response.errorCode)).toEqual([E('NON_EMPTY_GROUP'), E('GROUP_ID_NOT_FOUND')]);
    const e = new Driver();
    e.commit('', -1, 1);
    e.ackAll();
    e.sm.deleteGroup(7, 'g');
    expect(e.sm.stateOf('g')).toBe('Dead');
    const ready = e.sm.takeReady();
    expect(ready.replies).toEqual([]);
    // While the delete is in flight the group answers COORDINATOR_NOT_AVAILABLE.
    expect(e.joinResponse(e.join('')).errorCode).toBe(E('COORDINATOR_NOT_AVAILABLE'));
    e.sm.onAppended(ready.appends[0]!.appendId, null, 0);
    expect(e.sm.takeReady().replies).toEqual([{ requestId: 7, kind: 'delete', response: { groupId: 'g', errorCode: 0 } }]);
    expect(e.sm.stateOf('g')).toBeUndefined();
  });

  test('delete tombstones every offset too: after compaction drops tombstones, a reload has neither group nor offsets', () => {
    const d = new Driver();
    d.commit('', -1, 42);
    d.commit('', -1, 7, { partition: 1 });
    d.ackAll();
    d.sm.deleteGroup(9, 'g');
    const ready = d.sm.takeReady();
    const keys = ready.appends[0]!.records.map((r) => [decodeGroupRecordKey(r.key), r.value]);
    expect(keys).toEqual([
      [{ kind: 'offset', group: 'g', topic: 't', partition: 0 }, null],
      [{ kind: 'offset', group: 'g', topic: 't', partition: 1 }, null],
      [{ kind: 'group', group: 'g' }, null],
    ]);
    // Compaction: the latest record per key, then tombstones removed (after delete.retention.ms).
    const latest = new Map<string, Uint8Array | null>();
    for (const ap of [...d.log, ...ready.appends]) for (const r of ap.records) latest.set(Buffer.from(r.key).toString('hex'), r.value);
    const loaded = new GroupStateMachine(CONFIG, () => 'x');
    for (const [k, v] of latest) if (v !== null) loaded.replay(Buffer.from(k, 'hex'), Buffer.from(v));
    loaded.finishLoad(0);
    expect(loaded.fetchOffsets({ groupId: 'g', topics: [{ name: 't', partitions: [0, 1] }] }).topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([-1, -1]);
  });

  test('list and describe show state, protocol, members and (Stable) assignments', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    expect(d.sm.listGroups([])).toEqual([{ groupId: 'g', protocolType: 'consumer', groupState: 'Stable' }]);
    expect(d.sm.listGroups(['empty'])).toEqual([]);
    const desc = d.sm.describeGroup('g');
    expect(desc).toMatchObject({ groupState: 'Stable', protocolData: 'range', generationId: 1 });
    expect(Buffer.from(desc.members.find((m) => m.memberId === a)!.memberAssignment).toString()).toBe('A');
    expect(d.sm.describeGroup('none').groupState).toBe('Dead');
  });
});

describe('timers', () => {
  test('nextDeadlineMs names the next session, initial-delay, rebalance or sync deadline', () => {
    const d = new Driver();
    expect(d.sm.nextDeadlineMs()).toBeNull();
    const a = d.joinNew();
    expect(d.sm.nextDeadlineMs()).toBe(100); // initial delay (a is parked: its session does not count)
    d.tick(100);
    expect(d.joinResponse(a.request).generationId).toBe(1);
    expect(d.sm.nextDeadlineMs()).toBe(1100); // a's session (1000 ms from the join's completion)
    d.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.alloc(0) }]);
    d.ackAll();
    d.now = 400;
    d.heartbeat(a.memberId, 1);
    expect(d.sm.nextDeadlineMs()).toBe(1400);
    // Ticking at the deadline, not before, is what changes the state.
    d.tick(1399);
    expect(d.sm.stateOf('g')).toBe('Stable');
    d.tick(1400);
    expect(d.sm.stateOf('g')).toBe('Empty');
  });
});

describe('loading and shutdown', () => {
  test('a group with neither metadata nor offsets left in the log is not loaded (Kafka loads only groups that have either)', () => {
    const d = new Driver();
    d.commit('', -1, 5);
    d.ackAll();
    const id = d.deleteOffsets([{ name: 't', partitions: [0] }]);
    d.ackAll();
    expect(d.deleteOffsetsResponse(id)?.errorCode).toBe(0);
    // The next expiry pass would forget the group; a failover before it must not list it either.
    expect(reload(d).stateOf('g')).toBeUndefined();
    expect(reload(d).listGroups([])).toEqual([]);
  });

  test('a group tombstone removes the group\'s metadata, not offsets with no tombstone of their own (Kafka): a load is the same before and after compaction', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.commit(a, 1, 42);
    d.ackAll();
    d.leave([{ memberId: a }, { memberId: b }]);
    d.ackAll();
    // The log as a failed offset tombstone leaves it: the group's tombstone, not the offset's.
    const groupTombstone = { key: encodeGroupRecordKey({ kind: 'group', group: 'g' }), value: null };
    const records = [...d.log.flatMap((x) => x.records), groupTombstone];
    const load = (rs: readonly { key: Buffer; value: Buffer | null }[]): GroupStateMachine => {
      const loaded = new GroupStateMachine(CONFIG, () => 'x');
      for (const r of rs) loaded.replay(r.key, r.value);
      loaded.finishLoad(0);
      loaded.checkInvariants();
      return loaded;
    };
    const latest = new Map<string, { key: Buffer; value: Buffer | null }>();
    for (const r of records) {
      latest.delete(r.key.toString('hex'));
      latest.set(r.key.toString('hex'), r);
    }
    const compacted = [...latest.values()].filter((r) => r.value !== null);
    for (const loaded of [load(records), load(compacted)]) {
      expect(reloadedOffset(loaded)).toBe(42);
      expect(loaded.stateOf('g')).toBe('Empty');
    }
    // The metadata did go: a fresh Empty group (generation 0) holds the offsets.
    expect(load(records).generationOf('g')).toBe(0);
  });

  test('a state machine rebuilt from the acknowledged records has the same groups, generation, assignments and offsets', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    d.commit(a, 1, 42);
    d.commit(b, 1, 7, { partition: 1 });
    d.ackAll();
    const loaded = new GroupStateMachine(CONFIG, () => 'x');
    for (const ap of d.log) for (const r of ap.records) loaded.replay(r.key, r.value);
    loaded.finishLoad(0);
    loaded.checkInvariants();
    expect(loaded.stateOf('g')).toBe('Stable');
    expect(loaded.generationOf('g')).toBe(1);
    expect(loaded.leaderOf('g')).toBe(a);
    expect(loaded.fetchOffsets({ groupId: 'g', topics: [{ name: 't', partitions: [0, 1] }] }).topics[0]?.partitions.map((p) => p.committedOffset)).toEqual([42, 7]);
    // The reloaded generation still fences: a stale generation cannot commit; the current one can.
    const ready = (): ReturnType<GroupStateMachine['takeReady']> => loaded.takeReady();
    loaded.commit(1, { groupId: 'g', generationId: 0, memberId: a, topics: [{ name: 't', partitions: [{ partition: 0, committedOffset: 1, committedLeaderEpoch: -1, metadata: '' }] }] }, 0);
    const r = ready().replies[0];
    expect(r?.kind === 'commit' && r.response.topics[0]?.partitions[0]?.errorCode).toBe(E('ILLEGAL_GENERATION'));
    loaded.sync(2, { groupId: 'g', generationId: 1, memberId: b, protocolType: '', protocolName: '', assignments: [] }, 0);
    const s = ready().replies[0];
    expect(s?.kind === 'sync' && Buffer.from(s.response.assignment).toString()).toBe('B');
  });

  test('shutdown answers parked joins, syncs and in-flight commits with NOT_COORDINATOR', () => {
    const d = new Driver();
    const { a, b } = d.stableTwo();
    const c = d.commit(b, 1, 3);
    const ra = d.join(a);
    d.sm.shutdown();
    const replies = d.sm.takeReady().replies;
    expect(replies.find((r) => r.requestId === ra)?.response.errorCode).toBe(E('NOT_COORDINATOR'));
    const cr = replies.find((r) => r.requestId === c);
    expect(cr?.kind === 'commit' && cr.response.topics[0]?.partitions[0]?.errorCode).toBe(E('NOT_COORDINATOR'));
    // Late acknowledgements after shutdown are ignored.
    for (const ap of d.appends) d.sm.onAppended(ap.appendId, null, 0);
    expect(d.sm.takeReady().replies).toEqual([]);
  });
});

/** What a coordinator reloading the partition would hold: every appended record replayed in log order. */
function reload(d: Driver): GroupStateMachine {
  const loaded = new GroupStateMachine(CONFIG, () => 'x');
  for (const ap of d.log) for (const r of ap.records) loaded.replay(r.key, r.value);
  loaded.finishLoad(d.now);
  loaded.checkInvariants();
  return loaded;
}

/** The same after compaction: the latest record of each key, tombstones dropped (after delete.retention.ms). */
function reloadCompacted(d: Driver): GroupStateMachine {
  const latest = new Map<string, Uint8Array | null>();
  for (const ap of d.log) for (const r of ap.records) latest.set(Buffer.from(r.key).toString('hex'), r.value);
  const loaded = new GroupStateMachine(CONFIG, () => 'x');
  for (const [k, v] of latest) if (v !== null) loaded.replay(Buffer.from(k, 'hex'), Buffer.from(v));
  loaded.finishLoad(d.now);
  loaded.checkInvariants();
  return loaded;
}

const reloadedOffset = (loaded: GroupStateMachine, partition = 0): number | undefined =>
  loaded.fetchOffsets({ groupId: 'g', topics: [{ name: 't', partitions: [partition] }] }).topics[0]?.partitions[0]?.committedOffset;

describe('what a reload sees agrees with what was answered (no acknowledged offset lost after a failover)', () => {
  test('offsets expiry does not tombstone a partition whose new commit is in flight (Kafka skips pendingOffsetCommits)', () => {
    const d = new Driver();
    d.commit('', -1, 3);
    d.ackAll();
    // Past the retention of the first commit, a second commit of the same partition is in flight
    // when the expiry check runs: its tombstone would land after the commit in the log.
    d.now = CONFIG.offsetsRetentionMs + 1;
    const c = d.commit('', -1, 5);
    d.sm.expireOffsets(d.now);
    d.tick(d.now);
    d.ackAll();
    expect(d.commitError(c)).toBe(0);
    expect(d.committed()).toBe(5);
    expect(reloadedOffset(reload(d))).toBe(5);
  });

  test('a failed DeleteGroups write leaves the group and its offsets as they were', () => {
    const d = new Driver();
    d.commit('', -1, 1);
    d.ackAll();
    const c = d.commit('', -1, 4, { partition: 1 });
    d.sm.deleteGroup(900, 'g');
    d.tick(d.now);
    const [commitAppend, deleteAppend] = d.appends;
    d.appends = [];
    // The commit issued before the delete is acknowledged; the tombstones are not.
    d.sm.onAppended(commitAppend!.appendId, null, d.now);
    d.sm.onAppended(deleteAppend!.appendId, 'NOT_ENOUGH_REPLICAS', d.now);
    d.tick(d.now);
    expect(d.errorOf(c)).toBe(0);
    expect(d.errorOf(900)).toBe(E('COORDINATOR_NOT_AVAILABLE'));
    // The tombstones are not in the log as far as anyone knows: the offsets still stand here, as
    // they would after a reload, the one acknowledged during the delete included.
    expect(d.sm.stateOf('g')).toBe('Empty');
    expect(d.committed()).toBe(1);
    expect(d.committed(1)).toBe(4);
  });

  test('DeleteGroups while a first commit of a partition is in flight tombstones that partition too (no resurrection at reload)', () => {
    const d = new Driver();
    d.commit('', -1, 1);
    d.ackAll();
    d.commit('', -1, 2, { partition: 1 });
    d.sm.deleteGroup(901, 'g');
    d.tick(d.now);
    d.ackAll();
    expect(d.errorOf(901)).toBe(0);
    expect(d.sm.stateOf('g')).toBeUndefined();
    for (const loaded of [reload(d), reloadCompacted(d)]) {
      expect(loaded.stateOf('g')).toBeUndefined();
      expect(reloadedOffset(loaded, 1)).toBe(-1);
    }
  });

  test('a restarted static member is answered only once its new member id is persisted; a failed write keeps the old id (Kafka reverts)', () => {
    const d = new Driver();
    const a = d.joinNew();
    const s = d.join('', { groupInstanceId: 'pod-b' });
    d.tick(100);
    const sId = d.joinResponse(s).memberId;
    d.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }, { memberId: sId, assignment: Buffer.from('S') }]);
    d.sync(sId, 1, [], { groupInstanceId: 'pod-b' });
    d.ackAll();
    expect(d.sm.stateOf('g')).toBe('Stable');

    // Failed write: the join gets the mapped error and the old incarnation stays the member.
    const failed = d.join('', { groupInstanceId: 'pod-b' });
    expect(d.reply(failed)).toBeUndefined();
    d.ackAll('NOT_ENOUGH_REPLICAS');
    expect(d.joinResponse(failed).errorCode).toBe(E('COORDINATOR_NOT_AVAILABLE'));
    expect(d.sm.membersOf('g')).toEqual(expect.arrayContaining([a.memberId, sId]));
    expect(d.heartbeat(sId, 1, { groupInstanceId: 'pod-b' })).toBe(0);

    // Acknowledged write: answered afterwards, and a reload knows the new id (not fenced after failover).
    const ok = d.join('', { groupInstanceId: 'pod-b' });
    expect(d.reply(ok)).toBeUndefined();
    d.ackAll();
    const again = d.joinResponse(ok);
    expect(again).toMatchObject({ errorCode: 0, generationId: 1 });
    expect(reload(d).membersOf('g')).toContain(again.memberId);
  });

  test('shutdown answers a static member replacement in flight with NOT_COORDINATOR', () => {
    const d = new Driver();
    d.join('', { groupInstanceId: 'pod-b' });
    d.tick(100);
    d.sync('m1', 1, [], { groupInstanceId: 'pod-b' });
    d.ackAll();
    const j = d.join('', { groupInstanceId: 'pod-b' });
    d.sm.shutdown();
    expect(d.sm.takeReady().replies.find((r) => r.requestId === j)?.response.errorCode).toBe(E('NOT_COORDINATOR'));
  });
});

describe('offsets of deleted topics (Kafka: onPartitionsDeleted)', () => {
  test('are tombstoned and no longer served, commits in flight included; an Empty group left without offsets is forgotten', () => {
    const d = new Driver();
    const { a } = d.stableTwo();
    d.commit(a, 1, 9);
    d.ackAll();
    const inFlight = d.commit(a, 1, 11, { partition: 1 });
    d.sm.deleteTopicOffsets(new Set(['t']));
    d.tick(d.now);
    d.ackAll();
    expect(d.commitError(inFlight)).toBe(0);
    expect(d.committed(0)).toBe(-1);
    expect(d.committed(1)).toBe(-1);
    for (const loaded of [reload(d), reloadCompacted(d)]) {
      expect(reloadedOffset(loaded, 0)).toBe(-1);
      expect(reloadedOffset(loaded, 1)).toBe(-1);
    }
    // A standalone group holding only offsets of the deleted topic goes with them.
    const e = new Driver();
    e.commit('', -1, 3);
    e.ackAll();
    e.sm.deleteTopicOffsets(new Set(['t']));
    e.tick(e.now);
    e.ackAll();
    expect(e.sm.stateOf('g')).toBeUndefined();
    expect(reloadCompacted(e).stateOf('g')).toBeUndefined();
  });

  test('a group being deleted loses them too: should its deletion fail, the restored group holds no offset of the deleted topic', () => {
    const d = new Driver();
    d.commit('', -1, 5);
    d.commit('', -1, 6, { topic: 'u' });
    d.ackAll();
    d.sm.deleteGroup(900, 'g');
    d.tick(d.now);
    d.sm.deleteTopicOffsets(new Set(['t']));
    d.tick(d.now);
    const [deleteAppend, ...rest] = d.appends;
    d.appends = rest;
    // The group's tombstones never make it to the log (refused: not enough replicas); the rest does.
    d.sm.onAppended(deleteAppend!.appendId, 'NOT_ENOUGH_REPLICAS', d.now);
    d.tick(d.now);
    d.ackAll();
    expect(d.errorOf(900)).toBe(E('COORDINATOR_NOT_AVAILABLE'));
    expect(d.sm.stateOf('g')).toBe('Empty');
    expect(d.committed(0, 'u')).toBe(6);
    expect(d.committed(0, 't')).toBe(-1);
    // A new coordinator agrees (the log holds the commits and whatever came after the failed write).
    const loaded = new GroupStateMachine(CONFIG, () => 'x');
    for (const a of d.log) if (a !== deleteAppend) for (const r of a.records) loaded.replay(r.key, r.value);
    loaded.finishLoad(d.now);
    expect(loaded.fetchOffsets({ groupId: 'g', topics: [] }).topics.map((t) => t.name)).toEqual(['u']);
  });
});

/** One consumer subscribed to `topics`, joined and synced: a Stable generation 1. */
function stableConsumer(d: Driver, topics: string[], protocolType = 'consumer'): string {
  const a = d.joinNew({ protocolType, protocols: [{ name: 'range', metadata: consumerSubscription(...topics) }] });
  d.tick(d.now + CONFIG.initialRebalanceDelayMs);
  d.sync(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.alloc(0) }]);
  d.ackAll();
  expect(d.sm.stateOf('g')).toBe('Stable');
  return a.memberId;
}

const partitionErrors = (r: OffsetDeleteResponse | undefined): [string, number, number][] => (r?.topics ?? []).flatMap((t) => t.partitions.map((p): [string, number, number] => [t.name, p.partition, p.errorCode]));

describe('OffsetDelete (KIP-496: Kafka\'s handleDeleteOffsets)', () => {
  test('an Empty group: the named partitions\' offsets get tombstones and go once acknowledged; a partition without one answers NONE', () => {
    const d = new Driver();
    d.commit('', -1, 5);
    d.commit('', -1, 6, { partition: 1 });
    d.commit('', -1, 7, { topic: 'u' });
    d.ackAll();
    const id = d.deleteOffsets([{ name: 't', partitions: [0, 1, 9] }]);
    // Only the partitions that have an offset are written; nothing changes before the ack.
    expect(d.appends).toHaveLength(1);
    expect(d.appends[0]!.records.map((r) => [decodeGroupRecordKey(r.key), r.value])).toEqual([
      [{ kind: 'offset', group: 'g', topic: 't', partition: 0 }, null],
      [{ kind: 'offset', group: 'g', topic: 't', partition: 1 }, null],
    ]);
    expect(d.deleteOffsetsResponse(id)).toBeUndefined();
    expect([d.committed(0), d.committed(1)]).toEqual([5, 6]);
    d.ackAll();
    expect(d.deleteOffsetsResponse(id)).toEqual({ errorCode: 0, topics: [{ name: 't', partitions: [{ partition: 0, errorCode: 0 }, { partition: 1, errorCode: 0 }, { partition: 9, errorCode: 0 }] }] });
    expect([d.committed(0), d.committed(1), d.committed(0, 'u')]).toEqual([-1, -1, 7]);
    for (const loaded of [reload(d), reloadCompacted(d)]) {
      expect([reloadedOffset(loaded, 0), reloadedOffset(loaded, 1)]).toEqual([-1, -1]);
      expect(loaded.fetchOffsets({ groupId: 'g', topics: [{ name: 'u', partitions: [0] }] }).topics[0]?.partitions[0]?.committedOffset).toBe(7);
    }
    // Nothing committed among the named partitions: answered at once, nothing written.
    const none = d.deleteOffsets([{ name: 't', partitions: [0] }, { name: 'v', partitions: [3] }]);
    expect(d.appends).toEqual([]);
    expect(partitionErrors(d.deleteOffsetsResponse(none))).toEqual([['t', 0, 0], ['v', 3, 0]]);
  });

  test('a consumer group with members: GROUP_SUBSCRIBED_TO_TOPIC for the topics they subscribe to, the others are deleted', () => {
    const d = new Driver();
    const a = stableConsumer(d, ['t']);
    d.commit(a, 1, 5);
    d.commit(a, 1, 8, { topic: 'u' });
    d.ackAll();
    const id = d.deleteOffsets([{ name: 't', partitions: [0] }, { name: 'u', partitions: [0, 1] }]);
    expect(d.appends[0]!.records.map((r) => decodeGroupRecordKey(r.key))).toEqual([{ kind: 'offset', group: 'g', topic: 'u', partition: 0 }]);
    d.ackAll();
    expect(d.deleteOffsetsResponse(id)).toEqual({
      errorCode: 0,
      topics: [
        { name: 't', partitions: [{ partition: 0, errorCode: E('GROUP_SUBSCRIBED_TO_TOPIC') }] },
        { name: 'u', partitions: [{ partition: 0, errorCode: 0 }, { partition: 1, errorCode: 0 }] },
      ],
    });
    expect([d.committed(0), d.committed(0, 'u')]).toEqual([5, -1]);
    expect(d.sm.stateOf('g')).toBe('Stable');
    // A coordinator that loads the group from the log protects the same topic.
    const loaded = reload(d);
    loaded.deleteOffsets(1, { groupId: 'g', topics: [{ name: 't', partitions: [0] }] });
    const r = loaded.takeReady().replies[0];
    expect(partitionErrors(r?.kind === 'deleteOffsets' ? r.response : undefined)).toEqual([['t', 0, E('GROUP_SUBSCRIBED_TO_TOPIC')]]);
    // Once the member has left (Empty), the topic's offsets can go too.
    d.leave([{ memberId: a }]);
    const later = d.deleteOffsets([{ name: 't', partitions: [0] }]);
    d.ackAll();
    expect(partitionErrors(d.deleteOffsetsResponse(later))).toEqual([['t', 0, 0]]);
    expect(d.committed(0)).toBe(-1);
  });

  test('while rebalancing, the generation\'s topics stay protected until the next generation starts, and a rejoin\'s new ones are at once', () => {
    const d = new Driver();
    const sub = (...topics: string[]): Partial<JoinInput> => ({ protocols: [{ name: 'range', metadata: consumerSubscription(...topics) }] });
    const a = d.joinNew(sub('t')).memberId;
    const b = d.joinNew(sub('w')).memberId;
    d.tick(d.now + CONFIG.initialRebalanceDelayMs);
    d.sync(a, 1, [{ memberId: a, assignment: Buffer.alloc(0) }, { memberId: b, assignment: Buffer.alloc(0) }]);
    d.sync(b, 1);
    d.ackAll();
    for (const topic of ['t', 'u', 'v', 'w']) d.commit(a, 1, 5, { topic });
    d.ackAll();
    const check = (): [string, number, number][] => {
      const id = d.deleteOffsets(['t', 'u', 'v', 'w'].map((name) => ({ name, partitions: [0] })));
      d.ackAll();
      return partitionErrors(d.deleteOffsetsResponse(id));
    };
    const SUBSCRIBED = E('GROUP_SUBSCRIBED_TO_TOPIC');
    // a rejoins subscribed to u instead of t; b has not rejoined yet.
    d.join(a, sub('u'));
    expect(d.sm.stateOf('g')).toBe('PreparingRebalance');
    // t: generation 1's (a may still consume it until it is reassigned); u: a's rejoin; w: b's.
    expect(check()).toEqual([['t', 0, SUBSCRIBED], ['u', 0, SUBSCRIBED], ['v', 0, 0], ['w', 0, SUBSCRIBED]]);
    d.join(b, sub('w'));
    expect(d.sm.stateOf('g')).toBe('CompletingRebalance');
    // Generation 2 subscribes to u and w: t is free now.
    expect(check()).toEqual([['t', 0, 0], ['u', 0, SUBSCRIBED], ['v', 0, 0], ['w', 0, SUBSCRIBED]]);
    expect(['t', 'u', 'v', 'w'].map((topic) => d.committed(0, topic))).toEqual([-1, 5, -1, 5]);
  });

  test('a subscription that does not parse protects every topic (Kafka assumes subscribed); another protocol type with members is NON_EMPTY_GROUP', () => {
    const d = new Driver();
    const { a } = d.stableTwo(); // metadata 'sub': not ConsumerProtocol bytes
    d.commit(a, 1, 5);
    d.ackAll();
    const id = d.deleteOffsets([{ name: 't', partitions: [0] }, { name: 'elsewhere', partitions: [0] }]);
    expect(d.appends).toEqual([]);
    expect(partitionErrors(d.deleteOffsetsResponse(id))).toEqual([['t', 0, E('GROUP_SUBSCRIBED_TO_TOPIC')], ['elsewhere', 0, E('GROUP_SUBSCRIBED_TO_TOPIC')]]);
    expect(d.committed(0)).toBe(5);

    const c = new Driver();
    stableConsumer(c, ['t'], 'connect');
    expect(c.deleteOffsetsResponse(c.deleteOffsets([{ name: 'u', partitions: [0] }]))).toEqual({ errorCode: E('NON_EMPTY_GROUP'), topics: [] });
  });

  test('unknown, Dead (being deleted) and invalid groups are group-level errors', () => {
    const d = new Driver();
    expect(d.deleteOffsetsResponse(d.deleteOffsets([{ name: 't', partitions: [0] }], 'none'))).toEqual({ errorCode: E('GROUP_ID_NOT_FOUND'), topics: [] });
    expect(d.deleteOffsetsResponse(d.deleteOffsets([{ name: 't', partitions: [0] }], ''))).toEqual({ errorCode: E('INVALID_GROUP_ID'), topics: [] });
    d.commit('', -1, 5);
    d.ackAll();
    d.sm.deleteGroup(900, 'g');
    expect(d.sm.stateOf('g')).toBe('Dead');
    expect(d.deleteOffsetsResponse(d.deleteOffsets([{ name: 't', partitions: [0] }]))).toEqual({ errorCode: E('GROUP_ID_NOT_FOUND'), topics: [] });
  });

  test('a failed write changes nothing: the offsets stand (as a reload has them) and the answer is the mapped group-level error', () => {
    const d = new Driver();
    d.commit('', -1, 5);
    d.ackAll();
    const id = d.deleteOffsets([{ name: 't', partitions: [0] }]);
    d.ackAll('NOT_ENOUGH_REPLICAS');
    expect(d.deleteOffsetsResponse(id)).toEqual({ errorCode: E('COORDINATOR_NOT_AVAILABLE'), topics: [] });
    expect(d.committed(0)).toBe(5);
    const lost = d.deleteOffsets([{ name: 't', partitions: [0] }]);
    d.ackAll('NOT_LEADER_OR_FOLLOWER');
    expect(d.deleteOffsetsResponse(lost)).toEqual({ errorCode: E('NOT_COORDINATOR'), topics: [] });
    expect(d.committed(0)).toBe(5);
  });

  test('commits in flight: one before the tombstones is tombstoned and never applied, one after them stands (reloads agree)', () => {
    const d = new Driver();
    d.commit('', -1, 1);
    d.ackAll();
    const before = d.commit('', -1, 2);
    const first = d.commit('', -1, 3, { partition: 1 }); // a first commit of the partition, still in flight
    const id = d.deleteOffsets([{ name: 't', partitions: [0, 1] }]);
    const after = d.commit('', -1, 4, { partition: 1 });
    expect(d.appends[2]!.records.map((r) => decodeGroupRecordKey(r.key))).toEqual([
      { kind: 'offset', group: 'g', topic: 't', partition: 0 },
      { kind: 'offset', group: 'g', topic: 't', partition: 1 },
    ]);
    // Acknowledged out of order: the later commit first, then the tombstones, the earlier commits last.
    const [c1, c2, del, c3] = d.appends;
    d.appends = [];
    for (const a of [c3!, del!, c1!, c2!]) d.sm.onAppended(a.appendId, null, d.now);
    d.tick(d.now);
    expect([d.commitError(before), d.commitError(first), d.commitError(after)]).toEqual([0, 0, 0]);
    expect(partitionErrors(d.deleteOffsetsResponse(id))).toEqual([['t', 0, 0], ['t', 1, 0]]);
    expect([d.committed(0), d.committed(1)]).toEqual([-1, 4]);
    for (const loaded of [reload(d), reloadCompacted(d)]) expect([reloadedOffset(loaded, 0), reloadedOffset(loaded, 1)]).toEqual([-1, 4]);
  });

  test('a DeleteGroups after it: the deleted offsets stay deleted should the group deletion fail', () => {
    const d = new Driver();
    d.commit('', -1, 1);
    d.commit('', -1, 2, { partition: 1 });
    d.ackAll();
    const id = d.deleteOffsets([{ name: 't', partitions: [0] }]);
    d.sm.deleteGroup(900, 'g');
    d.tick(d.now);
    const [del, drop] = d.appends;
    d.appends = [];
    d.sm.onAppended(del!.appendId, null, d.now);
    d.sm.onAppended(drop!.appendId, 'NOT_ENOUGH_REPLICAS', d.now);
    d.tick(d.now);
    expect(partitionErrors(d.deleteOffsetsResponse(id))).toEqual([['t', 0, 0]]);
    expect(d.errorOf(900)).toBe(E('COORDINATOR_NOT_AVAILABLE'));
    expect(d.sm.stateOf('g')).toBe('Empty');
    expect([d.committed(0), d.committed(1)]).toEqual([-1, 2]);
  });

  test('an Empty group left without offsets is forgotten by the next expiry pass; shutdown answers a deletion in flight NOT_COORDINATOR', () => {
    const d = new Driver();
    d.commit('', -1, 1);
    d.ackAll();
    d.deleteOffsets([{ name: 't', partitions: [0] }]);
    // Not while the tombstones are in flight.
    d.sm.expireOffsets(d.now);
    expect(d.sm.stateOf('g')).toBe('Empty');
    d.ackAll();
    d.sm.expireOffsets(d.now);
    d.tick(d.now);
    expect(d.sm.stateOf('g')).toBeUndefined();
    expect(d.appends[0]!.records.map((r) => [decodeGroupRecordKey(r.key).kind, r.value])).toEqual([['group', null]]);

    const e = new Driver();
    e.commit('', -1, 1);
    e.ackAll();
    const id = e.deleteOffsets([{ name: 't', partitions: [0] }]);
    e.sm.shutdown();
    expect(e.sm.takeReady().replies).toEqual([{ requestId: id, kind: 'deleteOffsets', response: { errorCode: E('NOT_COORDINATOR'), topics: [] } }]);
  });
});
