/**
 * ReplicaManager over real logs, in one process: a metadata image naming this broker the only
 * replica of a compacted topic makes it leader; keyed records produced through the Partition roll
 * small segments; one log-cleaner pass keeps only the latest record per key below the high
 * watermark; and an image without the topic deletes the replica's directory. The periodic high
 * watermark checkpoint is written off the event loop, one write at a time, and once more at close.
 * A min.insync.replicas change reaches the running leader without a leader change. Idempotent
 * producers stay known across restarts whose batches DeleteRecords removed or compaction emptied.
 * Taking up many leaderships in one image (each records its epoch with an fsync) yields to the
 * event loop every few partitions. The log directory's description (DescribeLogDirs) lists every
 * replica held, leader or follower, with sizes growing as records are appended, filters by topic
 * and partition, and answers KAFKA_STORAGE_ERROR when the volume cannot be read. The first image
 * after a restart removes stray replicas (a deleted topic's, one reassigned away, a re-created
 * topic's old directories, segments a crash left without partition.metadata, directories renamed
 * for deletion) and keeps the assigned ones, the re-created topic starting empty.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigResourceType, ErrorCode, decodeRecordBatch, encodeRecordBatch, validateBatches, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { ReplicaManager } from '../../src/server/replica-manager';
import type { Partition, PartitionHost } from '../../src/server/partition';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const topicId = '0123456789abcdef0123456789abcdef';
const quiet = { info: () => undefined, warn: () => undefined };

function image(withTopic: boolean, extra: MetadataRecord[] = [], offset = withTopic ? 10 : 11): MetadataImage {
  const records: MetadataRecord[] = [
    { cluster: { clusterId: 'c' } },
    { registerBroker: { brokerId: 1, incarnationId: 'i', brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 1 }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } },
  ];
  if (withTopic) {
    records.push(
      { topic: { name: 'kv', topicId: topicIdToBytes(topicId) } },
      { partition: { topicId: topicIdToBytes(topicId), partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } },
      { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 'kv', name: 'cleanup.policy', value: 'compact' } },
      { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 'kv', name: 'segment.bytes', value: '400' } },
      { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 'kv', name: 'flush.policy', value: 'page-cache' } },
      ...extra,
    );
  }
  return MetadataImage.fromRecords(offset, records);
}

/** A ReplicaManager in a fresh directory, leading the compacted topic kv's only partition. */
async function leadingKv(): Promise<{ dir: string; rm: ReplicaManager; p: Partition }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-'));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet);
  await rm.applyImage(image(true));
  return { dir, rm, p: rm.partitionByName('kv', 0)! };
}

test('leads a compacted topic, cleans it, and deletes it when the topic goes', async () => {
  const { rm, p } = await leadingKv();
  expect(p.isLeader).toBe(true);
  for (let i = 0; i < 30; i++) {
    const res = await p.produce(encodeRecordBatch({ records: [{ key: Buffer.from(`k${i % 3}`), value: Buffer.from(`v${i}`) }], baseTimestamp: 1 }), -1, 5000);
    expect(res.errorCode).toBe(0);
  }
  expect(p.log.segmentCount).toBeGreaterThan(2);
  await rm.compactLogs();
  const read = p.log.read(0, 1 << 20, { maxOffset: p.highWatermark });
  const values: string[] = [];
  let offset = 0;
  for (let guard = 0; guard < 100 && offset < p.highWatermark; guard++) {
    const r = p.log.read(offset, 1 << 20, { maxOffset: p.highWatermark });
    if (r.batchCount === 0) break;
    for (const v of validateBatches(r.records)) for (const rec of decodeRecordBatch(r.records, v.position).records) values.push(`${rec.key?.toString()}=${rec.value?.toString()}`);
    offset = r.nextOffset;
  }
  expect(read.batchCount).toBeGreaterThan(0);
  // Older values of each key are gone from the cleaned segments; the latest of each key stays.
  expect(values.length).toBeLessThan(30);
  for (const k of ['k0', 'k1', 'k2']) expect(values.filter((v) => v.startsWith(`${k}=`)).pop()).toBe(`${k}=v${27 + Number(k.slice(1))}`);
  const logDir = p.log.dir;
  await rm.applyImage(image(false));
  expect(rm.partitionByName('kv', 0)).toBeUndefined();
  expect(fs.existsSync(logDir)).toBe(false);
  await rm.close();
});

