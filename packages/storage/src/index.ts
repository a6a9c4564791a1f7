/**
 * @strand/storage: the partition log. Segments with sparse offset and time indexes, crash
 * recovery, group-committed durability, leader-epoch cache, retention and compaction. No network.
 */
export { PartitionLog, LATEST_TIMESTAMP, EARLIEST_TIMESTAMP, MAX_TIMESTAMP, RECOVERY_POINT_FILE, LOG_START_OFFSET_FILE, CLEANER_OFFSET_FILE, CLEAN_SHUTDOWN_FILE } from './partition-log';
export type { AppendInfo, DurableSegmentPosition, PartitionLogOptions, ReadOptions, ReadResult, TimestampOffset, ValidatedAppend } from './partition-log';
export { LeaderEpochCache, LEADER_EPOCH_CHECKPOINT } from './leader-epoch-cache';
export type { EpochEndOffset, EpochEntry } from './leader-epoch-cache';
export { compactLog, DEFAULT_OFFSET_MAP_BYTES, DEFAULT_OFFSET_MAP_LOAD_FACTOR } from './compactor';
export type { CompactionOptions, CompactionStats } from './compactor';
export { DirectoryLock } from './dir-lock';
export { ManualClock, systemClock } from './clock';
export type { Clock } from './clock';
export { segmentFileName } from './segment';
export { ASYNC_OPENS_IN_FLIGHT, DESCRIPTOR_WAIT_MAX_MS, createEmptyFileAsync, fsyncDir, fsyncDirAsync, readFileIfExists, writeFileAtomic, writeFileAtomicAsync, writeFileSyncedAsync } from './files';
