/**
 * ReplicaManager.applyImage acts on what changed since the last image, over real logs: an image
 * one partition change later re-applies that partition only (the others keep their state and
 * are not visited), and a fast-check property checks that following a random run of metadata
 * changes image by image (topics created and removed, a topic deleted and re-created under its
 * name in one image, partitions added, leader and ISR changes, reassignments to and away from
 * this broker, topic configs, brokers fenced, unfenced, shutting down and re-registering, a
 * cluster-wide and a per-broker default, an image rebuilt from a snapshot as after a metadata
 * stream reconnect; up to three of these in one image) leaves the same replicas, roles,
 * partition states and log configs as a fresh ReplicaManager given only the last image (a full
 * replay).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ConfigResourceType, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { ReplicaManager } from '../../src/server/replica-manager';
import { Partition, type PartitionHost } from '../../src/server/partition';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
afterEach(() => jest.restoreAllMocks());

const quiet = { info: (): void => undefined, warn: (): void => undefined };
const ME = 1;

function manager(): ReplicaManager {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-rm-delta-'));
  dirs.push(dir);
  const host: PartitionHost = { brokerId: ME, nowMs: () => 0, sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
  return new ReplicaManager(dir, host, quiet);
}

function topicId(n: number): string {
  return n.toString(16).padStart(32, '0');
}

function brokers(): MetadataRecord[] {
  return [1, 2, 3].map((b) => ({ registerBroker: { brokerId: b, incarnationId: `i${b}`, brokerEpoch: b, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: b }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } }));
}

function topic(n: number, partitions: number, replicas: (p: number) => number[]): MetadataRecord[] {
  const id = topicIdToBytes(topicId(n));
  const out: MetadataRecord[] = [
    { topic: { name: `t${n}`, topicId: id } },
    { config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: `t${n}`, name: 'flush.policy', value: 'page-cache' } },
  ];
  for (let p = 0; p < partitions; p++) {
    const r = replicas(p);
    out.push({ partition: { topicId: id, partition: p, replicas: r, isr: [...r], leader: r[0] as number, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } });
  }
  return out;
}

test('an image one partition change later re-applies that partition only', async () => {
  const rm = manager();
  const base = MetadataImage.fromRecords(10, [{ cluster: { clusterId: 'c' } }, ...brokers(), ...topic(1, 4, (p) => (p % 2 === 0 ? [1, 2] : [2, 1])), ...topic(2, 4, () => [1, 3])]);
  await rm.applyImage(base);
  expect(rm.all()).toHaveLength(8);
  const applied = jest.spyOn(Partition.prototype, 'applyMetadata');
  const next = base.apply(11, [{ partitionChange: { topicId: topicIdToBytes(topicId(2)), partition: 3, isr: { values: [1] }, replicas: null, addingReplicas: null, removingReplicas: null } }]);
  await rm.applyImage(next);
  expect(applied.mock.contexts.map((p) => (p as Partition).topicPartition)).toEqual(['t2-3']);
  expect(rm.partitionByName('t2', 3)?.metadata).toMatchObject({ isr: [1], partitionEpoch: 1 });
  expect(rm.partitionByName('t2', 2)?.metadata).toMatchObject({ isr: [1, 3], partitionEpoch: 0 });
  await rm.close();
});

/** One metadata change, resolved against the image it applies to (indices taken modulo what exists). */
type Op =
  | { kind: 'create'; partitions: number; rotate: number }
  | { kind: 'remove'; topic: number }
  | { kind: 'leader'; topic: number; partition: number; pick: number; shrink: boolean }
  | { kind: 'reassign'; topic: number; partition: number; rotate: number }
  | { kind: 'config'; topic: number; value: number }
  | { kind: 'fence'; broker: number; fenced: boolean }
  | { kind: 'default'; value: number }
  | { kind: 'recreate'; topic: number; rotate: number }
  | { kind: 'grow'; topic: number; rotate: number }
  | { kind: 'shutdown'; broker: number }
  | { kind: 'reregister'; broker: number; fenced: boolean }
  | { kind: 'mine'; value: number }
  | { kind: 'snapshot' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), partitions: fc.integer({ min: 1, max: 3 }), rotate: fc.nat(5) }),
  fc.record({ kind: fc.constant('remove' as const), topic: fc.nat(9) }),
  fc.record({ kind: fc.constant('leader' as const), topic: fc.nat(9), partition: fc.nat(2), pick: fc.nat(2), shrink: fc.boolean() }),
  fc.record({ kind: fc.constant('reassign' as const), topic: fc.nat(9), partition: fc.nat(2), rotate: fc.nat(5) }),
  fc.record({ kind: fc.constant('config' as const), topic: fc.nat(9), value: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('fence' as const), broker: fc.integer({ min: 2, max: 3 }), fenced: fc.boolean() }),
  fc.record({ kind: fc.constant('default' as const), value: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('recreate' as const), topic: fc.nat(9), rotate: fc.nat(5) }),
  fc.record({ kind: fc.constant('grow' as const), topic: fc.nat(9), rotate: fc.nat(5) }),
  fc.record({ kind: fc.constant('shutdown' as const), broker: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('reregister' as const), broker: fc.integer({ min: 2, max: 3 }), fenced: fc.boolean() }),
  fc.record({ kind: fc.constant('mine' as const), value: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('snapshot' as const) }),
);