test('checkpoints high watermarks off the event loop, one write at a time, and again at close', async () => {
  const { dir, rm, p } = await leadingKv();
  for (let i = 0; i < 3; i++) expect((await p.produce(encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from(`v${i}`) }], baseTimestamp: 1 }), -1, 5000)).errorCode).toBe(0);
  const file = path.join(dir, 'replication-offset-checkpoint');
  const first = rm.checkpointHighWatermarksAsync();
  // A second call while the first is being written shares it (no two writers of the temp file).
  expect(rm.checkpointHighWatermarksAsync()).toBe(first);
  await first;
  expect(fs.readFileSync(file, 'utf8')).toBe(`0\n1\nkv 0 ${p.highWatermark}\n`);
  expect(fs.existsSync(`${file}.tmp`)).toBe(false);
  // close() waits for a checkpoint in flight, then writes the final one.
  expect((await p.produce(encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('last') }], baseTimestamp: 1 }), -1, 5000)).errorCode).toBe(0);
  const hw = p.highWatermark;
  void rm.checkpointHighWatermarksAsync();
  await rm.close();
  expect(fs.readFileSync(file, 'utf8')).toBe(`0\n1\nkv 0 ${hw}\n`);
});

test('a changed min.insync.replicas applies to the running leader at once (same leader epoch)', async () => {
  const { rm, p } = await leadingKv();
  const batch = (v: string): Buffer => encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from(v) }], baseTimestamp: 1 });
  const minIsr = (value: string): MetadataRecord => ({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 'kv', name: 'min.insync.replicas', value } });
  expect((await p.produce(batch('a'), -1, 5000)).errorCode).toBe(0);
  // Raised above the ISR (1): acks=all is refused at once, acks=1 still written.
  await rm.applyImage(image(true, [minIsr('2')], 12));
  expect(p.leaderEpoch).toBe(0);
  expect((await p.produce(batch('b'), -1, 5000)).errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS);
  expect((await p.produce(batch('c'), 1, 5000)).errorCode).toBe(0);
  // Lowered again: acks=all is accepted.
  await rm.applyImage(image(true, [minIsr('1')], 13));
  expect((await p.produce(batch('d'), -1, 5000)).errorCode).toBe(0);
  await rm.close();
});

test('message.max.bytes is the default of a topic without max.message.bytes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-'));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet, '', { 'max.message.bytes': '200' });
  await rm.applyImage(image(true));
  const p = rm.partitionByName('kv', 0)!;
  const big = encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.alloc(300, 1) }], baseTimestamp: 1 });
  expect((await p.produce(big, 1, 5000)).errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE);
  // The topic's own setting wins.
  await rm.applyImage(image(true, [{ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: 'kv', name: 'max.message.bytes', value: '1000' } }], 12));
  expect((await p.produce(big, 1, 5000)).errorCode).toBe(0);
  await rm.close();
});

test('an idempotent producer whose batches DeleteRecords removed is still known after a restart, clean or after the periodic snapshot', async () => {
  const { dir, rm, p } = await leadingKv();
  const idem = (seq: number): Buffer => encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from(`s${seq}`) }], baseTimestamp: 1, producerId: 7, producerEpoch: 0, baseSequence: seq });
  const first = await p.produce(idem(0), -1, 5000);
  expect(first.errorCode).toBe(0);
  p.deleteRecordsBefore(p.highWatermark);
  expect(p.log.logStartOffset).toBe(p.log.logEndOffset);
  // The periodic pass (with the high watermark checkpoint) snapshots the producer state.
  await rm.snapshotProducersAsync();
  expect(fs.existsSync(path.join(p.log.dir, 'producer-state-snapshot'))).toBe(true);
  // A crash right now: copy the directory as the disk holds it (minus the live locks).
  const crashed = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-crash-'));
  dirs.push(crashed);
  fs.cpSync(dir, crashed, { recursive: true, filter: (src) => path.basename(src) !== '.lock' });
  await rm.close();
  for (const d of [dir, crashed]) {
    const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
    const again = new ReplicaManager(d, host, quiet);
    await again.applyImage(image(true));
    const q = again.partitionByName('kv', 0)!;
    // A retry of the deleted batch is recognised; the next sequence is accepted, not a gap.
    expect(await q.produce(idem(0), -1, 5000)).toMatchObject({ errorCode: 0, baseOffset: first.baseOffset });
    expect((await q.produce(idem(1), -1, 5000)).errorCode).toBe(0);
    await again.close();
  }
});

