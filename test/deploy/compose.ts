/**
 * Reading deploy/docker-compose.yml and deploy/docker/Dockerfile the way docker-compose and the
 * image would, and mapping a service onto this machine as a plain process:
 *
 * - the compose file is parsed with YAML merge keys (`<<: *anchor`), as compose does; services in
 *   a profile are not started by a plain `docker-compose up`, so they are left out here too;
 * - the process runs the image's ENTRYPOINT (from the Dockerfile) with the service's `command`
 *   (or the Dockerfile's CMD), `node` being this Node and `/app/` this repository (the image's
 *   copy of it), in the image's final WORKDIR;
 * - every service shares one loopback address, so each (service, container port) pair that the
 *   service binds (its `STRAND_LISTENERS` entries and its HTTP listener) gets its own free port
 *   on 127.0.0.1, and every `host:port` in the environment and arguments is rewritten
 *   consistently: `0.0.0.0:P` in service S and `S:P` anywhere both become `127.0.0.1:<port of
 *   (S, P)>`; a reference to a port that service does not bind is an error;
 * - a host port a service publishes (`ports: ["19093:19093"]`) is what clients on the host use:
 *   `localhost:19093` or `127.0.0.1:19093` anywhere becomes `127.0.0.1:<port of (S, 19093's
 *   container port)>` for the service S that publishes it;
 * - `${VAR:-default}` in environment values is interpolated as docker-compose does, with the
 *   default (the test does not read the caller's environment);
 * - `/var/lib/strand` (the data volume) becomes a per-service temporary directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';

export const REPO = path.resolve(__dirname, '../..');
export const COMPOSE_FILE = path.join(REPO, 'deploy/docker-compose.yml');
export const DOCKERFILE = path.join(REPO, 'deploy/docker/Dockerfile');
export const DATA_VOLUME = '/var/lib/strand';
export const APP_DIR = '/app';

export interface ComposeService {
  name: string;
  environment: Record<string, string>;
  command: string[] | null;
  entrypoint: string[] | null;
  dependsOn: string[];
  profiles: string[];
  ports: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, what: string): string[] | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') throw new Error(`${what}: use the list form, not a shell string`);
  if (!Array.isArray(v)) throw new Error(`${what}: not a list`);
  return v.map((x) => String(x));
}

function environment(v: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const i = s.indexOf('=');
      if (i <= 0) throw new Error(`${what}: '${s}' is not NAME=value`);
      out[s.slice(0, i)] = s.slice(i + 1);
    }
    return out;
  }
  if (!isRecord(v)) throw new Error(`${what}: not a map or list`);
  for (const [k, x] of Object.entries(v)) out[k] = x === null || x === undefined ? '' : String(x);
  return out;
}

/** docker-compose interpolation of `${VAR:-default}` / `${VAR-default}`, always with the default. */
export function interpolate(value: string, what: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_all, name: string, dflt: string | undefined) => {
    if (dflt === undefined) throw new Error(`${what}: \${${name}} has no default; give one (\${${name}:-value}) so the file works without it`);
    return dflt;
  });
}

/** The services of a compose file, with merge keys resolved. */
export function loadCompose(file = COMPOSE_FILE): ComposeService[] {
  const doc: unknown = parseYaml(fs.readFileSync(file, 'utf8'), { merge: true });
  if (!isRecord(doc) || !isRecord(doc['services'])) throw new Error(`${file}: no services`);
  return Object.entries(doc['services']).map(([name, raw]) => {
    if (!isRecord(raw)) throw new Error(`service ${name}: not a map`);
    const dep = raw['depends_on'];
    const dependsOn = Array.isArray(dep) ? dep.map((d) => String(d)) : isRecord(dep) ? Object.keys(dep) : [];
    return {
      name,
      environment: Object.fromEntries(Object.entries(environment(raw['environment'], `service ${name} environment`)).map(([k, x]) => [k, interpolate(x, `service ${name} ${k}`)])),
      command: stringList(raw['command'], `service ${name} command`),
      entrypoint: stringList(raw['entrypoint'], `service ${name} entrypoint`),
      dependsOn,
      profiles: stringList(raw['profiles'], `service ${name} profiles`) ?? [],
      ports: (stringList(raw['ports'], `service ${name} ports`) ?? []),
    };
  });
}

