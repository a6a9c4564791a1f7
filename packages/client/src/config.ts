/**
 * Client configuration: Kafka's names, defaults and units, validated at the edge.
 *
 * Each client takes a plain object of Kafka-style keys (`{ 'bootstrap.servers': 'h:9093',
 * acks: 'all', 'linger.ms': 5 }`); values may be strings (from files and flags) or typed values.
 * Unknown keys and bad values throw INVALID_CONFIG naming the key and the reason, before any
 * connection is opened. Strand-only keys are marked so in their documentation.
 */
import { ConfigDef, StrandError, defineConfig } from '@strand/protocol';
import type { ConfigKeyDef, ConfigType, ConfigValues, RawConfig } from '@strand/protocol';

// Keeps each key's literal type (so values parse to number/boolean/string[] per key).
function key<T extends ConfigType>(def: ConfigKeyDef<T>): ConfigKeyDef<T> {
  return def;
}

const MiB = 1024 * 1024;

/** Keys every client shares. */
const COMMON = {
  'bootstrap.servers': key({ type: 'list', default: ['127.0.0.1:9093'], doc: 'Brokers to bootstrap from, host:port, comma-separated; the rest of the cluster is learnt from metadata.', validate: validateServers }),
  'client.id': key({ type: 'string', default: '', doc: 'A name for this client, sent with every request (gRPC metadata `client-id`); the broker shows it in group member descriptions and member ids. Printable ASCII, at most 255 characters. Empty (the default): `producer-N`, `consumer-<group.id>-N` (`consumer-N` without a group) or `adminclient-N`, N counting from 1 per kind of client in the process, as Kafka does.', validate: validateClientId }),
  'request.timeout.ms': key({ type: 'int', default: 30_000, min: 1, doc: 'Longest wait for one request\'s response (ms) before it fails with REQUEST_TIMED_OUT and may be retried.' }),
  'retry.backoff.ms': key({ type: 'long', default: 100, min: 0, doc: 'First wait before retrying a retriable failure (ms); doubles per attempt with ±20 % jitter.' }),
  'retry.backoff.max.ms': key({ type: 'long', default: 1_000, min: 0, doc: 'Largest wait between retries (ms).' }),
  'metadata.max.age.ms': key({ type: 'long', default: 300_000, min: 0, doc: 'Metadata is refreshed at least this often (ms), and at once after a stale-metadata error.' }),
  'connections.max.count': key({ type: 'int', default: 1_000, min: 1, doc: 'Strand: the most broker connections (gRPC channels) a client keeps open.' }),
};

const PRODUCER_SPEC = {
  ...COMMON,
  acks: key({ type: 'string', default: 'all', oneOf: ['0', '1', 'all', '-1'], doc: 'Acknowledgements a write needs: 0 none, 1 the leader, all (-1) every in-sync replica.' }),
  'enable.idempotence': key({ type: 'boolean', default: true, doc: 'Producer ids and sequence numbers so retries never duplicate or reorder; needs acks=all, at most 5 requests in flight and retries > 0 (set explicitly against them it is INVALID_CONFIG; by default it is then off).' }),
  'batch.size': key({ type: 'int', default: 16_384, min: 0, max: 64 * MiB, doc: 'Starting size of a partition\'s record batch (bytes); under load it grows toward batch.size.max.' }),
  'batch.size.max': key({ type: 'int', default: MiB, min: 0, max: 64 * MiB, doc: 'Strand: the size a batch may grow to while the partition has batches waiting to be sent (bytes).' }),
  'linger.ms': key({ type: 'long', default: 0, min: 0, doc: 'How long a batch that is not full waits for more records before it is sent (ms). Default 0 (Kafka before 4.0): a partition\'s batch keeps filling while one of its batches is in flight, so batching under load does not need linger.' }),
  'buffer.memory': key({ type: 'long', default: 32 * MiB, min: 1, doc: 'Bytes of records buffered but not acknowledged; send() waits (up to max.block.ms) while full.' }),
  'max.block.ms': key({ type: 'long', default: 60_000, min: 0, doc: 'Longest send() waits for buffer space or for the topic\'s metadata (ms).' }),
  'max.in.flight.requests.per.connection': key({ type: 'int', default: 5, min: 1, max: 1000, doc: 'Unacknowledged produce requests per broker connection (at most 5 with idempotence; at most 1000, the broker\'s bound per ProduceStream).' }),
  'compression.type': key({ type: 'string', default: 'none', oneOf: ['none', 'gzip'], doc: 'Compression of record batches.' }),
  'delivery.timeout.ms': key({ type: 'long', default: 120_000, min: 1, doc: 'Upper bound on the time from send() to success or failure, retries included (ms). At least linger.ms + request.timeout.ms: set lower it is INVALID_CONFIG, and the default is raised to that.' }),
  'max.request.size': key({ type: 'int', default: MiB, min: 1, doc: 'Largest record (serialized) and largest produce request the producer builds (bytes).' }),
  retries: key({ type: 'int', default: 2_147_483_647, min: 0, doc: 'Retries of a failed batch (bounded in time by delivery.timeout.ms).' }),
  'partitioner.ignore.keys': key({ type: 'boolean', default: false, doc: 'When true, keyed records are spread by the sticky partitioner too.' }),
};

