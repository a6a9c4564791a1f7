/**
 * Broker settings (Kafka names and defaults where Kafka has the key), validated at start-up with
 * errors that name the key. Topic-level settings (retention, segment size, min.insync.replicas,
 * flush.policy...) are topic configs held by the controller, not here.
 */
import { StrandError, defineConfig, type ConfigValues } from '@strand/protocol';

/** Largest gRPC message a broker listener sends or accepts (bytes; the server process sets it). */
export const BROKER_MESSAGE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Largest value of fetch.max.bytes and replica.fetch.response.max.bytes (bytes): an answer holds
 * at most that many record bytes (or one batch, when a single batch is larger), and the 1 MiB
 * left below BROKER_MESSAGE_MAX_BYTES is for the answer's per-partition fields, so no answer
 * exceeds what the listener may send and the client (64 MiB by default) may receive.
 */
export const FETCH_RESPONSE_MAX_BYTES = BROKER_MESSAGE_MAX_BYTES - 1024 * 1024;

/**
 * Most partitions one Fetch or ReplicaFetch request may name (a topic entry naming none counts as
 * one); beyond it the request is answered INVALID_REQUEST as a whole (FetchResponse.error_code, no
 * partitions). Strand-only: Kafka bounds a fetch by its request size (socket.request.max.bytes),
 * but an answer repeats up to ~100 bytes of fields per partition, so a request within the gRPC
 * message limit could ask for an answer far beyond it. The answer's record budget shrinks by its
 * fields beyond the 1 MiB kept for them below BROKER_MESSAGE_MAX_BYTES.
 */
export const FETCH_MAX_PARTITIONS = 100_000;

