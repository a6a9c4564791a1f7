/**
 * The docker-compose cluster, run as processes: every service of deploy/docker-compose.yml that a
 * plain `docker-compose up` starts (three controllers, three brokers) is spawned with exactly the
 * environment and arguments the file gives it, through the Dockerfile's ENTRYPOINT/CMD/WORKDIR,
 * mapped onto one machine as test/deploy/compose.ts describes (each service's bound ports to
 * free loopback ports, `service:port` and `0.0.0.0:port` rewritten to match, the data volume to
 * a temp directory). When the server has the `http.listener` key, each service's HTTP listener
 * (compose leaves it at the default 0.0.0.0:9300) is mapped the same way and services start in
 * depends_on order only once their dependencies answer /readyz with 200, as compose's
 * `service_healthy` does; every node must then answer /readyz. Either way, every broker has two
 * listeners: Metadata asked on INTERNAL (the compose network) lists all three brokers at their
 * INTERNAL advertised addresses, and asked on EXTERNAL (the host-published ports) at their
 * EXTERNAL ones (`localhost:<published port>`, mapped); a topic created without a replication
 * factor gets the compose file's default of 3 (replicated over INTERNAL); idempotent records
 * produced to every partition by a client that knows only the EXTERNAL addresses are read back
 * in order by one that knows only the INTERNAL addresses, and the other way round. Then SIGTERM
 * stops brokers and controllers cleanly (exit code 0), as `docker-compose stop` would. Everything is killed and removed in `finally`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CreateTopicsRequest, CreateTopicsResponse, InitProducerIdRequest, InitProducerIdResponse } from '@strand/protocol';
import { freePorts } from '../support/free-port';
import { TestBrokers } from '../support/test-producer';
import { APP_DIR, REPO, listenerPorts, loadCompose, loadImageSpec, publishedPorts, rewrite, type ComposeService, type PortMap } from './compose';

jest.setTimeout(240_000);

const CLI_DIST = path.join(REPO, 'packages/cli/dist/index.js');
const DEFAULT_HTTP_LISTENER = '0.0.0.0:9300';

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e: unknown) {
      last = e;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function httpStatus(port: number, pathName: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Whether the built server (what the processes run) knows `http.listener`. */
async function serverHasHttp(): Promise<boolean> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(CLI_DIST)}).SERVER_CONFIG.names()))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (c: Buffer) => (s += c.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`exit ${code}`))));
  });
  const names: unknown = JSON.parse(out);
  return Array.isArray(names) && names.includes('http.listener');
}

interface Running {
  service: ComposeService;
  proc: ChildProcess;
  log: string[];
  httpPort: number | null;
  exit: Promise<number | null>;
}

