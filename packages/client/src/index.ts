/**
 * @strand/client: Producer, Consumer (with consumer groups) and Admin for Strand, over the
 * broker's gRPC API. Records travel as Kafka RecordBatch v2 bytes; configuration uses Kafka's key
 * names; every expected failure is a StrandError with Kafka's code, name and `retriable` flag.
 */
export { Producer } from './producer/producer';
export type { ProducerRecord, ProducerOptions, ProducerHeaders } from './producer/producer';
export type { RecordMetadata, SendCallback } from './producer/accumulator';
export { murmur2, partitionForKey, toPositive, StickyPartitioner } from './producer/partitioner';
export type { Partitioner, PartitionerArgs } from './producer/partitioner';
export { Consumer } from './consumer/consumer';
export type { ConsumerRecord, RebalanceListener, ConsumerOptions } from './consumer/consumer';
export { rangeAssignor, roundRobinAssignor, cooperativeStickyAssignor, encodeSubscription, decodeSubscription, encodeAssignment, decodeAssignment } from './consumer/assignors';
export type { Assignor, MemberSubscription, TopicPartition } from './consumer/assignors';
export type { CommittedOffset, OffsetToCommit } from './consumer/group-membership';
export { Admin } from './admin/admin';
export type {
  NewTopic,
  ItemResult,
  TopicDescription,
  PartitionDescription,
  ClusterDescription,
  ConfigDescription,
  OffsetSpec,
  PartitionOffset,
  DeletedRecords,
  GroupListing,
  GroupDescription,
  GroupMemberDescription,
  GroupOffset,
  MemberToRemove,
  QuorumInfo,
  QuorumReplica,
  RemovedMember,
  ReassignmentTarget,
  PartitionReassignment,
  BrokerLogDirs,
  LogDirDescription,
  LogDirReplica,
} from './admin/admin';
export { Cluster } from './cluster/cluster';
export type { PartitionInfo, TopicInfo } from './cluster/cluster';
export { PRODUCER_CONFIG, CONSUMER_CONFIG, ADMIN_CONFIG, parseProducerConfig, parseConsumerConfig, parseAdminConfig, parseHostPort } from './config';
export type { ProducerConfig, ConsumerConfig, AdminConfig, ClientConfigInput } from './config';
export { backoffMs, withRetries, isRetriable } from './retry';
export type { RetryOptions, BackoffOptions } from './retry';
export { toStrandError } from './errors';
export { StrandError, ErrorCode } from '@strand/protocol';
