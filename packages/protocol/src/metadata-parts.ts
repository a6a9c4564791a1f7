/**
 * A MetadataSnapshot encoded a part at a time (see partEncoder): the part holding its `offset`,
 * then parts holding consecutive runs of its `records`, concatenated, are exactly
 * `encodeMetadataSnapshot({ offset, records })`. The controller encodes its Raft snapshot of tens
 * of thousands of records this way, one run per event-loop turn.
 */
import type { MetadataSnapshot } from './generated/metadata';
import { partEncoder } from './proto-runtime';

/** Encodes the fields present in `part` only (an absent `offset` is not written, unlike 0). */
export const encodeMetadataSnapshotPart: (part: Partial<MetadataSnapshot>) => Uint8Array = partEncoder<MetadataSnapshot>('strand.metadata.MetadataSnapshot');
