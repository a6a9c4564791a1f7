/** Test helpers: build images by applying the logic's own operations, step by step. */
import { ConfigResourceType, type CreatableTopic } from '@strand/protocol';
import { CONTROLLER_CONFIG, MetadataImage, brokerHeartbeat, createTopics, registerBroker, type Operation } from '../src';

export const config = CONTROLLER_CONFIG.defaults();

/** Applies an operation's records as the next offset; returns the new image and the answer. */
export function run<T>(image: MetadataImage, op: Operation<T>): { image: MetadataImage; result: T } {
  const after = op.records.length > 0 ? image.apply(image.offset + 1, op.records) : image;
  return { image: after, result: op.finish(after) };
}

let idCounter = 0;
export function nextTopicId(): string {
  idCounter++;
  return idCounter.toString(16).padStart(32, '0');
}

/** An image with brokers registered and unfenced (optionally with racks). */
export function clusterWith(brokerIds: number[], racks?: string[]): MetadataImage {
  let image = MetadataImage.EMPTY.apply(0, [{ cluster: { clusterId: 'test-cluster' } }]);
  brokerIds.forEach((id, i) => {
    const rack = racks?.[i];
    image = run(image, registerBroker(image, { brokerId: id, incarnationId: `inc-${id}`, endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + id }], ...(rack === undefined ? {} : { rack }), clusterId: '', previousShutdownClean: true }, () => false)).image;
  });
  for (const id of brokerIds) {
    const b = image.brokers.get(id)!;
    image = run(image, brokerHeartbeat(image, id, b.epoch, image.offset, false)).image;
  }
  return image;
}

export function topic(name: string, numPartitions = 1, replicationFactor = 1, configs: Record<string, string> = {}): CreatableTopic {
  return { name, numPartitions, replicationFactor, assignments: [], configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })) };
}

export function withTopic(image: MetadataImage, t: CreatableTopic): MetadataImage {
  const { image: after, result } = run(image, createTopics(image, [t], false, config, nextTopicId));
  if (result[0]!.errorCode !== 0) throw new Error(`createTopics failed: ${result[0]!.errorMessage}`);
  return after;
}

export const TOPIC = ConfigResourceType.CONFIG_RESOURCE_TOPIC;
