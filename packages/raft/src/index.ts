// Public face of @strand/raft.
export { RaftCore, bootstrapState, joinerState } from './core/raft';
export type { RaftConfig, RaftInitialState, ProposeResult, ProgressStatus } from './core/raft';
export { RaftLog } from './core/raft-log';
export { Progress, ProgressState } from './core/progress';
export { Inflights } from './core/inflights';
export { SeededRng } from './core/rng';
export type { Rng } from './core/rng';
export { encodeConfChange, decodeConfChange } from './core/conf-change';
export { NONE, EntryType, ConfChangeType, MessageType, Role, msg } from './core/types';
export type { NodeId, Entry, HardState, ConfState, SnapshotMeta, Snapshot, ConfChange, SnapshotChunk, Message, SoftState, ReadState, Ready } from './core/types';
