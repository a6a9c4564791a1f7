/**
 * deploy/kubernetes, offline. The kustomization is rendered by a small renderer (it only lists
 * resources, sets the namespace and names the image), compared with `kubectl kustomize` when that
 * binary exists (printed notice otherwise). Every object is validated against the official
 * Kubernetes JSON schemas shipped in kubernetes-models 4.5 (which does not flag unknown fields,
 * so the structural checks below cover the references between objects), and deliberately broken
 * copies (a wrong type, a missing required field) must fail that validation. The per-pod
 * identity snippet of each StatefulSet is executed with sh for ordinals 0-2, with a stand-in
 * `node` that resolves the configuration with the built server's own resolveServerConfig, so the
 * node ids, voters and advertised addresses a pod would start with are checked end to end,
 * including each broker's EXTERNAL address, which must match the nodePort of its per-pod
 * NodePort Service. The snippet runs with the variables the kubelet adds for the namespace's
 * Services when a pod does not set enableServiceLinks: false (modelled on pkg/kubelet/envvars),
 * and a copy without that setting must fail to start on them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { REPO } from './compose';

const DIR = path.join(REPO, 'deploy/kubernetes');
const CLI_DIST = path.join(REPO, 'packages/cli/dist/index.js');

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function get(o: unknown, ...keys: (string | number)[]): unknown {
  let cur: unknown = o;
  for (const k of keys) {
    if (typeof k === 'number') cur = Array.isArray(cur) ? cur[k] : undefined;
    else cur = isObj(cur) ? cur[k] : undefined;
  }
  return cur;
}
function str(o: unknown, ...keys: (string | number)[]): string {
  const v = get(o, ...keys);
  if (typeof v !== 'string') throw new Error(`${keys.join('.')} is not a string`);
  return v;
}

/** `kubectl kustomize` for a kustomization that lists resources, a namespace and images. */
function render(dir = DIR): Obj[] {
  const k: unknown = parseYaml(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
  const resources = get(k, 'resources');
  if (!Array.isArray(resources)) throw new Error('kustomization lists no resources');
  const known = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images']);
  if (isObj(k)) for (const key of Object.keys(k)) if (!known.has(key)) throw new Error(`the test renderer does not support kustomization field ${key}`);
  const ns = get(k, 'namespace');
  const images = (get(k, 'images') as unknown[] | undefined) ?? [];
  const out: Obj[] = [];
  for (const r of resources) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(dir, String(r)), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${String(r)}: ${d.errors[0]?.message}`);
      const o: unknown = d.toJS();
      if (!isObj(o)) continue;
      if (typeof ns === 'string' && o['kind'] !== 'Namespace' && isObj(o['metadata'])) o['metadata']['namespace'] = ns;
      if (typeof ns === 'string' && o['kind'] === 'Namespace' && isObj(o['metadata'])) o['metadata']['name'] = ns;
      const containers = get(o, 'spec', 'template', 'spec', 'containers');
      if (Array.isArray(containers)) {
        for (const c of containers) {
          for (const img of images) {
            const [name, tag] = String(get(c, 'image')).split(':');
            if (name === get(img, 'name') && isObj(c)) c['image'] = `${String(get(img, 'newName') ?? name)}:${String(get(img, 'newTag') ?? tag)}`;
          }
        }
      }
      out.push(o);
    }
  }
  return out;
}

const VALIDATORS: Record<string, (o: Obj) => void> = {
  'v1/Namespace': (o) => new Namespace(o as ConstructorParameters<typeof Namespace>[0]).validate(),
  'v1/ConfigMap': (o) => new ConfigMap(o as ConstructorParameters<typeof ConfigMap>[0]).validate(),
  'v1/Service': (o) => new Service(o as ConstructorParameters<typeof Service>[0]).validate(),
  'apps/v1/StatefulSet': (o) => new StatefulSet(o as ConstructorParameters<typeof StatefulSet>[0]).validate(),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o as ConstructorParameters<typeof PodDisruptionBudget>[0]).validate(),
};

function validate(o: Obj): void {
  const id = `${String(o['apiVersion'])}/${String(o['kind'])}`;
  const v = VALIDATORS[id];
  if (v === undefined) throw new Error(`no schema for ${id}`);
  v(o);
}

const objects = render();
const byKind = (kind: string): Obj[] => objects.filter((o) => o['kind'] === kind);
const named = (kind: string, name: string): Obj => {
  const o = byKind(kind).find((x) => get(x, 'metadata', 'name') === name);
  if (o === undefined) throw new Error(`no ${kind} ${name}`);
  return o;
};
const clone = (o: Obj): Obj => JSON.parse(JSON.stringify(o)) as Obj;

test('the kustomization renders the expected objects, as kubectl kustomize does', () => {
  expect(objects.map((o) => `${String(o['kind'])}/${str(o, 'metadata', 'name')}`).sort()).toEqual([
    'ConfigMap/strand-broker-external', 'ConfigMap/strand-config', 'Namespace/strand', 'PodDisruptionBudget/strand-broker', 'PodDisruptionBudget/strand-controller',
    'Service/strand', 'Service/strand-broker', 'Service/strand-broker-0-external', 'Service/strand-broker-1-external', 'Service/strand-broker-2-external', 'Service/strand-controller',
    'StatefulSet/strand-broker', 'StatefulSet/strand-controller',
  ]);
  const kubectl = spawnSync('kubectl', ['kustomize', DIR], { encoding: 'utf8', timeout: 60_000 });
  if (kubectl.error !== undefined || kubectl.status !== 0) {
    console.log(`NOTICE: kubectl kustomize is not available (${kubectl.error?.message ?? kubectl.stderr}); compared with the test renderer only`);
    return;
  }
  const theirs = parseAllDocuments(kubectl.stdout).map((d) => d.toJS() as Obj);
  const key = (o: Obj): string => `${String(o['kind'])}/${str(o, 'metadata', 'name')}`;
  const sort = (xs: Obj[]): Obj[] => [...xs].sort((a, b) => key(a).localeCompare(key(b)));
  expect(sort(theirs)).toEqual(sort(objects));
});

test('every object is valid against the official schemas', () => {
  for (const o of objects) expect(() => validate(o)).not.toThrow();
});

test('deliberately broken manifests fail schema validation', () => {
  const sts = named('StatefulSet', 'strand-broker');
  const wrongType = clone(sts);
  (get(wrongType, 'spec') as Obj)['replicas'] = 'three';
  expect(() => validate(wrongType)).toThrow(/replicas must be integer/);
  const missing = clone(sts);
  delete (get(missing, 'spec') as Obj)['selector'];
  expect(() => validate(missing)).toThrow(/required property 'selector'|required property selector/);
  const badProbe = clone(sts);
  (get(badProbe, 'spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'httpGet') as Obj)['port'] = { name: 'http' };
  expect(() => validate(badProbe)).toThrow(/port/);
  const pdb = clone(named('PodDisruptionBudget', 'strand-controller'));
  (get(pdb, 'spec') as Obj)['maxUnavailable'] = [1];
  expect(() => validate(pdb)).toThrow(/maxUnavailable/);
  const svc = clone(named('Service', 'strand'));
  delete (get(svc, 'spec', 'ports', 0) as Obj)['port'];
  expect(() => validate(svc)).toThrow(/port/);
});

test('the objects refer to each other correctly (what the schemas cannot see)', () => {
  const config = named('ConfigMap', 'strand-config');
  for (const component of ['controller', 'broker']) {
    const sts = named('StatefulSet', `strand-${component}`);
    const podLabels = get(sts, 'spec', 'template', 'metadata', 'labels');
    expect(get(sts, 'spec', 'selector', 'matchLabels')).toEqual(podLabels);
    // Stable identities: the governing Service is headless and publishes not-ready pods.
    const headless = named('Service', str(sts, 'spec', 'serviceName'));
    expect(get(headless, 'spec', 'clusterIP')).toBe('None');
    expect(get(headless, 'spec', 'publishNotReadyAddresses')).toBe(true);
    expect(get(headless, 'spec', 'selector')).toEqual(podLabels);
    expect(get(sts, 'spec', 'podManagementPolicy')).toBe('Parallel');
    // At most one down.
    const pdb = named('PodDisruptionBudget', `strand-${component}`);
    expect(get(pdb, 'spec', 'maxUnavailable')).toBe(1);
    expect(get(pdb, 'spec', 'selector', 'matchLabels')).toEqual(podLabels);
    const pod = get(sts, 'spec', 'template', 'spec');
    const c = get(pod, 'containers', 0);
    const portNames = (get(c, 'ports') as Obj[]).map((p) => p['name']);
    expect(portNames).toContain('http');
    expect(get(c, 'readinessProbe', 'httpGet')).toEqual({ path: '/readyz', port: 'http' });
    expect(get(c, 'livenessProbe', 'httpGet')).toEqual({ path: '/healthz', port: 'http' });
    for (const p of get(headless, 'spec', 'ports') as Obj[]) expect(portNames).toContain(p['targetPort']);
    // Controlled shutdown fits: preStop sleep well inside the grace period.
    const preStop = get(c, 'lifecycle', 'preStop', 'exec', 'command') as string[];
    expect(preStop[0]).toBe('sleep');
    expect(Number(get(pod, 'terminationGracePeriodSeconds'))).toBeGreaterThanOrEqual(Number(preStop[1]) + 30);
    expect(get(c, 'resources', 'requests', 'cpu')).toBeDefined();
    expect(get(c, 'resources', 'requests', 'memory')).toBeDefined();
    expect(get(pod, 'affinity', 'podAntiAffinity', 'preferredDuringSchedulingIgnoredDuringExecution', 0, 'podAffinityTerm', 'labelSelector', 'matchLabels')).toEqual(podLabels);
    // The data volume comes from the claim template.
    expect(get(c, 'volumeMounts', 0)).toEqual({ name: str(sts, 'spec', 'volumeClaimTemplates', 0, 'metadata', 'name'), mountPath: '/var/lib/strand' });
    expect(get(c, 'envFrom', 0, 'configMapRef', 'name')).toBe(str(config, 'metadata', 'name'));
  }
  const brokerSts = named('StatefulSet', 'strand-broker');
  const brokerLabels = get(brokerSts, 'spec', 'template', 'metadata', 'labels') as Obj;
  const brokerContainer = get(brokerSts, 'spec', 'template', 'spec', 'containers', 0);
  const containerPort = (name: string): number => Number((get(brokerContainer, 'ports') as Obj[]).find((p) => p['name'] === name)?.['containerPort']);
  const brokerEnv = (name: string): string => String((get(brokerContainer, 'env') as Obj[]).find((e) => e['name'] === name)?.['value']);
  // The client Service and the listeners: INTERNAL for in-cluster clients and replication.
  const client = named('Service', 'strand');
  expect(get(client, 'spec', 'selector')).toEqual(brokerLabels);
  expect(get(client, 'spec', 'ports', 0, 'port')).toBe(9093);
  expect(brokerEnv('STRAND_LISTENERS')).toBe(`INTERNAL://0.0.0.0:${containerPort('internal')},EXTERNAL://0.0.0.0:${containerPort('external')}`);
  expect(brokerEnv('STRAND_INTER_BROKER_LISTENER_NAME')).toBe('INTERNAL');
  expect(containerPort(String(get(client, 'spec', 'ports', 0, 'targetPort')))).toBe(9093);
  // One NodePort Service per broker pod, on its EXTERNAL port, nodePort = EXTERNAL_PORT_BASE + ordinal.
  const external = get(named('ConfigMap', 'strand-broker-external'), 'data') as Record<string, string>;
  expect((get(brokerContainer, 'envFrom') as Obj[]).map((e) => get(e, 'configMapRef', 'name'))).toEqual(['strand-config', 'strand-broker-external']);
  for (let ordinal = 0; ordinal < Number(get(brokerSts, 'spec', 'replicas')); ordinal++) {
    const svc = named('Service', `strand-broker-${ordinal}-external`);
    expect(get(svc, 'spec', 'type')).toBe('NodePort');
    expect(get(svc, 'spec', 'selector')).toEqual({ ...brokerLabels, 'statefulset.kubernetes.io/pod-name': `strand-broker-${ordinal}` });
    expect(get(svc, 'spec', 'ports')).toEqual([{ name: 'external', port: containerPort('external'), targetPort: 'external', nodePort: Number(external['EXTERNAL_PORT_BASE']) + ordinal }]);
  }
});

