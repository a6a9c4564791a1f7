/**
 * Controller settings (Kafka names and defaults where Kafka has the key). Validated at start-up
 * through the shared config machinery: a bad value fails with INVALID_CONFIG naming the key.
 */
import { defineConfig, type ConfigValues } from '@strand/protocol';

export const CONTROLLER_CONFIG = defineConfig({
  'broker.session.timeout.ms': { type: 'int', default: 9000, min: 100, doc: 'A broker that has not heartbeated for this long is fenced and loses its leaderships (ms).' },
  'num.partitions': { type: 'int', default: 1, min: 1, max: 100_000, doc: 'Partitions of a topic created without a partition count.' },
  'default.replication.factor': { type: 'int', default: 1, min: 1, max: 100, doc: 'Replication factor of a topic created without one.' },
  'auto.leader.rebalance.enable': { type: 'boolean', default: true, doc: 'Periodically move leadership back to preferred replicas when they are in sync.' },
  'leader.imbalance.check.interval.seconds': { type: 'int', default: 300, min: 1, doc: 'How often the automatic preferred-leader check runs (s).' },
  'leader.imbalance.per.broker.percentage': { type: 'int', default: 10, min: 0, max: 100, doc: 'Share of a broker\'s preferred partitions led elsewhere that triggers a rebalance (%).' },
  'delete.topic.enable': { type: 'boolean', default: true, doc: 'Whether DeleteTopics is allowed.' },
  'unclean.leader.election.enable': {
    type: 'boolean',
    default: false,
    // Accepted so that a Kafka server.properties stating the safe default still starts.
    validate: (v) => (v ? 'Strand enables unclean leader election per topic (strand topics alter T --config unclean.leader.election.enable=true) or cluster-wide as a dynamic config kept in the metadata, the same on every controller (strand configs --alter --broker-defaults --add-config unclean.leader.election.enable=true), not in a node\'s file' : undefined),
    doc: 'Kafka\'s cluster-wide default of the topic config; accepted in a node\'s file only as false (the default): enable unclean election per topic, or cluster-wide with strand configs --broker-defaults (dynamic).',
  },
  'controller.fence.check.interval.ms': { type: 'int', default: 250, min: 10, doc: 'Strand: how often the active controller checks broker sessions (ms).' },
  'controller.metadata.retained.batches': { type: 'int', default: 10_000, min: 10, doc: 'Strand: metadata batches kept in memory for the metadata stream; a broker further behind gets a snapshot.' },
  'controller.snapshot.interval.entries': { type: 'int', default: 10_000, min: 10, doc: 'Strand: the controller takes a Raft snapshot of the metadata image and compacts its log every this many applied entries (Kafka counts bytes: metadata.log.max.record.bytes.between.snapshots); a controller further behind the leader than the compacted log is brought up by InstallSnapshot.' },
  'producer.id.block.size': { type: 'int', default: 1000, min: 1, doc: 'Strand: producer ids handed to a broker per AllocateProducerIds.' },
});

export type ControllerConfig = ConfigValues<typeof CONTROLLER_CONFIG.spec>;