test('an idempotent producer whose last batch compaction emptied is still known to a replica rebuilding from the log', async () => {
  const { dir, rm, p } = await leadingKv();
  const idem = (seq: number): Buffer => encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from(`s${seq}`) }], baseTimestamp: 1, producerId: 7, producerEpoch: 0, baseSequence: seq });
  const first = await p.produce(idem(0), -1, 5000);
  expect(first.errorCode).toBe(0);
  // Another writer supersedes key k, over several small segments.
  for (let i = 0; i < 10; i++) expect((await p.produce(encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from(`other${i}`) }], baseTimestamp: 1 }), -1, 5000)).errorCode).toBe(0);
  expect(p.log.segmentCount).toBeGreaterThan(2);
  await rm.compactLogs();
  const kept = validateBatches(p.log.read(0, 1 << 20).records)[0]?.header;
  expect([kept?.baseOffset, kept?.producerId, kept?.baseSequence, kept?.recordsCount]).toEqual([first.baseOffset, 7, 0, 0]);
  await rm.close();
  // No producer snapshot (a new replica, or a lost snapshot): the state comes from the log alone.
  fs.rmSync(path.join(p.log.dir, 'producer-state-snapshot'), { force: true });
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const again = new ReplicaManager(dir, host, quiet);
  await again.applyImage(image(true));
  const q = again.partitionByName('kv', 0)!;
  // A retry of the emptied batch is recognised; the next sequence is accepted, not a gap.
  expect(await q.produce(idem(0), -1, 5000)).toMatchObject({ errorCode: 0, baseOffset: first.baseOffset });
  expect((await q.produce(idem(1), -1, 5000)).errorCode).toBe(0);
  await again.close();
});

test('a topic deleted and re-created under the same name in one image starts empty; a partition.metadata without a valid id is refused, not deleted', async () => {
  const { dir, rm, p } = await leadingKv();
  expect((await p.produce(encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('old') }], baseTimestamp: 1 }), -1, 5000)).errorCode).toBe(0);
  const otherId = 'ffffffffffffffffffffffffffffffff';
  const recreated = MetadataImage.fromRecords(20, [
    { cluster: { clusterId: 'c' } },
    { registerBroker: { brokerId: 1, incarnationId: 'i', brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 1 }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } },
    { topic: { name: 'kv', topicId: topicIdToBytes(otherId) } },
    { partition: { topicId: topicIdToBytes(otherId), partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } },
  ]);
  await rm.applyImage(recreated);
  const q = rm.partitionByName('kv', 0)!;
  expect(q).not.toBe(p);
  expect(q.key.topicId).toBe(otherId);
  expect(q.log.logEndOffset).toBe(0);
  expect(fs.readFileSync(path.join(dir, 'kv-0', 'partition.metadata'), 'utf8')).toContain(otherId);
  await rm.close();

  // A power loss left the file empty: the broker keeps the directory and the partition offline.
  fs.writeFileSync(path.join(dir, 'kv-0', 'partition.metadata'), '');
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const warnings: string[] = [];
  const again = new ReplicaManager(dir, host, { info: () => undefined, warn: (_f, msg) => warnings.push(msg) });
  await again.applyImage(recreated);
  expect(again.partitionByName('kv', 0)).toBeUndefined();
  expect(warnings).toContain('replica offline: cannot open or apply metadata');
  expect(fs.existsSync(path.join(dir, 'kv-0'))).toBe(true);
  await again.close();
});

