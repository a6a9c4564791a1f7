// Parent side of a multi-process Raft cluster on loopback: forks one raft-process per node
// (each with its own temp data directory and gRPC port), talks to them over IPC, kills them
// with SIGKILL and restarts them on the same port and directory. Every wait has a deadline on
// the monotonic clock; close() kills every child and removes the temp directory.

import { ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessEvent, ProcessReply, ProcessRequest, StartConfig } from './process-protocol';

export interface ProcessClusterOptions {
  readonly nodes: number;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly snapshotEveryEntries?: number;
  readonly keepValues?: boolean;
  /** RaftNodeOptions.asyncLeaderWrites of every node (default true). */
  readonly asyncLeaderWrites?: boolean;
  /** Path of the compiled raft-process.js. Default: next to this file's compiled form. */
  readonly script?: string;
}

type Distributive<T> = T extends unknown ? Omit<T, 'reqId'> : never;
export type RequestBody = Distributive<ProcessRequest>;

interface Child {
  readonly id: string;
  proc: ChildProcess;
  port: number;
  readonly dataDir: string;
  alive: boolean;
  /** Bootstraps the cluster (true) or joins it later as a learner (false). */
  readonly founder: boolean;
}

type EventListener = (e: ProcessEvent) => void;

export class ProcessCluster {
  readonly ids: string[];
  readonly baseDir: string;
  private readonly children = new Map<string, Child>();
  private readonly pending = new Map<number, { id: string; resolve: (r: ProcessReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly listeners = new Set<EventListener>();
  private reqSeq = 0;
  private readonly script: string;
  private readonly clusterId = `strand-raft-${process.pid}-${Date.now()}`;

  constructor(private readonly opts: ProcessClusterOptions) {
    this.ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.script = opts.script ?? join(__dirname, 'raft-process.js');
    if (!existsSync(this.script)) throw new Error(`raft-process script not found at ${this.script}: run \`npx tsc -b packages/raft\` first`);
    this.baseDir = mkdtempSync(join(tmpdir(), 'strand-raft-procs-'));
  }

  onEvent(l: EventListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Wait for the first event matching `pred`, up to `ms`. */
  waitEvent<E extends ProcessEvent>(pred: (e: ProcessEvent) => e is E, ms: number, what: string): Promise<E> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const off = this.onEvent((e) => {
        if (pred(e)) {
          clearTimeout(timer);
          off();
          resolve(e);
        }
      });
    });
  }

  async start(timeoutMs = 20_000): Promise<void> {
    for (const id of this.ids) this.spawn(id, 0, true);
    const ports = await Promise.all(this.ids.map((id) => this.listen(id, timeoutMs)));
    ports.forEach((p, i) => {
      const c = this.children.get(this.ids[i] ?? '');
      if (c !== undefined) c.port = p;
    });
    await Promise.all(this.ids.map((id) => this.connect(id, timeoutMs)));
  }

  private spawn(id: string, port: number, founder: boolean): Child {
    const dataDir = join(this.baseDir, id);
    const proc = fork(this.script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const child: Child = { id, proc, port, dataDir, alive: true, founder };
    this.children.set(id, child);
    proc.on('message', (raw: unknown) => this.onMessage(raw as ProcessReply | ProcessEvent));
    proc.on('exit', () => {
      child.alive = false;
      // Requests to a dead process will never be answered.
      for (const [reqId, p] of this.pending) {
        if (p.id !== id || this.children.get(id) !== child) continue;
        this.pending.delete(reqId);
        clearTimeout(p.timer);
        p.reject(new Error(`${id} exited`));
      }
    });
    const config: StartConfig = {
      id,
      clusterId: this.clusterId,
      dataDir,
      port,
      tickMs: this.opts.tickMs ?? 10,
      electionTicks: this.opts.electionTicks ?? 50,
      snapshotEveryEntries: this.opts.snapshotEveryEntries ?? 10_000,
      keepValues: this.opts.keepValues ?? true,
      asyncLeaderWrites: this.opts.asyncLeaderWrites ?? true,
    };
    proc.send({ op: 'start', reqId: 0, config } satisfies ProcessRequest);
    return child;
  }

  private async listen(id: string, ms: number): Promise<number> {
    const e = await this.waitEvent((x): x is Extract<ProcessEvent, { ev: 'listening' }> => x.ev === 'listening' && x.id === id, ms, `${id} listening`);
    return e.port;
  }

  /**
   * Every node is configured with the founders' addresses only: a node added later is reached
   * through the address its conf change carries (from the log or a snapshot), as in production.
   */
  private async connect(id: string, ms: number): Promise<void> {
    const peers: Record<string, string> = {};
    for (const c of this.children.values()) if (c.founder) peers[c.id] = `127.0.0.1:${c.port}`;
    const ready = this.waitEvent((x): x is Extract<ProcessEvent, { ev: 'ready' }> => x.ev === 'ready' && x.id === id, ms, `${id} ready`);
    const child = this.children.get(id);
    child?.proc.send({ op: 'peers', reqId: 0, peers, voters: child.founder ? this.ids : null } satisfies ProcessRequest);
    await ready;
  }

  /**
   * Start a new, empty node that will be added to the cluster as a learner (it bootstraps
   * nothing). Resolves with its address; propose the change with request(leader, { op: 'change' }).
   */
  async spawnJoiner(id: string, timeoutMs = 20_000): Promise<string> {
    if (this.children.has(id)) throw new Error(`node ${id} exists`);
    const c = this.spawn(id, 0, false);
    c.port = await this.listen(id, timeoutMs);
    await this.connect(id, timeoutMs);
    return `127.0.0.1:${c.port}`;
  }

  /** Ids of every node ever started (founders and joiners). */
  allIds(): string[] {
    return [...this.children.keys()];
  }

  private onMessage(m: ProcessReply | ProcessEvent): void {
    if ('ev' in m) {
      for (const l of this.listeners) l(m);
      return;
    }
    const p = this.pending.get(m.reqId);
    if (p === undefined) return;
    this.pending.delete(m.reqId);
    clearTimeout(p.timer);
    p.resolve(m);
  }

  request(id: string, body: RequestBody, timeoutMs = 10_000): Promise<ProcessReply> {
    const c = this.children.get(id);
    if (c === undefined || !c.alive || !c.proc.connected) return Promise.reject(new Error(`${id} is not running`));
    const reqId = ++this.reqSeq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(reqId);
        reject(new Error(`${id}: ${body.op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(reqId, { id, resolve, reject, timer });
      c.proc.send({ ...body, reqId });
    });
  }

  isAlive(id: string): boolean {
    return this.children.get(id)?.alive === true;
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill9(id: string): Promise<void> {
    const c = this.children.get(id);
    if (c === undefined || !c.alive) return;
    const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()));
    c.proc.kill('SIGKILL');
    await exited;
  }

  /** Start a killed node again, on its old port and data directory. */
  async restart(id: string, timeoutMs = 20_000): Promise<void> {
    const old = this.children.get(id);
    if (old === undefined) throw new Error(`no node ${id}`);
    if (old.alive) throw new Error(`${id} is still running`);
    const c = this.spawn(id, old.port, old.founder);
    c.port = await this.listen(id, timeoutMs);
    await this.connect(id, timeoutMs);
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('cluster closed'));
    }
    this.pending.clear();
    await Promise.all([...this.children.keys()].map((id) => this.kill9(id)));
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}