/**
 * The variables the kubelet adds to a container for Services (pkg/kubelet/envvars FromServices and
 * getServiceEnvVarMap): for every Service of the pod's namespace that has a cluster IP (headless
 * Services have none), unless the pod spec sets enableServiceLinks: false; and for the `kubernetes`
 * Service of namespace default always. Names: the Service name upper-cased, '-' and '.' as '_'.
 * The cluster IPs are made up here (the API server assigns them). The container's own env and
 * envFrom take precedence over these.
 */
function serviceLinkEnv(podSpec: unknown): Record<string, string> {
  type Port = { name?: string; port: number; protocol?: string };
  const services: { name: string; ip: string; ports: Port[] }[] = [{ name: 'kubernetes', ip: '10.96.0.1', ports: [{ name: 'https', port: 443 }] }];
  if (get(podSpec, 'enableServiceLinks') !== false) {
    byKind('Service').forEach((svc, i) => {
      if (get(svc, 'spec', 'clusterIP') === 'None') return;
      services.push({ name: str(svc, 'metadata', 'name'), ip: `10.96.1.${i + 1}`, ports: get(svc, 'spec', 'ports') as Port[] });
    });
  }
  const env: Record<string, string> = {};
  for (const { name, ip, ports } of services) {
    const prefix = name.toUpperCase().replace(/[-.]/g, '_').replace(/^[0-9]/, '_$&');
    env[`${prefix}_SERVICE_HOST`] = ip;
    env[`${prefix}_SERVICE_PORT`] = String(ports[0]?.port);
    ports.forEach((p, i) => {
      const proto = p.protocol ?? 'TCP';
      const url = `${proto.toLowerCase()}://${ip}:${p.port}`;
      if (p.name !== undefined) env[`${prefix}_SERVICE_PORT_${p.name.toUpperCase().replace(/[-.]/g, '_')}`] = String(p.port);
      if (i === 0) env[`${prefix}_PORT`] = url;
      const portPrefix = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
      Object.assign(env, { [portPrefix]: url, [`${portPrefix}_PROTO`]: proto.toLowerCase(), [`${portPrefix}_PORT`]: String(p.port), [`${portPrefix}_ADDR`]: ip });
    });
  }
  return env;
}

