/**
 * Checks the Consumer against the in-memory broker twin: fetching over FetchStream (prefetch while
 * the application consumes, seek/pause/resume with prefetched data, stream failures and reopening,
 * the unary Fetch fallback), manual assignment with seek, typed
 * records (key, value, headers, timestamp, leader epoch), auto.offset.reset, seek to timestamp,
 * pause/resume, `for await`, long-poll wake-up on new data, a leader move while consuming,
 * OFFSET_OUT_OF_RANGE resets, and consumer groups: disjoint and complete assignments across
 * members, exactly-once processing across a rebalance with commits, resuming from committed
 * offsets, generation fencing of a stale member's commit, and max.poll.interval.ms (a member that
 * stops polling leaves the group and rejoins at its next poll), `for await` leaving early (only
 * yielded records count as consumed), commits on close during a rebalance, the leader's rebalance
 * when subscribed topics gain partitions, retriable failures that poll() retries instead of
 * throwing, auto.offset.reset=none raising until a seek, metadata refresh backoff, and a seek made
 * during a position lookup, and for-await after a seek or a pause inside the loop (no record
 * fetched before the seek, none of the paused partition until resume), and a commit refused for
 * a partition a rebalance took away. Waiting is by poll() with bounded timeouts, never a sleep.
 */
import { getEventListeners } from 'node:events';
import { Consumer } from '../../src/consumer/consumer';
import type { ConsumerRecord, RebalanceListener } from '../../src/consumer/consumer';
import { GroupMembership } from '../../src/consumer/group-membership';
import { rangeAssignor } from '../../src/consumer/assignors';
import { Cluster } from '../../src/cluster/cluster';
import { parseConsumerConfig } from '../../src/config';
import { Producer } from '../../src/producer/producer';
import { Admin } from '../../src/admin/admin';
import { ErrorCode, StrandError, encodeEmptyRecordBatch, encodeRecordBatch } from '@strand/protocol';
import { MemoryCluster } from '../support/memory-broker';

let mem: MemoryCluster;
const closers: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await mem.stop();
});

function consumer(config: Record<string, string | number | boolean> = {}): Consumer {
  const c = new Consumer({ 'bootstrap.servers': mem.bootstrap, 'fetch.max.wait.ms': 50, 'retry.backoff.ms': 5, 'retry.backoff.max.ms': 50, 'session.timeout.ms': 3000, 'heartbeat.interval.ms': 50, ...config });
  closers.push(() => c.close());
  return c;
}

async function produce(topic: string, records: { key?: string; value: string; partition?: number; headers?: Record<string, string>; timestamp?: number }[]): Promise<void> {
  const p = new Producer({ 'bootstrap.servers': mem.bootstrap, 'linger.ms': 0 });
  await p.sendBatch(records.map((r) => ({ topic, ...r })));
  await p.close();
}

/**
 * Polls each consumer in its own loop (as applications do: a member blocked in a rebalance must
 * not stop the others from polling) until `done()` or the monotonic deadline.
 */
async function pollAll(consumers: Consumer[], done: () => boolean, onRecords: (rs: ConsumerRecord[]) => void = () => undefined, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  await Promise.all(
    consumers.map(async (c) => {
      while (!done() && performance.now() < deadline) onRecords(await c.poll(50));
    }),
  );
}

/** Polls until `n` records arrived or the monotonic deadline passes. */
async function pollN(c: Consumer, n: number, timeoutMs = 10_000): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const deadline = performance.now() + timeoutMs;
  while (out.length < n && performance.now() < deadline) out.push(...(await c.poll(200)));
  return out;
}

