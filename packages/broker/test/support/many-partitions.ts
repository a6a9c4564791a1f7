/**
 * Set-up shared by the ReplicaManager open and close tests: an image of topic `many` whose
 * partitions broker 1 (the host here) follows, the host, and temporary log directories removed
 * after the file's tests. Import it after test/support/fsync-recorder.ts where that is used (it
 * loads workspace packages).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import type { PartitionHost } from '../../src/server/partition';

/** How many partitions topic `many` has. */
export const MANY = 40;

const topicId = topicIdToBytes('0123456789abcdef0123456789abcdef');

/** Broker 1, the one whose ReplicaManager these tests run. */
export const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };

export const quiet = { info: (): void => undefined, warn: (): void => undefined };

/** The registration of broker `id`. */
export function brokerRecord(id: number): MetadataRecord {
  return { registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } };
}

/** Topic `many` of MANY partitions, replicas [1, 2], broker 2 leading (broker 1 follows everywhere), at offset 10. */
export function manyImage(): MetadataImage {
  const records: MetadataRecord[] = [{ cluster: { clusterId: 'c' } }, brokerRecord(1), brokerRecord(2), { topic: { name: 'many', topicId } }];
  for (let p = 0; p < MANY; p++) records.push({ partition: { topicId, partition: p, replicas: [1, 2], isr: [1, 2], leader: 2, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } });
  return MetadataImage.fromRecords(10, records);
}

/** Makes temporary directories named `prefix`...; call at a test file's top level: they are removed after all its tests. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
