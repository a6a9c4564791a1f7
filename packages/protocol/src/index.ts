/**
 * @strand/protocol: the formats every Strand component shares. RecordBatch v2 (the bytes of
 * records on the wire and on disk), CRC-32C, compression codecs, Kafka's error table and typed
 * errors, Kafka-style config definitions, and the code generated from proto/.
 */
export {
  ERRORS,
  ErrorCode,
  ERROR_CODE_METADATA_KEY,
  GrpcStatus,
  StrandError,
  errorByCode,
  errorByName,
  grpcStatusFor,
  isStrandError,
} from './errors';
export type { ErrorDef, ErrorName } from './errors';

export { crc32c } from './crc32c';

export {
  COMPRESSION_NAMES,
  CompressionType,
  compressionCodec,
  compressionSupported,
  compressionTypeFromName,
  hasCompressionCodec,
  registerCompressionCodec,
} from './compression';
export type { CompressionCodec } from './compression';

export {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAGIC_V2,
  MAX_TIMESTAMP_OFFSET,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  NO_TIMESTAMP,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORDS_COUNT_OFFSET,
  RECORD_BATCH_OVERHEAD,
  TimestampType,
  batchCompression,
  batchHasDeleteHorizon,
  batchSizeAt,
  decodeRecordBatch,
  encodeRecordBatch,
  encodeEmptyRecordBatch,
  batchTimestampType,
  isControlBatch,
  isLogAppendTimeBatch,
  isTransactionalBatch,
  lastOffsetOf,
  readBatchHeader,
  recompressRecordBatch,
  setCreateTimeMaxTimestamp,
  setLogAppendTime,
  stampBatch,
  validateBatch,
  validateBatches,
  validateProducedRecords,
  walkRecordKeys,
} from './record-batch';
export type {
  BatchView,
  DecodeOptions,
  DecodedRecord,
  DecodedRecordBatch,
  ProducedRecordsOptions,
  RecordBatchHeader,
  RecordBatchInput,
  RecordHeader,
  RecordInput,
  RecordKeyVisitor,
  ValidateOptions,
} from './record-batch';

export { CLUSTER_DEFAULT_ONLY_KEYS, ConfigDef, DYNAMIC_BROKER_CONFIG, TOPIC_CONFIG, TOPIC_DEFAULTS_CONFIG, defineConfig, effectiveTopicDefaults, topicDefaultsFromBroker, validateDynamicBrokerConfigs } from './config';
export type { BrokerTopicDefault, EffectiveTopicDefault, TopicDefaultSource, ConfigKeyDef, ConfigSpec, ConfigType, ConfigValues, RawConfig, TopicConfig } from './config';

export { KafkaReader, KafkaWriter } from './kafka-wire';

export { messageCodec, toBuffer } from './proto-runtime';
export type { MessageCodec } from './proto-runtime';
export { metadataDeltaSpans, metadataSnapshotSpans } from './metadata-codec';
export { encodeMetadataSnapshotPart } from './metadata-parts';
export type { MetadataRecordSpans } from './metadata-codec';

/** Everything generated from proto/: message interfaces, codecs, gRPC services and clients. */
export * from './generated';