const CONSUMER_SPEC = {
  ...COMMON,
  'group.id': key({ type: 'string', default: '', doc: 'Consumer group; needed by subscribe() and by commits.' }),
  'group.instance.id': key({ type: 'string', default: '', doc: 'Static membership id (KIP-345): a restart within session.timeout.ms causes no rebalance.' }),
  'enable.auto.commit': key({ type: 'boolean', default: true, doc: 'Commit consumed positions every auto.commit.interval.ms, on rebalance and on close.' }),
  'auto.commit.interval.ms': key({ type: 'int', default: 5_000, min: 0, doc: 'Period of automatic commits (ms).' }),
  'auto.offset.reset': key({ type: 'string', default: 'latest', oneOf: ['earliest', 'latest', 'none'], doc: 'Where to start without a committed offset, or after OFFSET_OUT_OF_RANGE; none throws.' }),
  'fetch.min.bytes': key({ type: 'int', default: 1, min: 0, doc: 'Bytes a fetch waits for (up to fetch.max.wait.ms) before the broker answers.' }),
  'fetch.max.bytes': key({ type: 'int', default: 50 * MiB, min: 0, doc: 'Most bytes one fetch response carries (bytes).' }),
  'max.partition.fetch.bytes': key({ type: 'int', default: MiB, min: 0, doc: 'Most bytes per partition in one fetch response (bytes).' }),
  'fetch.max.wait.ms': key({ type: 'int', default: 500, min: 0, doc: 'Longest a fetch long-polls on the broker (ms).' }),
  'fetch.buffer.max.bytes': key({ type: 'long', default: 64 * MiB, min: 1, doc: 'Strand: fetched but not yet consumed bytes above which prefetching pauses (bytes).' }),
  'max.poll.records': key({ type: 'int', default: 500, min: 1, doc: 'Most records one poll() returns.' }),
  'session.timeout.ms': key({ type: 'int', default: 45_000, min: 1, doc: 'A member that sends no heartbeat for this long is removed from its group (ms).' }),
  'heartbeat.interval.ms': key({ type: 'int', default: 3_000, min: 1, doc: 'Period of group heartbeats (ms); keep it under a third of session.timeout.ms.' }),
  'max.poll.interval.ms': key({ type: 'int', default: 300_000, min: 1, doc: 'Longest gap between polls before the member leaves its group; also the rebalance timeout (ms).' }),
  'partition.assignment.strategy': key({ type: 'list', default: ['range', 'roundrobin'], oneOf: ['range', 'roundrobin', 'cooperative-sticky'], doc: 'Assignors offered to the group, in preference order; cooperative (incremental) rebalancing only when every one listed is cooperative (cooperative-sticky alone).' }),
  'isolation.level': key({ type: 'string', default: 'read_uncommitted', oneOf: ['read_uncommitted', 'read_committed'], doc: 'Whether fetches stop at the last stable offset.' }),
  'default.api.timeout.ms': key({ type: 'int', default: 60_000, min: 0, doc: 'How long position() waits for a starting position (committed offset or reset) to be found, retrying retriable failures (ms).' }),
  'check.crcs': key({ type: 'boolean', default: true, doc: 'Verify the CRC-32C of every fetched batch.' }),
};

const ADMIN_SPEC = {
  ...COMMON,
  retries: key({ type: 'int', default: 2_147_483_647, min: 0, doc: 'Retries of a retriable admin failure (bounded in time by default.api.timeout.ms).' }),
  'default.api.timeout.ms': key({ type: 'int', default: 60_000, min: 1, doc: 'Upper bound on one admin call, retries included (ms); each request within it waits at most request.timeout.ms. At least request.timeout.ms: set lower it is INVALID_CONFIG, and the default is raised to that.' }),
};

/** Longest client.id: the broker keeps at most this much of it for a group member. */
const CLIENT_ID_MAX_CHARS = 255;

/** client.id travels as an ASCII gRPC metadata value: printable characters only. */
function validateClientId(id: string): string | undefined {
  if (id.length > CLIENT_ID_MAX_CHARS) return `at most ${CLIENT_ID_MAX_CHARS} characters (got ${id.length})`;
  if (!/^[\x20-\x7e]*$/.test(id)) return 'printable ASCII only (it is sent as gRPC metadata)';
  return undefined;
}

/** Per-process counters of the default client ids, one per kind of client (Kafka's *_CLIENT_ID_SEQUENCE). */
const clientIdSequence = { producer: 0, consumer: 0, adminclient: 0 };

