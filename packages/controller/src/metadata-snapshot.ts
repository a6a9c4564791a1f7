/**
 * The controller's Raft snapshot of its metadata image (a MetadataSnapshot: the image's offset
 * and the records that rebuild it), encoded and restored a slice of records per event-loop turn.
 *
 * Why: QuorumController's state machine runs on its Raft node's loop. Encoded in one go, a
 * snapshot held the event loop ~20-25 ms at 10,000 partitions and ~250-290 ms at 50,000, every
 * `snapshotEveryEntries` applied entries; restored in one go (a follower installing the leader's
 * snapshot, or start-up), ~65 ms and ~730 ms. Meanwhile an active controller sent no heartbeats
 * and committed nothing. Here the image, immutable, is captured at the call and turned into
 * records and bytes a slice per turn, with a setImmediate between slices (RaftNode compacts at
 * the index captured with it once the promise resolves); a restore decodes and applies a slice
 * per turn with MetadataImageBuilder (imageFromSpans, which the broker uses too for the snapshot
 * a metadata stream starts with), the image visible only once complete.
 *
 * Bytes: exactly `encodeMetadataSnapshot({ offset, records: image.toRecords() })` (the offset,
 * then each slice's records, concatenated: encodeMetadataSnapshotPart). The restored image is
 * exactly `MetadataImage.fromRecords(offset, records)`.
 */
import { encodeMetadataSnapshotPart, metadataSnapshotSpans, type MetadataRecord, type MetadataRecordSpans } from '@strand/protocol';
import { MetadataImage, MetadataImageBuilder } from './metadata-image';

/**
 * Records turned into bytes, or decoded and applied, per event-loop turn. ~1,000 records take
 * 1-5 ms either way (as the broker's snapshot-image.ts measured): short enough for the Raft
 * node's heartbeats, few enough turns (12 at 10,000 partitions) that the snapshot is not late.
 */
export const SNAPSHOT_RECORDS_PER_TURN = 1000;

export interface SliceOptions {
  /** Records per event-loop turn. Default SNAPSHOT_RECORDS_PER_TURN. */
  readonly recordsPerTurn?: number;
  /** Waits for the next turn. Default: a setImmediate (I/O callbacks and due timers run first). Tests count turns with it. */
  readonly nextTurn?: () => Promise<void>;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function perTurn(opts: SliceOptions): number {
  const n = opts.recordsPerTurn ?? SNAPSHOT_RECORDS_PER_TURN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`recordsPerTurn must be a positive integer, got ${n}`);
  return n;
}

/**
 * Encodes `image` as a MetadataSnapshot over several turns. `records`: the image's records if
 * already made (a memoized toRecords()), else made a slice at a time from the image. The image
 * must not be replaced under the caller's feet: it is immutable, so it never is.
 */
export async function encodeImageSnapshot(image: MetadataImage, opts: SliceOptions & { readonly records?: Iterable<MetadataRecord> } = {}): Promise<Uint8Array> {
  const n = perTurn(opts);
  const turn = opts.nextTurn ?? nextTurn;
  const parts: Uint8Array[] = [encodeMetadataSnapshotPart({ offset: image.offset })];
  let slice: MetadataRecord[] = [];
  for (const r of opts.records ?? image.records()) {
    slice.push(r);
    if (slice.length < n) continue;
    parts.push(encodeMetadataSnapshotPart({ records: slice }));
    slice = [];
    await turn();
  }
  if (slice.length > 0) parts.push(encodeMetadataSnapshotPart({ records: slice }));
  return Buffer.concat(parts);
}

/**
 * Builds the image of `spans`' records (a MetadataSnapshot's, or a metadata stream's snapshot
 * MetadataDelta's) over several turns, a slice decoded and applied per turn; `onSlice` sees each
 * decoded slice. The image is exactly `MetadataImage.fromRecords(spans.offset, records)`.
 */
export async function imageFromSpans(spans: MetadataRecordSpans, opts: SliceOptions & { readonly onSlice?: (slice: MetadataRecord[]) => void } = {}): Promise<MetadataImage> {
  const n = perTurn(opts);
  const turn = opts.nextTurn ?? nextTurn;
  const builder = new MetadataImageBuilder(MetadataImage.EMPTY, spans.offset);
  for (let i = 0; i < spans.count; i += n) {
    if (i > 0) await turn();
    const slice = spans.decode(i, i + n);
    builder.apply(slice);
    opts.onSlice?.(slice);
  }
  return builder.build();
}

/**
 * Decodes a MetadataSnapshot and builds its image over several turns. Returns the image and the
 * decoded records (what a metadata stream's snapshot delta carries).
 */
export async function restoreImageSnapshot(data: Uint8Array, opts: SliceOptions = {}): Promise<{ image: MetadataImage; records: MetadataRecord[] }> {
  const recordsPerTurn = perTurn(opts);
  const records: MetadataRecord[] = [];
  const image = await imageFromSpans(metadataSnapshotSpans(data), {
    ...opts,
    recordsPerTurn,
    onSlice: (slice) => {
      for (const r of slice) records.push(r);
    },
  });
  return { image, records };
}
