/**
 * Kafka-style configuration definitions: every tunable has a dotted Kafka name, a type, a
 * default, an optional range or set of valid values, and documentation with its unit.
 *
 * Definitions are data (`defineConfig`), parsing is one function that either returns a fully
 * typed object or throws INVALID_CONFIG with Kafka's wording:
 *   "Invalid value abc for configuration segment.bytes: Not a number of type INT".
 * Raw values may be strings (from files, CLI flags, environment) or already typed values.
 */
import { StrandError } from './errors';

export type ConfigType = 'int' | 'long' | 'double' | 'boolean' | 'string' | 'list';

type TypeOf<T extends ConfigType> = T extends 'int' | 'long' | 'double'
  ? number
  : T extends 'boolean'
    ? boolean
    : T extends 'string'
      ? string
      : string[];

export interface ConfigKeyDef<T extends ConfigType = ConfigType> {
  readonly type: T;
  readonly default: TypeOf<T>;
  /** What it does, with its unit. */
  readonly doc: string;
  /** Inclusive bounds for numeric keys. */
  readonly min?: number;
  readonly max?: number;
  /** Allowed values for string keys (and for each element of list keys). */
  readonly oneOf?: readonly string[];
  /** Extra validation; return an explanation when the value is invalid. */
  readonly validate?: (value: TypeOf<T>) => string | undefined;
}

/** A key definition of any type (a union, so each literal is checked against its own type). */
export type AnyConfigKeyDef = { [T in ConfigType]: ConfigKeyDef<T> }[ConfigType];
export type ConfigSpec = { readonly [name: string]: AnyConfigKeyDef };
export type ConfigValues<S extends ConfigSpec> = { -readonly [K in keyof S]: TypeOf<S[K]['type']> };
export type RawConfig = Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** A validated set of config definitions. */
export class ConfigDef<S extends ConfigSpec> {
  constructor(readonly spec: S) {
    // Defaults must themselves be valid: a bad default is a programming error.
    for (const name of Object.keys(spec)) {
      const def = spec[name] as AnyConfigKeyDef;
      const problem = checkValue(def, def.default);
      if (problem !== undefined) throw new Error(`config ${name}: default ${String(def.default)} is invalid: ${problem}`);
    }
  }

  /** Names of all keys, sorted. */
  names(): string[] {
    return Object.keys(this.spec).sort();
  }

  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.spec, name);
  }

  /** Default values for every key. */
  defaults(): ConfigValues<S> {
    return this.parse({});
  }

  /**
   * Parses and validates `raw` over the defaults. Unknown keys are rejected unless
   * `allowUnknown` (useful where a config map is shared with other components).
   */
  parse(raw: RawConfig, options: { allowUnknown?: boolean } = {}): ConfigValues<S> {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(raw)) {
      if (!this.has(name) && !options.allowUnknown && raw[name] !== undefined) {
        throw new StrandError('INVALID_CONFIG', `Unknown configuration ${name}`);
      }
    }
    for (const name of Object.keys(this.spec)) {
      const def = this.spec[name] as AnyConfigKeyDef;
      const given = raw[name];
      out[name] = given === undefined ? def.default : this.parseValue(name, given);
    }
    return out as ConfigValues<S>;
  }

  /** Parses one value for `name`, throwing INVALID_CONFIG with the reason. */
  parseValue<K extends keyof S & string>(name: K, raw: string | number | boolean | readonly string[]): TypeOf<S[K]['type']> {
    const def = this.spec[name];
    if (def === undefined) throw new StrandError('INVALID_CONFIG', `Unknown configuration ${name}`);
    const fail = (why: string): never => {
      throw new StrandError('INVALID_CONFIG', `Invalid value ${Array.isArray(raw) ? raw.join(',') : String(raw)} for configuration ${name}: ${why}`);
    };
    const value = coerce(def.type, raw, fail);
    const problem = checkValue(def, value);
    if (problem !== undefined) fail(problem);
    return value as TypeOf<S[K]['type']>;
  }

  /** A markdown table of every key (name, type, default, valid values, doc), for READMEs. */
  toMarkdown(): string {
    const rows = this.names().map((name) => {
      const d = this.spec[name] as AnyConfigKeyDef;
      const valid = d.oneOf ? d.oneOf.join(', ') : d.min !== undefined || d.max !== undefined ? `[${d.min ?? '…'}, ${d.max ?? '…'}]` : '';
      const dflt = Array.isArray(d.default) ? d.default.join(',') : String(d.default);
      return `| \`${name}\` | ${d.type} | \`${dflt}\` | ${valid} | ${d.doc} |`;
    });
    return ['| key | type | default | valid values | description |', '|---|---|---|---|---|', ...rows].join('\n');
  }
}

