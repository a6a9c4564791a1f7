/**
 * `strand dev`: a three-node local cluster on loopback for development. Each node is its own
 * `strand server` process with combined roles (controller + broker), data under `./data/node-N`
 * and logs in `./data/node-N/server.log`. Prints the bootstrap address once every broker is
 * registered and unfenced, stays in the foreground, and on Ctrl-C (or SIGTERM) stops every node
 * cleanly (SIGTERM, then SIGKILL after a grace period).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BrokerClient, type MetadataResponse } from '@strand/protocol';
import { withMallocTunables } from '../malloc-tunables';

export interface DevOptions {
  dataDir: string;
  nodes: number;
  brokerBasePort: number;
  controllerBasePort: number;
  httpBasePort: number;
  /** Extra key=value overrides for every node. */
  overrides: string[];
  /** Copy node logs to stdout, prefixed. */
  verbose: boolean;
  out: (line: string) => void;
}

interface DevNode {
  id: number;
  brokerPort: number;
  controllerPort: number;
  httpPort: number;
  dir: string;
  proc: ChildProcess | null;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 20_000;

function metadataOf(address: string): Promise<MetadataResponse> {
  const client = new BrokerClient(address, grpc.credentials.createInsecure());
  return new Promise<MetadataResponse>((resolve, reject) => {
    client.metadata({ topics: [], allowAutoTopicCreation: false }, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (err, res) => {
      client.close();
      if (err || res === undefined) reject(err ?? new Error('no response'));
      else resolve(res);
    });
  });
}

export async function runDevCluster(opts: DevOptions): Promise<number> {
  const bin = path.resolve(__dirname, '../bin/strand.js');
  const nodes: DevNode[] = Array.from({ length: opts.nodes }, (_, i) => ({
    id: i + 1,
    brokerPort: opts.brokerBasePort + i,
    controllerPort: opts.controllerBasePort + i,
    httpPort: opts.httpBasePort + i,
    dir: path.resolve(opts.dataDir, `node-${i + 1}`),
    proc: null,
  }));
  const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',');
  const bootstrap = nodes.map((n) => `127.0.0.1:${n.brokerPort}`).join(',');
  let stopping = false;

  const start = (n: DevNode): void => {
    fs.mkdirSync(n.dir, { recursive: true });
    const logFile = fs.openSync(path.join(n.dir, 'server.log'), 'a');
    const args = [
      bin,
      'server',
      '-o', `node.id=${n.id}`,
      '-o', 'process.roles=broker,controller',
      '-o', `controller.quorum.voters=${voters}`,
      '-o', `listeners=BROKER://127.0.0.1:${n.brokerPort},CONTROLLER://127.0.0.1:${n.controllerPort}`,
      '-o', `log.dirs=${path.join(n.dir, 'logs')}`,
      '-o', `http.listener=127.0.0.1:${n.httpPort}`,
      // Fewer than 3 nodes: __consumer_offsets could never reach its default RF 3.
      ...(opts.nodes < 3 ? ['-o', `offsets.topic.replication.factor=${opts.nodes}`] : []),
      ...opts.overrides.flatMap((o) => ['-o', o]),
    ];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STRAND_')));
    env['GLIBC_TUNABLES'] = withMallocTunables(env['GLIBC_TUNABLES']);
    // Node flags given to `strand dev` (e.g. --cpu-prof) apply to every node.
    const proc = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    n.proc = proc;
    const sink = (chunk: Buffer): void => {
      fs.writeSync(logFile, chunk);
      if (opts.verbose) for (const line of chunk.toString().split('\n')) if (line.trim() !== '') opts.out(`[node-${n.id}] ${line}`);
    };
    proc.stdout?.on('data', sink);
    proc.stderr?.on('data', sink);
    proc.on('exit', (code, signal) => {
      fs.closeSync(logFile);
      n.proc = null;
      if (!stopping) opts.out(`strand dev: node ${n.id} exited (${signal ?? `code ${code}`}); see ${path.join(n.dir, 'server.log')}`);
    });
  };

  const stopAll = async (): Promise<void> => {
    stopping = true;
    const running = nodes.filter((n) => n.proc !== null);
    await Promise.all(
      running.map(
        (n) =>
          new Promise<void>((resolve) => {
            const p = n.proc as ChildProcess;
            const t = setTimeout(() => p.kill('SIGKILL'), STOP_GRACE_MS);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
  };

  opts.out(`strand dev: starting ${opts.nodes} nodes (controller+broker) with data in ${path.resolve(opts.dataDir)}`);
  for (const n of nodes) start(n);

  let exitCode = 0;
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      opts.out(`\nstrand dev: ${sig}, stopping every node...`);
      void stopAll().then(() => {
        opts.out('strand dev: stopped');
        resolve();
      });
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
  });

  // Ready when every broker is listed (registered and unfenced) by a broker's Metadata.
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let ready = false;
  while (!stopping && performance.now() < deadline) {
    try {
      const md = await metadataOf(`127.0.0.1:${(nodes[0] as DevNode).brokerPort}`);
      if (md.brokers.length === nodes.length) {
        ready = true;
        break;
      }
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (ready) {
    opts.out(`strand dev: cluster ready. Bootstrap servers: ${bootstrap}`);
    opts.out(`strand dev: metrics and health on ${nodes.map((n) => `http://127.0.0.1:${n.httpPort}/metrics`).join(', ')}`);
    opts.out('strand dev: press Ctrl-C to stop every node.');
  } else if (!stopping) {
    opts.out(`strand dev: the cluster did not become ready within ${READY_TIMEOUT_MS / 1000} s; see the logs under ${path.resolve(opts.dataDir)}`);
    await stopAll();
    exitCode = 1;
    return exitCode;
  }
  await done;
  return exitCode;
}