describe('Consumer with assign()', () => {
  it('reads typed records from a seeked offset and advances its position', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 2, 2);
    await produce('t', Array.from({ length: 10 }, (_, i) => ({ partition: 1, key: `k${i}`, value: `v${i}`, headers: { h: String(i) }, timestamp: 1000 + i })));
    const c = consumer();
    c.assign([{ topic: 't', partition: 1 }]);
    c.seek({ topic: 't', partition: 1 }, 3);
    const recs = await pollN(c, 7);
    expect(recs.map((r) => r.offset)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(recs[0]).toMatchObject({ topic: 't', partition: 1, timestamp: 1003, timestampType: 'CreateTime', leaderEpoch: 0 });
    expect(recs[0]?.key?.toString()).toBe('k3');
    expect(recs[0]?.value?.toString()).toBe('v3');
    expect(recs[0]?.headers.map((h) => [h.key, h.value?.toString()])).toEqual([['h', '3']]);
    expect(await c.position({ topic: 't', partition: 1 })).toBe(10);
  });

  it('steps over empty batches (compaction keeps a producer\'s last batch as a header), inside and at the end of the log', async () => {
    mem = await MemoryCluster.start({ brokers: 1 });
    mem.createTopic('t', 1, 1);
    const empty = (lastOffsetDelta: number): Buffer => encodeEmptyRecordBatch({ baseOffset: 0, lastOffsetDelta, partitionLeaderEpoch: -1, attributes: 0, maxTimestamp: 1000, producerId: -1, producerEpoch: -1, baseSequence: -1 });
    await produce('t', [{ partition: 0, value: 'a' }]); // offset 0
    mem.append('t', 0, empty(2)); // 1-3
    await produce('t', [{ partition: 0, value: 'b' }]); // 4
    mem.append('t', 0, empty(1)); // 5-6
    const tp = { topic: 't', partition: 0 };
    const c = consumer();
    c.assign([tp]);
    c.seek(tp, 0);
    expect((await pollN(c, 2)).map((r) => [r.offset, r.value?.toString()])).toEqual([
      [0, 'a'],
      [4, 'b'],
    ]);
    const deadline = performance.now() + 10_000;
    while ((await c.position(tp)) !== 7 && performance.now() < deadline) expect(await c.poll(50)).toEqual([]);
    expect(await c.position(tp)).toBe(7);
  });

  it('a position past an empty batch of a newer leader epoch carries that epoch: no false truncation (KIP-320)', async () => {
    mem = await MemoryCluster.start({ brokers: 1 });
    mem.createTopic('t', 1, 1);
    await produce('t', [{ partition: 0, value: 'a' }]); // offset 0, epoch 0
    mem.moveLeader('t', 0, 1); // epoch 1 from offset 1
    mem.append('t', 0, encodeEmptyRecordBatch({ baseOffset: 0, lastOffsetDelta: 2, partitionLeaderEpoch: -1, attributes: 0, maxTimestamp: 1000, producerId: -1, producerEpoch: -1, baseSequence: -1 })); // 1-3, epoch 1
    const tp = { topic: 't', partition: 0 };
    // With none, a truncation detected (rightly or not) fails poll().
    const c = consumer({ 'auto.offset.reset': 'none' });
    c.assign([tp]);
    c.seek(tp, 0);
    const fetches = mem.calls.get('fetchStream') ?? 0;
    expect((await pollN(c, 1)).map((r) => [r.offset, r.leaderEpoch])).toEqual([[0, 0]]);
    // Fetches from 0, from 4 while 0-3 are buffered (as epoch 1), then from 4 with the position's
    // epoch: it must be 1, not 0, which the leader says ends at 1 (a "truncation").
    await mem.waitForCalls('fetchStream', fetches + 3);
    await produce('t', [{ partition: 0, value: 'b' }]);
    expect((await pollN(c, 1)).map((r) => [r.offset, r.value?.toString()])).toEqual([[4, 'b']]);
  });

  it('honours auto.offset.reset and seekToTimestamp', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ value: `v${i}`, timestamp: 100 * (i + 1) })));
    const early = consumer({ 'auto.offset.reset': 'earliest' });
    early.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(early, 5)).map((r) => r.value?.toString())).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    const late = consumer({ 'auto.offset.reset': 'latest' });
    late.assign([{ topic: 't', partition: 0 }]);
    expect(await late.poll(100)).toEqual([]);
    expect(await late.position({ topic: 't', partition: 0 })).toBe(5);
    late.seekToTimestamp([{ topic: 't', partition: 0 }], 250);
    expect((await pollN(late, 3)).map((r) => r.offset)).toEqual([2, 3, 4]);
  });

  it('seekToTimestamp past every record continues from the end, not from -1 (which would reset and replay)', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ value: `v${i}`, timestamp: 100 * (i + 1) })));
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }]);
    c.seekToTimestamp([{ topic: 't', partition: 0 }], 10_000);
    expect(await c.poll(200)).toEqual([]);
    expect(await c.position({ topic: 't', partition: 0 })).toBe(5);
    await produce('t', [{ value: 'new', timestamp: 20_000 }]);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['new']);
  });

  it('position() finds the starting position without a poll, as Kafka\'s: the committed offset, else the reset policy', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 3);
    await produce('t', [0, 0, 0, 0, 1, 1].map((partition, i) => ({ partition, value: `v${i}` })));
    const setup = consumer({ 'group.id': 'g', 'enable.auto.commit': false });
    setup.assign([{ topic: 't', partition: 0 }]);
    await setup.commit([{ topic: 't', partition: 0, offset: 3 }]);
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false });
    const p0 = { topic: 't', partition: 0 };
    const p1 = { topic: 't', partition: 1 };
    const p2 = { topic: 't', partition: 2 };
    c.assign([p0, p1, p2]);
    expect(await c.position(p0)).toBe(3); // committed
    expect(await c.position(p1)).toBe(0); // earliest
    c.seekToEnd([p1]);
    expect(await c.position(p1)).toBe(2);
    c.seek(p2, 7);
    expect(await c.position(p2)).toBe(7); // a seek needs no lookup
    expect((await pollN(c, 1)).map((r) => [r.partition, r.offset])).toEqual([[0, 3]]);
    await expect(c.position({ topic: 't', partition: 9 })).rejects.toMatchObject({ errorName: 'INVALID_REQUEST' });
  });

  it('position() throws NoOffsetForPartition\'s OFFSET_OUT_OF_RANGE with auto.offset.reset=none, and REQUEST_TIMED_OUT when no answer comes in time', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const tp = { topic: 't', partition: 0 };
    const none = consumer({ 'group.id': 'g', 'auto.offset.reset': 'none' });
    none.assign([tp]);
    await expect(none.position(tp)).rejects.toMatchObject({ errorName: 'OFFSET_OUT_OF_RANGE' });
    mem.callFailures.set('listOffsets', { code: ErrorCode.LEADER_NOT_AVAILABLE, count: 1_000_000 });
    const c = consumer({ 'default.api.timeout.ms': 300 });
    c.assign([tp]);
    const started = performance.now();
    await expect(c.position(tp)).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    await expect(c.position(tp, 50)).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    mem.callFailures.delete('listOffsets');
    expect(await c.position(tp)).toBe(0);
  });

  it('reads a batch larger than fetch.max.bytes (and its receive limit): the first batch always comes whole (KIP-74)', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    mem.append('t', 0, encodeRecordBatch({ records: [{ value: Buffer.alloc(6 * 1024 * 1024, 1) }], baseTimestamp: 1 }));
    mem.append('t', 0, encodeRecordBatch({ records: [{ value: Buffer.from('after') }], baseTimestamp: 2 }));
    const c = consumer({ 'auto.offset.reset': 'earliest', 'fetch.max.bytes': 1024 * 1024, 'max.partition.fetch.bytes': 1024 * 1024 });
    c.assign([{ topic: 't', partition: 0 }]);
    const got = await pollN(c, 2, 10_000);
    expect(got.map((r) => r.value?.length)).toEqual([6 * 1024 * 1024, 5]);
  });

  it('a partition whose next batch exceeds max.partition.fetch.bytes is not starved by a busier one on its broker (KIP-74, fetch order per broker)', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 3); // t-0 and t-2 led by broker 1, t-1 by broker 2
    for (let i = 0; i < 60; i++) mem.append('t', 0, encodeRecordBatch({ records: [{ value: Buffer.alloc(400, 1) }], baseTimestamp: 1 }));
    mem.append('t', 2, encodeRecordBatch({ records: [{ value: Buffer.alloc(4000, 2) }], baseTimestamp: 1 }));
    // The brokers' answers alternate: broker 1's k-th waits for broker 2's k-th request, broker
    // 2's k-th for broker 1's (k+1)-th. One fetch-order counter for both brokers then always put
    // the same partition first in broker 1's requests.
    const arrived = new Map<number, number>([[1, 0], [2, 0]]);
    const waiters: { node: number; count: number; resolve: () => void }[] = [];
    let released = false;
    const reached = (node: number, count: number): Promise<void> => (released || (arrived.get(node) ?? 0) >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ node, count, resolve })));
    const release = (): void => {
      released = true;
      for (const w of waiters.splice(0)) w.resolve();
    };
    closers.push(release);
    mem.fetchHook = (node) => {
      const k = (arrived.get(node) ?? 0) + 1;
      arrived.set(node, k);
      for (const w of [...waiters]) if ((arrived.get(w.node) ?? 0) >= w.count) waiters.splice(waiters.indexOf(w), 1)[0]?.resolve();
      return node === 1 ? reached(2, k) : reached(1, k + 1);
    };
    const c = consumer({ 'auto.offset.reset': 'earliest', 'max.partition.fetch.bytes': 1000, 'fetch.max.wait.ms': 5 });
    c.assign([0, 1, 2].map((partition) => ({ topic: 't', partition })));
    const got: ConsumerRecord[] = [];
    const deadline = performance.now() + 10_000;
    while (!got.some((r) => r.partition === 2) && (arrived.get(1) ?? 0) < 12 && performance.now() < deadline) got.push(...(await c.poll(50)));
    release();
    // Broker 1's second request puts t-2 first (t-0 got data in the first), so its batch comes whole.
    expect(got.filter((r) => r.partition === 2).map((r) => r.value?.length)).toEqual([4000]);
    expect(arrived.get(1)).toBeLessThanOrEqual(3);
  });

  it('buffered data of paused partitions does not stop fetches for the others', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    await produce('t', Array.from({ length: 20 }, (_, i) => ({ partition: 0, value: `${i}`.padStart(1000, '0') })));
    const p0 = { topic: 't', partition: 0 };
    const c = consumer({ 'auto.offset.reset': 'earliest', 'fetch.buffer.max.bytes': 8 * 1024, 'max.poll.records': 1 });
    c.assign([p0]);
    expect((await pollN(c, 1)).length).toBe(1); // p0's other records stay buffered (over 8 KiB)
    c.pause([p0]);
    c.assign([p0, { topic: 't', partition: 1 }]);
    c.pause([p0]);
    await produce('t', [{ partition: 1, value: 'p1' }]);
    expect((await pollN(c, 1, 5000)).map((r) => r.value?.toString())).toEqual(['p1']);
  });

  it('a corrupt batch is raised on every poll until sought past; the records before it are returned first', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    mem.append('t', 0, encodeRecordBatch({ records: [{ value: Buffer.from('a') }, { value: Buffer.from('b') }], baseTimestamp: 1 }));
    mem.append('t', 0, encodeRecordBatch({ records: [{ value: Buffer.from('bad') }], baseTimestamp: 1 }));
    mem.append('t', 0, encodeRecordBatch({ records: [{ value: Buffer.from('c') }], baseTimestamp: 1 }));
    const stored = mem.partition('t', 0).batches[1]!.bytes;
    stored[stored.length - 1]! ^= 0xff; // the CRC no longer matches
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 2)).map((r) => r.value?.toString())).toEqual(['a', 'b']);
    await expect(c.poll(500)).rejects.toMatchObject({ errorName: 'CORRUPT_MESSAGE' });
    await expect(c.poll(500)).rejects.toMatchObject({ errorName: 'CORRUPT_MESSAGE' });
    expect(await c.position({ topic: 't', partition: 0 })).toBe(2);
    c.seek({ topic: 't', partition: 0 }, 3);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['c']);
  });

  it('KIP-320: a divergence answer whose epoch runs past the position completes the validation instead of spinning', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 1, 2);
    await produce('t', Array.from({ length: 100 }, (_, i) => ({ value: `a${i}` })));
    mem.moveLeader('t', 0, 2);
    mem.moveLeader('t', 0, 1);
    await produce('t', Array.from({ length: 100 }, (_, i) => ({ value: `b${i}` })));
    // The leader's epochs: 0 from offset 0, 2 from 100. A group resumes at 50 under epoch 1 (the
    // history it read there was replaced): epoch 0 runs to 100, past 50, so it goes on from 50.
    const committer = consumer({ 'group.id': 'g', 'enable.auto.commit': false });
    await committer.commit([{ topic: 't', partition: 0, offset: 50, leaderEpoch: 1 }]);
    const fetchesBefore = mem.calls.get('fetchStream') ?? 0;
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    c.subscribe(['t']);
    const got = await pollN(c, 150, 10_000);
    expect(got[0]?.offset).toBe(50);
    expect(got.length).toBe(150);
    expect((mem.calls.get('fetchStream') ?? 0) - fetchesBefore).toBeLessThan(50);
  });

  it('for-await: after a seek or seekToBeginning inside the loop, the next record is the one sought, not one the loop still held', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    // One batch of 10: one poll() hands the loop all of them.
    await produce('t', Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })));
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    const tp = { topic: 't', partition: 0 };
    c.assign([tp]);
    const seen: number[] = [];
    for await (const r of c) {
      seen.push(r.offset);
      if (seen.length === 2) c.seek(tp, 6);
      if (seen.length === 4) c.seekToBeginning([tp]);
      if (seen.length === 6) break;
    }
    // Kafka's poll() never returns a record fetched before a seek; the loop's held records 2..5
    // and 8..9 came from such a fetch.
    expect(seen).toEqual([0, 1, 6, 7, 0, 1]);
    expect(await c.position(tp)).toBe(2);
  });

  it('for-await: pause() inside the loop stops the records it still holds for that partition; resume() brings them, each once', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    // One batch of 5 per partition: one poll() may hand the loop all of a partition's records.
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: `a${i}` })));
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ partition: 1, value: `b${i}` })));
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    const seen: { partition: number; offset: number; resumed: boolean }[] = [];
    let pausedTp: { topic: string; partition: number } | undefined;
    let resumed = false;
    for await (const r of c) {
      seen.push({ partition: r.partition, offset: r.offset, resumed });
      if (pausedTp === undefined) {
        pausedTp = { topic: 't', partition: r.partition };
        c.pause([pausedTp]);
      } else if (!resumed && seen.filter((x) => x.partition !== pausedTp?.partition).length === 5) {
        resumed = true;
        c.resume([pausedTp]);
      }
      if (seen.length === 10) break;
    }
    const p = (pausedTp as { partition: number }).partition;
    // While paused, only the record that came before pause() (as Kafka's poll() returns nothing
    // of a paused partition); after resume(), the rest of it, from where the loop stopped.
    expect(seen.filter((x) => x.partition === p && !x.resumed).map((x) => x.offset)).toEqual([0]);
    expect(seen.filter((x) => x.partition === p).map((x) => x.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(seen.filter((x) => x.partition !== p).map((x) => x.offset)).toEqual([0, 1, 2, 3, 4]);
  });

  it('wakes a waiting poll when records arrive (long-poll), and for-await yields them', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const c = consumer({ 'auto.offset.reset': 'earliest', 'fetch.max.wait.ms': 5000 });
    c.assign([{ topic: 't', partition: 0 }]);
    const seen: string[] = [];
    const loop = (async () => {
      for await (const r of c) {
        seen.push(r.value?.toString() ?? '');
        if (seen.length === 3) break;
      }
    })();
    await produce('t', [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
    await loop;
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('for-await: leaving the loop early commits (and resumes from) only the records it yielded', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    // One batch of 10: a single poll() returns them all, the loop takes 3.
    await produce('t', Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })));
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }]);
    const seen: string[] = [];
    for await (const r of c) {
      seen.push(r.value?.toString() ?? '');
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['v0', 'v1', 'v2']);
    expect(await c.position({ topic: 't', partition: 0 })).toBe(3);
    expect((await c.poll(1000)).map((r) => r.offset)[0]).toBe(3);
    c.seek({ topic: 't', partition: 0 }, 0);
    // A loop that throws: close() (auto commit) must not commit the records never handed out.
    await expect(
      (async () => {
        for await (const r of c) if (r.offset === 4) throw new Error('handler failed');
      })(),
    ).rejects.toThrow('handler failed');
    expect(await c.position({ topic: 't', partition: 0 })).toBe(5);
    // A seek inside the loop is the application's decision: leaving the loop keeps it.
    c.seek({ topic: 't', partition: 0 }, 0);
    for await (const r of c) {
      if (r.offset === 1) {
        c.seek({ topic: 't', partition: 0 }, 8);
        break;
      }
    }
    expect(await c.position({ topic: 't', partition: 0 })).toBe(8);
    c.seek({ topic: 't', partition: 0 }, 5);
    await c.close();
    const check = consumer({ 'group.id': 'g' });
    expect((await check.committed([{ topic: 't', partition: 0 }])).get('t\u00000')?.offset).toBe(5);
  });

  it('pause() holds a partition back and resume() releases it', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    await produce('t', [{ partition: 0, value: 'p0' }, { partition: 1, value: 'p1' }]);
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    c.pause([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['p1']);
    expect(await c.poll(100)).toEqual([]);
    expect(c.paused()).toEqual([{ topic: 't', partition: 0 }]);
    c.resume([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['p0']);
  });

  it('keeps consuming across a leader move and resets after OFFSET_OUT_OF_RANGE', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 1, 2);
    await produce('t', [{ value: 'a' }, { value: 'b' }]);
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 2)).length).toBe(2);
    mem.moveLeader('t', 0, 2);
    await produce('t', [{ value: 'c' }]);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['c']);
    // Records before offset 3 disappear; a seek there is out of range and resets to earliest.
    await produce('t', [{ value: 'd' }, { value: 'e' }]);
    mem.partition('t', 0).logStartOffset = 4;
    c.seek({ topic: 't', partition: 0 }, 1);
    expect((await pollN(c, 1)).map((r) => r.offset)).toEqual([4]);
  });

  it('detects log truncation by leader epoch (KIP-320) and continues where the logs agree', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    // One batch per record, so the truncation below can cut between records.
    for (let i = 0; i < 10; i++) await produce('t', [{ value: `old-${i}` }]);
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 10)).length).toBe(10);
    // Offsets 6.. vanish in an unclean election; the new leader's log continues from 6 at epoch 1.
    mem.truncateUnclean('t', 0, 6);
    await produce('t', Array.from({ length: 8 }, (_, i) => ({ value: `new-${i}` })));
    const after = await pollN(c, 8);
    expect(after.map((r) => [r.offset, r.value?.toString(), r.leaderEpoch])).toEqual(Array.from({ length: 8 }, (_, i) => [6 + i, `new-${i}`, 1]));
  });

  it('a coordinator unavailable for longer than request.timeout.ms delays poll() but does not fail it (a retriable error)', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', [{ value: 'a' }]);
    // Each OffsetFetch attempt uses up one failure: more than one request.timeout.ms of retries.
    mem.callFailures.set('offsetFetch', { code: ErrorCode.COORDINATOR_NOT_AVAILABLE, count: 40 });
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'request.timeout.ms': 100 });
    c.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['a']);
    expect(mem.callFailures.get('offsetFetch')?.count).toBe(0);
  });

  it('while a partition has no leader, metadata is refreshed with backoff, not in a loop', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', [{ value: 'a' }]);
    const c = consumer({ 'auto.offset.reset': 'earliest', 'retry.backoff.ms': 50, 'retry.backoff.max.ms': 50 });
    c.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 1)).length).toBe(1);
    mem.partition('t', 0).leaderId = -1; // an election in progress
    c.cluster.requestRefresh();
    const before = mem.calls.get('metadata') ?? 0;
    const t0 = performance.now();
    expect(await c.poll(500)).toEqual([]);
    const elapsed = performance.now() - t0;
    // One refresh per retry.backoff.ms (±20 % jitter) at most, plus the first.
    expect((mem.calls.get('metadata') ?? 0) - before).toBeLessThanOrEqual(Math.ceil(elapsed / 40) + 2);
  });

  it('a retriable failure while joining (the pattern\'s metadata lookup) is retried by the next poll(), not thrown', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t1', 1);
    await produce('t1', [{ value: 'a' }]);
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    c.subscribe(/^t\d$/);
    mem.callFailures.set('metadata', { code: ErrorCode.NETWORK_EXCEPTION, count: 1 });
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['a']);
    expect(mem.callFailures.get('metadata')?.count).toBe(0);
  });

  it('a seek made while poll() looks up the committed offset wins over that offset', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ value: `v${i}` })));
    const committer = consumer({ 'group.id': 'g' });
    await committer.commit([{ topic: 't', partition: 0, offset: 1 }]);
    const c = consumer({ 'group.id': 'g' });
    c.assign([{ topic: 't', partition: 0 }]);
    // The OffsetFetch answer reaches poll() only after the application's seek.
    const group = c['group'] as GroupMembership;
    const fetchCommitted = group.fetchCommitted.bind(group);
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let asked = (): void => undefined;
    const lookedUp = new Promise<void>((resolve) => (asked = resolve));
    jest.spyOn(group, 'fetchCommitted').mockImplementation(async (tps, signal) => {
      const out = await fetchCommitted(tps, signal);
      asked();
      await gate;
      return out;
    });
    const first = c.poll(5000);
    await lookedUp;
    c.seek({ topic: 't', partition: 0 }, 3);
    release();
    expect((await first).map((r) => r.offset)).toEqual([3, 4]);
  });

  it('an error thrown by the rebalance listener is raised by poll(), even a retriable one', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const c = consumer({ 'group.id': 'g' });
    let calls = 0;
    c.subscribe(['t'], {
      onPartitionsAssigned: () => {
        if (calls++ === 0) throw new StrandError('REQUEST_TIMED_OUT', 'the application could not load its state');
      },
    });
    const deadline = performance.now() + 10_000;
    let thrown: unknown;
    while (thrown === undefined && performance.now() < deadline) await c.poll(50).catch((e: unknown) => (thrown = e));
    expect(thrown).toMatchObject({ errorName: 'REQUEST_TIMED_OUT', message: 'the application could not load its state' });
  });

  it('a partition whose leader keeps answering NOT_LEADER_OR_FOLLOWER is fetched again with backoff, not in a loop', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 1, 2);
    await produce('t', [{ value: 'a' }]);
    const c = consumer({ 'auto.offset.reset': 'earliest', 'retry.backoff.ms': 50, 'retry.backoff.max.ms': 50 });
    c.assign([{ topic: 't', partition: 0 }]);
    expect((await pollN(c, 1)).length).toBe(1);
    // The consumer's metadata names a broker that is not the leader, and no refresh can fix it.
    mem.callFailures.set('metadata', { code: ErrorCode.NETWORK_EXCEPTION, count: 1_000_000 });
    (c.cluster.topics.get('t')?.partitions[0] as { leaderId: number }).leaderId = 2;
    const before = mem.calls.get('fetchStream') ?? 0;
    const t0 = performance.now();
    expect(await c.poll(500)).toEqual([]);
    const elapsed = performance.now() - t0;
    expect((mem.calls.get('fetchStream') ?? 0) - before).toBeLessThanOrEqual(Math.ceil(elapsed / 40) + 2);
  });

  it('a partition fetch error no retry cures (TOPIC_AUTHORIZATION_FAILED) is raised by poll(); retriable ones (UNKNOWN_SERVER_ERROR, KAFKA_STORAGE_ERROR) are retried, as Kafka\'s FetchCollector', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    await produce('t', [{ partition: 0, value: 'a' }, { partition: 0, value: 'b' }, { partition: 1, value: 'c' }]);
    mem.fetchErrors.set('t-0', [ErrorCode.TOPIC_AUTHORIZATION_FAILED]);
    mem.fetchErrors.set('t-1', [ErrorCode.UNKNOWN_SERVER_ERROR, ErrorCode.KAFKA_STORAGE_ERROR]);
    const c = consumer({ 'auto.offset.reset': 'earliest' });
    c.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    const got: ConsumerRecord[] = [];
    const deadline = performance.now() + 5000;
    let raised: unknown;
    while (raised === undefined && performance.now() < deadline) got.push(...(await c.poll(50).catch((e: unknown) => ((raised = e), []))));
    expect(raised).toMatchObject({ errorName: 'TOPIC_AUTHORIZATION_FAILED' });
    expect(String((raised as Error).message)).toContain('t-0');
    // Raised once per answer that carries it; once the broker answers, consuming goes on.
    got.push(...(await pollN(c, 3 - got.length)));
    expect(got.map((r) => r.value?.toString()).sort()).toEqual(['a', 'b', 'c']);
    expect(mem.fetchErrors.get('t-1')).toEqual([]);
  });

  it('with auto.offset.reset=none, an out-of-range position fails poll()', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', [{ value: 'a' }]);
    const c = consumer({ 'auto.offset.reset': 'none', 'group.id': 'g' });
    c.assign([{ topic: 't', partition: 0 }]);
    await expect(c.poll(100)).rejects.toMatchObject({ errorName: 'OFFSET_OUT_OF_RANGE' });
    c.seek({ topic: 't', partition: 0 }, 7);
    await expect(pollN(c, 1, 2000)).rejects.toMatchObject({ errorName: 'OFFSET_OUT_OF_RANGE' });
    // Until the application seeks, every poll() raises it again and the partition is not
    // fetched meanwhile (fetching it again would only bring the same answer back, in a loop).
    const fetches = mem.calls.get('fetchStream');
    await expect(c.poll(100)).rejects.toMatchObject({ errorName: 'OFFSET_OUT_OF_RANGE' });
    await expect(c.poll(100)).rejects.toMatchObject({ errorName: 'OFFSET_OUT_OF_RANGE' });
    expect(mem.calls.get('fetchStream')).toBe(fetches);
    c.seek({ topic: 't', partition: 0 }, 0);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['a']);
  });
});

