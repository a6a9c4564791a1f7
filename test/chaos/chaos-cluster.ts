/**
 * The chaos harness's cluster: separate controller and broker processes (`strand server`), each
 * on its own loopback address (127.0.0.11, .12, ...) when the run is inside a private network
 * namespace, or all on 127.0.0.1 with free ports otherwise. Start, stop (SIGTERM), kill
 * (SIGKILL), pause/resume (SIGSTOP/SIGCONT), restart, readiness waits on /readyz, simulated
 * power loss (a kill -9 plus truncation of every segment file to the length the broker last
 * reported fdatasynced through `log.test.durable.positions.file`), and network faults.
 *
 * Network faults: grpc-js cannot bind a local address, so every connection between nodes leaves
 * from 127.0.0.1 and source-address rules cannot tell nodes apart (checked: a connect to
 * 127.0.0.12 shows localAddress 127.0.0.1). Instead each node process runs with its own group
 * id (1000 + node id; uid stays root) and the cuts are iptables OUTPUT rules matching the
 * sending process (`-m owner --gid-owner`) and the destination node address. A cut A->B drops
 * every packet A's process sends to B's address (so A cannot open or use a connection to B);
 * the harness's own clients (gid 0) are never cut unless asked. Rules live only in the private
 * namespace the run re-executed itself into; nothing touches the host's network.
 *
 * `close()` kills every process (SIGCONT first) and removes every temp directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../support/free-port';

/** The repository root (the directory holding packages/cli), found from this file upwards. */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 10; i++) {
    if (fs.existsSync(path.join(dir, 'packages', 'cli', 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the repository root above ${__dirname}`);
}

export type Role = 'controller' | 'broker';

export interface ChaosNode {
  id: number;
  role: Role;
  host: string;
  port: number;
  httpPort: number;
  dataDir: string;
  /** Group id of the process when network faults are possible (1000 + id), else undefined. */
  gid: number | undefined;
  /** Broker only: where the power-loss hook records durable segment lengths. */
  durableFile: string;
}

export interface ChaosClusterOptions {
  controllers: number;
  brokers: number;
  /** Inside a private network namespace as root: own addresses, own gids, iptables available. */
  netns: boolean;
  overrides?: string[];
  log?: (line: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  readonly root: string;
  private readonly procs = new Map<number, ChildProcess>();
  private readonly tails = new Map<number, string[]>();
  private voters = '';
  private readonly rules: string[][] = [];

  private constructor(private readonly opts: ChaosClusterOptions) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-chaos-'));
  }

  static async create(opts: ChaosClusterOptions): Promise<ChaosCluster> {
    const c = new ChaosCluster(opts);
    const total = opts.controllers + opts.brokers;
    const ports = opts.netns ? [] : await freePorts(total * 2);
    for (let i = 0; i < total; i++) {
      const id = i + 1;
      const role: Role = i < opts.controllers ? 'controller' : 'broker';
      const host = opts.netns ? `127.0.0.${10 + id}` : '127.0.0.1';
      const dataDir = path.join(c.root, `node-${id}`);
      fs.mkdirSync(dataDir, { recursive: true });
      c.nodes.push({
        id,
        role,
        host,
        port: opts.netns ? (role === 'controller' ? 9193 : 9093) : (ports[2 * i] as number),
        httpPort: opts.netns ? 9300 : (ports[2 * i + 1] as number),
        dataDir,
        gid: opts.netns ? 1000 + id : undefined,
        durableFile: path.join(dataDir, 'durable-positions.jsonl'),
      });
    }
    c.voters = c.controllers().map((n) => `${n.id}@${n.host}:${n.port}`).join(',');
    return c;
  }

  controllers(): ChaosNode[] {
    return this.nodes.filter((n) => n.role === 'controller');
  }

  brokers(): ChaosNode[] {
    return this.nodes.filter((n) => n.role === 'broker');
  }

  brokerAddresses(): string[] {
    return this.brokers().map((n) => `${n.host}:${n.port}`);
  }

  node(id: number): ChaosNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isRunning(id: number): boolean {
    return this.procs.has(id);
  }

  /** The last lines a node printed (for failure reports). */
  tail(id: number): string {
    return (this.tails.get(id) ?? []).join('');
  }

  start(id: number): void {
    if (this.procs.has(id)) throw new Error(`node ${id} is already running`);
    const n = this.node(id);
    const listener = n.role === 'controller' ? `CONTROLLER://${n.host}:${n.port}` : `BROKER://${n.host}:${n.port}`;
    const args = [
      path.join(repoRoot(), 'packages/cli/dist/bin/strand.js'),
      'server',
      '-o', `process.roles=${n.role}`,
      '-o', `node.id=${n.id}`,
      '-o', `controller.quorum.voters=${this.voters}`,
      '-o', `listeners=${listener}`,
      '-o', `log.dirs=${path.join(n.dataDir, 'logs')}`,
      '-o', `metadata.log.dir=${path.join(n.dataDir, 'meta')}`,
      '-o', `http.listener=${n.host}:${n.httpPort}`,
      // Info: roles, registrations, ISR changes and elections, to explain a slow recovery.
      '-o', 'log.level=info',
      ...(n.role === 'broker' ? ['-o', `log.test.durable.positions.file=${n.durableFile}`] : []),
      ...(this.opts.overrides ?? []).filter((o) => n.role === 'broker' || !o.startsWith('broker:')).map((o) => o.replace(/^broker:/, '')).flatMap((o) => ['-o', o]),
    ];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STRAND_')));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env, ...(n.gid === undefined ? {} : { gid: n.gid }) });
    const tail = this.tails.get(id) ?? [];
    this.tails.set(id, tail);
    // Every incarnation's output, in the node's data directory (kept with --keep-data).
    const logFile = fs.createWriteStream(path.join(n.dataDir, 'node.log'), { flags: 'a' });
    logFile.on('error', () => undefined); // a full disk must not fail the run
    const keep = (chunk: Buffer): void => {
      logFile.write(chunk);
      tail.push(chunk.toString());
      if (tail.length > 200) tail.splice(0, tail.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('close', () => logFile.end());
    child.on('exit', (code, sig) => {
      if (this.procs.get(id) === child) this.procs.delete(id);
      if (sig !== 'SIGKILL' && sig !== 'SIGTERM' && code !== 0) this.opts.log?.(`node ${id} exited on its own: code ${code} signal ${sig}\n${this.tail(id).slice(-2000)}`);
    });
    this.procs.set(id, child);
  }

  startAll(): void {
    for (const n of this.nodes) this.start(n.id);
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

  /** SIGKILL (a crash). A paused process is killed too (SIGKILL needs no SIGCONT). */
  async kill(id: number): Promise<void> {
    const p = this.procs.get(id);
    if (p === undefined) return;
    p.kill('SIGKILL');
    await this.exited(p, 10_000);
    this.procs.delete(id);
  }

  /** SIGTERM, a graceful stop; SIGKILL after `timeoutMs`. */
  async stop(id: number, timeoutMs = 15_000): Promise<void> {
    const p = this.procs.get(id);
    if (p === undefined) return;
    p.kill('SIGCONT');
    p.kill('SIGTERM');
    try {
      await this.exited(p, timeoutMs);
    } catch {
      await this.kill(id);
    }
    this.procs.delete(id);
  }

  pause(id: number): void {
    this.procs.get(id)?.kill('SIGSTOP');
  }

  resume(id: number): void {
    this.procs.get(id)?.kill('SIGCONT');
  }

  async restart(id: number): Promise<void> {
    await this.kill(id);
    this.start(id);
  }

  /**
   * Simulated power loss of a (killed) broker: every segment file is cut to the length last
   * recorded as fdatasynced; segment files never recorded (created after the last fsync) are
   * deleted with their indexes. Returns the bytes dropped.
   */
  applyPowerLoss(id: number): { bytesDropped: number; filesDeleted: number } {
    if (this.procs.has(id)) throw new Error(`node ${id} is running; kill it first`);
    const n = this.node(id);
    const last = new Map<string, { baseOffset: number; bytes: number }[]>();
    const text = fs.existsSync(n.durableFile) ? fs.readFileSync(n.durableFile, 'utf8') : '';
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const rec = JSON.parse(line) as { dir: string; segments: { baseOffset: number; bytes: number }[] };
        last.set(rec.dir, rec.segments);
      } catch {
        // a torn last line (the kill came mid-write): the line before it stands
      }
    }
    let bytesDropped = 0;
    let filesDeleted = 0;
    for (const [dir, segments] of last) {
      if (!fs.existsSync(dir)) continue;
      const keep = new Map(segments.map((s) => [`${String(s.baseOffset).padStart(20, '0')}.log`, s.bytes]));
      for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.log'))) {
        const file = path.join(dir, f);
        const size = fs.statSync(file).size;
        const bytes = keep.get(f);
        if (bytes === undefined) {
          bytesDropped += size;
          filesDeleted++;
          const stem = f.slice(0, -'.log'.length);
          for (const ext of ['.log', '.index', '.timeindex']) fs.rmSync(path.join(dir, stem + ext), { force: true });
        } else if (size > bytes) {
          bytesDropped += size - bytes;
          fs.truncateSync(file, bytes);
        }
      }
    }
    return { bytesDropped, filesDeleted };
  }

  /**
   * A replaced disk: deletes a (killed) broker's whole log directory, meta.properties included,
   * and its power-loss record. Returns the bytes deleted.
   */
  wipeLogs(id: number): number {
    if (this.procs.has(id)) throw new Error(`node ${id} is running; kill it first`);
    const n = this.node(id);
    const logs = path.join(n.dataDir, 'logs');
    const size = (p: string): number => {
      const st = fs.statSync(p);
      return st.isDirectory() ? fs.readdirSync(p).reduce((sum, f) => sum + size(path.join(p, f)), 0) : st.size;
    };
    const bytes = fs.existsSync(logs) ? size(logs) : 0;
    fs.rmSync(logs, { recursive: true, force: true });
    fs.rmSync(n.durableFile, { force: true });
    return bytes;
  }

  /** GET http://node/path; resolves with the status and body (0 when it does not answer). */
  httpGet(id: number, urlPath: string, timeoutMs = 1500): Promise<{ status: number; body: string }> {
    const n = this.node(id);
    return new Promise((resolve) => {
      const req = http.get({ host: n.host, port: n.httpPort, path: urlPath, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: 0, body: '' }));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ status: 0, body: '' }));
    });
  }

  async isReady(id: number): Promise<boolean> {
    return (await this.httpGet(id, '/readyz')).status === 200;
  }

  /** Waits (bounded, monotonic) until /readyz answers 200; false on timeout. */
  async waitReady(id: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (await this.isReady(id)) return true;
      await sleep(200);
    }
    return false;
  }

  /** The node id of the active controller per /metrics (strand_controller_active_count 1), if any. */
  async activeController(): Promise<number | undefined> {
    for (const n of this.controllers()) {
      if (!this.isRunning(n.id)) continue;
      const m = await this.httpGet(n.id, '/metrics');
      if (/^strand_controller_active_count\{[^}]*\} 1$/m.test(m.body)) return n.id;
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // network faults (netns only)

  get canPartition(): boolean {
    return this.opts.netns;
  }

  private iptables(args: string[]): void {
    const r = spawnSync('iptables', ['-w', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`iptables ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  }

  /** Drops what `from`'s process sends to `to`'s address (probability < 1: random loss). */
  cut(from: number, to: number, probability = 1): void {
    if (!this.opts.netns) throw new Error('network faults need the private network namespace (root)');
    const a = this.node(from);
    const b = this.node(to);
    const rule = ['OUTPUT', '-m', 'owner', '--gid-owner', String(a.gid), '-d', b.host, ...(probability < 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', String(probability)] : []), '-j', 'DROP'];
    this.iptables(['-A', ...rule]);
    this.rules.push(rule);
  }

  /** Both directions. */
  cutBoth(a: number, b: number, probability = 1): void {
    this.cut(a, b, probability);
    this.cut(b, a, probability);
  }

  /** Removes every rule this cluster added. */
  heal(): void {
    for (const rule of this.rules.splice(0)) this.iptables(['-D', ...rule]);
  }

  get cutCount(): number {
    return this.rules.length;
  }

  /** Kills every process (resuming paused ones first) and removes the temp directories. */
  async close(keepData = false): Promise<void> {
    if (this.opts.netns && this.rules.length > 0) {
      try {
        this.heal();
      } catch {
        // the namespace goes with the run anyway
      }
    }
    for (const [id, p] of [...this.procs]) {
      try {
        p.kill('SIGCONT');
        p.kill('SIGKILL');
        await this.exited(p, 10_000);
      } catch {
        // already gone
      }
      this.procs.delete(id);
    }
    if (keepData) this.opts.log?.(`data and node logs kept in ${this.root} (node-N/node.log)`);
    else fs.rmSync(this.root, { recursive: true, force: true });
  }
}
