// A whole cluster in one process: nodes, the simulated network and the safety checker, with
// primitives for scripted scenario tests (tick, stabilize, isolate, crash, restart) and for the
// seeded simulator. Every input to a node is followed by the checker's invariants.

import { RaftConfig, ProposeResult, bootstrapState, joinerState } from '../core/raft';
import { SeededRng } from '../core/rng';
import { Message, NodeId, Role } from '../core/types';
import { SafetyChecker } from './checker';
import { SimNetwork } from './sim-network';
import { SimNode } from './sim-node';

export type CoreOptions = Omit<RaftConfig, 'id' | 'rng'>;

export interface SimClusterOptions {
  readonly ids: readonly NodeId[];
  readonly seed: number;
  readonly core?: CoreOptions;
  /** Initial voters (default: all ids). Others start empty and join as learners. */
  readonly voters?: readonly NodeId[];
  /** Probability that a node's Ready is left pending after an input (more state at risk in a crash). */
  readonly deferReadyRate?: number;
  /** Probability that a node crashes while handling a Ready, after early sends, before persisting. */
  readonly crashMidReadyRate?: number;
  /**
   * Probability that a leader's eligible Ready is persisted in the background
   * (RaftCore.advanceAsync); the write completes later (completeWrites) or is lost in a crash.
   */
  readonly asyncPersistRate?: number;
}

export class SimCluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly ids: NodeId[];
  readonly net: SimNetwork;
  readonly checker = new SafetyChecker();
  readonly rng: SeededRng;
  now = 0;
  deferReadyRate: number;
  crashMidReadyRate: number;
  asyncPersistRate: number;
  /** Per-node options overrides (e.g. a node without pre-vote). */
  private readonly coreOptions: CoreOptions;

  constructor(opts: SimClusterOptions) {
    this.ids = [...opts.ids];
    this.rng = new SeededRng(opts.seed);
    this.net = new SimNetwork(this.rng.fork());
    this.deferReadyRate = opts.deferReadyRate ?? 0;
    this.crashMidReadyRate = opts.crashMidReadyRate ?? 0;
    this.asyncPersistRate = opts.asyncPersistRate ?? 0;
    this.coreOptions = opts.core ?? {};
    const voters = opts.voters ?? this.ids;
    for (const id of this.ids) {
      // Initial members start from the same bootstrap log; a node outside it starts empty and
      // learns the membership by replaying the leader's log.
      const init = voters.includes(id) ? bootstrapState(voters) : joinerState();
      const nodeRng = this.rng.fork();
      const node = new SimNode(
        id,
        { hardState: init.hardState, snapshot: init.snapshot, entries: [...init.entries] },
        () => ({ ...this.coreOptions, id, rng: nodeRng.fork() }),
        this.checker,
      );
      node.onLeaderCommit = (l, from, to) => this.checkDurableQuorum(l, from, to);
      node.start();
      this.nodes.set(id, node);
    }
    // Apply the bootstrap configuration before anything else happens.
    this.processAllReady();
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`sim: no node ${id}`);
    return n;
  }

  private afterInput(n: SimNode): void {
    n.check();
    if (this.deferReadyRate === 0 || !this.rng.chance(this.deferReadyRate)) this.processReady(n);
  }

  processReady(n: SimNode): void {
    // Bounded: each Ready consumes pending work; a few rounds drain chained single-node effects.
    for (let i = 0; i < 8; i++) {
      const crash = this.crashMidReadyRate > 0 && this.rng.chance(this.crashMidReadyRate);
      const async = this.asyncPersistRate > 0 && this.rng.chance(this.asyncPersistRate);
      if (!n.handleReady((m) => this.net.send(m, this.now), crash, async) || crash) break;
    }
  }

  processAllReady(): void {
    for (const id of this.ids) this.processReady(this.node(id));
  }

  tickNode(id: NodeId): void {
    const n = this.node(id);
    if (n.core === null) return;
    n.core.tick();
    this.afterInput(n);
  }

  deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n === undefined || n.core === null) return;
    n.core.step(m);
    this.afterInput(n);
  }

  propose(id: NodeId, data: Uint8Array): ProposeResult {
    const n = this.node(id);
    if (n.core === null) return { ok: false, reason: 'not-leader', leader: '', detail: 'node down' };
    const res = n.core.propose([data]);
    this.afterInput(n);
    return res;
  }

  campaign(id: NodeId): void {
    const n = this.node(id);
    if (n.core === null) return;
    n.core.campaign();
    this.afterInput(n);
  }

  /** Deliver every message due now, in send order (scripted tests) or shuffled (simulator). */
  deliverDue(shuffle: boolean): number {
    const due = this.net.takeDue(this.now, shuffle);
    for (const m of due) this.deliver(m);
    return due.length;
  }

  /**
   * Process readies and deliver messages until nothing is left to do at this tick. Bounded so a
   * livelock shows up as an error rather than a hang.
   */
  stabilize(maxRounds = 10_000): void {
    for (let i = 0; i < maxRounds; i++) {
      this.processAllReady();
      if (this.deliverDue(false) === 0) {
        this.processAllReady();
        if (this.net.takeDuePeek(this.now) === 0) return;
      }
    }
    throw new Error(`sim: no quiescence after ${maxRounds} rounds`);
  }

  /** Advance time one tick on every live node, then stabilize. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      this.now++;
      for (const id of this.ids) this.tickNode(id);
      this.stabilize();
    }
  }

  /** Crash a node; a random prefix of its background writes reaches the disk first. */
  crash(id: NodeId): void {
    const n = this.node(id);
    n.crash(n.pendingWriteCount === 0 ? 0 : this.rng.nextInt(n.pendingWriteCount + 1));
  }

  /**
   * Raft's durability promise: an entry a leader commits is on stable storage on a majority of
   * voters (the leader counting itself only once its own write is durable, thesis §10.2.1).
   * Entries a snapshot covers count as held.
   */
  private checkDurableQuorum(leader: SimNode, from: number, to: number): void {
    const core = leader.core;
    if (core === null) return;
    const voters = core.confState().voters;
    for (let i = Math.max(from + 1, core.log.firstIndex()); i <= to; i++) {
      const term = core.log.term(i);
      let n = 0;
      for (const v of voters) {
        const d = this.nodes.get(v)?.durable;
        if (d === undefined) continue;
        if (i <= d.snapshot.meta.index) n++;
        else if (d.entries[i - d.snapshot.meta.index - 1]?.term === term) n++;
      }
      this.checker.durableQuorum(leader.id, i, n, voters.length);
    }
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.core === null) {
      n.start();
      n.check();
      this.processReady(n);
    }
  }

  isolate(id: NodeId): void {
    this.net.isolate(id, this.ids);
  }

  heal(): void {
    this.net.heal();
  }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.core?.role === Role.Leader && (best === undefined || n.term > best.term)) best = n;
    }
    return best;
  }
}