export interface ImageSpec {
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  /** The final stage's ENV (`ENV KEY=VALUE` lines, one key each). */
  env: Record<string, string>;
}

/** ENTRYPOINT, CMD (exec form), the last WORKDIR and the ENV of the Dockerfile's final stage. */
export function loadImageSpec(file = DOCKERFILE): ImageSpec {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let start = 0;
  lines.forEach((l, i) => {
    if (/^FROM\s/i.test(l)) start = i;
  });
  const spec: Partial<ImageSpec> = {};
  const env: Record<string, string> = {};
  for (const l of lines.slice(start)) {
    const e = /^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/i.exec(l.trim());
    if (e) env[e[1] as string] = e[2] as string;
    else if (/^ENV\s/i.test(l.trim())) throw new Error(`${file}: write ENV as KEY=VALUE, one per line: ${l.trim()}`);
    const m = /^(ENTRYPOINT|CMD|WORKDIR)\s+(.*)$/i.exec(l.trim());
    if (!m) continue;
    const kind = (m[1] as string).toUpperCase();
    const arg = (m[2] as string).trim();
    if (kind === 'WORKDIR') {
      spec.workdir = arg;
      continue;
    }
    const parsed: unknown = JSON.parse(arg);
    if (!Array.isArray(parsed)) throw new Error(`${kind} must use the exec (JSON) form`);
    if (kind === 'ENTRYPOINT') spec.entrypoint = parsed.map((x) => String(x));
    else spec.cmd = parsed.map((x) => String(x));
  }
  if (!spec.entrypoint || !spec.cmd || !spec.workdir) throw new Error(`${file}: final stage lacks ENTRYPOINT, CMD or WORKDIR`);
  return { entrypoint: spec.entrypoint, cmd: spec.cmd, workdir: spec.workdir, env };
}

/** `NAME://host:port,...` → the container ports a service binds. */
export function listenerPorts(value: string | undefined): number[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => /:(\d+)$/.exec(s.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

/** The port map: `${service}:${containerPort}` → host (loopback) port. */
export type PortMap = Map<string, number>;

/** Published host port → the service publishing it and the container port behind it. */
export type PublishedPorts = Map<number, { service: string; containerPort: number }>;

/** The `ports:` entries (`HOST:CONTAINER`, optionally `IP:HOST:CONTAINER`) of every service. */
export function publishedPorts(services: readonly ComposeService[]): PublishedPorts {
  const out: PublishedPorts = new Map();
  for (const s of services) {
    for (const p of s.ports) {
      const m = /^(?:[\d.]+:)?(\d+):(\d+)$/.exec(p);
      if (!m) throw new Error(`service ${s.name}: port '${p}' is not HOST:CONTAINER`);
      const host = Number(m[1]);
      if (out.has(host)) throw new Error(`host port ${host} is published twice`);
      out.set(host, { service: s.name, containerPort: Number(m[2]) });
    }
  }
  return out;
}

/** Rewrites hosts, ports and the data volume in one value for `service` (see the file comment). */
export function rewrite(value: string, service: string, services: readonly string[], ports: PortMap, dataDir: string, published: PublishedPorts = new Map()): string {
  let out = value.split(DATA_VOLUME).join(dataDir);
  out = out.replace(/(^|[^A-Za-z0-9.-])(0\.0\.0\.0|127\.0\.0\.1|localhost|[a-z][a-z0-9-]*):(\d+)\b/g, (all, pre: string, host: string, port: string) => {
    if (host === 'localhost' || host === '127.0.0.1') {
      // A host-published port: the service publishing it, at the container port behind it.
      const pub = published.get(Number(port));
      if (pub === undefined) throw new Error(`service ${service} refers to ${host}:${port}, which no service publishes`);
      const mapped = ports.get(`${pub.service}:${pub.containerPort}`);
      if (mapped === undefined) throw new Error(`${pub.service} publishes ${port} for container port ${pub.containerPort}, which it does not bind`);
      return `${pre}127.0.0.1:${mapped}`;
    }
    if (host !== '0.0.0.0' && !services.includes(host)) return all;
    const owner = host === '0.0.0.0' ? service : host;
    const mapped = ports.get(`${owner}:${port}`);
    if (mapped === undefined) throw new Error(`service ${service} refers to ${host}:${port}, which ${owner} does not bind`);
    return `${pre}127.0.0.1:${mapped}`;
  });
  return out;
}