function coerce(type: ConfigType, raw: string | number | boolean | readonly string[], fail: (why: string) => never): number | boolean | string | string[] {
  switch (type) {
    case 'int':
    case 'long': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n)) return fail(`Not a number of type ${type.toUpperCase()}`);
      if (type === 'int' && (n < INT32_MIN || n > INT32_MAX)) return fail('Not a number of type INT');
      if (type === 'long' && !Number.isSafeInteger(n)) return fail('Not a number of type LONG (or beyond 2^53)');
      return n;
    }
    case 'double': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return fail('Not a number of type DOUBLE');
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const s = raw.trim().toLowerCase();
        if (s === 'true') return true;
        if (s === 'false') return false;
      }
      return fail('Expected value to be either true or false');
    }
    case 'string':
      if (typeof raw !== 'string') return fail('Expected value to be a string');
      return raw.trim();
    case 'list': {
      if (Array.isArray(raw)) return raw.map((s) => String(s).trim()).filter((s) => s !== '');
      if (typeof raw !== 'string') return fail('Expected a comma-separated list');
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    }
  }
}

function checkValue(def: AnyConfigKeyDef, value: number | boolean | string | string[]): string | undefined {
  if (typeof value === 'number') {
    if (def.min !== undefined && value < def.min) return `Value must be at least ${def.min}`;
    if (def.max !== undefined && value > def.max) return `Value must be no more than ${def.max}`;
  }
  if (def.oneOf !== undefined) {
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      if (!def.oneOf.includes(String(item))) return `String must be one of: ${def.oneOf.join(', ')}`;
    }
  }
  if (def.validate !== undefined) {
    // The callback is typed per key by defineConfig; here we only hold the erased definition.
    const check = def.validate as (v: number | boolean | string | string[]) => string | undefined;
    return check(value);
  }
  return undefined;
}

/** Declares a config definition set, checking defaults at load time. */
export function defineConfig<S extends ConfigSpec>(spec: S): ConfigDef<S> {
  return new ConfigDef(spec);
}

function key<T extends ConfigType>(def: ConfigKeyDef<T>): ConfigKeyDef<T> {
  return def;
}