describe('Consumer fetching over FetchStream', () => {
  const offsetsOf = (rs: ConsumerRecord[], partition: number): number[] => rs.filter((r) => r.partition === partition).map((r) => r.offset);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

  it('fetches over one stream per broker, prefetching the next response while the application consumes', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    // Ten batches of ten records; one batch per response.
    for (let b = 0; b < 10; b++) await produce('t', range(0, 10).map((i) => ({ partition: 0, value: `v${b * 10 + i}` })));
    const c = consumer({ 'max.partition.fetch.bytes': 1, 'max.poll.records': 10 });
    c.assign([{ topic: 't', partition: 0 }]);
    c.seekToBeginning();
    const first = await pollN(c, 10);
    expect(first.map((r) => r.offset)).toEqual(range(0, 10));
    // Without another poll(), the consumer already has the next responses coming (the pipeline
    // refills from the fetch completion, at most two responses ahead per partition).
    await mem.waitForCalls('fetchStream', 3);
    const rest = await pollN(c, 90);
    expect(rest.map((r) => r.offset)).toEqual(range(10, 100));
    expect(rest.map((r) => r.value?.toString())).toEqual(range(10, 100).map((i) => `v${i}`));
    expect(mem.calls.get('fetchStreamOpen')).toBe(1);
    expect(mem.calls.get('fetch') ?? 0).toBe(0);
  });

  it('a seek, pause and resume with prefetched data return every record once, in order', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    for (let b = 0; b < 5; b++) await produce('t', range(0, 20).map((i) => ({ partition: i % 2, value: `v${b}-${i}` })));
    const c = consumer({ 'max.partition.fetch.bytes': 1, 'max.poll.records': 7 });
    const p0 = { topic: 't', partition: 0 };
    const p1 = { topic: 't', partition: 1 };
    c.assign([p0, p1]);
    c.seekToBeginning();
    const got: ConsumerRecord[] = [];
    while (offsetsOf(got, 0).length < 5) got.push(...(await c.poll(200)));
    // Back to offset 3 of partition 0 while later responses are buffered or in flight.
    c.seek(p0, 3);
    c.pause([p1]);
    const afterSeek: ConsumerRecord[] = [];
    while (offsetsOf(afterSeek, 0).length < 47) afterSeek.push(...(await c.poll(200)));
    expect(offsetsOf(afterSeek, 0)).toEqual(range(3, 50));
    // Paused: nothing of partition 1 after the pause, even though it had data prefetched.
    expect(offsetsOf(afterSeek, 1)).toEqual([]);
    c.resume([p1]);
    const p1Seen = offsetsOf(got, 1);
    const resumed: ConsumerRecord[] = [];
    while (p1Seen.length + offsetsOf(resumed, 1).length < 50) resumed.push(...(await c.poll(200)));
    expect([...p1Seen, ...offsetsOf(resumed, 1)]).toEqual(range(0, 50));
    expect(await c.position(p0)).toBe(50);
    expect(await c.position(p1)).toBe(50);
  });

  it('reopens the stream after stream failures, backing off, and loses or repeats nothing', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 2, 2);
    await produce('t', range(0, 60).map((i) => ({ partition: i % 2, value: `v${i}` })));
    mem.callFailures.set('fetchStream', { code: ErrorCode.NETWORK_EXCEPTION, count: 3 });
    const c = consumer({ 'max.partition.fetch.bytes': 1 });
    c.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    c.seekToBeginning();
    const rs = await pollN(c, 60);
    expect(offsetsOf(rs, 0)).toEqual(range(0, 30));
    expect(offsetsOf(rs, 1)).toEqual(range(0, 30));
    expect(mem.callFailures.get('fetchStream')?.count).toBe(0);
    // Each failure ended its stream; later fetches went over new ones.
    expect(mem.calls.get('fetchStreamOpen') ?? 0).toBeGreaterThanOrEqual(4);
    expect(mem.calls.get('fetch') ?? 0).toBe(0);
    // Ended streams let go of the consumer's close signal: only the live streams listen. A
    // metadata refresh the failures asked for may still be in flight (it listens until it
    // ends), so wait for that to settle; a leak would keep one listener per ended stream (4+).
    const deadline = performance.now() + 5_000;
    while (getEventListeners(c.cluster.closeSignal, 'abort').length > 2 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(getEventListeners(c.cluster.closeSignal, 'abort').length).toBeLessThanOrEqual(2);
  });

  it('falls back to unary Fetch when the broker does not implement FetchStream', async () => {
    mem = await MemoryCluster.start();
    mem.fetchStreamEnabled = false;
    mem.createTopic('t', 1);
    await produce('t', range(0, 20).map((i) => ({ partition: 0, value: `v${i}` })));
    const c = consumer();
    c.assign([{ topic: 't', partition: 0 }]);
    c.seekToBeginning();
    expect((await pollN(c, 20)).map((r) => r.value?.toString())).toEqual(range(0, 20).map((i) => `v${i}`));
    expect(mem.calls.get('fetch') ?? 0).toBeGreaterThan(0);
  });
});

