// Tunables of the replication core, with Kafka's names where Kafka has them. Validated once at
// construction (a bad value is a configuration error, reported with the key's name).

import { StrandError } from '@strand/protocol';

export interface ReplicationConfig {
  /** `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves the ISR. Default 30000. */
  readonly replicaLagTimeMaxMs: number;
  /** `min.insync.replicas`: acks=all appends are refused while the committed ISR is smaller. Default 1. */
  readonly minInsyncReplicas: number;
  /** Bound on acks=all produce requests waiting for the high watermark per partition. Default 10000. */
  readonly maxPendingProduces: number;
  /** How long an unanswered AlterPartition waits before it is sent again (the answer may be lost). Default 5000. */
  readonly alterPartitionRetryMs: number;
}

export const DEFAULT_REPLICATION_CONFIG: ReplicationConfig = {
  replicaLagTimeMaxMs: 30_000,
  minInsyncReplicas: 1,
  maxPendingProduces: 10_000,
  alterPartitionRetryMs: 5_000,
};

export function replicationConfig(overrides: Partial<ReplicationConfig> = {}): ReplicationConfig {
  const c = { ...DEFAULT_REPLICATION_CONFIG, ...overrides };
  const positive = (name: string, v: number): void => {
    if (!Number.isSafeInteger(v) || v < 1) throw new StrandError('INVALID_CONFIG', `${name} must be a positive integer, got ${v}`);
  };
  positive('replica.lag.time.max.ms', c.replicaLagTimeMaxMs);
  positive('min.insync.replicas', c.minInsyncReplicas);
  positive('maxPendingProduces', c.maxPendingProduces);
  positive('alterPartitionRetryMs', c.alterPartitionRetryMs);
  return c;
}