/**
 * Kafka's client.id for a client configured without one: `producer-N`, `consumer-<groupId>-N`
 * (`consumer-N` without a group) or `adminclient-N`, N counting from 1 per kind in this process.
 * Characters of the group id that a metadata value cannot carry are percent-encoded (UTF-8).
 */
export function defaultClientId(kind: keyof typeof clientIdSequence, groupId = ''): string {
  const n = ++clientIdSequence[kind];
  if (kind !== 'consumer' || groupId === '') return `${kind}-${n}`;
  const printable = groupId.replace(/[^\x20-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
  return `consumer-${printable}-${n}`;
}

function validateServers(servers: string[]): string | undefined {
  if (servers.length === 0) return 'at least one host:port is needed';
  for (const s of servers) {
    if (parseHostPort(s) === undefined) return `'${s}' is not host:port`;
  }
  return undefined;
}

/** Parses `host:port` (IPv6 hosts in brackets); undefined when malformed. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(s.trim());
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] as string, port };
}

export const PRODUCER_CONFIG: ConfigDef<typeof PRODUCER_SPEC> = defineConfig(PRODUCER_SPEC);
export const CONSUMER_CONFIG: ConfigDef<typeof CONSUMER_SPEC> = defineConfig(CONSUMER_SPEC);
export const ADMIN_CONFIG: ConfigDef<typeof ADMIN_SPEC> = defineConfig(ADMIN_SPEC);

export type ProducerConfig = ConfigValues<typeof PRODUCER_SPEC>;
export type ConsumerConfig = ConfigValues<typeof CONSUMER_SPEC>;
export type AdminConfig = ConfigValues<typeof ADMIN_SPEC>;
/** What the shared client machinery (connections, metadata, retries) reads. */
export type CommonConfig = ConfigValues<typeof COMMON>;

/** Raw config as users pass it: Kafka names to strings or typed values. */
export type ClientConfigInput = RawConfig;

/** Parses producer config, with Kafka's cross-key rules for idempotence. */
export function parseProducerConfig(raw: ClientConfigInput): ProducerConfig {
  const c = PRODUCER_CONFIG.parse(raw);
  const explicitIdempotence = raw['enable.idempotence'] !== undefined;
  if (c.acks === '-1') c.acks = 'all';
  if (c['enable.idempotence']) {
    if (c.acks !== 'all') {
      if (explicitIdempotence) throw new StrandError('INVALID_CONFIG', `enable.idempotence=true needs acks=all (got acks=${c.acks})`);
      // Like the Java client: idempotence is on by default only where its guarantee holds.
      c['enable.idempotence'] = false;
    } else if (c['max.in.flight.requests.per.connection'] > 5) {
      if (explicitIdempotence) throw new StrandError('INVALID_CONFIG', `enable.idempotence=true needs max.in.flight.requests.per.connection <= 5 (got ${c['max.in.flight.requests.per.connection']})`);
      c['enable.idempotence'] = false;
    } else if (c.retries === 0) {
      if (explicitIdempotence) throw new StrandError('INVALID_CONFIG', 'enable.idempotence=true needs retries > 0 (got retries=0)');
      c['enable.idempotence'] = false;
    }
  }
  // Kafka's KafkaProducer.configureDeliveryTimeout: a send must get at least one linger and one
  // request's time. Set explicitly too low, that is an error; the default is raised to fit.
  const floor = c['linger.ms'] + c['request.timeout.ms'];
  if (c['delivery.timeout.ms'] < floor) {
    if (raw['delivery.timeout.ms'] !== undefined) throw new StrandError('INVALID_CONFIG', `delivery.timeout.ms (${c['delivery.timeout.ms']}) should be equal to or larger than linger.ms + request.timeout.ms (${floor})`);
    c['delivery.timeout.ms'] = floor;
  }
  if (c['batch.size.max'] < c['batch.size']) c['batch.size.max'] = c['batch.size'];
  return c;
}

/** Parses consumer config, checking the keys that constrain each other. */
export function parseConsumerConfig(raw: ClientConfigInput): ConsumerConfig {
  const c = CONSUMER_CONFIG.parse(raw);
  if (c['heartbeat.interval.ms'] >= c['session.timeout.ms']) {
    throw new StrandError('INVALID_CONFIG', `heartbeat.interval.ms (${c['heartbeat.interval.ms']}) must be lower than session.timeout.ms (${c['session.timeout.ms']})`);
  }
  return c;
}

export function parseAdminConfig(raw: ClientConfigInput): AdminConfig {
  const c = ADMIN_CONFIG.parse(raw);
  // Kafka's admin client: a call must have time for at least one request.
  if (c['default.api.timeout.ms'] < c['request.timeout.ms']) {
    if (raw['default.api.timeout.ms'] !== undefined) throw new StrandError('INVALID_CONFIG', `default.api.timeout.ms (${c['default.api.timeout.ms']}) should be equal to or larger than request.timeout.ms (${c['request.timeout.ms']})`);
    c['default.api.timeout.ms'] = c['request.timeout.ms'];
  }
  return c;
}
