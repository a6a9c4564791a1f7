/**
 * `strand server` configuration, the Kafka way: the same dotted keys as Kafka's KRaft servers,
 * read from `--config FILE` (Java properties, or YAML by extension), then `--override key=value`
 * (repeatable), then environment variables `STRAND_<KEY>` (dots as underscores, upper case):
 * the later form wins. Everything is validated before anything starts; an error names the key.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StrandError, TOPIC_DEFAULTS_CONFIG, defineConfig, topicDefaultsFromBroker, type BrokerTopicDefault, type ConfigValues, type RawConfig } from '@strand/protocol';
import { CONTROLLER_CONFIG } from '@strand/controller';
import { BROKER_CONFIG, checkBrokerConfig } from '@strand/broker';

/**
 * Kafka server keys that have no effect in Strand, accepted (any value) so that a Kafka
 * server.properties, such as the one Kafka ships for KRaft, starts as it is; `strand server`
 * logs a warning naming each one that is set, with why it does nothing here.
 */
const IGNORED = (why: string): { type: 'string'; default: string; doc: string } => ({ type: 'string', default: '', doc: `Kafka's key, accepted and ignored: ${why}` });
const THREADS = 'Strand serves each node from one event loop (gRPC on HTTP/2), with no network, I/O or recovery thread pools to size.';
const SOCKETS = 'gRPC (HTTP/2 flow control) sizes the socket buffers.';
const NO_TRANSACTIONS = 'Strand has no transactions (idempotent producers only), so no transaction state log.';
export const KAFKA_IGNORED_KEYS = {
  'num.network.threads': IGNORED(THREADS),
  'num.io.threads': IGNORED(THREADS),
  'background.threads': IGNORED(THREADS),
  'num.recovery.threads.per.data.dir': IGNORED(THREADS),
  'num.replica.fetchers': IGNORED('a follower fetches from each leader broker over one gRPC stream for all partitions.'),
  'log.cleaner.threads': IGNORED(THREADS),
  'log.cleaner.enable': IGNORED('compaction always runs for compacted topics (log.cleaner.backoff.ms paces it).'),
  'socket.send.buffer.bytes': IGNORED(SOCKETS),
  'socket.receive.buffer.bytes': IGNORED(SOCKETS),
  'socket.request.max.bytes': IGNORED('gRPC bounds each message (64 MiB); produce batches are bounded by message.max.bytes / max.message.bytes.'),
  'replica.socket.receive.buffer.bytes': IGNORED(SOCKETS),
  'connections.max.idle.ms': IGNORED('idle gRPC connections are kept (HTTP/2 keepalive detects dead peers).'),
  'controlled.shutdown.enable': IGNORED('a broker stopped with SIGTERM always shuts down controlled (its leaderships move first).'),
  'log.flush.interval.messages': IGNORED('Strand fdatasyncs every batch before it counts toward the high watermark (flush.policy=fsync, the default; log.flush.policy sets it).'),
  'log.flush.interval.ms': IGNORED('Strand fdatasyncs every batch before it counts toward the high watermark (flush.policy=fsync, the default; log.flush.policy sets it).'),
  'transaction.state.log.replication.factor': IGNORED(NO_TRANSACTIONS),
  'transaction.state.log.min.isr': IGNORED(NO_TRANSACTIONS),
  'transaction.state.log.num.partitions': IGNORED(NO_TRANSACTIONS),
} as const;

