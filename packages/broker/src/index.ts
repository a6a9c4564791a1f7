/**
 * @strand/broker: partitions, produce/fetch and replication. The pure replication core
 * (leader-side ISR and high watermark, follower-side truncation by leader epoch, idempotent
 * producer state), its seeded simulator, and the server layer driving them (see README.md).
 */
export { DEFAULT_REPLICATION_CONFIG, replicationConfig } from './replication/config';
export type { ReplicationConfig } from './replication/config';
export { PartitionLeader } from './replication/partition-leader';
export type { Acks, FollowerProgress, LeaderReady, PartitionLeaderInit, ProduceCompletion } from './replication/partition-leader';
export { PartitionFollower } from './replication/partition-follower';
export type { FollowerAction, FollowerState, OutgoingFetch, PartitionFollowerInit } from './replication/partition-follower';
export { BATCHES_PER_PRODUCER, NO_PRODUCER_ID, ProducerStateManager, lastSequenceOf } from './replication/producer-state';
export type { CachedBatch, ProducerBatchHeader, ProducerEntry, ProducerStateOptions, SequenceCheck } from './replication/producer-state';
export { UNDEFINED_EPOCH, UNDEFINED_OFFSET, canonicalIsr } from './replication/types';
export type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  ConsumerFetchDecision,
  ConsumerFetchRequest,
  EpochEndOffset,
  FollowerFetchDecision,
  FollowerFetchError,
  FollowerFetchRequest,
  PartitionState,
  ReplicaId,
  ReplicaLogView,
} from './replication/types';
export { partitionLogView } from './log/partition-log-view';

// The seeded replication simulator (for tools such as a chaos runner; tests import it directly).
export { runSeed } from './sim/simulator';
export type { SimRunOptions, SimRunResult, SimRunStats } from './sim/simulator';
export { SimCluster } from './sim/sim-cluster';
export type { SimClusterOptions } from './sim/sim-cluster';
export { ReplicationChecker, SafetyViolation } from './sim/checker';
export { chooseLeader } from './sim/sim-controller';

// The broker server layer: gRPC service, replica management, replication fetcher.
export { BrokerServer, BROKER_CONFIG, configValueString } from './server/broker-server';
export type { BrokerListenerOptions, BrokerLogger, BrokerServerOptions, NodeConfigEntry } from './server/broker-server';
export { BROKER_MESSAGE_MAX_BYTES, FETCH_MAX_PARTITIONS, FETCH_RESPONSE_MAX_BYTES, checkBrokerConfig } from './server/broker-config';
export { META_PROPERTIES, formatLogDir, readMetaProperties } from './server/log-dir-meta';
export type { MetaProperties } from './server/log-dir-meta';
export type { BrokerConfig } from './server/broker-config';
export { NO_METRICS } from './server/broker-metrics';
export type { BrokerMetricsSink, ReplicaSummary } from './server/broker-metrics';
export { ControllerChannel } from './server/controller-channel';
export type { ControllerAddress } from './server/controller-channel';

// Consumer groups: the pure membership/offsets state machine, its records, and the coordinator.
export { GroupStateMachine, MAX_NAME_BYTES, coordinatorError } from './group/group-state-machine';
export type { CommitInput, DeleteOffsetsInput, FetchInput, GroupAppend, GroupConfig, GroupReady, GroupReply, GroupStateName, HeartbeatInput, JoinInput, LeaveInput, SyncInput } from './group/group-state-machine';
export { GroupCoordinator, OFFSETS_TOPIC, groupConfigOf } from './group/group-coordinator';
export type { GroupCoordinatorHost, GroupCoordinatorLogger } from './group/group-coordinator';
export { groupPartitionFor, javaStringHashCode, kafkaAbs } from './group/group-partitioner';
export { GroupLagReader } from './group/group-lag';
export type { ConsumerGroupLag, GroupLagHost } from './group/group-lag';
export {
  GROUP_METADATA_KEY_VERSION,
  GROUP_METADATA_VALUE_VERSION,
  OFFSET_COMMIT_KEY_VERSION,
  OFFSET_COMMIT_VALUE_VERSION,
  decodeGroupMetadataValue,
  decodeGroupRecordKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataValue,
  encodeGroupRecordKey,
  encodeOffsetCommitValue,
} from './group/group-records';
export type { GroupMemberValue, GroupMetadataKey, GroupMetadataValue, GroupRecord, GroupRecordKey, OffsetCommitKey, OffsetCommitValue } from './group/group-records';
