/**
 * Three quorum controllers in one process over the in-memory Raft network, with fake brokers
 * that register, heartbeat (reporting the metadata offset they applied from the stream), stop
 * heartbeating, come back and shut down. Checks, on every metadata batch any controller applies:
 * a partition's leader is in its ISR and on an active broker; leader and partition epochs never
 * go back; no two leaders for one (partition, leader epoch). Also: only the active controller
 * writes (others answer NOT_CONTROLLER naming it), and after the active controller is cut off a
 * new one takes over with every committed change intact.
 */
import { ErrorCode, StrandError, encodeMetadataRecordBatch, type CreatableTopic } from '@strand/protocol';
import { MemoryNetwork, MemoryStorage, MessageType, Role, type RaftNode } from '@strand/raft';
import { CONTROLLER_CONFIG, MetadataImage, NotControllerError, QuorumController, type HeartbeatResult } from '../src';

const config = CONTROLLER_CONFIG.parse({
  'broker.session.timeout.ms': '400',
  'controller.fence.check.interval.ms': '20',
  'auto.leader.rebalance.enable': 'false',
});

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

class Cluster {
  readonly net = new MemoryNetwork();
  readonly controllers: QuorumController[] = [];
  readonly violations: string[] = [];
  private readonly leaderOf = new Map<string, number>();
  private readonly lastEpochs = new Map<string, [number, number]>();

  constructor(n: number, options: { requestTimeoutMs?: number; electionTicks?: number; maxRecordBatchBytes?: number } = {}, perNode: (id: number) => { electionTicks?: number } = () => ({})) {
    const voters = new Map(Array.from({ length: n }, (_, i) => [i + 1, { host: '127.0.0.1', port: 9190 + i }]));
    let topicSeq = 0;
    for (let i = 1; i <= n; i++) {
      this.controllers.push(
        new QuorumController({
          nodeId: i,
          voters,
          storage: new MemoryStorage(),
          transport: this.net.transport(String(i)),
          config,
          tickMs: 10,
          electionTicks: 10,
          seed: i,
          newTopicId: () => (++topicSeq).toString(16).padStart(32, '0') + '',
          clusterId: 'sim-cluster',
          ...options,
          ...perNode(i),
        }),
      );
    }
  }

  async start(): Promise<void> {
    for (const c of this.controllers) {
      await c.start();
      let image = MetadataImage.EMPTY;
      c.subscribe(-1, (d) => {
        image = d.snapshot ? MetadataImage.fromRecords(d.offset, d.records) : image.apply(d.offset, d.records);
        this.check(image);
      });
    }
  }

  private check(image: MetadataImage): void {
    for (const [t, p] of image.allPartitions()) {
      const key = `${t.name}-${p.partition}`;
      if (p.leader !== -1) {
        if (!p.isr.includes(p.leader)) this.violations.push(`${key}@${image.offset}: leader ${p.leader} not in ISR ${p.isr}`);
        if (!image.isActiveBroker(p.leader)) this.violations.push(`${key}@${image.offset}: leader ${p.leader} is not an active broker`);
        const seen = this.leaderOf.get(`${key}/${p.leaderEpoch}`);
        if (seen !== undefined && seen !== p.leader) this.violations.push(`${key}: two leaders (${seen}, ${p.leader}) in epoch ${p.leaderEpoch}`);
        this.leaderOf.set(`${key}/${p.leaderEpoch}`, p.leader);
      }
      if (p.isr.length === 0) this.violations.push(`${key}@${image.offset}: empty ISR`);
    }
  }

  /** Records epoch monotonicity per controller-independent partition key (images arrive in order per controller). */
  checkMonotonic(image: MetadataImage, who: number): void {
    for (const [t, p] of image.allPartitions()) {
      const key = `${who}/${t.id}-${p.partition}`;
      const last = this.lastEpochs.get(key);
      if (last && (p.leaderEpoch < last[0] || p.partitionEpoch < last[1])) this.violations.push(`${key}: epochs went back`);
      this.lastEpochs.set(key, [p.leaderEpoch, p.partitionEpoch]);
    }
  }

