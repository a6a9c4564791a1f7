/**
 * A metadata stream's snapshot turned into an image a slice per event-loop turn
 * (src/server/snapshot-image.ts): the image equals the one built in one go (a property over
 * random clusters and slice sizes), and while a 10,000-partition snapshot is built the event loop
 * keeps turning, shown by counting the turns of a setImmediate ticker running alongside (not by
 * timing): at least one per slice after the first. The clusters are the controller snapshot
 * test's (controller test/support/cluster-records.ts).
 */
import fc from 'fast-check';
import { MetadataImage } from '@strand/controller';
import { decodeMetadataDelta, encodeMetadataDelta, metadataDeltaSpans } from '@strand/protocol';
import { SNAPSHOT_RECORDS_PER_TURN, imageFromSnapshot } from '../../src/server/snapshot-image';
import { clusterRecords, contents } from '../../../controller/test/support/cluster-records';

describe('imageFromSnapshot', () => {
  it('builds the same image as MetadataImage.fromRecords, whatever the slice size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 8 }), fc.integer({ min: 1, max: 40 }), fc.nat(10_000), async (brokers, topics, perTurn, offset) => {
        const bytes = encodeMetadataDelta({ snapshot: true, offset, records: clusterRecords(brokers, topics, 5000) });
        const whole = decodeMetadataDelta(bytes);
        const sliced = await imageFromSnapshot(metadataDeltaSpans(bytes), perTurn);
        expect(contents(sliced)).toEqual(contents(MetadataImage.fromRecords(whole.offset, whole.records)));
      }),
      { numRuns: 100 },
    );
  });

  it('lets the event loop turn between slices while it builds a 10,000-partition snapshot', async () => {
    const records = clusterRecords(5, Array.from({ length: 1000 }, () => 10), 5000);
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
