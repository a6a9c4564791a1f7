/**
 * @strand/controller: cluster metadata on Raft (KRaft-style). The metadata image and the pure
 * controller logic, the quorum controller around a RaftNode, and its gRPC service.
 */
export { MetadataImage, MetadataImageBuilder, configKey, topicIdFromBytes, topicIdToBytes } from './metadata-image';
export type { BrokerRegistration, PartitionState, TopicId, TopicState } from './metadata-image';
export { SNAPSHOT_RECORDS_PER_TURN, encodeImageSnapshot, imageFromSpans, restoreImageSnapshot } from './metadata-snapshot';
export type { SliceOptions } from './metadata-snapshot';
export {
  MAX_TOPIC_NAME_LENGTH,
  NO_ERROR,
  allocateProducerIds,
  alterBrokerConfigs,
  alterPartition,
  alterReassignments,
  alterTopicConfigs,
  completeReassignment,
  autoRebalance,
  brokerHeartbeat,
  configChangesFromRequest,
  createPartitions,
  createTopics,
  deleteTopics,
  describeTopicConfigs,
  electAffected,
  electLeaders,
  electPartition,
  errorInfo,
  fenceBrokers,
  placeReplicas,
  registerBroker,
  validateTopicName,
} from './controller-logic';
export type { ConfigChange, TopicConfigDescription, ErrorInfo, HeartbeatResult, Operation, PartitionResultInfo, ProducerIdBlock, RegisterResult, TopicResultInfo } from './controller-logic';
export { CONTROLLER_CONFIG } from './controller-config';
export type { ControllerConfig } from './controller-config';
export { NotControllerError, QuorumController } from './quorum-controller';
export type { ControllerEndpoint, ControllerLogger, DeltaListener, QuorumControllerOptions } from './quorum-controller';
export { CONTROLLER_ADDRESS_METADATA_KEY, CONTROLLER_ID_METADATA_KEY, addControllerService, toServiceError } from './controller-service';