test('the compose cluster starts as processes, turns ready, and serves clients on both its INTERNAL and EXTERNAL listeners', async () => {
  const image = loadImageSpec();
  const services = loadCompose().filter((s) => s.profiles.length === 0);
  const names = services.map((s) => s.name);
  const published = publishedPorts(services);
  const withHttp = await serverHasHttp();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-compose-'));
  const running = new Map<string, Running>();
  const clients: TestBrokers[] = [];
  try {
    // Ports: each (service, container port) it binds gets a free loopback port.
    const binds: [string, number][] = [];
    for (const s of services) {
      for (const p of listenerPorts(s.environment['STRAND_LISTENERS'])) binds.push([s.name, p]);
      if (withHttp) binds.push([s.name, Number(/:(\d+)$/.exec(s.environment['STRAND_HTTP_LISTENER'] ?? DEFAULT_HTTP_LISTENER)?.[1])]);
    }
    const free = await freePorts(binds.length);
    const ports: PortMap = new Map(binds.map(([s, p], i) => [`${s}:${p}`, free[i] as number]));

    const start = (s: ComposeService): Running => {
      const dataDir = path.join(root, s.name);
      fs.mkdirSync(dataDir, { recursive: true });
      const map = (v: string): string => rewrite(v, s.name, names, ports, dataDir, published);
      const env: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !e[0].startsWith('STRAND_') && e[1] !== undefined));
      Object.assign(env, image.env);
      for (const [k, v] of Object.entries(s.environment)) env[k] = map(v);
      let httpPort: number | null = null;
      if (withHttp) {
        env['STRAND_HTTP_LISTENER'] = map(s.environment['STRAND_HTTP_LISTENER'] ?? DEFAULT_HTTP_LISTENER);
        httpPort = Number(/:(\d+)$/.exec(env['STRAND_HTTP_LISTENER'])?.[1]);
      }
      // ENTRYPOINT + (command or CMD): `node` is this Node, /app/ is this repository.
      const argv = [...(s.entrypoint ?? image.entrypoint), ...(s.command ?? image.cmd)].map((a) => (a.startsWith(`${APP_DIR}/`) ? path.join(REPO, a.slice(APP_DIR.length + 1)) : map(a)));
      expect(argv[0]).toBe('node');
      const proc = spawn(process.execPath, argv.slice(1), { cwd: map(image.workdir), env, stdio: ['ignore', 'pipe', 'pipe'] });
      const log: string[] = [];
      const keep = (c: Buffer): void => {
        log.push(c.toString());
        if (log.length > 500) log.splice(0, log.length - 500);
      };
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
      return { service: s, proc, log, httpPort, exit };
    };
    const ready = async (r: Running): Promise<void> => {
      if (r.httpPort === null) return;
      const port = r.httpPort;
      await until(`${r.service.name} /readyz`, async () => {
        if (r.proc.exitCode !== null) throw new Error(`${r.service.name} exited with ${r.proc.exitCode}: ${r.log.join('').slice(-2000)}`);
        return (await httpStatus(port, '/readyz')) === 200 ? true : undefined;
      }, 120_000);
    };

    // depends_on order: a service starts once its dependencies are ready (service_healthy).
    const started = new Map<string, Promise<void>>();
    const launch = (s: ComposeService): Promise<void> => {
      let p = started.get(s.name);
      if (p === undefined) {
        p = (async () => {
          await Promise.all(s.dependsOn.map((d) => {
            const dep = services.find((x) => x.name === d);
            if (dep === undefined) throw new Error(`${s.name} depends on unknown ${d}`);
            return launch(dep);
          }));
          const r = start(s);
          running.set(s.name, r);
          await ready(r);
        })();
        started.set(s.name, p);
      }
      return p;
    };
    await Promise.all(services.map(launch));

    // Every broker registered both advertised (mapped) addresses; each listener answers with its own.
    const brokerServices = services.filter((s) => s.environment['STRAND_PROCESS_ROLES'] === 'broker');
    const advertisedOn = (listener: string): { nodeId: number; address: string }[] =>
      brokerServices
        .map((s) => {
          const entry = (s.environment['STRAND_ADVERTISED_LISTENERS'] ?? '').split(',').find((l) => l.startsWith(`${listener}://`));
          if (entry === undefined) throw new Error(`${s.name} advertises no ${listener} listener`);
          return { nodeId: Number(s.environment['STRAND_NODE_ID']), address: rewrite(entry.slice(listener.length + 3), s.name, names, ports, '', published) };
        })
        .sort((a, b) => a.nodeId - b.nodeId);
    const internal = advertisedOn('INTERNAL');
    const external = advertisedOn('EXTERNAL');
    expect(new Set([...internal, ...external].map((e) => e.address)).size).toBe(6);
    const inside = new TestBrokers(internal.map((e) => e.address));
    const outside = new TestBrokers(external.map((e) => e.address));
    clients.push(inside, outside);
    const brokersIn = (md: { brokers: { nodeId: number; host: string; port: number }[] }): string => JSON.stringify(md.brokers.map((b) => ({ nodeId: b.nodeId, address: `${b.host}:${b.port}` })).sort((a, b) => a.nodeId - b.nodeId));
    await until('all brokers in the INTERNAL metadata', async () => (brokersIn(await inside.metadata([])) === JSON.stringify(internal) ? true : undefined), 120_000);
    await until('all brokers in the EXTERNAL metadata', async () => (brokersIn(await outside.metadata([])) === JSON.stringify(external) ? true : undefined), 30_000);
    if (withHttp) for (const r of running.values()) expect(await httpStatus(r.httpPort as number, '/readyz')).toBe(200);

    // A topic without a replication factor: the brokers' STRAND_DEFAULT_REPLICATION_FACTOR=3.
    const created = await outside.call<CreateTopicsRequest, CreateTopicsResponse>(external[0]?.address as string, (c, r, m, o, cb) => c.createTopics(r, m, o, cb), {
      topics: [{ name: 'compose', numPartitions: 3, replicationFactor: -1, assignments: [], configs: [] }],
      validateOnly: false,
    }, 30_000);
    expect(created.topics[0]?.errorCode).toBe(0);
    const md = await until('leaders and full ISRs for compose', async () => {
      const m = await inside.metadata(['compose']);
      const parts = m.topics[0]?.partitions ?? [];
      return parts.length === 3 && parts.every((p) => p.leaderId >= 0 && p.isr.length === 3) ? m : undefined;
    }, 60_000);
    for (const p of md.topics[0]?.partitions ?? []) expect(p.replicas.length).toBe(3);

    // Written from the host (EXTERNAL), read inside the network (INTERNAL), and the other way round.
    for (const [writer, reader, via] of [[outside, inside, external], [inside, outside, internal]] as const) {
      const pid = await writer.call<InitProducerIdRequest, InitProducerIdResponse>(via[1]?.address as string, (c, r, m, o, cb) => c.initProducerId(r, m, o, cb), { transactionalId: undefined, transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1 } as InitProducerIdRequest);
      expect(pid.errorCode).toBe(0);
      const producer = { id: pid.producerId, epoch: pid.producerEpoch };
      const base = writer === outside ? 0 : 4;
      for (let partition = 0; partition < 3; partition++) {
        const values = [0, 1, 2, 3].map((i) => `p${partition}-r${base + i}`);
        for (const [seq, v] of values.entries()) expect(await writer.sendIdempotent('compose', partition, v, producer, seq, performance.now() + 60_000)).toBe(base + seq);
        const all = await reader.readAll('compose', partition);
        expect(all.slice(base)).toEqual(values.map((value, i) => ({ offset: base + i, value })));
      }
    }
    for (const c of clients.splice(0)) c.close();

    // docker-compose stop: SIGTERM, brokers first (their controlled shutdown needs the quorum).
    const stopAll = async (rs: Running[]): Promise<void> => {
      for (const r of rs) r.proc.kill('SIGTERM');
      const codes = await Promise.all(rs.map((r) => Promise.race([r.exit, new Promise<string>((resolve) => setTimeout(() => resolve('no exit within 45 s'), 45_000).unref())])));
      expect(codes).toEqual(rs.map(() => 0));
    };
    const all = [...running.values()];
    await stopAll(all.filter((r) => r.service.environment['STRAND_PROCESS_ROLES'] === 'broker'));
    await stopAll(all.filter((r) => r.service.environment['STRAND_PROCESS_ROLES'] !== 'broker'));
  } catch (e: unknown) {
    for (const r of running.values()) console.log(`--- ${r.service.name} (last output) ---\n${r.log.join('').slice(-3000)}`);
    throw e;
  } finally {
    for (const c of clients) c.close();
    for (const r of running.values()) {
      if (r.proc.exitCode === null && r.proc.signalCode === null) {
        r.proc.kill('SIGKILL');
        await Promise.race([r.exit, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
});
