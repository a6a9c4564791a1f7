/**
 * ConsumerProtocol subscription bytes as Kafka's consumers send them in JoinGroup (version 0:
 * int16 version | int32 count | topics as int16-length strings | int32 -1, null user data), for
 * the group tests: the broker itself only reads them (src/group/consumer-protocol.ts).
 */
import { KafkaWriter } from '@strand/protocol';

export function consumerSubscription(...topics: string[]): Buffer {
  const w = new KafkaWriter().int16(0).int32(topics.length);
  for (const t of topics) w.string(t);
  return w.bytes(null).done();
}