const HOST_IP = '10.1.2.3';

/**
 * Runs a StatefulSet's start-up snippet for one ordinal with the environment the kubelet would
 * give the container, `node` being `nodeStandIn` (see below).
 */
function startPod(sts: Obj, ordinal: number, externalHost: string, binDir: string): ReturnType<typeof spawnSync> & { stdout: string; stderr: string } {
  const pod = get(sts, 'spec', 'template', 'spec');
  const c = get(pod, 'containers', 0);
  const name = `${str(sts, 'metadata', 'name')}-${ordinal}`;
  const fromConfigMaps = Object.assign({}, ...(get(c, 'envFrom') as Obj[]).map((e) => get(named('ConfigMap', str(e, 'configMapRef', 'name')), 'data'))) as Record<string, string>;
  const env: Record<string, string> = { ...serviceLinkEnv(pod), PATH: `${binDir}:/usr/bin:/bin`, HOSTNAME: name, ...fromConfigMaps };
  if (str(sts, 'metadata', 'name') === 'strand-broker') env['EXTERNAL_HOST'] = externalHost;
  for (const e of get(c, 'env') as Obj[]) {
    const field = get(e, 'valueFrom', 'fieldRef', 'fieldPath');
    env[String(e['name'])] = field === 'metadata.name' ? name : field === 'metadata.namespace' ? 'strand' : field === 'status.hostIP' ? HOST_IP : String(e['value']);
  }
  return spawnSync('/bin/sh', ['-c', str(c, 'args', 0)], { env, encoding: 'utf8', timeout: 20_000 });
}