export const BROKER_CONFIG = defineConfig({
  'broker.heartbeat.interval.ms': { type: 'int', default: 2000, min: 10, doc: 'How often the broker heartbeats to the active controller (ms).' },
  'broker.rack': { type: 'string', default: '', doc: 'Rack of this broker, for rack-aware replica placement (empty: none).' },
  'replica.lag.time.max.ms': { type: 'int', default: 30_000, min: 10, doc: 'A follower that has not caught up with the leader for this long leaves the ISR (ms).' },
  'replica.fetch.max.bytes': { type: 'int', default: 1024 * 1024, min: 1024, doc: 'Bytes a follower asks per partition in one fetch (at least one batch is always returned).' },
  'replica.fetch.response.max.bytes': { type: 'int', default: 10 * 1024 * 1024, min: 1024, max: FETCH_RESPONSE_MAX_BYTES, doc: 'Bytes in one replica fetch response across partitions (at most 63 MiB, below the 64 MiB gRPC message limit).' },
  'replica.fetch.wait.max.ms': { type: 'int', default: 500, min: 0, doc: 'How long the leader holds a follower fetch that has nothing new (ms); when it has not even a new high watermark or log start to tell, it holds the fetch up to 4.5 s longer (in all at most half of replica.lag.time.max.ms).' },
  'replica.socket.timeout.ms': { type: 'int', default: 30_000, min: 1, doc: 'How long a follower waits for a leader to answer a replica fetch beyond the longest the leader may hold it (replica.fetch.wait.max.ms plus 4.5 s when idle) before it counts the fetch as lost, drops the connection, backs off and reconnects (ms). At least replica.fetch.wait.max.ms, as in Kafka.' },
  'replica.fetch.backoff.ms': { type: 'int', default: 100, min: 0, doc: 'Wait after a failed replica fetch before retrying (ms).' },
  'replica.high.watermark.checkpoint.interval.ms': { type: 'int', default: 5000, min: 10, doc: 'How often high watermarks are written to replication-offset-checkpoint (ms).' },
  'fetch.max.bytes': { type: 'int', default: 55 * 1024 * 1024, min: 1024, max: FETCH_RESPONSE_MAX_BYTES, doc: 'Largest fetch response, consumer or follower, whatever the request asks (bytes; at most 63 MiB, below the 64 MiB gRPC message limit; one batch larger than it is still sent whole).' },
  'fetch.max.held.requests': { type: 'int', default: 5000, min: 0, doc: 'Strand-only (Kafka bounds waiting requests through its per-connection request queue): consumer fetches this broker holds at once waiting for min bytes (max_wait_ms long-polls, across listeners). A fetch that would wait beyond it is answered at once with what is there; 0 answers every fetch at once.' },
  'message.max.bytes': { type: 'int', default: 1024 * 1024 + 12, min: 0, doc: 'Largest record batch accepted when the topic does not set max.message.bytes (bytes).' },
  'queued.max.requests': { type: 'int', default: 10_000, min: 1, doc: 'Strand\'s meaning (Kafka\'s bounds the I/O threads\' request queue): acks=all produces a partition leader holds waiting for the high watermark; at this many, further acks=all produces to the partition are refused, before being appended, with THROTTLING_QUOTA_EXCEEDED (retriable). acks=0 and 1 are not counted.' },
  'log.retention.check.interval.ms': { type: 'int', default: 300_000, min: 10, doc: 'How often retention runs over every log (ms).' },
  'log.cleaner.backoff.ms': { type: 'int', default: 15_000, min: 10, doc: 'How often compaction looks for compacted topics to clean (ms).' },
  'log.cleaner.dedupe.buffer.size': { type: 'int', default: 128 * 1024 * 1024, min: 1024, max: 2 ** 31 - 1, doc: "Memory for compaction's offset map (bytes; 24 per distinct key): a pass maps as many dirty segments' keys as fit and the next goes on from there; a segment with more distinct keys than fit is not compacted (logged) until it is raised." },
  'log.cleaner.io.buffer.load.factor': { type: 'double', default: 0.9, min: 0.01, max: 1, doc: "How full compaction's offset map may get (its share of slots in use)." },
  'auto.create.topics.enable': { type: 'boolean', default: false, doc: 'Create a topic (num.partitions, default.replication.factor) on the first Metadata request of a producer or consumer naming it (admin lookups never create); answered LEADER_NOT_AVAILABLE until it has leaders (Strand defaults to off: typos should not create topics).' },
  'log.test.durable.positions.file': { type: 'string', default: '', doc: 'Strand, tests only (default off): append one JSON line per partition flush/truncation to this file with the fdatasynced length of each segment, so chaos tests can simulate a power loss by truncating the files to it.' },
  'request.timeout.ms': { type: 'int', default: 30_000, min: 1, doc: 'Default produce timeout when a request gives none (ms).' },
  // Consumer groups (the coordinator on the leader of each __consumer_offsets partition).
  'offsets.topic.num.partitions': { type: 'int', default: 50, min: 1, max: 10_000, doc: 'Partitions of __consumer_offsets, fixed when the topic is created on first FindCoordinator.' },
  'offsets.topic.replication.factor': { type: 'int', default: 3, min: 1, max: 32, doc: 'Replication factor of __consumer_offsets; until that many brokers are live, FindCoordinator answers COORDINATOR_NOT_AVAILABLE and the topic is not created (set 1 for a single broker).' },
  'offsets.topic.segment.bytes': { type: 'int', default: 100 * 1024 * 1024, min: 1024, doc: 'segment.bytes of __consumer_offsets (bytes; small segments let compaction work).' },
  'offsets.commit.timeout.ms': { type: 'int', default: 5000, min: 1, doc: 'How long a group write (offset commit, assignment) waits for acks=all before failing with COORDINATOR_NOT_AVAILABLE (ms).' },
  'offsets.load.buffer.size': { type: 'int', default: 5 * 1024 * 1024, min: 1024, doc: 'Bytes read per step while loading a __consumer_offsets partition (bytes).' },
  'offsets.retention.minutes': { type: 'int', default: 10_080, min: 1, doc: 'Offsets of a group that has been Empty this long are deleted (minutes; standalone consumers: since the commit).' },
  'offsets.retention.check.interval.ms': { type: 'int', default: 600_000, min: 10, doc: 'How often expired offsets are looked for (ms).' },
  'offset.metadata.max.bytes': { type: 'int', default: 4096, min: 0, max: 32_767, doc: 'Longest metadata string of an offset commit (UTF-8 bytes).' },
  'group.min.session.timeout.ms': { type: 'int', default: 6000, min: 1, doc: 'Smallest session timeout a member may ask for (ms).' },
  'group.max.session.timeout.ms': { type: 'int', default: 1_800_000, min: 1, doc: 'Largest session timeout a member may ask for (ms).' },
  'group.initial.rebalance.delay.ms': { type: 'int', default: 3000, min: 0, doc: 'How long the first rebalance of an empty group waits for more members, extended per joiner up to the rebalance timeout (ms).' },
  'group.max.size': { type: 'int', default: 1000, min: 1, doc: 'Members per group, including ids handed out and awaiting their join (Kafka defaults to unbounded; Strand to 1000). Static, as in Kafka: lowered at a restart, a group loaded with more members rebalances, and rejoins beyond the limit are refused with GROUP_MAX_SIZE_REACHED (KIP-389).' },
  'group.coordinator.max.groups': { type: 'int', default: 100_000, min: 1, doc: 'Groups held per __consumer_offsets partition led by this broker (Strand-only); new groups beyond it get COORDINATOR_NOT_AVAILABLE.' },
});

export type BrokerConfig = ConfigValues<typeof BROKER_CONFIG.spec>;

/**
 * Longest extra time a leader holds an idle replica fetch (no bytes, nothing new to tell) beyond
 * replica.fetch.wait.max.ms (and never past half of replica.lag.time.max.ms in all). The
 * follower's fetch timeout adds it to the wait, so a fetch held this long is never timed out.
 */
export const IDLE_REPLICA_FETCH_HOLD_MS = 4_500;

/** Checks across keys, at start-up (an error names the key). */
export function checkBrokerConfig(config: BrokerConfig): void {
  // Kafka's KafkaConfig requires the same, so that a held fetch is not taken for a dead leader.
  if (config['replica.socket.timeout.ms'] < config['replica.fetch.wait.max.ms']) {
    throw new StrandError('INVALID_CONFIG', `Invalid value ${config['replica.socket.timeout.ms']} for configuration replica.socket.timeout.ms: it must be at least replica.fetch.wait.max.ms (${config['replica.fetch.wait.max.ms']})`);
  }
}