/** Two of the three brokers, by `rotate`: some partitions on this broker, some not. */
function pair(rotate: number): number[] {
  const all = [1, 2, 3];
  const a = all[rotate % 3] as number;
  const b = all[(rotate + 1 + Math.floor(rotate / 3)) % 3] as number;
  return a === b ? [a, (a % 3) + 1] : [a, b];
}

function recordsOf(image: MetadataImage, op: Op, nextTopic: () => number): MetadataRecord[] {
  const topics = [...image.topics.values()];
  const t = 'topic' in op ? topics[op.topic % Math.max(1, topics.length)] : undefined;
  switch (op.kind) {
    case 'create':
      return topic(nextTopic(), op.partitions, (p) => pair(op.rotate + p));
    case 'remove':
      return t === undefined ? [] : [{ removeTopic: { topicId: topicIdToBytes(t.id) } }];
    case 'leader': {
      const p = t?.partitions.get(op.partition % t.partitions.size);
      if (t === undefined || p === undefined) return [];
      const leader = p.replicas[op.pick % p.replicas.length] as number;
      return [{ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, leader, isr: { values: op.shrink ? [leader] : [...p.replicas] }, replicas: null, addingReplicas: null, removingReplicas: null } }];
    }
    case 'reassign': {
      const p = t?.partitions.get(op.partition % t.partitions.size);
      if (t === undefined || p === undefined) return [];
      const replicas = pair(op.rotate);
      return [{ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, leader: replicas[0] as number, isr: { values: replicas }, replicas: { values: replicas }, addingReplicas: null, removingReplicas: null } }];
    }
    case 'config':
      return t === undefined ? [] : [{ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: t.name, name: 'min.insync.replicas', value: String(op.value) } }];
    case 'fence': {
      const b = image.brokers.get(op.broker);
      if (b === undefined) return [];
      return op.fenced ? [{ fenceBroker: { brokerId: b.id, brokerEpoch: b.epoch } }] : [{ unfenceBroker: { brokerId: b.id, brokerEpoch: b.epoch } }];
    }
    case 'default':
      return [{ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_BROKER, resourceName: '', name: 'log.retention.ms', value: String(op.value * 60_000) } }];
    case 'recreate': {
      if (t === undefined) return [];
      const fresh = topic(nextTopic(), 2, (p) => pair(op.rotate + p)).map((r) => (r.topic ? { topic: { ...r.topic, name: t.name } } : r.config ? { config: { ...r.config, resourceName: t.name } } : r));
      return [{ removeTopic: { topicId: topicIdToBytes(t.id) } }, ...fresh];
    }
    case 'grow': {
      if (t === undefined) return [];
      const r = pair(op.rotate);
      return [{ partition: { topicId: topicIdToBytes(t.id), partition: t.partitions.size, replicas: r, isr: [...r], leader: r[0] as number, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } }];
    }
    case 'shutdown': {
      const b = image.brokers.get(op.broker);
      return b === undefined ? [] : [{ controlledShutdown: { brokerId: b.id, brokerEpoch: b.epoch } }];
    }
    case 'reregister': {
      const b = image.brokers.get(op.broker);
      return b === undefined ? [] : [{ registerBroker: { brokerId: b.id, incarnationId: `${b.incarnationId}x`, brokerEpoch: image.offset + 1, endpoints: [...b.endpoints], fenced: op.fenced, inControlledShutdown: false, previousShutdownClean: true } }];
    }
    case 'mine':
      return [{ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_BROKER, resourceName: String(ME), name: 'log.retention.ms', value: String(op.value * 70_000) } }];
    case 'snapshot':
      return [];
  }
}

/** What a ReplicaManager holds, comparable across two of them. */
function holding(rm: ReplicaManager): unknown[] {
  return rm
    .all()
    .map((p) => ({
      replica: p.topicPartition,
      topicId: p.key.topicId,
      state: p.metadata,
      leader: p.isLeader,
      followerOf: p.follower?.leaderId ?? null,
      minIsr: p.log.topicConfig['min.insync.replicas'],
      retentionMs: p.log.topicConfig['retention.ms'],
    }))
    .sort((a, b) => (a.replica < b.replica ? -1 : 1));
}

test('following images one by one holds the same replicas as a full replay of the last image', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 12 }), async (ops) => {
      let n = 0;
      const nextTopic = (): number => ++n;
      let image = MetadataImage.fromRecords(10, [{ cluster: { clusterId: 'c' } }, ...brokers(), ...topic(nextTopic(), 2, (p) => pair(p))]);
      const following = manager();
      await following.applyImage(image);
      for (const group of ops) {
        let next = image;
        for (const op of group) {
          if (op.kind === 'snapshot') {
            next = MetadataImage.fromRecords(next.offset, next.toRecords());
            continue;
          }
          const records = recordsOf(next, op, nextTopic);
          if (records.length > 0) next = next.apply(next.offset + 1, records);
        }
        if (next === image) continue;
        image = next;
        await following.applyImage(image);
      }
      const replay = manager();
      await replay.applyImage(image);
      try {
        expect(holding(following)).toEqual(holding(replay));
      } finally {
        await following.close();
        await replay.close();
      }
    }),
    { numRuns: 40 },
  );
});
