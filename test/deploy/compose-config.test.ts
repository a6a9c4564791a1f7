/**
 * deploy/docker-compose.yml, offline: Debian's `docker-compose config` (1.29, no engine needed)
 * accepts it and rejects a deliberately broken copy; the services the process test starts are
 * read the same way by our parser as by docker-compose (merge keys resolved, same environment
 * and command); every STRAND_* variable names a real `strand server` key (the server rejects
 * unknown ones at start-up); roles, node ids, voters, start order and published ports hang
 * together. Without the docker-compose binary the compose-config checks print a notice and pass
 * (`.ci/run` installs it); the structural checks always run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { COMPOSE_FILE, REPO, listenerPorts, loadCompose, loadImageSpec } from './compose';
import { withMallocTunables } from '@strand/cli';

const CLI_DIST = path.join(REPO, 'packages/cli/dist/index.js');

function dockerCompose(): string | null {
  const r = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

function serverKeys(): string[] {
  const out = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(CLI_DIST)}).SERVER_CONFIG.names()))`], { encoding: 'utf8', timeout: 20_000 });
  const parsed: unknown = JSON.parse(out);
  if (!Array.isArray(parsed)) throw new Error('SERVER_CONFIG.names() is not a list');
  return parsed.map((x) => String(x));
}

const version = dockerCompose();
const withCompose = version === null ? test.skip : test;
if (version === null) console.log('NOTICE: docker-compose is not installed; skipping `docker-compose config` validation (apt-get install docker-compose)');

function composeConfig(file: string): { status: number | null; stdout: string; stderr: string } {
  // A clean environment: no STRAND_IMAGE etc. from the caller changes the rendering.
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: os.tmpdir() };
  const r = spawnSync('docker-compose', ['-f', file, '--project-directory', path.dirname(file), 'config'], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

withCompose('docker-compose config accepts the compose file and agrees with our parser', () => {
  const r = composeConfig(COMPOSE_FILE);
  expect(r.stderr).not.toMatch(/ERROR/);
  expect(r.status).toBe(0);
  const rendered: unknown = parseYaml(r.stdout);
  if (typeof rendered !== 'object' || rendered === null) throw new Error('no rendering');
  const renderedServices = (rendered as { services: Record<string, { environment?: Record<string, string>; command?: string[] }> }).services;
  for (const s of loadCompose()) {
    const theirs = renderedServices[s.name];
    expect(theirs).toBeDefined();
    expect(theirs?.environment ?? {}).toEqual(s.environment);
    if (s.profiles.length === 0) expect(theirs?.command).toEqual(s.command);
  }
});

withCompose('docker-compose config rejects a broken compose file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-compose-'));
  try {
    const broken = fs.readFileSync(COMPOSE_FILE, 'utf8').replace('condition: service_healthy', 'condition: service_sometimes');
    const file = path.join(dir, 'docker-compose.yml');
    fs.writeFileSync(file, broken);
    const r = composeConfig(file);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/service_sometimes|condition/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every STRAND_* variable is a real server key, and the cluster hangs together', () => {
  const keys = new Set(serverKeys().map((k) => `STRAND_${k.replace(/[.-]/g, '_').toUpperCase()}`));
  const services = loadCompose();
  for (const s of services) for (const name of Object.keys(s.environment)) if (name.startsWith('STRAND_')) expect({ service: s.name, name, known: keys.has(name) }).toEqual({ service: s.name, name, known: true });

  const image = loadImageSpec();
  expect(image.entrypoint).toEqual(['node', '/app/packages/cli/dist/bin/strand.js']);
  expect(image.workdir).toBe('/var/lib/strand');
  // The image runs its node with the malloc settings `strand dev` gives its nodes.
  expect(image.env['GLIBC_TUNABLES']).toBe(withMallocTunables(undefined));

  const started = services.filter((s) => s.profiles.length === 0);
  const controllers = started.filter((s) => s.environment['STRAND_PROCESS_ROLES'] === 'controller');
  const brokers = started.filter((s) => s.environment['STRAND_PROCESS_ROLES'] === 'broker');
  expect(controllers.map((s) => s.name)).toEqual(['controller-1', 'controller-2', 'controller-3']);
  expect(brokers.map((s) => s.name)).toEqual(['broker-1', 'broker-2', 'broker-3']);
  // Node ids unique across the cluster; every controller is a voter at its own address and port.
  const ids = started.map((s) => s.environment['STRAND_NODE_ID']);
  expect(new Set(ids).size).toBe(ids.length);
  for (const s of started) expect(s.environment['STRAND_CONTROLLER_QUORUM_VOTERS']).toBe(controllers.map((c) => `${c.environment['STRAND_NODE_ID']}@${c.name}:${listenerPorts(c.environment['STRAND_LISTENERS'])[0]}`).join(','));
  // Brokers start after every controller is healthy. Each has two listeners: INTERNAL on 9093,
  // advertised at its service name (the compose network; replication), and EXTERNAL on its own
  // port, published unchanged on the host and advertised as localhost:<that port> (EXTERNAL_HOST
  // overrides localhost for clients on other machines).
  const hostPorts = new Set<number>();
  for (const b of brokers) {
    expect([...b.dependsOn].sort()).toEqual(controllers.map((c) => c.name));
    const [internal, external] = listenerPorts(b.environment['STRAND_LISTENERS']);
    expect(b.environment['STRAND_LISTENERS']).toBe(`INTERNAL://0.0.0.0:${internal},EXTERNAL://0.0.0.0:${external}`);
    expect(b.environment['STRAND_ADVERTISED_LISTENERS']).toBe(`INTERNAL://${b.name}:${internal},EXTERNAL://localhost:${external}`);
    expect(b.environment['STRAND_INTER_BROKER_LISTENER_NAME']).toBe('INTERNAL');
    expect(b.ports).toEqual([`${external}:${external}`]);
    hostPorts.add(external as number);
  }
  expect(hostPorts.size).toBe(brokers.length);
  expect(fs.readFileSync(COMPOSE_FILE, 'utf8')).toContain('EXTERNAL://${EXTERNAL_HOST:-localhost}:');
  // Scaled brokers: INTERNAL only.
  const extra = services.find((s) => s.name === 'broker-extra');
  expect(extra?.environment['STRAND_LISTENERS']).toBe('INTERNAL://0.0.0.0:9093');
});