export const SERVER_CONFIG = defineConfig({
  'process.roles': { type: 'list', default: ['broker', 'controller'], oneOf: ['broker', 'controller'], doc: 'Roles of this process: broker, controller, or both (combined mode, for development).' },
  'node.id': { type: 'int', default: -1, min: -1, doc: 'This node\'s id, unique in the cluster (required). Controllers use it as their Raft id.' },
  'controller.quorum.voters': { type: 'string', default: '', doc: 'The controller quorum: id@host:port,id@host:port,... (required).' },
  'controller.listener.names': { type: 'string', default: 'CONTROLLER', doc: 'Name of the listener controllers serve Raft and the controller API on.' },
  'listeners': { type: 'string', default: 'BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9193', doc: 'NAME://host:port for each listener this process binds, each on its own port (port 0 picks a free port). Every listener other than the controller listener serves the broker API.' },
  'advertised.listeners': { type: 'string', default: '', doc: 'NAME://host:port that clients and other nodes should use, per listener (a listener not named here: its listeners entry, with 0.0.0.0 replaced by 127.0.0.1). Every name must be one of listeners.' },
  'inter.broker.listener.name': { type: 'string', default: '', doc: 'The broker listener other brokers replicate from (its advertised endpoint); must be one of listeners and not a controller listener (default: the first non-controller listener).' },
  'listener.security.protocol.map': { type: 'string', default: '', doc: 'NAME:PROTOCOL for each listener (Kafka\'s key). Only PLAINTEXT is supported; when set, every listener in use must be named, as PLAINTEXT (entries for names not in listeners are allowed, as in Kafka\'s sample server.properties; default: every listener is PLAINTEXT).' },
  'log.dirs': { type: 'list', default: ['./data/strand-logs'], doc: 'Directory holding partition logs (one: several directories, JBOD, are refused).' },
  'metadata.log.dir': { type: 'string', default: '', doc: 'Directory of the controller\'s Raft log (default: the first of log.dirs).' },
  'controller.quorum.election.timeout.ms': { type: 'int', default: 1000, min: 10, doc: 'Raft election timeout t (ms): a controller that hears from no leader for a random time in (t, 2t] campaigns. Counted in whole ticks of controller.quorum.tick.ms (t rounded up, at least 2 ticks).' },
  'controller.quorum.tick.ms': { type: 'int', default: 10, min: 1, doc: 'Strand: the Raft clock\'s unit (ms): election timeouts and heartbeats are whole ticks. The leader heartbeats every ceil(E / 10) ticks, E = the election timeout in ticks (the defaults: E = 100, heartbeats every 10 ticks = 100 ms). Fine ticks give the random timeout more distinct values (fewer split votes); an idle controller does not wake per tick, only for its next heartbeat or election deadline.' },
  'http.listener': { type: 'string', default: '0.0.0.0:9300', doc: 'host:port of the HTTP endpoint (/metrics, /healthz, /readyz); empty to disable. Port 0 picks a free port.' },
  'log.level': { type: 'string', default: 'info', oneOf: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], doc: 'Log level (pino).' },
  ...CONTROLLER_CONFIG.spec,
  ...BROKER_CONFIG.spec,
  // Kafka's broker-level defaults of topic configs (log.retention.hours, min.insync.replicas...).
  ...TOPIC_DEFAULTS_CONFIG.spec,
  ...KAFKA_IGNORED_KEYS,
});

export type ServerConfig = ConfigValues<typeof SERVER_CONFIG.spec>;

export interface Listener {
  name: string;
  host: string;
  port: number;
}

export interface Voter {
  id: number;
  host: string;
  port: number;
}

/** A validated server configuration with its structured parts parsed. */
export interface ResolvedServerConfig {
  values: ServerConfig;
  /** The keys set by the config file, an override, the environment or `strand dev` (not defaulted). */
  explicitKeys: ReadonlySet<string>;
  /** The topic configs this node's settings give a default (log.retention.hours -> retention.ms...), by topic key. */
  topicDefaults: ReadonlyMap<string, BrokerTopicDefault>;
  /** The HTTP endpoint, or null when disabled. */
  http: Listener | null;
  roles: { broker: boolean; controller: boolean };
  nodeId: number;
  voters: Voter[];
  listeners: Map<string, Listener>;
  advertised: Map<string, Listener>;
  /** The broker listeners (every listener but the controller's), in the order of `listeners`. */
  brokerListeners: Listener[];
  /** inter.broker.listener.name, resolved ('' when this process is not a broker). */
  interBrokerListener: string;
  metadataLogDir: string;
}

function invalid(key: string, value: string, why: string): never {
  throw new StrandError('INVALID_CONFIG', `Invalid value ${value} for configuration ${key}: ${why}`);
}

/** `1@host:port,2@host:port`. */
export function parseVoters(value: string): Voter[] {
  const voters = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item) => {
      const m = /^(\d+)@(\[[^\]]+\]|[^:]+):(\d+)$/.exec(item);
      if (!m) return invalid('controller.quorum.voters', value, `'${item}' is not id@host:port`);
      return { id: Number(m[1]), host: (m[2] as string).replace(/^\[|\]$/g, ''), port: Number(m[3]) };
    });
  if (new Set(voters.map((v) => v.id)).size !== voters.length) invalid('controller.quorum.voters', value, 'a voter id appears twice');
  for (const v of voters) if (v.port < 1 || v.port > 65535) invalid('controller.quorum.voters', value, `port ${v.port} is out of range`);
  return voters;
}

