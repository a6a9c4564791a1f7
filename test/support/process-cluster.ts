/**
 * A programmatic cluster of `strand server` processes on loopback for multi-process tests: free
 * ports, a temp data directory per node, start / stop (SIGTERM) / kill (SIGKILL) / pause
 * (SIGSTOP) / resume / restart of any node, and cleanup that leaves no process or directory
 * behind (call `close()` in a finally or afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from './free-port';

export const STRAND_BIN = path.resolve(__dirname, '../../packages/cli/dist/bin/strand.js');

export interface NodeSpec {
  id: number;
  roles: ('controller' | 'broker')[];
  controllerPort: number;
  brokerPort: number;
  httpPort: number;
  dataDir: string;
}

export interface ProcessClusterOptions {
  /** Number of nodes; each runs a controller. */
  controllers: number;
  /** Run a broker in every node too (combined mode, as `strand dev`). */
  combined?: boolean;
  /** Extra `key=value` overrides for every node. */
  overrides?: string[];
}

export class ProcessCluster {
  readonly nodes: NodeSpec[] = [];
  readonly root: string;
  private readonly procs = new Map<number, ChildProcess>();
  private readonly logs = new Map<number, string[]>();
  private voters = '';
  /** Nodes this harness stopped or killed on purpose (their exit is not reported). */
  private readonly expectedExit = new Set<number>();

  private constructor(private readonly opts: ProcessClusterOptions) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-cluster-'));
  }

  static async create(opts: ProcessClusterOptions): Promise<ProcessCluster> {
    const c = new ProcessCluster(opts);
    const ports = await freePorts(opts.controllers * 3);
    for (let i = 0; i < opts.controllers; i++) {
      c.nodes.push({
        id: i + 1,
        roles: opts.combined ? ['controller', 'broker'] : ['controller'],
        controllerPort: ports[3 * i] as number,
        brokerPort: ports[3 * i + 1] as number,
        httpPort: ports[3 * i + 2] as number,
        dataDir: path.join(c.root, `node-${i + 1}`),
      });
    }
    c.voters = c.nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',');
    return c;
  }

  get quorumVoters(): string {
    return this.voters;
  }

  controllerAddresses(): string[] {
    return this.nodes.filter((n) => n.roles.includes('controller')).map((n) => `127.0.0.1:${n.controllerPort}`);
  }

  brokerAddresses(): string[] {
    return this.nodes.filter((n) => n.roles.includes('broker')).map((n) => `127.0.0.1:${n.brokerPort}`);
  }

  node(id: number): NodeSpec {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Node `id`'s configuration as `--override k=v` arguments (for strand server or strand storage). */
  overrideArgs(id: number): string[] {
    const n = this.node(id);
    const listeners = [n.roles.includes('controller') ? `CONTROLLER://127.0.0.1:${n.controllerPort}` : '', n.roles.includes('broker') ? `BROKER://127.0.0.1:${n.brokerPort}` : ''].filter((s) => s !== '').join(',');
    return [
      '--override', `process.roles=${n.roles.join(',')}`,
      '--override', `node.id=${n.id}`,
      '--override', `controller.quorum.voters=${this.voters}`,
      '--override', `listeners=${listeners}`,
      '--override', `log.dirs=${path.join(n.dataDir, 'logs')}`,
      '--override', `metadata.log.dir=${path.join(n.dataDir, 'meta')}`,
      '--override', `http.listener=127.0.0.1:${n.httpPort}`,
      ...(this.opts.overrides ?? []).flatMap((o) => ['--override', o]),
    ];
  }

  start(id: number): void {
    if (this.procs.has(id)) throw new Error(`node ${id} is already running`);
    const args = [STRAND_BIN, 'server', ...this.overrideArgs(id)];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STRAND_')));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const log: string[] = this.logs.get(id) ?? [];
    this.logs.set(id, log);
    const keep = (chunk: Buffer): void => {
      log.push(chunk.toString());
      if (log.length > 2000) log.splice(0, log.length - 2000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      this.procs.delete(id);
      // A node that dies on its own is what a failing test most needs to show: print its log tail.
      if (!this.expectedExit.delete(id) && (code ?? 0) !== 0) {
        process.stderr.write(`node ${id} exited unexpectedly (${signal ?? `code ${code}`}); last log lines:\n${log.join('').split('\n').slice(-20).join('\n')}\n`);
      }
    });
    this.procs.set(id, child);
  }

  /** The HTTP status of GET `urlPath` on node `id`'s http listener (rejects when it does not answer). */
  httpStatus(id: number, urlPath: string): Promise<number> {
    return new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: this.node(id).httpPort, path: urlPath, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
  }

  startAll(): void {
    for (const n of this.nodes) this.start(n.id);
  }

  isRunning(id: number): boolean {
    return this.procs.has(id);
  }

  logOf(id: number): string {
    return (this.logs.get(id) ?? []).join('');
  }

  private signal(id: number, sig: NodeJS.Signals): ChildProcess {
    const p = this.procs.get(id);
    if (p === undefined) throw new Error(`node ${id} is not running`);
    if (sig === 'SIGKILL' || sig === 'SIGTERM') this.expectedExit.add(id);
    p.kill(sig);
    return p;
  }

  private exited(p: ChildProcess, timeoutMs: number): Promise<void> {
    if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`process ${p.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
      p.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** SIGKILL: no chance to clean up, as a crash. */
  async kill(id: number): Promise<void> {
    const p = this.signal(id, 'SIGKILL');
    await this.exited(p, 10_000);
  }

  /** SIGTERM: a graceful stop. */
  async stop(id: number, timeoutMs = 15_000): Promise<void> {
    const p = this.signal(id, 'SIGTERM');
    await this.exited(p, timeoutMs);
  }

  pause(id: number): void {
    this.signal(id, 'SIGSTOP');
  }

  resume(id: number): void {
    this.signal(id, 'SIGCONT');
  }

  /** Kills every process and removes the data directories. */
  async close(): Promise<void> {
    for (const [id, p] of [...this.procs]) {
      try {
        this.expectedExit.add(id);
        p.kill('SIGCONT');
        p.kill('SIGKILL');
        await this.exited(p, 10_000);
      } catch {
        // already gone
      }
      this.procs.delete(id);
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