/**
 * A stand-in for `node` on PATH: resolves the configuration the pod would start with, using the
 * built server's own resolver, and prints it instead of starting a server.
 */
function nodeStandIn(dir: string): void {
  const helper = path.join(dir, 'resolve.js');
  fs.writeFileSync(helper, `const c = require(${JSON.stringify(CLI_DIST)}).resolveServerConfig({ env: process.env });
console.log(JSON.stringify({ argv: process.argv.slice(2), nodeId: c.nodeId, roles: c.roles, voters: c.voters, advertised: [...c.advertised.values()], listeners: [...c.listeners.values()] }));\n`);
  fs.writeFileSync(path.join(dir, 'node'), `#!/bin/sh\nshift\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(helper)} "$@"\n`, { mode: 0o755 });
}

test('pods derive node id, voters and advertised addresses from their ordinal, DNS name and node', () => {
  const keys = new Set((JSON.parse(execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(CLI_DIST)}).SERVER_CONFIG.names()))`], { encoding: 'utf8' })) as string[]).map((k) => `STRAND_${k.replace(/[.-]/g, '_').toUpperCase()}`));
  const configData = get(named('ConfigMap', 'strand-config'), 'data') as Record<string, string>;
  for (const name of Object.keys(configData)) expect({ name, known: keys.has(name) }).toEqual({ name, known: true });
  // The other ConfigMap holds snippet inputs, never STRAND_* (the server would reject them).
  const externalData = get(named('ConfigMap', 'strand-broker-external'), 'data') as Record<string, string>;
  for (const name of Object.keys(externalData)) expect(name.startsWith('STRAND_')).toBe(false);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-k8s-'));
  try {
    nodeStandIn(dir);
    for (const [component, firstId, service, host] of [['controller', 1, 'strand-controller', (pod: string) => `${pod}.strand-controller`], ['broker', 100, 'strand-broker', (pod: string) => `${pod}.strand-broker.strand.svc`]] as const) {
      const sts = named('StatefulSet', `strand-${component}`);
      const c = get(sts, 'spec', 'template', 'spec', 'containers', 0);
      expect(get(c, 'command')).toEqual(['/bin/sh', '-c']);
      // The kubelet expands $(VAR) in command/args; the snippet must not contain any.
      expect(str(c, 'args', 0)).not.toContain('$(');
      for (const [ordinal, externalHost] of [...Array.from({ length: Number(get(sts, 'spec', 'replicas')) }, (_, i) => [i, ''] as const), [1, 'localhost'] as const]) {
        const pod = `${service}-${ordinal}`;
        const run = startPod(sts, ordinal, externalHost, dir);
        expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
        const resolved = JSON.parse(run.stdout) as { argv: string[]; nodeId: number; roles: { broker: boolean; controller: boolean }; voters: { id: number; host: string; port: number }[]; advertised: { name: string; host: string; port: number }[] };
        expect(resolved.argv).toEqual(['server']);
        expect(resolved.nodeId).toBe(firstId + ordinal);
        expect(resolved.roles).toEqual({ broker: component === 'broker', controller: component === 'controller' });
        expect(resolved.voters).toEqual([0, 1, 2].map((i) => ({ id: i + 1, host: `strand-controller-${i}.strand-controller`, port: 9193 })));
        if (component === 'controller') {
          expect(resolved.advertised.find((l) => l.name === 'CONTROLLER')).toEqual({ name: 'CONTROLLER', host: host(pod), port: 9193 });
        } else {
          // INTERNAL at the stable DNS name; EXTERNAL at the node (or EXTERNAL_HOST) and the pod's nodePort.
          const nodePort = Number(get(named('Service', `${pod}-external`), 'spec', 'ports', 0, 'nodePort'));
          expect(resolved.advertised).toEqual([
            { name: 'INTERNAL', host: host(pod), port: 9093 },
            { name: 'EXTERNAL', host: externalHost === '' ? HOST_IP : externalHost, port: nodePort },
          ]);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('pods disable service links: with them, the STRAND_* variables of Services strand and strand-broker-N-external stop the server', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-k8s-'));
  try {
    nodeStandIn(dir);
    for (const component of ['controller', 'broker']) {
      const sts = named('StatefulSet', `strand-${component}`);
      expect(get(sts, 'spec', 'template', 'spec', 'enableServiceLinks')).toBe(false);
      // The default (the field left out): the kubelet injects the Service variables.
      const linked = clone(sts);
      delete (get(linked, 'spec', 'template', 'spec') as Obj)['enableServiceLinks'];
      const injected = serviceLinkEnv(get(linked, 'spec', 'template', 'spec'));
      expect(injected).toMatchObject({ STRAND_SERVICE_HOST: expect.any(String), STRAND_SERVICE_PORT_INTERNAL: '9093', STRAND_PORT: expect.stringMatching(/^tcp:\/\//), STRAND_PORT_9093_TCP_PORT: '9093', STRAND_BROKER_0_EXTERNAL_SERVICE_HOST: expect.any(String), STRAND_BROKER_2_EXTERNAL_PORT_9094_TCP_ADDR: expect.any(String) });
      // Headless Services have no cluster IP, hence no variables.
      expect(Object.keys(injected).filter((k) => k.startsWith('STRAND_CONTROLLER_') || k.startsWith('STRAND_BROKER_SERVICE') || k.startsWith('STRAND_BROKER_PORT'))).toEqual([]);
      const run = startPod(linked, 0, '', dir);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toMatch(/environment variable STRAND_[A-Z0-9_]+ does not name a configuration/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