test('taking up many leaderships in one image yields to the event loop (each records its epoch with an fsync)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-'));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet);
  const n = 40;
  const withLeader = (offset: number, leader: number, leaderEpoch: number): MetadataImage => {
    const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
    const records: MetadataRecord[] = [{ cluster: { clusterId: 'c' } }, broker(1), broker(2), { topic: { name: 'many', topicId: topicIdToBytes(topicId) } }];
    for (let p = 0; p < n; p++) records.push({ partition: { topicId: topicIdToBytes(topicId), partition: p, replicas: [1, 2], isr: [1, 2], leader, leaderEpoch, partitionEpoch: leaderEpoch, addingReplicas: [], removingReplicas: [] } });
    return MetadataImage.fromRecords(offset, records);
  };
  await rm.applyImage(withLeader(10, 2, 0)); // follower of broker 2 everywhere
  expect(rm.all().filter((p) => p.isLeader)).toHaveLength(0);
  // Broker 2 fails: this broker leads all 40. Something else waiting for a turn gets one before
  // the image is fully applied (heartbeats must not wait for 40 checkpoint fsyncs).
  let leadersWhenTurned = -1;
  setImmediate(() => {
    leadersWhenTurned = rm.all().filter((p) => p.isLeader).length;
  });
  await rm.applyImage(withLeader(11, 1, 1));
  expect(rm.all().filter((p) => p.isLeader)).toHaveLength(n);
  expect(leadersWhenTurned).toBeGreaterThan(0);
  expect(leadersWhenTurned).toBeLessThan(n);
  for (const p of rm.all()) expect(p.log.leaderEpochs.latest).toEqual({ epoch: 1, startOffset: 0 });
  await rm.close();
});

test('describes its log directory: every replica held, leader or follower, with its size growing as records are appended', async () => {
  const { dir, rm, p } = await leadingKv();
  const before = await rm.describeLogDir();
  expect(before.path).toBe(path.resolve(dir));
  expect(before.error).toBeUndefined();
  expect(before.replicas).toEqual([{ topic: 'kv', partition: 0, sizeBytes: 0, offsetLag: 0 }]);
  // The volume's figures are statfs's: blocks and blocks available to this process.
  const st = fs.statfsSync(dir);
  expect(before.totalBytes).toBe(st.blocks * st.bsize);
  expect(before.usableBytes).toBeGreaterThan(0);
  expect(before.usableBytes).toBeLessThanOrEqual(before.totalBytes);

  const batch = encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.alloc(100, 7) }], baseTimestamp: 1 });
  expect((await p.produce(batch, -1, 5000)).errorCode).toBe(0);
  expect((await p.produce(batch, -1, 5000)).errorCode).toBe(0);
  // The size is the segment bytes: the two batches as stored (same length as sent).
  expect((await rm.describeLogDir()).replicas).toEqual([{ topic: 'kv', partition: 0, sizeBytes: 2 * batch.length, offsetLag: 0 }]);
  expect(p.log.sizeBytes).toBe(2 * batch.length);

  // Broker 2 becomes the leader of a second topic's two partitions, broker 1 (this one) a
  // follower of partition 1 only: that follower replica is listed, partition 0 is not.
  const otherId = 'fedcba9876543210fedcba9876543210';
  const followerImage = image(true, [
    { registerBroker: { brokerId: 2, incarnationId: 'i2', brokerEpoch: 2, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 2 }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } },
    { topic: { name: 'followed', topicId: topicIdToBytes(otherId) } },
    { partition: { topicId: topicIdToBytes(otherId), partition: 0, replicas: [2], isr: [2], leader: 2, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } },
    { partition: { topicId: topicIdToBytes(otherId), partition: 1, replicas: [2, 1], isr: [2, 1], leader: 2, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } },
  ], 12);
  await rm.applyImage(followerImage);
  expect(rm.partitionByName('followed', 1)?.isLeader).toBe(false);
  const all = await rm.describeLogDir();
  expect(all.replicas.map((r) => `${r.topic}-${r.partition}`)).toEqual(['followed-1', 'kv-0']);
  expect(all.replicas[0]).toEqual({ topic: 'followed', partition: 1, sizeBytes: 0, offsetLag: 0 });
  // A filter picks replicas by topic and partition.
  expect((await rm.describeLogDir((topic) => topic === 'followed')).replicas.map((r) => r.partition)).toEqual([1]);
  expect((await rm.describeLogDir((topic, partition) => topic === 'followed' && partition === 0)).replicas).toEqual([]);
  await rm.close();
});

