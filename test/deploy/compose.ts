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
      environment: environment(raw['environment'], `service ${name} environment`),
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
}

/** ENTRYPOINT, CMD (exec form) and the last WORKDIR of the Dockerfile's final stage. */
export function loadImageSpec(file = DOCKERFILE): ImageSpec {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let start = 0;
  lines.forEach((l, i) => {
    if (/^FROM\s/i.test(l)) start = i;
  });
  const spec: Partial<ImageSpec> = {};
  for (const l of lines.slice(start)) {
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
  return { entrypoint: spec.entrypoint, cmd: spec.cmd, workdir: spec.workdir };
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

/** Rewrites hosts, ports and the data volume in one value for `service` (see the file comment). */
export function rewrite(value: string, service: string, services: readonly string[], ports: PortMap, dataDir: string): string {
  let out = value.split(DATA_VOLUME).join(dataDir);
  out = out.replace(/(^|[^A-Za-z0-9.-])(0\.0\.0\.0|[a-z][a-z0-9-]*):(\d+)\b/g, (all, pre: string, host: string, port: string) => {
    if (host !== '0.0.0.0' && !services.includes(host)) return all;
    const owner = host === '0.0.0.0' ? service : host;
    const mapped = ports.get(`${owner}:${port}`);
    if (mapped === undefined) throw new Error(`service ${service} refers to ${host}:${port}, which ${owner} does not bind`);
    return `${pre}127.0.0.1:${mapped}`;
  });
  return out;
}
