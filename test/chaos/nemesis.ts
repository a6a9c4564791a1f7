/**
 * The nemesis: a seeded PRNG (mulberry32) picks one fault at a time from the enabled kinds,
 * holds it, heals it, and waits for the cluster to be ready again. Kinds:
 *  - kill: kill -9 of a broker (half the time the leader of a random partition), restart later;
 *  - pause: SIGSTOP of a broker or a controller, SIGCONT later;
 *  - controller: kill -9 of the active controller, restart later;
 *  - power: kill -9 of a broker (a quarter of the time: of every broker at once) plus loss of
 *    everything it had not fdatasynced, restart later;
 *  - wipe: kill -9 of a broker and deletion of its whole log directory (a replaced disk), restart
 *    later: it comes back with a new directory id and re-replicates every partition;
 *  - partition: one node isolated, a majority/minority split, the active controller alone, a
 *    partition leader cut from its followers (not from clients), a one-way cut, or random loss.
 * After each heal the nemesis waits (bounded) for every node to be ready and every ISR to be
 * full before the next fault. Recovery is measured from the fault: leader kill -> first acknowledged write on each partition
 * it led; controller kill -> the next metadata change (a CreateTopics that succeeds).
 */
import type { CreateTopicsRequest, CreateTopicsResponse } from '@strand/protocol';
import type { ChaosCluster } from './chaos-cluster';
import type { ChaosClient } from './workload';

export type FaultKind = 'kill' | 'pause' | 'partition' | 'controller' | 'power' | 'wipe';
export const FAULT_KINDS: FaultKind[] = ['kill', 'pause', 'partition', 'controller', 'power', 'wipe'];

export interface FaultRecord {
  kind: FaultKind;
  detail: string;
  start: number;
  healed: number;
  /** ms to recovery (see above), -1 when not measured or never recovered. */
  recoveryMs: number;
  recoveryWhat: string;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface NemesisOptions {
  kinds: FaultKind[];
  topics: string[];
  partitions: number;
  now: () => number;
  log: (line: string) => void;
  /** Fault hold time range (ms). */
  holdMs: [number, number];
  /** Quiet time between faults (ms). */
  quietMs: [number, number];
}

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  private readonly rand: () => number;
  /** Last acknowledged write per `topic/partition` (monotonic ms), fed by the workload. */
  private readonly lastAck = new Map<string, number>();
  private readonly ackWaiters: { key: string; after: number; resolve: (t: number) => void }[] = [];
  private probe = 0;

