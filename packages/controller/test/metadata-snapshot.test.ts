/**
 * The controller's Raft snapshot of its metadata image, encoded and restored a slice of records
 * per event-loop turn (src/metadata-snapshot.ts): the sliced encoding is byte for byte the
 * synchronous one (`encodeMetadataSnapshot` of `image.toRecords()`, what the state machine
 * returned before) and the sliced restore gives the image `fromRecords` gives, both properties
 * over random clusters and slice sizes; and for a 10,000-partition image both yield to the event
 * loop between slices, shown by counting turns (the injected `nextTurn`, and a setImmediate ticker
 * running alongside), not by timing.
 */
import fc from 'fast-check';
import { ConfigResourceType, decodeMetadataSnapshot, encodeMetadataSnapshot, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '../src';
import { SNAPSHOT_RECORDS_PER_TURN, encodeImageSnapshot, restoreImageSnapshot } from '../src/metadata-snapshot';

/** A cluster of `brokers` brokers and topics with the given partition counts (RF up to 3), some configs. */
function clusterRecords(brokers: number, partitionsPerTopic: readonly number[], producerIds: number): MetadataRecord[] {
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
function contents(image: MetadataImage): { offset: number; records: MetadataRecord[] } {
  return { offset: image.offset, records: image.toRecords() };
}

const syncEncode = (image: MetadataImage): Uint8Array => encodeMetadataSnapshot({ offset: image.offset, records: image.toRecords() });

/** A nextTurn (a setImmediate) that counts its calls. */
function countingTurns(): { nextTurn: () => Promise<void>; turns: () => number } {
  let turns = 0;
  return {
    nextTurn: () => {
      turns++;
      return new Promise((resolve) => setImmediate(resolve));
    },
    turns: () => turns,
  };
}

describe('the controller snapshot, sliced', () => {
  it('encodes the bytes of the synchronous encoding and restores the image fromRecords builds, whatever the slice size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 8 }),
        fc.nat(100_000),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: -1, max: 10_000 }),
        async (brokers, topics, producerIds, perTurn, offset) => {
          const records = clusterRecords(brokers, topics, producerIds);
          const image = MetadataImage.fromRecords(offset, records);
          const bytes = await encodeImageSnapshot(image, { recordsPerTurn: perTurn });
          expect(Buffer.from(bytes)).toEqual(Buffer.from(syncEncode(image)));
          const restored = await restoreImageSnapshot(bytes, { recordsPerTurn: perTurn });
          const decoded = decodeMetadataSnapshot(bytes);
          expect(contents(restored.image)).toEqual(contents(MetadataImage.fromRecords(decoded.offset, decoded.records)));
          expect(restored.records).toEqual(decoded.records);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('encodes the records it is given (a memoized toRecords of the image) to the same bytes', async () => {
    const image = MetadataImage.fromRecords(42, clusterRecords(3, [5, 0, 7], 10));
    expect(Buffer.from(await encodeImageSnapshot(image, { records: image.toRecords(), recordsPerTurn: 4 }))).toEqual(Buffer.from(syncEncode(image)));
  });

  it('yields to the event loop between slices while it encodes and restores a 10,000-partition image', async () => {
    const image = MetadataImage.fromRecords(77, clusterRecords(5, Array.from({ length: 1000 }, () => 10), 5000));
    const count = image.toRecords().length;
    const slices = Math.ceil(count / SNAPSHOT_RECORDS_PER_TURN);
    expect(slices).toBeGreaterThanOrEqual(11);
    // A ticker alongside: it runs between slices only if the work yields.
    let ticks = 0;
    let running = true;
    const tick = (): void => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const enc = countingTurns();
    const bytes = await encodeImageSnapshot(image, { nextTurn: enc.nextTurn });
    const ticksEncoding = ticks;
    const dec = countingTurns();
    const restored = await restoreImageSnapshot(bytes, { nextTurn: dec.nextTurn });
    const ticksRestoring = ticks - ticksEncoding;
    running = false;
    // Encoding yields after each full slice, restoring between slices: at most
    // SNAPSHOT_RECORDS_PER_TURN records per turn, never the whole image in one.
    expect(enc.turns()).toBe(Math.floor(count / SNAPSHOT_RECORDS_PER_TURN));
    expect(dec.turns()).toBe(slices - 1);
    expect(ticksEncoding).toBeGreaterThanOrEqual(slices - 1);
    expect(ticksRestoring).toBeGreaterThanOrEqual(slices - 1);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(syncEncode(image)));
    expect([...restored.image.allPartitions()]).toHaveLength(10_000);
    expect(contents(restored.image)).toEqual(contents(image));
  });
});