test('a log directory whose volume cannot be read answers KAFKA_STORAGE_ERROR, no replicas and -1 bytes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-'));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(path.join(dir, 'logs'), host, quiet);
  fs.rmSync(path.join(dir, 'logs'), { recursive: true });
  const d = await rm.describeLogDir();
  expect([d.path, d.replicas, d.totalBytes, d.usableBytes, d.error?.errorName]).toEqual([path.join(dir, 'logs'), [], -1, -1, 'KAFKA_STORAGE_ERROR']);
  expect(d.error?.message).toMatch(/cannot read the volume/);
});

test('a replica whose deletion fails does not keep the rest of the image from being applied', async () => {
  const { rm, p: kv } = await leadingKv();
  const otherId = 'abcdefabcdefabcdefabcdefabcdefab';
  const other = (leader: number, leaderEpoch: number): MetadataRecord[] => [
    { registerBroker: { brokerId: 2, incarnationId: 'j', brokerEpoch: 2, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 2 }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } },
    { topic: { name: 'other', topicId: topicIdToBytes(otherId) } },
    { partition: { topicId: topicIdToBytes(otherId), partition: 0, replicas: [1, 2], isr: [1, 2], leader, leaderEpoch, partitionEpoch: leaderEpoch, addingReplicas: [], removingReplicas: [] } },
  ];
  await rm.applyImage(image(true, other(1, 0), 12));
  expect(rm.partitionByName('other', 0)!.isLeader).toBe(true);
  // kv's log cannot be closed (an I/O error); the next image deletes kv and moves other's leadership away.
  const close = kv.log.close.bind(kv.log);
  kv.log.close = () => Promise.reject(new Error('EIO: closing the log failed'));
  await rm.applyImage(image(false, [], 13).apply(14, other(2, 1)));
  expect(rm.partitionByName('kv', 0)).toBeUndefined();
  // Broker 1 follows broker 2 now: it must not keep leading (and taking writes) in epoch 0.
  expect(rm.partitionByName('other', 0)!.isLeader).toBe(false);
  expect(rm.partitionByName('other', 0)!.follower?.leaderEpoch).toBe(1);
  await close();
  await rm.close();
});