  /** Waits for a controller that answers a linearizable read as the active one. */
  activeController(): Promise<QuorumController> {
    return until('an active controller', async () => {
      try {
        return await this.call(async (c) => (await c.read(() => c)) as QuorumController);
      } catch {
        return undefined;
      }
    });
  }

  active(): QuorumController | undefined {
    return this.controllers.find((c) => c.isActive);
  }

  /** Runs `f` on whichever controller accepts it (following NOT_CONTROLLER answers). */
  async call<T>(f: (c: QuorumController) => Promise<T>): Promise<T> {
    return until('a controller to accept the call', async () => {
      for (const c of this.controllers) {
        try {
          return await f(c);
        } catch (e: unknown) {
          if (!(e instanceof NotControllerError) && !(e instanceof Error && /REQUEST_TIMED_OUT|timed out|stopped|not running/i.test(e.message))) throw e;
        }
      }
      return undefined;
    });
  }

  async stop(): Promise<void> {
    for (const c of this.controllers) await c.stop();
  }
}

class FakeBroker {
  epoch = -1;
  alive = true;
  shutdownRequested = false;
  lastResult: HeartbeatResult | undefined;
  /** Heartbeats answered. */
  beats = 0;
  private readonly inFlight = new Set<QuorumController>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    private readonly cluster: Cluster,
  ) {}

  async register(): Promise<void> {
    const res = await this.cluster.call((c) => c.registerBroker({ brokerId: this.id, incarnationId: `inc-${this.id}-${Date.now()}`, endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + this.id }], clusterId: '', previousShutdownClean: true }));
    expect(res.errorCode).toBe(0);
    this.epoch = res.brokerEpoch;
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), 50);
  }

  private async beat(): Promise<void> {
    if (!this.alive) return;
    const offset = Math.max(...this.cluster.controllers.map((c) => c.metadata.offset));
    // Each controller that believes it is active is asked on its own: one that lost leadership
    // mid-call (or is cut off) fails the call without holding up the others.
    await Promise.all(
      this.cluster.controllers
        .filter((c) => c.isActive && !this.inFlight.has(c))
        .map((c) => {
          this.inFlight.add(c);
          return c.brokerHeartbeat({ brokerId: this.id, brokerEpoch: this.epoch, currentMetadataOffset: offset, wantShutDown: this.shutdownRequested }).then(
            (r) => {
              this.lastResult = r;
              this.beats++;
            },
            () => undefined,
          ).finally(() => this.inFlight.delete(c));
        }),
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

describe('quorum controller (in-process cluster)', () => {
  let cluster: Cluster;
  const brokers: FakeBroker[] = [];

  afterEach(async () => {
    for (const b of brokers.splice(0)) b.stop();
    await cluster.stop();
  });

  it('a change that timed out while this controller stayed active is settled before the next decision', async () => {
    // 0.5-1 s election timeouts: the test needs this controller to stay active throughout, which
    // 100-200 ms ones would not survive a stall of the test process on a loaded machine.
    cluster = new Cluster(3, { requestTimeoutMs: 300, electionTicks: 50 });
    await cluster.start();
    const active = await cluster.activeController();
    for (let id = 1; id <= 3; id++) brokers.push(new FakeBroker(100 + id, cluster));
    for (const b of brokers) await b.register();
    for (const b of brokers) b.start();
    await until('all brokers unfenced', () => (brokers.every((b) => active.metadata.brokers.get(b.id)?.fenced === false) ? true : undefined));
    // Appends carrying entries are lost; heartbeats still pass, so the leader keeps its quorum
    // and its term while the CreateTopics entry neither commits nor goes away.
    cluster.net.drop = (m) => m.type === MessageType.App && m.entries.length > 0;
    const create = (): ReturnType<QuorumController['createTopics']> => active.createTopics([{ name: 't', numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] }], false);
    await expect(create()).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    expect(active.isActive).toBe(true);
    cluster.net.drop = undefined;
    // The client's retry: decided only once the first entry is applied, so it sees the topic
    // instead of writing a second record for it (which every controller would fail to apply).
    expect((await create())[0]!.errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS);
    const offset = active.metadata.offset;
    await until('every controller applied the topic', () => (cluster.controllers.every((c) => c.metadata.offset >= offset && c.metadata.topicByName('t') !== undefined) ? true : undefined));
    expect((await cluster.call((c) => c.createTopics([{ name: 'u', numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] }], false)))[0]!.errorCode).toBe(0);
  });

  it('keeps leaders in live ISRs through fencing, returns and controlled shutdown', async () => {
    cluster = new Cluster(3);
    await cluster.start();
    const active = await cluster.activeController();
    // Non-active controllers refuse writes and name the active one.
    const other = cluster.controllers.find((c) => c !== active)!;
    await expect(other.createTopics([], false)).rejects.toMatchObject({ errorName: 'NOT_CONTROLLER', activeControllerId: active.nodeId });

    for (let id = 1; id <= 4; id++) brokers.push(new FakeBroker(100 + id, cluster));
    for (const b of brokers) await b.register();
    for (const b of brokers) b.start();
    await until('all brokers unfenced', () => (brokers.every((b) => cluster.active()?.metadata.brokers.get(b.id)?.fenced === false) ? true : undefined));

    const created = await cluster.call((c) => c.createTopics([{ name: 'events', numPartitions: 8, replicationFactor: 3, assignments: [], configs: [] }], false));
    expect(created[0]!.errorCode).toBe(0);

    for (const c of cluster.controllers) c.subscribe(-1, () => cluster.checkMonotonic(c.metadata, c.nodeId));

    // A broker stops heartbeating: fenced, its leaderships move, it leaves ISRs.
    const victim = brokers[0]!;
    victim.alive = false;
    await until('victim fenced', () => (cluster.active()?.metadata.brokers.get(victim.id)?.fenced ? true : undefined));
    const img = cluster.active()!.metadata;
    for (const [, p] of img.allPartitions()) {
      expect(p.leader).not.toBe(victim.id);
      if (p.isr.length > 1) expect(p.isr).not.toContain(victim.id);
    }
    // It comes back with a new incarnation and is unfenced once caught up.
    victim.alive = true;
    await victim.register();
    await until('victim unfenced', () => (cluster.active()?.metadata.brokers.get(victim.id)?.fenced === false ? true : undefined));

    // Controlled shutdown: leadership moves off first, then the broker may stop.
    const leaving = brokers[1]!;
    leaving.shutdownRequested = true;
    await until('shutdown allowed', () => (leaving.lastResult?.shouldShutDown ? true : undefined));
    for (const [, p] of cluster.active()!.metadata.allPartitions()) expect(p.leader).not.toBe(leaving.id);
    leaving.alive = false;

    expect(cluster.violations).toEqual([]);
  });

  it('fails over: a new active controller keeps every committed change', async () => {
    cluster = new Cluster(3);
    await cluster.start();
    const b = new FakeBroker(1, cluster);
    brokers.push(b);
    await b.register();
    b.start();
    await until('broker unfenced', () => (cluster.active()?.metadata.brokers.get(1)?.fenced === false ? true : undefined));
    const names: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await cluster.call((c) => c.createTopics([{ name: `t${i}`, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], false));
      if (res[0]!.errorCode === 0) names.push(`t${i}`);
    }
    const old = cluster.active()!;
    cluster.net.isolate(String(old.nodeId));
    const next = await until('a new active controller', async () => {
      for (const c of cluster.controllers) {
        if (c === old) continue;
        try {
          await c.read(() => true);
          return c;
        } catch {
          // not it
        }
      }
      return undefined;
    });
    expect(next).not.toBe(old);
    for (const n of names) expect(next.metadata.topicByName(n)).toBeDefined();
    const more = await next.createTopics([{ name: 'after-failover', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], false);
    expect(more[0]!.errorCode).toBe(0);
    // The isolated old leader refuses writes (it cannot commit) instead of acknowledging them.
    await expect(old.createTopics([{ name: 'zombie', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], false)).rejects.toBeDefined();
    cluster.net.heal();
    await until('old leader catches up', () => (old.metadata.topicByName('after-failover') ? true : undefined));
    expect(old.metadata.topicByName('zombie')).toBeUndefined();
    expect(cluster.violations).toEqual([]);
  });

  it('a deposed leader that has not noticed answers nothing from its stale image', async () => {
    // Controller 1 never times out by itself (no check-quorum step-down, no campaign): it is made
    // leader by a transfer, then cut off, and keeps believing it leads, as a SIGSTOPped one does.
    cluster = new Cluster(3, { requestTimeoutMs: 400, electionTicks: 20 }, (id) => (id === 1 ? { electionTicks: 1_000_000 } : {}));
    await cluster.start();
    const stale = cluster.controllers[0]!;
    const raftOf = (c: QuorumController): RaftNode => (c as unknown as { raft: RaftNode }).raft;
    await until('controller 1 leads', async () => {
      const leader = cluster.controllers.find((c) => c.raftStatus().role === Role.Leader);
      if (leader !== undefined && leader !== stale) raftOf(leader).transferLeadership('1');
      try {
        return await stale.read(() => true);
      } catch {
        return undefined;
      }
    });
    const broker = new FakeBroker(1, cluster);
    brokers.push(broker);
    await broker.register();
    broker.start();
    await until('broker unfenced', () => (stale.metadata.brokers.get(1)?.fenced === false ? true : undefined));
    const topic = (name: string): CreatableTopic => ({ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] });
    expect((await stale.createTopics([topic('before')], false))[0]!.errorCode).toBe(0);
    cluster.net.isolate('1');
    const next = await until('a new active controller', async () => {
      for (const c of cluster.controllers.slice(1)) {
        try {
          return await c.read(() => c);
        } catch {
          // not it
        }
      }
      return undefined;
    });
    expect((await next.deleteTopics(['before']))[0]!.errorCode).toBe(0);
    expect((await next.createTopics([topic('after')], false))[0]!.errorCode).toBe(0);
    expect(stale.raftStatus().role).toBe(Role.Leader);
    // Its image still has 'before' and lacks 'after': every answer from it would be wrong.
    await expect(stale.read((img) => img.topicByName('after') !== undefined)).rejects.toBeInstanceOf(StrandError);
    await expect(stale.deleteTopics(['after'])).rejects.toBeInstanceOf(StrandError);
    await expect(stale.createTopics([topic('before')], false)).rejects.toBeInstanceOf(StrandError);
    cluster.net.heal();
  });

  it('an unknown-outcome change that a later leader overwrote does not block the controller once it leads again', async () => {
    // 0.5-1 s election timeouts: controller 1 must stay leader while its change times out.
    cluster = new Cluster(3, { requestTimeoutMs: 300, electionTicks: 50 });
    await cluster.start();
    const c1 = cluster.controllers[0]!;
    const raftOf = (c: QuorumController): RaftNode => (c as unknown as { raft: RaftNode }).raft;
    const lead1 = (): Promise<true> =>
      until('controller 1 leads', async () => {
        const leader = cluster.controllers.find((c) => c.raftStatus().role === Role.Leader);
        if (leader !== undefined && leader !== c1) raftOf(leader).transferLeadership('1');
        try {
          return await c1.read(() => true as const);
        } catch {
          return undefined;
        }
      });
    await lead1();
    const register = (brokerId: number): ReturnType<QuorumController['registerBroker']> =>
      c1.registerBroker({ brokerId, incarnationId: `inc-${brokerId}`, endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + brokerId }], clusterId: '', previousShutdownClean: true });
    // Controller 1's entries stop reaching the others: a few entries of its term that never
    // reach a majority (proposed straight to its Raft node), then a change that times out.
    cluster.net.drop = (m) => m.from === '1' && m.type === MessageType.App && m.entries.length > 0;
    const same = encodeMetadataRecordBatch({ records: [{ cluster: { clusterId: 'sim-cluster' } }] });
    const lost = [1, 2, 3].map(() => raftOf(c1).propose(same).catch(() => undefined));
    await expect(register(7)).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    // Another controller takes over; its log, shorter than controller 1's, overwrites those entries.
    cluster.net.isolate('1');
    await until('a new active controller', async () => {
      for (const c of cluster.controllers.slice(1)) {
        try {
          return await c.read(() => c);
        } catch {
          // not it
        }
      }
      return undefined;
    });
    cluster.net.drop = undefined;
    cluster.net.heal();
    await Promise.all(lost);
    // Controller 1 leads again: the timed-out change is settled (overwritten), so it decides again.
    await lead1();
    expect((await register(8)).errorCode).toBe(0);
    expect(c1.metadata.brokers.has(7)).toBe(false);
  });

  it('a metadata subscriber that throws neither stops the controller nor the other subscribers', async () => {
    cluster = new Cluster(1);
    await cluster.start();
    const c = await cluster.activeController();
    c.subscribe(c.metadata.offset, () => {
      throw new Error('a broken stream');
    });
    const seen: number[] = [];
    c.subscribe(c.metadata.offset, (d) => seen.push(d.offset));
    const reg = await c.registerBroker({ brokerId: 1, incarnationId: 'inc-1', endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9001 }], clusterId: '', previousShutdownClean: true });
    expect(reg.errorCode).toBe(0);
    expect(seen).toContain(reg.brokerEpoch);
    expect(await c.read((img) => img.brokers.has(1))).toBe(true);
  });

  it('a controller whose process was stalled past the session timeout does not fence the brokers it could not hear', async () => {
    cluster = new Cluster(1);
    await cluster.start();
    const c = await cluster.activeController();
    const b = new FakeBroker(1, cluster);
    brokers.push(b);
    await b.register();
    b.start();
    await until('broker unfenced', () => (c.metadata.brokers.get(1)?.fenced === false ? true : undefined));
    const fencedAt: number[] = [];
    c.subscribe(c.metadata.offset, (d) => {
      if (d.records.some((r) => r.fenceBroker?.brokerId === 1)) fencedAt.push(d.offset);
    });
    // The whole process stalls (as under SIGSTOP, or a long GC pause) for longer than a session.
    const until0 = performance.now() + 2 * config['broker.session.timeout.ms'];
    while (performance.now() < until0) {
      // busy: no timer, no heartbeat, no Raft tick runs
    }
    const beats = b.beats;
    await until('five heartbeats answered after the stall', () => (b.beats >= beats + 5 ? true : undefined));
    expect(fencedAt).toEqual([]);
    expect(c.metadata.brokers.get(1)?.fenced).toBe(false);
  });
  it('fences a broker whose partition changes do not fit one Raft proposal (40,000 partitions): committed in several batches, as Kafka\'s non-atomic controller results', async () => {
    cluster = new Cluster(3, { requestTimeoutMs: 30_000, electionTicks: 50 });
    await cluster.start();
    const active = await cluster.activeController();
    for (let id = 1; id <= 3; id++) brokers.push(new FakeBroker(id, cluster));
    for (const b of brokers) await b.register();
    for (const b of brokers) b.start();
    await until('all brokers unfenced', () => (brokers.every((b) => active.metadata.brokers.get(b.id)?.fenced === false) ? true : undefined));
    for (let t = 0; t < 4; t++) {
      const res = await cluster.call((c) => c.createTopics([{ name: `big${t}`, numPartitions: 10_000, replicationFactor: 3, assignments: [], configs: [] }], false));
      expect([0, ErrorCode.TOPIC_ALREADY_EXISTS]).toContain(res[0]!.errorCode); // a retry after a failover may find it
    }
    const victim = brokers[0]!;
    victim.alive = false;
    await until('victim fenced and out of every ISR', () => {
      const img = cluster.active()?.metadata;
      if (img === undefined) return undefined;
      if (img.brokers.get(victim.id)?.fenced !== true) return undefined;
      for (const [, p] of img.allPartitions()) if (p.leader === victim.id || p.isr.includes(victim.id)) return undefined;
      return true;
    }, 60_000);
    expect(cluster.violations).toEqual([]);
  }, 120_000);
  it('registers a broker whose partition changes do not fit one Raft proposal: committed in several batches, as fencing is', async () => {
    // 2 KiB batches: 100 single-replica partitions' changes (~3 KiB) do not fit one.
    cluster = new Cluster(1, { maxRecordBatchBytes: 2048 });
    await cluster.start();
    const c = await cluster.activeController();
    const req = { brokerId: 1, incarnationId: 'inc-a', endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9001 }], clusterId: '', previousShutdownClean: true, logDirId: 'dir-a' };
    const first = await c.registerBroker(req);
    expect(first.errorCode).toBe(0);
    await c.brokerHeartbeat({ brokerId: 1, brokerEpoch: first.brokerEpoch, currentMetadataOffset: c.metadata.offset, wantShutDown: false });
    expect(c.metadata.brokers.get(1)?.fenced).toBe(false);
    for (let t = 0; t < 10; t++) expect((await c.createTopics([{ name: `t${t}`, numPartitions: 10, replicationFactor: 1, assignments: [], configs: [] }], false))[0]!.errorCode).toBe(0);
    // No heartbeats: the session expires and the broker is fenced (its partitions go offline, it
    // stays their last replica standing). It comes back with a wiped disk (another directory id):
    // it must leave all 100 ISRs, more records than one batch holds.
    await until('broker fenced', () => (c.metadata.brokers.get(1)?.fenced === true ? true : undefined));
    const again = await c.registerBroker({ ...req, incarnationId: 'inc-b', logDirId: 'dir-b' });
    expect(again.errorCode).toBe(0);
    expect(c.metadata.brokers.get(1)).toMatchObject({ incarnationId: 'inc-b', logDirReplaced: true });
    for (const [, p] of c.metadata.allPartitions()) expect(p).toMatchObject({ leader: -1, isr: [] });
  });

  it('activates once per term even when a read arrives while the write path activates (one cluster id record)', async () => {
    const net = new MemoryNetwork();
    let c: QuorumController | undefined;
    const reads: Promise<unknown>[] = [];
    c = new QuorumController({
      nodeId: 1,
      voters: new Map([[1, { host: '127.0.0.1', port: 9190 }]]),
      storage: new MemoryStorage(),
      transport: net.transport('1'),
      config,
      tickMs: 10,
      electionTicks: 10,
      seed: 1,
      // No clusterId given (as strand server): each activation would draw its own.
      logger: {
        info: (fields) => {
          // A DescribeConfigs (a read) arriving just as this node wins its first election.
          if (fields.quorumRole === Role.Leader && c !== undefined) reads.push(c.read(() => undefined).catch(() => undefined));
        },
        warn: () => undefined,
      },
    });
    const clusterRecords: string[] = [];
    try {
      c.subscribe(-1, (d) => {
        for (const r of d.records) if (r.cluster) clusterRecords.push(r.cluster.clusterId);
      });
      await c.start();
      await until('the controller active', () => (c!.isActive ? true : undefined));
      await Promise.all(reads);
      expect(reads.length).toBeGreaterThan(0);
      // A later read: the activations are over and what they committed is applied.
      await c.read(() => undefined);
      expect(clusterRecords).toHaveLength(1);
      expect(c.metadata.clusterId).toBe(clusterRecords[0]);
    } finally {
      await c.stop();
    }
  });
});
