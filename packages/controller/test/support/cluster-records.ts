/**
 * The records of a small random-shaped cluster, for the properties that check a metadata
 * snapshot rebuilds the image `MetadataImage.fromRecords` builds: the controller's Raft snapshot
 * (metadata-snapshot.test.ts) and the broker's stream snapshot (broker
 * test/server/snapshot-image.test.ts).
 */
import { ConfigResourceType, type MetadataRecord } from '@strand/protocol';
import { topicIdToBytes, type MetadataImage } from '../../src';

/** A cluster of `brokers` brokers and topics with the given partition counts (RF up to 3), some configs. */
export function clusterRecords(brokers: number, partitionsPerTopic: readonly number[], producerIds: number): MetadataRecord[] {
  const records: MetadataRecord[] = [{ cluster: { clusterId: 'c' } }];
  for (let b = 1; b <= brokers; b++) {
    records.push({ registerBroker: { brokerId: b, incarnationId: `i${b}`, brokerEpoch: b, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 9000 + b }], ...(b % 2 === 0 ? { rack: `r${b % 3}` } : {}), fenced: b % 4 === 0, inControlledShutdown: b % 5 === 0, previousShutdownClean: true } });
  }
  partitionsPerTopic.forEach((n, t) => {
    const topicId = topicIdToBytes((t + 1).toString(16).padStart(32, '0'));
    const name = `topic-${t}`;
    records.push({ topic: { name, topicId } });
    for (let p = 0; p < n; p++) {
      const replicas = Array.from({ length: Math.min(3, brokers) }, (_, k) => ((t + p + k) % brokers) + 1);
      records.push({ partition: { topicId, partition: p, replicas, isr: replicas.slice(0, 1 + (p % replicas.length)), leader: p % 9 === 0 ? -1 : (replicas[0] as number), leaderEpoch: p % 5, partitionEpoch: p % 7, addingReplicas: p % 11 === 0 ? replicas.slice(0, 1) : [], removingReplicas: [] } });
    }
    if (t % 2 === 0) records.push({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: name, name: 'retention.ms', value: String(1000 * (t + 1)) } });
  });
  if (brokers > 1) records.push({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_BROKER, resourceName: '1', name: 'log.retention.ms', value: '5' } });
  if (producerIds > 0) records.push({ producerIds: { brokerId: -1, brokerEpoch: -1, nextProducerId: producerIds } });
  return records;
}

/** What an image holds, comparable with toEqual. */
export function contents(image: MetadataImage): { offset: number; records: MetadataRecord[] } {
  return { offset: image.offset, records: image.toRecords() };
}