  constructor(seed: number, private readonly cluster: ChaosCluster, private readonly client: ChaosClient, private readonly opts: NemesisOptions) {
    this.rand = mulberry32(seed);
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.rand() * xs.length)] as T;
  }

  private between([lo, hi]: [number, number]): number {
    return lo + Math.floor(this.rand() * (hi - lo));
  }

  onAck(topic: string, partition: number, time: number): void {
    const key = `${topic}/${partition}`;
    this.lastAck.set(key, time);
    for (let i = this.ackWaiters.length - 1; i >= 0; i--) {
      const w = this.ackWaiters[i] as { key: string; after: number; resolve: (t: number) => void };
      if (w.key === key && time >= w.after) {
        this.ackWaiters.splice(i, 1);
        w.resolve(time);
      }
    }
  }

  private nextAck(key: string, after: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      const w = { key, after, resolve };
      this.ackWaiters.push(w);
      setTimeout(() => {
        const i = this.ackWaiters.indexOf(w);
        if (i >= 0) {
          this.ackWaiters.splice(i, 1);
          resolve(-1);
        }
      }, timeoutMs);
    });
  }

  /** Partitions led by broker `id` (per metadata). */
  private async ledBy(id: number): Promise<string[]> {
    try {
      const md = await this.client.metadata(this.opts.topics);
      return md.topics.flatMap((t) => t.partitions.filter((p) => p.leaderId === id).map((p) => `${t.name}/${p.partition}`));
    } catch {
      return [];
    }
  }

  private async leaderAndFollowers(): Promise<{ leader: number; followers: number[]; what: string } | undefined> {
    try {
      const md = await this.client.metadata(this.opts.topics);
      const t = this.pick(md.topics);
      const p = this.pick(t.partitions);
      if (p.leaderId < 0) return undefined;
      return { leader: p.leaderId, followers: p.replicas.filter((r) => r !== p.leaderId), what: `${t.name}/${p.partition}` };
    } catch {
      return undefined;
    }
  }

  /** Measures leader-kill recovery: max over `parts` of (first ack after t0) - t0. */
  private recoveryOf(parts: string[], t0: number): Promise<number> {
    if (parts.length === 0) return Promise.resolve(-1);
    return Promise.all(parts.map((k) => this.nextAck(k, t0, 120_000))).then((ts) => (ts.some((t) => t < 0) ? -1 : Math.max(...ts) - t0));
  }

  /** Controller recovery: time until a CreateTopics (a metadata change) succeeds. */
  private async metadataChange(t0: number, timeoutMs: number): Promise<number> {
    const name = `chaos-probe-${this.probe++}`;
    const addrs = this.cluster.brokerAddresses();
    while (this.opts.now() - t0 < timeoutMs) {
      const a = this.pick(addrs);
      try {
        const r = await this.client.brokers.call<CreateTopicsRequest, CreateTopicsResponse>(a, (c, q, m, o, cb) => c.createTopics(q, m, o, cb), { topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], validateOnly: false }, 3000);
        const code = r.topics[0]?.errorCode;
        if (code === 0 || code === 36 /* TOPIC_ALREADY_EXISTS: an earlier try went through */) return this.opts.now() - t0;
      } catch {
        // controller not there yet
      }
      await sleep(100);
    }
    return -1;
  }

  private async runningBroker(): Promise<number> {
    const leaderFirst = this.rand() < 0.5 ? await this.leaderAndFollowers() : undefined;
    if (leaderFirst !== undefined && this.cluster.isRunning(leaderFirst.leader)) return leaderFirst.leader;
    return this.pick(this.cluster.brokers().filter((b) => this.cluster.isRunning(b.id))).id;
  }

  /** One fault: apply, hold, heal, wait ready. */
  async step(): Promise<void> {
    const kind = this.pick(this.opts.kinds);
    const hold = this.between(this.opts.holdMs);
    const rec: FaultRecord = { kind, detail: '', start: this.opts.now(), healed: -1, recoveryMs: -1, recoveryWhat: '' };
    this.faults.push(rec);
    let recovery: Promise<number> = Promise.resolve(-1);
    let restart: number | undefined;
    switch (kind) {
      case 'kill':
      case 'power':
      case 'wipe': {
        if (kind === 'power' && this.rand() < 0.25) {
          // Every broker at once (the fsync-before-ack default must survive this too).
          const brokers = this.cluster.brokers().map((b) => b.id);
          const led = (await Promise.all(brokers.map((b) => this.ledBy(b)))).flat();
          rec.start = this.opts.now();
          await Promise.all(brokers.map((b) => this.cluster.kill(b)));
          const lost = brokers.map((b) => this.cluster.applyPowerLoss(b));
          rec.detail = `every broker (${brokers.join(',')}): ${lost.reduce((n, l) => n + l.bytesDropped, 0)} unsynced bytes dropped, ${lost.reduce((n, l) => n + l.filesDeleted, 0)} segment files deleted`;
          recovery = this.recoveryOf(led, rec.start);
          rec.recoveryWhat = 'first ack on every partition';
          await sleep(hold);
          for (const b of brokers) this.cluster.start(b);
          break;
        }
        const id = await this.runningBroker();
        const led = await this.ledBy(id);
        rec.start = this.opts.now();
        await this.cluster.kill(id);
        rec.detail = `broker ${id} (leader of ${led.length ? led.join(',') : 'nothing'})`;
        if (kind === 'power') {
          const lost = this.cluster.applyPowerLoss(id);
          rec.detail += `: ${lost.bytesDropped} unsynced bytes dropped, ${lost.filesDeleted} segment files deleted`;
        } else if (kind === 'wipe') {
          rec.detail += `: log directory wiped (${this.cluster.wipeLogs(id)} bytes)`;
        }
        recovery = this.recoveryOf(led, rec.start);
        rec.recoveryWhat = 'first ack on the partitions it led';
        restart = id;
        break;
      }
      case 'controller': {
        const id = await this.cluster.activeController();
        if (id === undefined) {
          rec.detail = 'no active controller found; skipped';
          break;
        }
        rec.start = this.opts.now();
        await this.cluster.kill(id);
        rec.detail = `active controller ${id}`;
        recovery = this.metadataChange(rec.start, 60_000);
        rec.recoveryWhat = 'next metadata change (CreateTopics)';
        restart = id;
        break;
      }
      case 'pause': {
        const n = this.pick(this.cluster.nodes.filter((x) => this.cluster.isRunning(x.id)));
        this.cluster.pause(n.id);
        rec.detail = `${n.role} ${n.id} SIGSTOP`;
        await sleep(hold);
        this.cluster.resume(n.id);
        break;
      }
      case 'partition': {
        if (!this.cluster.canPartition) {
          rec.detail = 'skipped: not root / no network namespace';
          break;
        }
        const ids = this.cluster.nodes.map((n) => n.id);
        const shape = this.pick(['isolate', 'split', 'controller-alone', 'leader-from-followers', 'one-way', 'loss'] as const);
        if (shape === 'isolate') {
          const a = this.pick(ids);
          for (const b of ids) if (b !== a) this.cluster.cutBoth(a, b);
          rec.detail = `node ${a} isolated`;
        } else if (shape === 'split') {
          const shuffled = [...ids].sort(() => this.rand() - 0.5);
          const minority = shuffled.slice(0, Math.floor(ids.length / 2));
          for (const a of minority) for (const b of ids) if (!minority.includes(b)) this.cluster.cutBoth(a, b);
          rec.detail = `split: {${minority.join(',')}} | {${ids.filter((x) => !minority.includes(x)).join(',')}}`;
        } else if (shape === 'controller-alone') {
          const a = (await this.cluster.activeController()) ?? this.pick(this.cluster.controllers()).id;
          for (const b of ids) if (b !== a) this.cluster.cutBoth(a, b);
          rec.detail = `active controller ${a} isolated`;
          rec.start = this.opts.now();
          recovery = this.metadataChange(rec.start, Math.max(hold, 1000) + 30_000);
          rec.recoveryWhat = 'next metadata change (CreateTopics)';
        } else if (shape === 'leader-from-followers') {
          const lf = await this.leaderAndFollowers();
          if (lf === undefined) {
            rec.detail = 'no leader known; skipped';
            break;
          }
          for (const f of lf.followers) this.cluster.cutBoth(lf.leader, f);
          rec.detail = `leader ${lf.leader} of ${lf.what} cut from followers ${lf.followers.join(',')} (clients and controllers still reach it)`;
        } else if (shape === 'one-way') {
          const a = this.pick(ids);
          const b = this.pick(ids.filter((x) => x !== a));
          this.cluster.cut(a, b);
          rec.detail = `one-way: ${a} cannot send to ${b}`;
        } else {
          const p = 0.2 + this.rand() * 0.3;
          for (const a of ids) for (const b of ids) if (a !== b) this.cluster.cut(a, b, p);
          rec.detail = `random loss ${Math.round(p * 100)}% between all nodes`;
        }
        await sleep(hold);
        this.cluster.heal();
        break;
      }
    }
    if (restart !== undefined) {
      await sleep(hold);
      this.cluster.start(restart);
    }
    rec.healed = this.opts.now();
    this.opts.log(`fault ${this.faults.length} ${kind}: ${rec.detail} (held ${hold} ms)`);
    // Wait (bounded) for every node to be ready before the next fault.
    for (const n of this.cluster.nodes) {
      if (!(await this.cluster.waitReady(n.id, 60_000))) this.opts.log(`  node ${n.id} not ready 60 s after the heal`);
    }
    // ...and every partition's ISR to be full again, so that faults do not compound (a
    // recovery figure then measures one fault, not the tail of the previous one).
    const isrDeadline = this.opts.now() + 60_000;
    for (;;) {
      const md = await this.client.metadata(this.opts.topics).catch(() => undefined);
      if (md !== undefined && md.topics.every((t) => t.partitions.every((p) => p.leaderId >= 0 && p.isr.length === p.replicas.length))) break;
      if (this.opts.now() > isrDeadline) {
        this.opts.log('  ISR not full 60 s after the heal');
        break;
      }
      await sleep(250);
    }
    rec.recoveryMs = await recovery;
    if (rec.recoveryWhat !== '') this.opts.log(`  recovery: ${rec.recoveryMs < 0 ? 'not measured' : `${Math.round(rec.recoveryMs)} ms`} (${rec.recoveryWhat})`);
  }

  async run(untilMs: number): Promise<void> {
    while (this.opts.now() < untilMs) {
      await sleep(this.between(this.opts.quietMs));
      if (this.opts.now() >= untilMs) break;
      await this.step();
    }
  }
}