/** `NAME://host:port,NAME://host:port`. */
export function parseListeners(key: string, value: string): Map<string, Listener> {
  const out = new Map<string, Listener>();
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*):\/\/(\[[^\]]+\]|[^:]*):(\d+)$/.exec(item);
    if (!m) invalid(key, value, `'${item}' is not NAME://host:port`);
    const name = (m[1] as string).toUpperCase();
    const port = Number(m[3]);
    if (port > 65535) invalid(key, value, `port ${port} is out of range`);
    if (out.has(name)) invalid(key, value, `listener ${name} appears twice`);
    out.set(name, { name, host: (m[2] as string).replace(/^\[|\]$/g, '') || '0.0.0.0', port });
  }
  return out;
}

/** Kafka's security protocols. Strand speaks PLAINTEXT only: the others are refused with an INVALID_CONFIG error naming the key (TLS and SASL are out of scope for now). */
const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];

/** `NAME:PROTOCOL,NAME:PROTOCOL` (listener.security.protocol.map): Kafka's protocol names; the caller requires PLAINTEXT for the listeners in use. */
export function parseSecurityProtocolMap(value: string): Map<string, string> {
  const key = 'listener.security.protocol.map';
  const out = new Map<string, string>();
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_]+)$/.exec(item);
    if (!m) invalid(key, value, `'${item}' is not NAME:PROTOCOL`);
    const name = (m[1] as string).toUpperCase();
    const protocol = (m[2] as string).toUpperCase();
    if (out.has(name)) invalid(key, value, `listener ${name} appears twice`);
    if (!SECURITY_PROTOCOLS.includes(protocol)) invalid(key, value, `unknown security protocol ${m[2] as string} for listener ${name} (Kafka's are ${SECURITY_PROTOCOLS.join(', ')})`);
    out.set(name, protocol);
  }
  return out;
}

/** Reads a properties or YAML file into raw key/value pairs (nested YAML maps join with '.'). */
export function readConfigFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e: unknown) {
    throw new StrandError('INVALID_CONFIG', `cannot read config file ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const out: Record<string, string> = {};
  if (/\.ya?ml$/i.test(file)) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e: unknown) {
      throw new StrandError('INVALID_CONFIG', `config file ${file} is not valid YAML: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const walk = (node: unknown, prefix: string): void => {
      if (node === null || node === undefined) return;
      if (typeof node === 'object' && !Array.isArray(node)) {
        for (const [k, v] of Object.entries(node as Record<string, unknown>)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
      } else if (Array.isArray(node)) {
        out[prefix] = node.map((x) => String(x)).join(',');
      } else {
        out[prefix] = String(node);
      }
    };
    walk(doc, '');
    return out;
  }
  for (const { key, value } of parseProperties(text)) out[key] = value;
  return out;
}

/**
 * A properties file as java.util.Properties.load reads it (Kafka's format): `#`/`!` comments,
 * `key=value`, `key: value` or `key value`, a line ending in an odd number of backslashes
 * continues on the next (whose leading blanks are dropped), and the escapes `\=`, `\:`, `\ `,
 * `\t`, `\n`, `\uXXXX`. Trailing blanks of a value are dropped (Kafka trims values).
 */
export function parseProperties(text: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] as string).replace(/^[ \t\f]+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    // Logical line: join continuations (an odd number of trailing backslashes).
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + (lines[++i] as string).replace(/^[ \t\f]+/, '');
    }
    if (/(^|[^\\])(\\\\)*\\$/.test(line)) line = line.slice(0, -1); // a continuation at the end of the file
    // The key ends at the first unescaped '=', ':' or blank.
    let k = 0;
    while (k < line.length) {
      const c = line[k] as string;
      if (c === '\\') k += 2;
      else if (c === '=' || c === ':' || c === ' ' || c === '\t' || c === '\f') break;
      else k++;
    }
    let v = k;
    while (v < line.length && /[ \t\f]/.test(line[v] as string)) v++;
    if (v < line.length && (line[v] === '=' || line[v] === ':')) v++;
    while (v < line.length && /[ \t\f]/.test(line[v] as string)) v++;
    out.push({ key: unescapeProperty(line.slice(0, Math.min(k, line.length))), value: unescapeProperty(line.slice(v).replace(/[ \t\f]+$/, '')) });
  }
  return out;
}

