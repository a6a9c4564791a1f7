/**
 * What the broker's benchmarks (metadata-bench, log-open-bench) share: the records of a synthetic
 * cluster, a stall meter, and a quiet host for a ReplicaManager.
 */
import { performance } from 'node:perf_hooks';
import type { MetadataRecord } from '@strand/protocol';
import { topicIdToBytes } from '@strand/controller';
import type { PartitionHost } from '../server/partition';

export interface ClusterShape {
  /** Brokers 1..brokers, all registered, unfenced. */
  readonly brokers: number;
  /** Replicas per partition, placed round-robin over the brokers, the first leading, the ISR full. */
  readonly replicationFactor: number;
  readonly partitions: number;
  /** Partitions per topic (the last topic may have fewer). */
  readonly perTopic: number;
  /** Topic t is named `${topicPrefix}${t, 5 digits}`. */
  readonly topicPrefix: string;
  /** Topic t's id is (idBase + t) in hex, padded to 32 characters with idPad. */
  readonly idBase: number;
  readonly idPad: string;
  /** Records added after each topic's partitions (e.g. a topic config). */
  readonly afterTopic?: (name: string) => MetadataRecord[];
}

/** The records of a cluster of the given shape. */
export function clusterRecords(shape: ClusterShape): MetadataRecord[] {
  const records: MetadataRecord[] = [{ cluster: { clusterId: 'bench' } }];
  for (let b = 1; b <= shape.brokers; b++) {
    records.push({ registerBroker: { brokerId: b, incarnationId: `incarnation-${b}`, brokerEpoch: b, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 9093 + b }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  }
  for (let t = 0, made = 0; made < shape.partitions; t++) {
    const id = topicIdToBytes((shape.idBase + t).toString(16).padStart(32, shape.idPad));
    const name = `${shape.topicPrefix}${String(t).padStart(5, '0')}`;
    records.push({ topic: { name, topicId: id } });
    for (let p = 0; p < shape.perTopic && made < shape.partitions; p++, made++) {
      const replicas = Array.from({ length: shape.replicationFactor }, (_, k) => ((made + k) % shape.brokers) + 1);
      records.push({ partition: { topicId: id, partition: p, replicas, isr: [...replicas], leader: replicas[0] as number, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } });
    }
    if (shape.afterTopic) records.push(...shape.afterTopic(name));
  }
  return records;
}

export interface Stalled {
  totalMs: number;
  maxStallMs: number;
}

/**
 * Runs `f` with a setImmediate ticker alongside: the largest gap between two of its turns is
 * the longest the event loop was held (by `f` or what it set off).
 */
export async function withStallMeter(f: () => Promise<void>): Promise<Stalled> {
  let last = performance.now();
  let maxStallMs = 0;
  let running = true;
  const tick = (): void => {
    const now = performance.now();
    maxStallMs = Math.max(maxStallMs, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  last = t0;
  await f();
  const totalMs = performance.now() - t0;
  // The tail of f's last synchronous stretch counts too.
  maxStallMs = Math.max(maxStallMs, performance.now() - last);
  running = false;
  await new Promise<void>((resolve) => setImmediate(resolve));
  return { totalMs, maxStallMs };
}

/** A logger that drops everything. */
export const quiet = { info: (): void => undefined, warn: (): void => undefined };

/** The PartitionHost of broker `brokerId` for a benchmark's ReplicaManager (no controller). */
export function benchHost(brokerId: number): PartitionHost {
  return { brokerId, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
}