test('the first image removes stray replicas: a deleted topic\'s, one reassigned away, a re-created topic\'s old ones; assigned ones stay', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-'));
  dirs.push(dir);
  const [goneId, movedId, oldKvId, newKvId] = ['11111111111111111111111111111111', '22222222222222222222222222222222', '33333333333333333333333333333333', '44444444444444444444444444444444'];
  const broker = (id: number): MetadataRecord => ({ registerBroker: { brokerId: id, incarnationId: `i${id}`, brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: id }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } });
  const topic = (name: string, id: string): MetadataRecord => ({ topic: { name, topicId: topicIdToBytes(id) } });
  const part = (id: string, partition: number, replicas: number[], adding: number[] = [], removing: number[] = []): MetadataRecord => ({
    partition: { topicId: topicIdToBytes(id), partition, replicas, isr: replicas.filter((r) => !adding.includes(r)), leader: replicas.find((r) => !adding.includes(r))!, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: adding, removingReplicas: removing },
  });
  const base: MetadataRecord[] = [{ cluster: { clusterId: 'c' } }, broker(1), broker(2), broker(3)];
  // Before: this broker (1) hosts everything; moved-2 is being reassigned from broker 2 to it.
  const before = MetadataImage.fromRecords(10, [
    ...base,
    topic('gone', goneId), part(goneId, 0, [1]),
    topic('moved', movedId), part(movedId, 0, [1]), part(movedId, 1, [1]), part(movedId, 2, [2, 1], [1], [2]),
    topic('kv', oldKvId), part(oldKvId, 0, [1]), part(oldKvId, 1, [1]), part(oldKvId, 2, [1]),
  ]);
  const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  const rm = new ReplicaManager(dir, host, quiet);
  await rm.applyImage(before);
  for (const [t, p] of [['gone', 0], ['moved', 0], ['moved', 1], ['kv', 0], ['kv', 1], ['kv', 2]] as const) {
    const res = await rm.partitionByName(t, p)!.produce(encodeRecordBatch({ records: [{ key: null, value: Buffer.from(`old ${t}-${p}`) }], baseTimestamp: 1 }), 1, 5000);
    expect(res.errorCode).toBe(0);
  }
  await rm.close();
  // What an earlier recursive delete interrupted by a crash leaves: segments without their
  // partition.metadata (kv-2), a directory renamed for deletion; and what is not ours to judge.
  fs.rmSync(path.join(dir, 'kv-2', 'partition.metadata'));
  fs.mkdirSync(path.join(dir, `kv-7.${'a'.repeat(32)}-delete`));
  fs.writeFileSync(path.join(dir, `kv-7.${'a'.repeat(32)}-delete`, '00000000000000000000.log'), 'x');
  fs.mkdirSync(path.join(dir, 'damaged-0'));
  fs.writeFileSync(path.join(dir, 'damaged-0', 'partition.metadata'), '');
  fs.mkdirSync(path.join(dir, 'meta-1', '__cluster_metadata'), { recursive: true });

  // While the broker was down: gone deleted, moved-0 reassigned to broker 2, kv deleted and
  // re-created (a new id) with partitions 0 and 2 here, 1 on broker 2.
  const after = MetadataImage.fromRecords(20, [
    ...base,
    topic('moved', movedId), part(movedId, 0, [2]), part(movedId, 1, [1]), part(movedId, 2, [2, 1], [1], [2]),
    topic('kv', newKvId), part(newKvId, 0, [1]), part(newKvId, 1, [2]), part(newKvId, 2, [1]),
  ]);
  const removed: Array<Record<string, unknown>> = [];
  const again = new ReplicaManager(dir, host, { info: () => undefined, warn: (f, msg) => (msg === 'removing a stray replica' ? removed.push(f) : undefined) });
  await again.applyImage(after);
  await again.removalsDone();
  expect(removed.map((f) => [f.topic, f.partition, f.topicId]).sort()).toEqual([
    ['gone', 0, goneId],
    ['kv', 0, oldKvId],
    ['kv', 1, oldKvId],
    ['kv', 2, null],
    ['moved', 0, movedId],
  ]);
  expect(fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()).toEqual(['damaged-0', 'kv-0', 'kv-2', 'meta-1', 'moved-1', 'moved-2']);
  const values = (p: Partition): string[] => validateBatches(p.log.read(0, 1 << 20).records).flatMap((v) => decodeRecordBatch(p.log.read(0, 1 << 20).records, v.position).records.map((r) => r.value!.toString()));
  // The re-created topic's replicas start empty: the old topic's records are never served.
  for (const p of [0, 2]) {
    const q = again.partitionByName('kv', p)!;
    expect([q.key.topicId, q.log.logEndOffset, values(q)]).toEqual([newKvId, 0, []]);
    expect(fs.readFileSync(path.join(dir, `kv-${p}`, 'partition.metadata'), 'utf8')).toContain(newKvId);
  }
  // Still assigned: kept with their data, also the one this broker is being added to.
  expect(values(again.partitionByName('moved', 1)!)).toEqual(['old moved-1']);
  expect(again.partitionByName('moved', 2)?.key.topicId).toBe(movedId);
  // Later images remove nothing more than the replicas they take away.
  await again.applyImage(MetadataImage.fromRecords(21, [...base, topic('moved', movedId), part(movedId, 1, [1]), part(movedId, 2, [2, 1], [1], [2])]));
  await again.removalsDone();
  expect(fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()).toEqual(['damaged-0', 'meta-1', 'moved-1', 'moved-2']);
  await again.close();
});
