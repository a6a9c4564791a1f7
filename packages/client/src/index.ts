/**
 * @strand/client: Producer, Consumer (with consumer groups) and Admin for Strand, over the
 * broker's gRPC API. Records travel as Kafka RecordBatch v2 bytes; configuration uses Kafka's key
 * names; every expected failure is a StrandError with Kafka's code, name and `retriable` flag.
 */
export { Producer } from './producer/producer';
export type { ProducerRecord, RecordMetadata, ProducerOptions, ProducerHeaders } from './producer/producer';
export { murmur2, partitionForKey, toPositive, StickyPartitioner } from './producer/partitioner';
export type { Partitioner, PartitionerArgs } from './producer/partitioner';
export { Cluster } from './cluster/cluster';
export type { PartitionInfo, TopicInfo } from './cluster/cluster';
export { PRODUCER_CONFIG, CONSUMER_CONFIG, ADMIN_CONFIG, parseProducerConfig, parseConsumerConfig, parseAdminConfig, parseHostPort } from './config';
export type { ProducerConfig, ConsumerConfig, AdminConfig, ClientConfigInput } from './config';
export { backoffMs, withRetries, isRetriable } from './retry';
export type { RetryOptions, BackoffOptions } from './retry';
export { toStrandError } from './errors';
export { StrandError, ErrorCode } from '@strand/protocol';