const GiB = 1024 * 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Topic-level configs (Kafka's names and defaults), validated by the controller when a topic is
 * created or altered and used by storage and the broker.
 */
export const TOPIC_CONFIG = defineConfig({
  'cleanup.policy': key({ type: 'list', default: ['delete'], oneOf: ['delete', 'compact'], doc: 'delete: drop whole old segments by retention; compact: keep the latest record per key; both: do both.' }),
  'compression.type': key({
    type: 'string',
    default: 'producer',
    oneOf: ['producer', 'uncompressed', 'none', 'gzip', 'snappy', 'lz4', 'zstd'],
    // The controller refuses a codec the brokers lack when the key is set (not here: reading an
    // older topic's config back must not fail).
    doc: 'Final compression of the topic: `producer` keeps what the producer sent; a codec name (`uncompressed` = `none`) makes the leader recompress batches that use another codec.',
  }),
  'delete.retention.ms': key({ type: 'long', default: DAY_MS, min: 0, doc: 'How long tombstones are kept in compacted topics after compaction reaches them (ms).' }),
  'file.delete.delay.ms': key({ type: 'long', default: 60_000, min: 0, doc: 'Kafka: delay before a deleted segment file is removed from disk (ms). Strand accepts it for compatibility and ignores it: segment files are removed at once (no reader can hold a deleted segment).' }),
  'flush.policy': key({ type: 'string', default: 'fsync', oneOf: ['fsync', 'page-cache'], doc: 'Strand: `fsync` counts a batch toward the high watermark only after it is fdatasynced (group commit); `page-cache` is Kafka\'s classic replication-only durability, which does not survive a simultaneous power loss of the replicas.' }),
  'index.interval.bytes': key({ type: 'int', default: 4096, min: 0, doc: 'Bytes of log between two entries of the sparse offset index.' }),
  'max.compaction.lag.ms': key({ type: 'long', default: Number.MAX_SAFE_INTEGER, min: 1, doc: 'Longest time a record may stay uncompacted (ms): the active segment of a compacted topic rolls at this age, and a dirty segment older than it is compacted whatever `min.cleanable.dirty.ratio` says.' }),
  'max.message.bytes': key({ type: 'int', default: 1024 * 1024 + 12, min: 0, doc: 'Largest record batch the topic accepts (bytes; Kafka\'s default: 1 MiB plus the 12-byte log overhead).' }),
  'message.timestamp.after.max.ms': key({ type: 'long', default: 60 * 60 * 1000, min: 0, doc: 'CreateTime topics: the leader refuses (INVALID_TIMESTAMP) a record whose timestamp is more than this far ahead of its clock (ms; Kafka 4.0\'s default, one hour).' }),
  'message.timestamp.before.max.ms': key({ type: 'long', default: Number.MAX_SAFE_INTEGER, min: 0, doc: 'CreateTime topics: the leader refuses (INVALID_TIMESTAMP) a record whose timestamp is more than this far behind its clock (ms; default: no bound).' }),
  'message.timestamp.type': key({ type: 'string', default: 'CreateTime', oneOf: ['CreateTime', 'LogAppendTime'], doc: 'Whether record timestamps are the producer\'s or the broker\'s append time.' }),
  'min.cleanable.dirty.ratio': key({ type: 'double', default: 0.5, min: 0, max: 1, doc: 'Compaction runs when the uncompacted share of the log exceeds this ratio.' }),
  'min.compaction.lag.ms': key({ type: 'long', default: 0, min: 0, doc: 'Shortest time a record stays uncompacted (ms).' }),
  'min.insync.replicas': key({ type: 'int', default: 1, min: 1, doc: 'With acks=all, the fewest in-sync replicas for which appends are accepted.' }),
  'retention.bytes': key({ type: 'long', default: -1, min: -1, doc: 'Largest size of a partition before old segments are deleted (bytes; -1 = unlimited).' }),
  'retention.ms': key({ type: 'long', default: 7 * DAY_MS, min: -1, doc: 'Longest time a segment is kept after its newest record (ms; -1 = forever).' }),
  'segment.bytes': key({ type: 'int', default: GiB, min: 14, doc: 'Size at which the active segment rolls (bytes).' }),
  'segment.index.bytes': key({ type: 'int', default: 10 * 1024 * 1024, min: 8, doc: 'Largest size of one segment\'s offset index (bytes); the segment rolls when it is full.' }),
  'segment.ms': key({ type: 'long', default: 7 * DAY_MS, min: 1, doc: 'Age at which the active segment rolls even if not full (ms; compacted topics: at most `max.compaction.lag.ms`).' }),
  'unclean.leader.election.enable': key({ type: 'boolean', default: false, doc: 'Allow an out-of-sync replica to become leader (may lose acknowledged data).' }),
});

export type TopicConfig = ConfigValues<typeof TOPIC_CONFIG.spec>;

const HOUR_MS = 60 * 60 * 1000;

/**
 * Broker-level defaults of topic configs, under Kafka's server.properties names: a topic that does
 * not set the topic key takes the broker's value (Kafka's LogConfig synonyms, e.g. a broker's
 * `log.retention.hours=24` is every topic's `retention.ms` unless the topic sets its own). Only
 * keys set in the node's configuration count (see topicDefaultsFromBroker); the defaults here
 * equal the topic defaults, so an unset key changes nothing.
 */
export const TOPIC_DEFAULTS_CONFIG = defineConfig({
  'log.segment.bytes': key({ type: 'int', default: GiB, min: 14, doc: 'Broker default of segment.bytes: size at which the active segment rolls (bytes).' }),
  'log.roll.ms': key({ type: 'long', default: 7 * DAY_MS, min: 1, doc: 'Broker default of segment.ms: age at which the active segment rolls (ms; wins over log.roll.hours).' }),
  'log.roll.hours': key({ type: 'int', default: 168, min: 1, doc: 'Broker default of segment.ms, in hours.' }),
  'log.retention.bytes': key({ type: 'long', default: -1, min: -1, doc: 'Broker default of retention.bytes: largest size of a partition before old segments are deleted (bytes; -1 = unlimited).' }),
  'log.retention.ms': key({ type: 'long', default: 7 * DAY_MS, doc: 'Broker default of retention.ms (ms; negative = forever; wins over log.retention.minutes and log.retention.hours).' }),
  'log.retention.minutes': key({ type: 'int', default: 7 * 24 * 60, doc: 'Broker default of retention.ms, in minutes (negative = forever; wins over log.retention.hours).' }),
  'log.retention.hours': key({ type: 'int', default: 168, doc: 'Broker default of retention.ms, in hours (negative = forever).' }),
  'log.cleanup.policy': key({ type: 'list', default: ['delete'], oneOf: ['delete', 'compact'], doc: 'Broker default of cleanup.policy.' }),
  'log.cleaner.delete.retention.ms': key({ type: 'long', default: DAY_MS, min: 0, doc: 'Broker default of delete.retention.ms (ms).' }),
  'log.cleaner.min.compaction.lag.ms': key({ type: 'long', default: 0, min: 0, doc: 'Broker default of min.compaction.lag.ms (ms).' }),
  'log.cleaner.max.compaction.lag.ms': key({ type: 'long', default: Number.MAX_SAFE_INTEGER, min: 1, doc: 'Broker default of max.compaction.lag.ms (ms).' }),
  'log.cleaner.min.cleanable.ratio': key({ type: 'double', default: 0.5, min: 0, max: 1, doc: 'Broker default of min.cleanable.dirty.ratio.' }),
  'log.index.interval.bytes': key({ type: 'int', default: 4096, min: 0, doc: 'Broker default of index.interval.bytes (bytes).' }),
  'log.index.size.max.bytes': key({ type: 'int', default: 10 * 1024 * 1024, min: 8, doc: 'Broker default of segment.index.bytes (bytes).' }),
  'log.segment.delete.delay.ms': key({ type: 'long', default: 60_000, min: 0, doc: 'Broker default of file.delete.delay.ms (ms; accepted and ignored, as the topic key).' }),
  'log.message.timestamp.type': key({ type: 'string', default: 'CreateTime', oneOf: ['CreateTime', 'LogAppendTime'], doc: 'Broker default of message.timestamp.type.' }),
  'log.message.timestamp.after.max.ms': key({ type: 'long', default: HOUR_MS, min: 0, doc: 'Broker default of message.timestamp.after.max.ms (ms).' }),
  'log.message.timestamp.before.max.ms': key({ type: 'long', default: Number.MAX_SAFE_INTEGER, min: 0, doc: 'Broker default of message.timestamp.before.max.ms (ms).' }),
  'log.flush.policy': key({ type: 'string', default: 'fsync', oneOf: ['fsync', 'page-cache'], doc: 'Strand: broker default of flush.policy.' }),
  'min.insync.replicas': key({ type: 'int', default: 1, min: 1, doc: 'Broker default of min.insync.replicas: with acks=all, the fewest in-sync replicas for which appends are accepted.' }),
  'compression.type': key({ type: 'string', default: 'producer', oneOf: ['producer', 'uncompressed', 'none', 'gzip', 'snappy', 'lz4', 'zstd'], doc: 'Broker default of compression.type.' }),
});

/**
 * The broker keys a running cluster may change (Kafka's dynamic broker configs, set with
 * kafka-configs --entity-type brokers): every broker-level topic default, for one broker (resource
 * name = its id) or cluster-wide (resource name ''), and `unclean.leader.election.enable`, which
 * the active controller reads cluster-wide only (as KRaft's controller does). Stored in the
 * metadata log; a broker applies them to its topics as it applies the image.
 */
export const DYNAMIC_BROKER_CONFIG = defineConfig({
  ...TOPIC_DEFAULTS_CONFIG.spec,
  'unclean.leader.election.enable': key({ type: 'boolean', default: false, doc: 'Cluster-wide default of unclean.leader.election.enable (dynamic, cluster default only): leaderless partitions of topics that do not set it may elect an out-of-sync replica.' }),
});

/** Dynamic broker keys that only the cluster-wide default may set (the controller reads them there). */
export const CLUSTER_DEFAULT_ONLY_KEYS: ReadonlySet<string> = new Set(['unclean.leader.election.enable']);

/** Each topic key's broker synonyms, most specific first, with the factor to the topic key's unit. */
const TOPIC_KEY_SYNONYMS: ReadonlyArray<readonly [topicKey: keyof TopicConfig, synonyms: ReadonlyArray<readonly [brokerKey: keyof typeof DYNAMIC_BROKER_CONFIG.spec, factor: number]>]> = [
  ['segment.bytes', [['log.segment.bytes', 1]]],
  ['segment.ms', [['log.roll.ms', 1], ['log.roll.hours', HOUR_MS]]],
  ['retention.bytes', [['log.retention.bytes', 1]]],
  ['retention.ms', [['log.retention.ms', 1], ['log.retention.minutes', 60_000], ['log.retention.hours', HOUR_MS]]],
  ['cleanup.policy', [['log.cleanup.policy', 1]]],
  ['delete.retention.ms', [['log.cleaner.delete.retention.ms', 1]]],
  ['min.compaction.lag.ms', [['log.cleaner.min.compaction.lag.ms', 1]]],
  ['max.compaction.lag.ms', [['log.cleaner.max.compaction.lag.ms', 1]]],
  ['min.cleanable.dirty.ratio', [['log.cleaner.min.cleanable.ratio', 1]]],
  ['index.interval.bytes', [['log.index.interval.bytes', 1]]],
  ['segment.index.bytes', [['log.index.size.max.bytes', 1]]],
  ['file.delete.delay.ms', [['log.segment.delete.delay.ms', 1]]],
  ['message.timestamp.type', [['log.message.timestamp.type', 1]]],
  ['message.timestamp.after.max.ms', [['log.message.timestamp.after.max.ms', 1]]],
  ['message.timestamp.before.max.ms', [['log.message.timestamp.before.max.ms', 1]]],
  ['flush.policy', [['log.flush.policy', 1]]],
  ['min.insync.replicas', [['min.insync.replicas', 1]]],
  ['compression.type', [['compression.type', 1]]],
  ['unclean.leader.election.enable', [['unclean.leader.election.enable', 1]]],
];

/** One topic key's default on this broker: its value and the broker key it came from. */
export interface BrokerTopicDefault {
  readonly value: string;
  readonly synonym: string;
}

/**
 * The topic defaults a node's configuration sets: for each topic key, the most specific of its
 * broker synonyms that was set (`explicit`), converted to the topic key's unit (a negative
 * retention is -1, forever, as Kafka reads it). Keys not set are absent: the topic default applies.
 * Throws INVALID_CONFIG naming the broker key when the converted value is not a valid topic value.
 */
export function topicDefaultsFromBroker(values: Readonly<Record<string, unknown>>, explicit: ReadonlySet<string>): Map<string, BrokerTopicDefault> {
  const out = new Map<string, BrokerTopicDefault>();
  for (const [topicKey, synonyms] of TOPIC_KEY_SYNONYMS) {
    const set = synonyms.find(([brokerKey]) => explicit.has(brokerKey));
    if (set === undefined) continue;
    const [brokerKey, factor] = set;
    out.set(topicKey, { value: synonymValue(topicKey, brokerKey, factor, values[brokerKey]), synonym: brokerKey });
  }
  return out;
}

/** A broker key's typed value as its topic key's value; INVALID_CONFIG naming both when invalid. */
function synonymValue(topicKey: string, brokerKey: string, factor: number, raw: unknown): string {
  const value = Array.isArray(raw) ? raw.join(',') : typeof raw === 'number' ? String(topicKey === 'retention.ms' && raw < 0 ? -1 : raw * factor) : String(raw);
  try {
    TOPIC_CONFIG.parse({ [topicKey]: value });
  } catch (e: unknown) {
    throw new StrandError('INVALID_CONFIG', `Invalid value ${String(raw)} for configuration ${brokerKey} (the default of ${topicKey}): ${e instanceof Error ? e.message : String(e)}`);
  }
  return value;
}

/** Where a topic default comes from: Kafka's STATIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, DYNAMIC_BROKER_CONFIG. */
export type TopicDefaultSource = 'static' | 'dynamic-default' | 'dynamic-broker';

export interface EffectiveTopicDefault extends BrokerTopicDefault {
  readonly source: TopicDefaultSource;
}

/**
 * Validates the dynamic broker configs one resource would hold after a change (its whole set):
 * each key must be a dynamic broker key (`clusterDefault`: the '' resource; otherwise one
 * broker's, which may not set CLUSTER_DEFAULT_ONLY_KEYS) and its value valid both as the broker
 * key and as the topic key it defaults. Returns the normalized values (as parsed, e.g. ' 5 ' ->
 * '5'); throws INVALID_CONFIG naming the key otherwise.
 */
export function validateDynamicBrokerConfigs(entries: ReadonlyMap<string, string>, clusterDefault: boolean): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, raw] of entries) {
    if (!DYNAMIC_BROKER_CONFIG.has(name)) throw new StrandError('INVALID_CONFIG', `Cannot update configuration ${name} dynamically: the dynamic broker configs are ${DYNAMIC_BROKER_CONFIG.names().join(', ')}`);
    if (!clusterDefault && CLUSTER_DEFAULT_ONLY_KEYS.has(name)) throw new StrandError('INVALID_CONFIG', `${name} can be set cluster-wide only (the broker resource named ''), not for one broker`);
    const typed = DYNAMIC_BROKER_CONFIG.parseValue(name as keyof typeof DYNAMIC_BROKER_CONFIG.spec, raw);
    const synonym = TOPIC_KEY_SYNONYMS.flatMap(([topicKey, syns]) => syns.filter(([b]) => b === name).map(([, factor]) => [topicKey, factor] as const))[0];
    if (synonym !== undefined) synonymValue(synonym[0], name, synonym[1], typed);
    out.set(name, Array.isArray(typed) ? typed.join(',') : String(typed));
  }
  return out;
}

