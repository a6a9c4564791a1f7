/**
 * The one thing the coordinator reads of a member's ConsumerProtocol bytes (the JoinGroup
 * metadata of a group of protocol type "consumer"): the topics it subscribes to, which OffsetDelete
 * refuses to delete offsets of (GROUP_SUBSCRIBED_TO_TOPIC). Like Kafka's GroupMetadata, only the
 * version-0 prefix, which every later version starts with, is read:
 *
 *   ConsumerProtocolSubscription   int16 version | int32 topic_count | topic_count × string topic
 *                                  | ... (user_data, owned partitions, rack: not read)
 *
 * `string` is an int16 byte length then UTF-8 bytes (null, length -1, is malformed). Never
 * mutates its input.
 */
import { KafkaReader, StrandError } from '@strand/protocol';

export const CONSUMER_PROTOCOL_TYPE = 'consumer';

/**
 * The topics of a subscription, or null when the bytes do not parse (the caller then assumes
 * every topic is subscribed, as Kafka does: deleting offsets a member consumes is the mistake
 * to avoid).
 */
export function subscribedTopicsOf(metadata: Uint8Array): string[] | null {
  const r = new KafkaReader(Buffer.from(metadata.buffer, metadata.byteOffset, metadata.byteLength), 'INCONSISTENT_GROUP_PROTOCOL', 'consumer protocol subscription');
  try {
    r.int16();
    // Each topic takes at least its 2-byte length: a larger count cannot be genuine.
    const n = r.count(Math.max(0, r.remaining - 4) >> 1);
    const topics: string[] = [];
    for (let i = 0; i < n; i++) topics.push(r.string());
    return topics;
  } catch (e: unknown) {
    if (e instanceof StrandError) return null;
    throw e;
  }
}