function unescapeProperty(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) => {
    if (e.length === 5) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    return e === 't' ? '\t' : e === 'n' ? '\n' : e === 'r' ? '\r' : e === 'f' ? '\f' : e;
  });
}

/** Variables of the client commands (`strand produce --bootstrap` defaults), not server keys. */
const CLIENT_ENV = new Set(['STRAND_BOOTSTRAP']);

/** `STRAND_NODE_ID=1` -> `node.id`: every other STRAND_* variable must name a known key. */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  const byEnvName = new Map(SERVER_CONFIG.names().map((k) => [`STRAND_${k.replace(/[.-]/g, '_').toUpperCase()}`, k]));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('STRAND_') || value === undefined || CLIENT_ENV.has(name)) continue;
    const key = byEnvName.get(name);
    if (key === undefined) throw new StrandError('INVALID_CONFIG', `environment variable ${name} does not name a configuration (STRAND_<KEY> with dots as underscores)`);
    out[key] = value;
  }
  return out;
}

/** `key=value` overrides (`--override`). */
export function parseOverrides(overrides: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of overrides) {
    const i = o.indexOf('=');
    if (i <= 0) throw new StrandError('INVALID_CONFIG', `--override ${o}: expected key=value`);
    out[o.slice(0, i).trim()] = o.slice(i + 1).trim();
  }
  return out;
}

/**
 * Merges file < overrides < environment, validates every key, and checks the combination
 * (required keys, a listener per role, this controller among the voters).
 */