/**
 * The topic defaults in force on a broker, with Kafka's precedence over the broker keys: a key
 * set for this broker dynamically wins over the cluster-wide dynamic default, which wins over
 * the node's static setting (`staticDefaults`, from topicDefaultsFromBroker); then, per topic key,
 * the most specific synonym set in any of them counts (a static log.retention.ms beats a dynamic
 * log.retention.hours, as in Kafka, where the layers merge key by key). A dynamic value that does
 * not validate (written by an older controller) is skipped, never thrown: the image must apply.
 */
export function effectiveTopicDefaults(
  staticDefaults: ReadonlyMap<string, BrokerTopicDefault>,
  dynamicDefault: ReadonlyMap<string, string>,
  dynamicBroker: ReadonlyMap<string, string>,
): Map<string, EffectiveTopicDefault> {
  const values = new Map<string, unknown>();
  const sources = new Map<string, TopicDefaultSource>();
  const layers: [ReadonlyMap<string, string>, TopicDefaultSource, boolean][] = [
    [dynamicDefault, 'dynamic-default', true],
    [dynamicBroker, 'dynamic-broker', false],
  ];
  for (const [layer, source, clusterDefault] of layers) {
    for (const [name, raw] of layer) {
      try {
        validateDynamicBrokerConfigs(new Map([[name, raw]]), clusterDefault);
      } catch {
        continue;
      }
      values.set(name, DYNAMIC_BROKER_CONFIG.parseValue(name as keyof typeof DYNAMIC_BROKER_CONFIG.spec, raw));
      sources.set(name, source);
    }
  }
  const out = new Map<string, EffectiveTopicDefault>();
  for (const [topicKey, synonyms] of TOPIC_KEY_SYNONYMS) {
    const fromStatic = staticDefaults.get(topicKey);
    const set = synonyms.find(([brokerKey]) => sources.has(brokerKey) || fromStatic?.synonym === brokerKey);
    if (set === undefined) continue;
    const [brokerKey, factor] = set;
    const source = sources.get(brokerKey);
    if (source === undefined) out.set(topicKey, { ...(fromStatic as BrokerTopicDefault), source: 'static' });
    else out.set(topicKey, { value: synonymValue(topicKey, brokerKey, factor, values.get(brokerKey)), synonym: brokerKey, source });
  }
  return out;
}
