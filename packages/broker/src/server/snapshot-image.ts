/**
 * Turns the snapshot a metadata stream starts with into an image over several event-loop turns.
 *
 * Why: every metadata stream (re)connect (a broker start, a controller failover, a stream moved
 * to the active controller) begins with a snapshot of the whole cluster. Decoded and applied in
 * one go that held a broker's event loop for 100-200 ms at 10,000 partitions (and ~400 ms at
 * 50,000): no produce or fetch answered, no heartbeat sent meanwhile. Here the snapshot's records
 * are decoded (metadataDeltaSpans leaves them undecoded) and applied a slice per turn, with a
 * setImmediate between slices, so I/O callbacks and timers run in between. The image is the same
 * as `MetadataImage.fromRecords(offset, records)`; it is visible only once complete. The slicing
 * is the controller's (imageFromSpans, which restores its Raft snapshot the same way).
 */
import type { MetadataRecordSpans } from '@strand/protocol';
import { SNAPSHOT_RECORDS_PER_TURN, imageFromSpans, type MetadataImage } from '@strand/controller';

/**
 * Snapshot records decoded and applied per event-loop turn (the controller's constant). ~1,000
 * records take 2-5 ms (measured with bench:metadata): short enough for heartbeats and
 * produce/fetch, few enough turns (11 at 10,000 partitions) that the image is not late.
 */
export { SNAPSHOT_RECORDS_PER_TURN };

/** The image of a stream's snapshot delta, built over several turns when it is large. */
export function imageFromSnapshot(d: MetadataRecordSpans, recordsPerTurn: number = SNAPSHOT_RECORDS_PER_TURN): Promise<MetadataImage> {
  return imageFromSpans(d, { recordsPerTurn });
}
