/**
 * A metadata stream's snapshot turned into an image a slice per event-loop turn
 * (src/server/snapshot-image.ts): the image equals the one built in one go (a property over
 * random clusters and slice sizes), and while a 10,000-partition snapshot is built the event loop
 * keeps turning, shown by counting the turns of a setImmediate ticker running alongside (not by
 * timing): at least one per slice after the first.
 */
import fc from 'fast-check';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { ConfigResourceType, decodeMetadataDelta, encodeMetadataDelta, metadataDeltaSpans, type MetadataRecord } from '@strand/protocol';
import { SNAPSHOT_RECORDS_PER_TURN, imageFromSnapshot } from '../../src/server/snapshot-image';

/** A cluster of `brokers` brokers and topics with the given partition counts (RF up to 3). */
function clusterRecords(brokers: number, partitionsPerTopic: readonly number[]): MetadataRecord[] {
  const records: MetadataRecord[] = [{ cluster: { clusterId: 'c' } }];
  for (let b = 1; b <= brokers; b++) {
    records.push({ registerBroker: { brokerId: b, incarnationId: `i${b}`, brokerEpoch: b, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 9000 + b }], fenced: b % 4 === 0, inControlledShutdown: false, previousShutdownClean: true } });
  }
  partitionsPerTopic.forEach((n, t) => {
    const topicId = topicIdToBytes((t + 1).toString(16).padStart(32, '0'));
    const name = `topic-${t}`;
    records.push({ topic: { name, topicId } });
    for (let p = 0; p < n; p++) {
      const replicas = Array.from({ length: Math.min(3, brokers) }, (_, k) => ((t + p + k) % brokers) + 1);
      records.push({ partition: { topicId, partition: p, replicas, isr: replicas.slice(0, 1 + (p % replicas.length)), leader: replicas[0] as number, leaderEpoch: p % 5, partitionEpoch: p % 7, addingReplicas: [], removingReplicas: [] } });
    }
    if (t % 2 === 0) records.push({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: name, name: 'retention.ms', value: String(1000 * (t + 1)) } });
  });
  records.push({ producerIds: { brokerId: -1, brokerEpoch: -1, nextProducerId: 5000 } });
  return records;
}

/** What an image holds, comparable with toEqual. */
function contents(image: MetadataImage): { offset: number; records: MetadataRecord[] } {
  return { offset: image.offset, records: image.toRecords() };
}

describe('imageFromSnapshot', () => {
  it('builds the same image as MetadataImage.fromRecords, whatever the slice size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 8 }), fc.integer({ min: 1, max: 40 }), fc.nat(10_000), async (brokers, topics, perTurn, offset) => {
        const bytes = encodeMetadataDelta({ snapshot: true, offset, records: clusterRecords(brokers, topics) });
        const whole = decodeMetadataDelta(bytes);
        const sliced = await imageFromSnapshot(metadataDeltaSpans(bytes), perTurn);
        expect(contents(sliced)).toEqual(contents(MetadataImage.fromRecords(whole.offset, whole.records)));
      }),
      { numRuns: 100 },
    );
  });

  it('lets the event loop turn between slices while it builds a 10,000-partition snapshot', async () => {
    const records = clusterRecords(5, Array.from({ length: 1000 }, () => 10));
    const bytes = encodeMetadataDelta({ snapshot: true, offset: 77, records });
    const spans = metadataDeltaSpans(bytes);
    const slices = Math.ceil(spans.count / SNAPSHOT_RECORDS_PER_TURN);
    expect(slices).toBeGreaterThanOrEqual(11);
    let turns = 0;
    let running = true;
    const tick = (): void => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const image = await imageFromSnapshot(spans);
    const turnsWhileBuilding = turns;
    running = false;
    // Between every two slices the ticker ran at least once: nothing waited for the whole build.
    expect(turnsWhileBuilding).toBeGreaterThanOrEqual(slices - 1);
    expect([...image.allPartitions()]).toHaveLength(10_000);
    expect(contents(image)).toEqual(contents(MetadataImage.fromRecords(77, records)));
  });
});