export function resolveServerConfig(sources: { file?: string; overrides?: readonly string[]; env?: NodeJS.ProcessEnv; extra?: RawConfig }): ResolvedServerConfig {
  const raw: Record<string, RawConfig[string]> = {
    ...(sources.extra ?? {}),
    ...(sources.file ? readConfigFile(sources.file) : {}),
    ...parseOverrides(sources.overrides ?? []),
    ...configFromEnv(sources.env ?? {}),
  };
  if (raw['zookeeper.connect'] !== undefined) throw new StrandError('INVALID_CONFIG', 'zookeeper.connect: Strand runs in KRaft mode only (a Raft quorum of controllers): set process.roles, node.id and controller.quorum.voters instead');
  const values = SERVER_CONFIG.parse(raw);
  checkBrokerConfig(values);
  const explicitKeys = new Set(Object.keys(raw).filter((k) => raw[k] !== undefined && SERVER_CONFIG.has(k)));
  const topicDefaults = topicDefaultsFromBroker(values, explicitKeys);
  const roles = { broker: values['process.roles'].includes('broker'), controller: values['process.roles'].includes('controller') };
  if (!roles.broker && !roles.controller) invalid('process.roles', '', 'at least one of broker, controller is required');
  const nodeId = values['node.id'];
  if (nodeId < 0) throw new StrandError('INVALID_CONFIG', 'Missing required configuration node.id (a non-negative integer)');
  if (values['controller.quorum.voters'] === '') throw new StrandError('INVALID_CONFIG', 'Missing required configuration controller.quorum.voters (id@host:port,...)');
  const voters = parseVoters(values['controller.quorum.voters']);
  const listeners = parseListeners('listeners', values['listeners']);
  const controllerListener = values['controller.listener.names'].toUpperCase();
  if (roles.controller) {
    const self = voters.find((v) => v.id === nodeId);
    if (self === undefined) invalid('controller.quorum.voters', values['controller.quorum.voters'], `this controller's node.id ${nodeId} is not a voter`);
    const own = listeners.get(controllerListener);
    if (own === undefined) invalid('listeners', values['listeners'], `a controller needs a ${controllerListener}:// listener`);
    // The other voters reach this one at its voter entry: a controller listener on another port
    // would never be reached, and the quorum would never form.
    else if (self !== undefined && own.port !== 0 && own.port !== self.port) invalid('listeners', values['listeners'], `the ${controllerListener} listener's port ${own.port} is not the port of this node's voter entry ${nodeId}@${self.host}:${self.port}`);
  } else if (voters.some((v) => v.id === nodeId)) {
    // Kafka: node ids are unique across the cluster, and a voter id belongs to a controller.
    invalid('node.id', String(nodeId), `node.id ${nodeId} is a voter in controller.quorum.voters but process.roles has no controller`);
  }
  const brokerListeners = [...listeners.values()].filter((l) => l.name !== controllerListener);
  if (roles.broker && brokerListeners.length === 0) invalid('listeners', values['listeners'], 'a broker needs a listener other than the controller listener');
  // Kafka: every listener binds its own port (port 0, "any free port", may repeat).
  const byPort = new Map<number, string>();
  for (const l of listeners.values()) {
    const other = byPort.get(l.port);
    if (l.port !== 0 && other !== undefined) invalid('listeners', values['listeners'], `listeners ${other} and ${l.name} use the same port ${l.port}; each listener needs its own port`);
    byPort.set(l.port, l.name);
  }
  const advertised = values['advertised.listeners'] === '' ? new Map<string, Listener>() : parseListeners('advertised.listeners', values['advertised.listeners']);
  for (const name of advertised.keys()) {
    if (!listeners.has(name)) invalid('advertised.listeners', values['advertised.listeners'], `listener ${name} is not one of listeners (${[...listeners.keys()].join(', ')})`);
  }
  for (const [name, l] of listeners) {
    if (!advertised.has(name)) advertised.set(name, { ...l, host: l.host === '0.0.0.0' || l.host === '::' ? '127.0.0.1' : l.host });
  }
  for (const l of advertised.values()) {
    if (l.host === '0.0.0.0' || l.host === '::') invalid('advertised.listeners', values['advertised.listeners'], `listener ${l.name} advertises ${l.host}, which nobody can connect to`);
  }
  if (values['listener.security.protocol.map'] !== '') {
    const protocols = parseSecurityProtocolMap(values['listener.security.protocol.map']);
    // Entries for listeners this node does not have are allowed, as Kafka's sample
    // server.properties maps SSL, SASL_PLAINTEXT and SASL_SSL whether or not they are used. The
    // controller listener counts as used even on a broker-only node: it is how the broker
    // reaches the controllers, which would otherwise be spoken to in plaintext.
    for (const name of new Set([...listeners.keys(), ...(protocols.has(controllerListener) ? [controllerListener] : [])])) {
      const protocol = protocols.get(name);
      if (protocol === undefined) invalid('listener.security.protocol.map', values['listener.security.protocol.map'], `no security protocol for listener ${name}`);
      else if (protocol !== 'PLAINTEXT') invalid('listener.security.protocol.map', values['listener.security.protocol.map'], `listener ${name}: security protocol ${protocol} is not supported yet (Strand listeners are PLAINTEXT only)`);
    }
  }
  let interBrokerListener = '';
  const ibl = values['inter.broker.listener.name'].trim().toUpperCase();
  if (ibl !== '') {
    if (ibl === controllerListener) invalid('inter.broker.listener.name', values['inter.broker.listener.name'], `${ibl} is the controller listener; brokers replicate over a broker listener`);
    if (!listeners.has(ibl)) invalid('inter.broker.listener.name', values['inter.broker.listener.name'], `listener ${ibl} is not one of listeners (${[...listeners.keys()].join(', ')})`);
  }
  if (roles.broker) interBrokerListener = ibl !== '' ? ibl : (brokerListeners[0] as Listener).name;
  if (values['log.dirs'].length === 0) invalid('log.dirs', '', 'at least one directory is required');
  // JBOD (partitions spread over several directories) is not supported: refused rather than
  // silently using only the first.
  if (values['log.dirs'].length > 1) invalid('log.dirs', values['log.dirs'].join(','), 'only one directory is supported (several directories, JBOD, are not)');
  const metadataLogDir = path.resolve(values['metadata.log.dir'] !== '' ? values['metadata.log.dir'] : (values['log.dirs'][0] as string));
  let http: Listener | null = null;
  if (values['http.listener'] !== '') {
    const m = /^(\[[^\]]+\]|[^:]*):(\d+)$/.exec(values['http.listener']);
    if (!m || Number(m[2]) > 65535) invalid('http.listener', values['http.listener'], 'expected host:port');
    http = { name: 'HTTP', host: (m[1] as string).replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(m[2]) };
  }
  return { values, explicitKeys, topicDefaults, roles, nodeId, voters, listeners, advertised, brokerListeners, interBrokerListener, metadataLogDir, http };
}
