// Adapts @strand/storage's PartitionLog to the replication core's ReplicaLogView. The core only
// reads offsets and the leader-epoch cache through it; appends and truncations stay with the
// driver, which owns the log.

import type { PartitionLog } from '@strand/storage';
import type { EpochEndOffset, ReplicaLogView } from '../replication/types';

export function partitionLogView(log: PartitionLog): ReplicaLogView {
  return {
    get logStartOffset(): number {
      return log.logStartOffset;
    },
    get logEndOffset(): number {
      return log.logEndOffset;
    },
    get countableEndOffset(): number {
      return log.countableEndOffset;
    },
    // The cache's latest entry: the epoch of the last batch (appends assign it), or the epoch
    // this replica leads, recorded at election (PartitionLog.assignLeaderEpoch). Truncation,
    // even to the log end, drops entries that start at or after the new end.
    get latestEpoch(): number {
      return log.leaderEpochs.latest?.epoch ?? -1;
    },
    endOffsetForEpoch(epoch: number): EpochEndOffset {
      return log.endOffsetForEpoch(epoch);
    },
  };
}