describe('Consumer groups', () => {
  it('splits partitions among members, processes each record once, and resumes from commits', async () => {
    mem = await MemoryCluster.start({ brokers: 2 });
    mem.createTopic('t', 4, 2);
    const values = Array.from({ length: 40 }, (_, i) => `v${i}`);
    await produce('t', values.map((v, i) => ({ partition: i % 4, value: v })));
    const a = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false });
    const b = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false });
    a.subscribe(['t']);
    b.subscribe(['t']);
    const seen = new Map<string, number>();
    const settled = (): boolean => a.assignment().length > 0 && b.assignment().length > 0 && a.groupMetadata()?.generationId === b.groupMetadata()?.generationId && mem.groups.get('g')?.state === 'Stable' && seen.size === 40;
    await pollAll([a, b], settled, (rs) => {
      for (const r of rs) seen.set(r.value?.toString() ?? '', (seen.get(r.value?.toString() ?? '') ?? 0) + 1);
    });
    const owned = [...a.assignment(), ...b.assignment()].map((tp) => tp.partition).sort();
    expect(owned).toEqual([0, 1, 2, 3]);
    expect(a.assignment().length).toBe(2);
    await Promise.all([a.commit(), b.commit()]);
    expect(seen.size).toBe(40);
    // Records read by a member that lost the partition in the rebalance are read again by the
    // new owner (at-least-once), but within the final generation each record is processed once.
    expect([...seen.values()].every((n) => n >= 1)).toBe(true);
    await a.close();
    await b.close();
    await produce('t', [{ partition: 0, value: 'new' }]);
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    c.subscribe(['t']);
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['new']);
  });

  it('cooperative-sticky: a joining member takes over only the partitions that move', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 4);
    const events: string[] = [];
    const log = (who: string, c: () => Consumer) => ({
      onPartitionsRevoked: (tps: { partition: number }[]) => void events.push(`${who} gen ${c().groupMetadata()?.generationId} revoked ${tps.map((t) => t.partition).join()}`),
      onPartitionsAssigned: (tps: { partition: number }[]) => void events.push(`${who} gen ${c().groupMetadata()?.generationId} added ${tps.map((t) => t.partition).join()} owns ${c().assignment().map((t) => t.partition).join()}`),
    });
    const cfg = { 'group.id': 'coop', 'auto.offset.reset': 'earliest', 'partition.assignment.strategy': 'cooperative-sticky' };
    const a = consumer(cfg);
    a.subscribe(['t'], log('A', () => a));
    const deadline = performance.now() + 15_000;
    while (a.assignment().length < 4 && performance.now() < deadline) await a.poll(50);
    expect(a.assignment().length).toBe(4);
    const b = consumer(cfg);
    b.subscribe(['t'], log('B', () => b));
    await pollAll([a, b], () => a.assignment().length === 2 && b.assignment().length === 2 && a.groupMetadata()?.generationId === b.groupMetadata()?.generationId && a.groupMetadata()?.generationId === mem.groups.get('coop')?.generationId && mem.groups.get('coop')?.state === 'Stable');
    const owned = [...a.assignment(), ...b.assignment()].map((tp) => tp.partition).sort();
    expect(owned).toEqual([0, 1, 2, 3]);
    // A never gave up everything: it revoked exactly the two partitions that moved to B, and B
    // was given them only in a later generation than A's revocation.
    expect(events.filter((e) => e.startsWith('A') && e.includes('revoked')).map((e) => e.replace(/gen \d+ /, ''))).toEqual(['A revoked 2,3']);
    // B received partitions 2 and 3 only in a generation after A's revocation.
    const revokedAt = Number(events.find((e) => e.startsWith('A') && e.includes('revoked'))?.split(' ')[2]);
    const bGot = events.find((e) => e.startsWith('B') && e.includes('added 2,3'));
    expect(Number(bGot?.split(' ')[2])).toBeGreaterThan(revokedAt);
    expect(events.some((e) => e.startsWith('B') && e.includes('revoked'))).toBe(false);
  });

  it('cooperative-sticky: a member its rejoin finds removed from the group reports its partitions lost, and neither keeps nor commits them', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    await produce('t', [0, 1].flatMap((partition) => Array.from({ length: 10 }, (_, i) => ({ partition, value: `a${i}` }))));
    const events: string[] = [];
    // No heartbeat within the test (A learns of its removal from its JoinGroup, not from a
    // heartbeat) and no periodic commit: only a rebalance can commit for A.
    const cfg = { 'group.id': 'coop', 'auto.offset.reset': 'earliest', 'partition.assignment.strategy': 'cooperative-sticky', 'auto.commit.interval.ms': 600_000 };
    const a = consumer({ ...cfg, 'session.timeout.ms': 60_000, 'heartbeat.interval.ms': 30_000 });
    const listener = {
      onPartitionsLost: (tps: { partition: number }[]) => void events.push(`lost ${tps.map((t) => t.partition).join()}`),
      onPartitionsRevoked: (tps: { partition: number }[]) => void events.push(`revoked ${tps.map((t) => t.partition).join()}`),
    };
    a.subscribe(['t'], listener);
    expect((await pollN(a, 20)).length).toBe(20);
    // The coordinator drops A (its session expired, say), and B takes over and commits further.
    const g = mem.groups.get('coop');
    g?.members.clear();
    if (g !== undefined) g.state = 'Empty';
    await produce('t', [0, 1].flatMap((partition) => Array.from({ length: 5 }, (_, i) => ({ partition, value: `b${i}` }))));
    const b = consumer(cfg);
    b.subscribe(['t']);
    expect((await pollN(b, 30)).length).toBe(30);
    await b.commit();
    // A rejoins (here because it subscribes again) before any heartbeat told it it was removed.
    a.subscribe(['t'], listener);
    await pollAll([a, b], () => events.length > 0 && a.groupMetadata()?.generationId === mem.groups.get('coop')?.generationId && mem.groups.get('coop')?.state === 'Stable');
    expect(events).toEqual(['lost 0,1']);
    expect([0, 1].map((p) => mem.groups.get('coop')?.offsets.get(`t\u0000${p}`)?.offset)).toEqual([15, 15]);
    // A joined owning nothing (B, their owner since, gives one up for the next round), so no
    // partition is A's with the position it had before it was removed.
    expect(a.assignment()).toEqual([]);
  });

  it('close() during a rebalance still commits what poll() returned (the coordinator accepts the current generation)', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ value: `v${i}` })));
    // No periodic commit within the test: only close() can commit.
    const a = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'auto.commit.interval.ms': 600_000 });
    a.subscribe(['t']);
    expect((await pollN(a, 5)).length).toBe(5);
    // B's JoinGroup puts the group into PreparingRebalance; A hears REBALANCE_IN_PROGRESS on its
    // next heartbeat and closes before it rejoins.
    const b = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    b.subscribe(['t']);
    const joins = mem.calls.get('joinGroup') ?? 0;
    const bPoll = b.poll(100);
    await mem.waitForCalls('joinGroup', joins + 2);
    await mem.waitForCalls('heartbeat', (mem.calls.get('heartbeat') ?? 0) + 2);
    expect(mem.groups.get('g')?.state).toBe('PreparingRebalance');
    await a.close();
    await bPoll;
    expect(mem.groups.get('g')?.offsets.get('t\u00000')?.offset).toBe(5);
  });

  it('the leader rebalances when a subscribed topic gains partitions or is created, so their records are consumed', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'metadata.max.age.ms': 100 });
    c.subscribe(['t', 'later']);
    const deadline = performance.now() + 10_000;
    while (c.assignment().length < 2 && performance.now() < deadline) await c.poll(50);
    expect(c.assignment().length).toBe(2);
    const admin = new Admin({ 'bootstrap.servers': mem.bootstrap });
    closers.push(() => admin.close());
    await admin.createPartitions('t', 3);
    mem.createTopic('later', 1);
    await produce('t', [{ partition: 2, value: 'in a new partition' }]);
    await produce('later', [{ value: 'in a new topic' }]);
    const got = await pollN(c, 2);
    expect(got.map((r) => r.value?.toString()).sort()).toEqual(['in a new partition', 'in a new topic']);
    expect(c.assignment().length).toBe(4);
  });

  it('max.poll.interval.ms: a member that stops polling leaves the group, and rejoins at its next poll', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 4);
    const events: string[] = [];
    // A long session: only the poll timeout can make A leave within this test.
    const a = consumer({ 'group.id': 'slow', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false, 'max.poll.interval.ms': 300, 'session.timeout.ms': 30_000 });
    a.subscribe(['t'], {
      onPartitionsLost: (tps) => void events.push(`lost ${tps.map((t) => t.partition).join()}`),
      onPartitionsRevoked: (tps) => void events.push(`revoked ${tps.map((t) => t.partition).join()}`),
      onPartitionsAssigned: (tps) => void events.push(`assigned ${tps.map((t) => t.partition).join()}`),
    });
    await pollAll([a], () => a.assignment().length === 4 && mem.groups.get('slow')?.state === 'Stable');
    expect(a.assignment().length).toBe(4);
    // A poll that itself lasts longer than the interval is not a missed poll.
    expect(await a.poll(700)).toEqual([]);
    expect(mem.calls.get('leaveGroup') ?? 0).toBe(0);
    const left = performance.now();
    await mem.waitForCalls('leaveGroup', 1);
    expect(performance.now() - left).toBeLessThan(10_000);
    expect(mem.leaveReasons).toEqual([expect.stringMatching(/^consumer poll timeout has expired/)]);
    expect(mem.groups.get('slow')?.members.size).toBe(0);
    // Another member gets everything at once, without waiting for A's session to expire.
    const b = consumer({ 'group.id': 'slow', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false });
    b.subscribe(['t']);
    await pollAll([b], () => b.assignment().length === 4 && mem.groups.get('slow')?.state === 'Stable');
    expect(b.assignment().length).toBe(4);
    // A's next poll reports its partitions lost (no revoke, no commit) and rejoins.
    await pollAll([a, b], () => a.assignment().length === 2 && b.assignment().length === 2 && a.groupMetadata()?.generationId === b.groupMetadata()?.generationId && mem.groups.get('slow')?.state === 'Stable');
    expect(events.slice(0, 2)).toEqual(['assigned 0,1,2,3', 'lost 0,1,2,3']);
    expect(events.filter((e) => e.startsWith('revoked'))).toEqual([]);
    expect(a.assignment().length).toBe(2);
    expect(b.assignment().length).toBe(2);
    expect(mem.groups.get('slow')?.members.size).toBe(2);
  });

  it('commit() of a member out of the group fails, also when the group is empty and would take a standalone commit', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', Array.from({ length: 5 }, (_, i) => ({ value: `v${i}` })));
    const a = consumer({ 'group.id': 'alone', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false, 'max.poll.interval.ms': 300, 'session.timeout.ms': 30_000 });
    a.subscribe(['t']);
    expect((await pollN(a, 5)).length).toBe(5);
    // The application takes longer than max.poll.interval.ms: its consumer leaves the group,
    // which is then empty.
    await mem.waitForCalls('leaveGroup', 1);
    // Until the consumer has the LeaveGroup answer (each OffsetFetch a round trip meanwhile).
    const deadline = performance.now() + 5_000;
    while (a.groupMetadata()?.generationId !== -1 && performance.now() < deadline) await a.committed([]);
    expect(a.groupMetadata()?.generationId).toBe(-1);
    expect(mem.groups.get('alone')?.state).toBe('Empty');
    // As the Java client's CommitFailedException: not silently committed as a non-member.
    await expect(a.commit()).rejects.toMatchObject({ errorName: 'UNKNOWN_MEMBER_ID' });
    expect(mem.groups.get('alone')?.offsets.size).toBe(0);
  });

  it('commit() of offsets for a partition a rebalance took from the member fails, and the new owner\'s offset stands', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    await produce('t', Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `v${i}` })));
    const a = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false });
    a.subscribe(['t']);
    const fromA: ConsumerRecord[] = [];
    while (fromA.length < 10) fromA.push(...(await a.poll(200)));
    // b joins; a rebalance gives it one of a's partitions.
    const b = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'enable.auto.commit': false });
    b.subscribe(['t']);
    const settled = (): boolean => a.assignment().length === 1 && b.assignment().length === 1 && a.groupMetadata()?.generationId === b.groupMetadata()?.generationId && mem.groups.get('g')?.state === 'Stable';
    await pollAll([a, b], settled);
    expect(settled()).toBe(true);
    const moved = (b.assignment()[0] as { topic: string; partition: number }).partition;
    const kept = (a.assignment()[0] as { topic: string; partition: number }).partition;
    await b.commit([{ topic: 't', partition: moved, offset: 2 }]);
    // a still holds records of the moved partition from before the rebalance: committing their
    // offsets under its new generation would overwrite b's progress (Kafka's consumer fails a
    // commit made across the rebalance: CommitFailedException, RebalanceInProgressException).
    await expect(a.commit([{ topic: 't', partition: moved, offset: 5 }])).rejects.toMatchObject({ errorName: 'ILLEGAL_GENERATION' });
    expect(mem.groups.get('g')?.offsets.get(`t\u0000${moved}`)?.offset).toBe(2);
    // Its own partition commits as before, and so does one it never owned (Kafka checks no
    // ownership; only a partition taken from it across the rebalance is refused).
    await a.commit([{ topic: 't', partition: kept, offset: 5 }, { topic: 'other', partition: 0, offset: 7 }]);
    expect(mem.groups.get('g')?.offsets.get(`t\u0000${kept}`)?.offset).toBe(5);
    expect(mem.groups.get('g')?.offsets.get('other\u00000')?.offset).toBe(7);
  });

  it('unsubscribe() after the member was removed reports its partitions lost, not revoked', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const events: string[] = [];
    const a = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'max.poll.interval.ms': 300, 'session.timeout.ms': 30_000 });
    a.subscribe(['t'], {
      onPartitionsLost: (tps) => void events.push(`lost ${tps.map((t) => t.partition).join()}`),
      onPartitionsRevoked: (tps) => void events.push(`revoked ${tps.map((t) => t.partition).join()}`),
      onPartitionsAssigned: (tps) => void events.push(`assigned ${tps.map((t) => t.partition).join()}`),
    });
    await pollAll([a], () => a.assignment().length === 1);
    await mem.waitForCalls('leaveGroup', 1); // no poll() within max.poll.interval.ms
    await a.unsubscribe();
    expect(events).toEqual(['assigned 0', 'lost 0']);
    expect(a.assignment()).toEqual([]);
  });

  it('close() and unsubscribe() call the rebalance listener only when the member owns partitions, as Kafka\'s onLeavePrepare', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const events = new Map<string, string[]>();
    const listener = (name: string): RebalanceListener => {
      const log: string[] = [];
      events.set(name, log);
      return {
        onPartitionsLost: (tps) => void log.push(`lost ${tps.map((t) => t.partition).join()}`),
        onPartitionsRevoked: (tps) => void log.push(`revoked ${tps.map((t) => t.partition).join()}`),
        onPartitionsAssigned: (tps) => void log.push(`assigned ${tps.map((t) => t.partition).join()}`),
      };
    };
    // Never joined (no poll()).
    const idle = consumer({ 'group.id': 'idle' });
    idle.subscribe(['t'], listener('idle'));
    await idle.close();
    expect(events.get('idle')).toEqual([]);
    // Two members, one partition: one of them owns nothing.
    const config = { 'group.id': 'g', 'auto.offset.reset': 'earliest', 'max.poll.interval.ms': 400, 'session.timeout.ms': 30_000 };
    const [a, b] = [consumer(config), consumer(config)];
    a.subscribe(['t'], listener('a'));
    b.subscribe(['t'], listener('b'));
    await pollAll([a, b], () => a.assignment().length + b.assignment().length === 1 && a.groupMetadata()?.generationId === b.groupMetadata()?.generationId && mem.groups.get('g')?.state === 'Stable');
    const [owner, other] = a.assignment().length === 1 ? ['a', b] : ['b', a];
    expect(other.assignment()).toEqual([]);
    // Both stop polling and are taken out of the group; the one with nothing unsubscribes.
    await mem.waitForCalls('leaveGroup', 2);
    await other.unsubscribe();
    await other.close();
    expect(events.get(owner === 'a' ? 'b' : 'a')).toEqual(['assigned ']);
    // A member in the group owning nothing closes.
    const c = consumer({ ...config, 'max.poll.interval.ms': 30_000 });
    const d = consumer({ ...config, 'max.poll.interval.ms': 30_000 });
    c.subscribe(['t'], listener('c'));
    d.subscribe(['t'], listener('d'));
    await pollAll([c, d], () => c.assignment().length + d.assignment().length === 1 && c.groupMetadata()?.generationId === d.groupMetadata()?.generationId && mem.groups.get('g')?.state === 'Stable');
    const empty = c.assignment().length === 0 ? 'c' : 'd';
    await (empty === 'c' ? c : d).close();
    expect(events.get(empty)).toEqual(['assigned ']);
  });

  it('fences a commit from a stale generation and asks the member to rejoin', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    const cfg = parseConsumerConfig({ 'bootstrap.servers': mem.bootstrap, 'group.id': 'g', 'heartbeat.interval.ms': 20, 'session.timeout.ms': 3000, 'retry.backoff.ms': 5 });
    const cluster = new Cluster(cfg);
    closers.push(() => cluster.close());
    let woken = 0;
    let onWake: () => void = () => undefined;
    const wakeSeen = new Promise<void>((resolve) => (onWake = resolve));
    const m1 = new GroupMembership('g', cluster, cfg, [rangeAssignor], () => {
      woken++;
      onWake();
    });
    const m2 = new GroupMembership('g', cluster, cfg, [rangeAssignor], () => undefined);
    closers.push(() => m1.close(), () => m2.close());
    const counts = async (): Promise<Map<string, number>> => new Map([['t', 2]]);
    const first = await m1.join(['t'], counts);
    expect(first.assignment.length).toBe(2);
    const join2 = m2.join(['t'], counts); // the group now prepares a rebalance
    await wakeSeen;
    expect(m1.rejoinNeeded).toBe(true);
    // m1's heartbeat learns of the rebalance; it rejoins and the group moves to generation 2.
    const [again, second] = await Promise.all([m1.join(['t'], counts), join2]);
    expect(again.generationId).toBe(second.generationId);
    expect(woken).toBeGreaterThan(0);
    await m1.commit([{ topic: 't', partition: 0, offset: 5 }], true);
    const stale = m1.generationId;
    m1.generationId = stale - 1; // a zombie from the previous generation
    await expect(m1.commit([{ topic: 't', partition: 0, offset: 9 }], true)).rejects.toMatchObject({ errorName: 'ILLEGAL_GENERATION' });
    expect(m1.rejoinNeeded).toBe(true);
    // Fenced, its partitions may be another member's already: lost, not revoked (as Kafka's
    // resetGenerationOnResponseError), so the rejoin neither commits nor calls onPartitionsRevoked.
    expect(m1.memberLost).toBe(true);
    expect(mem.groups.get('g')?.offsets.get('t\u00000')?.offset).toBe(5);
  });

  it('poll() returns at its timeout while the group cannot be joined yet, and the join goes on in the background', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', [{ value: 'a' }]);
    mem.callFailures.set('findCoordinator', { code: ErrorCode.COORDINATOR_NOT_AVAILABLE, count: 1_000_000 });
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest', 'request.timeout.ms': 30_000 });
    c.subscribe(['t']);
    const t0 = performance.now();
    expect(await c.poll(200)).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(5_000); // bounded by the timeout, not the join
    mem.callFailures.delete('findCoordinator');
    expect((await pollN(c, 1)).map((r) => r.value?.toString())).toEqual(['a']);
  });

  it('sends commits one at a time in call order: a retried older commit never lands after a newer one', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const cfg = parseConsumerConfig({ 'bootstrap.servers': mem.bootstrap, 'group.id': 'g', 'retry.backoff.ms': 100, 'retry.backoff.max.ms': 100 });
    const cluster = new Cluster(cfg);
    closers.push(() => cluster.close());
    const m = new GroupMembership('g', cluster, cfg, [rangeAssignor], () => undefined);
    closers.push(() => m.close());
    // The first OffsetCommit fails retriably (as an auto-commit meeting a coordinator move); a
    // newer commit (close(), a revoke) is issued meanwhile.
    mem.callFailures.set('offsetCommit', { code: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, count: 1 });
    const older = m.commit([{ topic: 't', partition: 0, offset: 100 }], false);
    await mem.waitForCalls('offsetCommit', 1); // the older one met the failure and waits to retry
    const newer = m.commit([{ topic: 't', partition: 0, offset: 200 }], false);
    await Promise.all([older, newer]);
    expect(mem.groups.get('g')?.offsets.get('t\u00000')?.offset).toBe(200);
  });

  it('a queued commit carries the generation it was made under, not the one current when it is sent', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    const cfg = parseConsumerConfig({ 'bootstrap.servers': mem.bootstrap, 'group.id': 'g', 'heartbeat.interval.ms': 1000, 'retry.backoff.ms': 100, 'retry.backoff.max.ms': 100 });
    const cluster = new Cluster(cfg);
    closers.push(() => cluster.close());
    const m = new GroupMembership('g', cluster, cfg, [rangeAssignor], () => undefined);
    closers.push(() => m.close());
    const joined = await m.join(['t'], async () => new Map([['t', 1]]));
    mem.callFailures.set('offsetCommit', { code: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, count: 1 });
    const first = m.commit([{ topic: 't', partition: 0, offset: 1 }], true);
    await mem.waitForCalls('offsetCommit', 1);
    const queued = m.commit([{ topic: 't', partition: 0, offset: 2 }], true);
    // The member moves on before the queued commit is sent (here: only its local generation).
    m.generationId = joined.generationId + 5;
    await first;
    await queued; // sent with the generation it was made under, which the coordinator accepts
    expect(mem.groups.get('g')?.offsets.get('t\u00000')?.offset).toBe(2);
  });

  it('unsubscribe() while a join is in progress leaves the consumer with no partitions and no membership', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 2);
    mem.callFailures.set('findCoordinator', { code: ErrorCode.COORDINATOR_NOT_AVAILABLE, count: 3 });
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    c.subscribe(['t']);
    expect(await c.poll(20)).toEqual([]); // the join goes on in the background
    await c.unsubscribe();
    await new Promise((r) => setTimeout(r, 500)); // the join would have completed by now
    expect(c.assignment()).toEqual([]);
    expect(mem.groups.get('g')?.members.size ?? 0).toBe(0);
    c.assign([{ topic: 't', partition: 0 }]); // a plain assign() is possible again
    expect(c.assignment()).toEqual([{ topic: 't', partition: 0 }]);
  });

  it('a heartbeat sent before a rejoin and answered after it (ILLEGAL_GENERATION for the old generation) does not mark the new membership lost', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    mem.createTopic('u', 1);
    const events: string[] = [];
    const listener = {
      onPartitionsAssigned: (ps: { topic: string }[]) => void events.push(`assigned ${ps.map((p) => p.topic).join(',')}`),
      onPartitionsRevoked: (ps: { topic: string }[]) => void events.push(`revoked ${ps.map((p) => p.topic).join(',')}`),
      onPartitionsLost: (ps: { topic: string }[]) => void events.push(`lost ${ps.map((p) => p.topic).join(',')}`),
    };
    const c = consumer({ 'group.id': 'g', 'auto.offset.reset': 'earliest' });
    c.subscribe(['t'], listener);
    const deadline = performance.now() + 10_000;
    while (c.assignment().length === 0 && performance.now() < deadline) await c.poll(50);
    const first = c.groupMetadata()?.generationId ?? -1;
    expect(first).toBeGreaterThanOrEqual(0);
    // Hold the next heartbeat; the coordinator answers it only after the member's rejoin.
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    closers.push(() => release());
    const sent = new Promise<void>((resolve) => {
      mem.heartbeatHook = () => {
        mem.heartbeatHook = undefined;
        resolve();
        return held;
      };
    });
    await sent;
    c.subscribe(['t', 'u'], listener);
    // Until the rejoin is complete (synced, the new assignment taken).
    while (!events.includes('assigned t,u') && performance.now() < deadline) await c.poll(50);
    const second = c.groupMetadata()?.generationId ?? -1;
    expect(second).toBeGreaterThan(first);
    const beats = mem.calls.get('heartbeat') ?? 0;
    release(); // answered ILLEGAL_GENERATION: generation `first` is over
    // Two more heartbeats: the late answer was handled, and the heartbeat goes on.
    while ((mem.calls.get('heartbeat') ?? 0) < beats + 3 && performance.now() < deadline) await c.poll(50);
    expect(mem.calls.get('heartbeat') ?? 0).toBeGreaterThanOrEqual(beats + 3);
    expect(c.groupMetadata()?.generationId).toBe(second);
    expect(events).toEqual(['assigned t', 'revoked t', 'assigned t,u']);
    expect(mem.groups.get('g')?.generationId).toBe(second);
  });

  it('FENCED_INSTANCE_ID from a heartbeat is fatal: poll() throws it (another process took the group.instance.id)', async () => {
    mem = await MemoryCluster.start();
    mem.createTopic('t', 1);
    await produce('t', [{ value: 'a' }, { value: 'b' }]);
    const c = consumer({ 'group.id': 'g', 'group.instance.id': 'static-1', 'auto.offset.reset': 'earliest' });
    c.subscribe(['t']);
    expect((await pollN(c, 2)).map((r) => r.value?.toString())).toEqual(['a', 'b']);
    const beats = mem.calls.get('heartbeat') ?? 0;
    mem.callFailures.set('heartbeat', { code: ErrorCode.FENCED_INSTANCE_ID, count: 1 });
    await mem.waitForCalls('heartbeat', beats + 1);
    await produce('t', [{ value: 'c' }]);
    await expect(pollN(c, 1, 2000)).rejects.toMatchObject({ errorName: 'FENCED_INSTANCE_ID' });
    await expect(c.poll(10)).rejects.toMatchObject({ errorName: 'FENCED_INSTANCE_ID' });
  });
});
