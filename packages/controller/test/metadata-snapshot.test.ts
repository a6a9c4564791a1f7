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
import { decodeMetadataSnapshot, encodeMetadataSnapshot } from '@strand/protocol';
import { MetadataImage } from '../src';
import { SNAPSHOT_RECORDS_PER_TURN, encodeImageSnapshot, restoreImageSnapshot } from '../src/metadata-snapshot';
import { clusterRecords, contents } from './support/cluster-records';

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
