/**
 * Checks the Producer end to end against the in-memory broker twin (real gRPC on loopback):
 * keyed placement identical to the Java client, headers and timestamps, per-partition order and
 * offsets, idempotent retries after a lost response (no duplicates), NOT_LEADER_OR_FOLLOWER
 * handling with the leader hint and metadata refresh, retriable vs fatal errors, acks=0,
 * buffer.memory back-pressure, the sticky and custom partitioners, config validation,
 * close(), and the ProduceStream transport (out-of-order answers, unary fallback, a broken
 * stream, a request's deadline), epoch bumps that keep a possibly written batch's identity,
 * delivery.timeout.ms for batches in flight (late answers ignored, the sequence resolved by them
 * or the epoch bumped), a partition missing from cached metadata, and metadata arriving after
 * close(); ordering with max.in.flight=1 without idempotence across a leader move, buffer.memory
 * and max.request.size limits counting whole batches, records waiting for a new topic kept in
 * send order, max.block.ms against a hanging metadata request, non-retriable topic errors
 * failing a send at once, and a child process kept alive while a record waits for a leader. Each
 * test has its own cluster and producer; all are closed in afterEach.
 */
import { Acks, ErrorCode, StrandError, encodeRecordBatch } from '@strand/protocol';
import type { ProduceRequest } from '@strand/protocol';
import { BrokerConnection } from '../../src/cluster/connection';
import { Producer } from '../../src/producer/producer';
import { Admin } from '../../src/admin/admin';
import { ProduceStream } from '../../src/producer/produce-stream';
import { partitionForKey } from '../../src/producer/partitioner';
import { MemoryCluster } from '../support/memory-broker';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';

let cluster: MemoryCluster;
const producers: Producer[] = [];

function producer(config: Record<string, string | number | boolean> = {}, options: ConstructorParameters<typeof Producer>[1] = {}): Producer {
  const p = new Producer({ 'bootstrap.servers': cluster.bootstrap, 'retry.backoff.ms': 5, 'retry.backoff.max.ms': 20, 'linger.ms': 1, ...config }, options);
  producers.push(p);
  return p;
}

afterEach(async () => {
  for (const p of producers.splice(0)) await p.close({ timeoutMs: 1000 });
  await cluster.stop();
});

describe('Producer', () => {
  it('places keyed records like the Java client, with headers, timestamps and increasing offsets', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 6);
    const p = producer();
    const keys = Array.from({ length: 60 }, (_, i) => `key-${i}`);
    const mds = await Promise.all(keys.map((k, i) => p.send({ topic: 't', key: k, value: `v${i}`, headers: { h: `x${i}` }, timestamp: 1_700_000_000_000 + i })));
    const next = new Map<number, number>();
    mds.forEach((md, i) => {
      expect(md.partition).toBe(partitionForKey(Buffer.from(keys[i] as string), 6));
      expect(md.offset).toBe(next.get(md.partition) ?? 0);
      next.set(md.partition, md.offset + 1);
      expect(md.timestamp).toBe(1_700_000_000_000 + i);
    });
    const stored = cluster.records('t', (mds[7] as { partition: number }).partition).find((r) => r.value === 'v7');
    expect(stored).toMatchObject({ key: 'key-7', headers: [{ key: 'h', value: 'x7' }], timestamp: 1_700_000_000_007 });
    expect(stored?.producerId).toBeGreaterThanOrEqual(0); // idempotent by default
  });

  it('stamps records sent without a timestamp with the wall clock of their send', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer();
    const before = Date.now();
    const sends = Array.from({ length: 300 }, (_, i) => p.send({ topic: 't', value: `v${i}` }));
    const after = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = p.send({ topic: 't', value: 'later' });
    const mds = await Promise.all(sends);
    for (const md of mds) expect(md.timestamp >= before && md.timestamp <= after).toBe(true);
    expect((await later).timestamp).toBeGreaterThanOrEqual(after + 4);
  });

  it('keeps per-partition order for many records and flush() waits for all of them', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 3);
    const p = producer({ 'batch.size': 512 });
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 3000; i++) sends.push(p.send({ topic: 't', partition: i % 3, value: String(i) }));
    await p.flush();
    await Promise.all(sends);
    for (let part = 0; part < 3; part++) {
      const values = cluster.records('t', part).map((r) => Number(r.value));
      expect(values).toEqual(Array.from({ length: 1000 }, (_, i) => i * 3 + part));
    }
  });

  it('send(record, callback) calls back once per record with its metadata or error, without a promise', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 2);
    // A partition the metadata does not have is waited for up to max.block.ms (it may just have
    // been added), then fails.
    const p = producer({ 'batch.size': 256, 'max.block.ms': 200 });
    const seen: { error: Error | null; partition: number; offset: number; timestamp: number }[] = [];
    for (let i = 0; i < 200; i++) {
      const ret: unknown = p.send({ topic: 't', partition: i % 2, value: String(i), timestamp: 1_700_000_000_000 + i }, (error, md) => {
        seen[i] = { error, partition: md?.partition ?? -1, offset: md?.offset ?? -1, timestamp: md?.timestamp ?? -1 };
      });
      expect(ret).toBeUndefined();
    }
    let failure: Error | null = null;
    let calls = 0;
    p.send({ topic: 't', partition: 7, value: 'x' }, (error, md) => {
      calls++;
      failure = error;
      expect(md).toBeUndefined();
    });
    await p.flush();
    expect(calls).toBe(1);
    expect(failure).toBeInstanceOf(StrandError);
    expect((failure as unknown as StrandError).errorName).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(seen).toHaveLength(200);
    seen.forEach((s, i) => expect(s).toEqual({ error: null, partition: i % 2, offset: Math.floor(i / 2), timestamp: 1_700_000_000_000 + i }));
    for (let part = 0; part < 2; part++) expect(cluster.records('t', part).map((r) => Number(r.value))).toEqual(Array.from({ length: 100 }, (_, i) => i * 2 + part));
  });

  it('connect() waits for a broker that has not loaded the metadata yet (LEADER_NOT_AVAILABLE), and fails fast when nothing answers', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    cluster.callFailures.set('metadata', { code: ErrorCode.LEADER_NOT_AVAILABLE, count: 3 });
    const p = producer();
    await p.connect();
    expect(cluster.callFailures.get('metadata')?.count).toBe(0);
    await expect(p.send({ topic: 't', value: 'after start-up' })).resolves.toMatchObject({ partition: 0, offset: 0 });
    const unreachable = new Producer({ 'bootstrap.servers': '127.0.0.1:1', 'max.block.ms': 60_000 });
    producers.push(unreachable);
    const t0 = performance.now();
    await expect(unreachable.connect()).rejects.toMatchObject({ errorName: 'NETWORK_EXCEPTION' });
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('retries a batch whose response was lost without writing it twice (idempotence)', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    cluster.loseProduceResponses.set('t-0', 2);
    const p = producer({ 'linger.ms': 20 });
    const mds = await Promise.all(Array.from({ length: 10 }, (_, i) => p.send({ topic: 't', value: `v${i}` })));
    expect(mds.map((m) => m.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(mds.map((_, i) => `v${i}`));
    expect(cluster.calls.get('produce')).toBeGreaterThanOrEqual(3);
  });

  it('without idempotence the same lost response duplicates (the contrast that shows the dedup works)', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    cluster.loseProduceResponses.set('t-0', 1);
    const p = producer({ acks: '1', 'linger.ms': 20 });
    expect(p.isIdempotent).toBe(false);
    // Metadata first, so that the five sends append synchronously into one batch. Sent before
    // it, each record waits for the topic on its own and, on a loaded machine, the 20 ms linger
    // could seal the batch before the last ones are placed (seen once in a full `npm test`: 6
    // records, not 10).
    await p.connect();
    await Promise.all(Array.from({ length: 5 }, (_, i) => p.send({ topic: 't', value: `v${i}` })));
    expect(cluster.records('t', 0).length).toBe(10);
  });

  it('retries batches pipelined behind a failed first batch (UNKNOWN_PRODUCER_ID echo) in order', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    // The first request fails retriably; the batches sent behind it reach a broker that has no
    // state for the producer yet and answer UNKNOWN_PRODUCER_ID.
    cluster.produceErrors.set('t-0', [ErrorCode.NOT_ENOUGH_REPLICAS]);
    const p = producer({ 'linger.ms': 0, 'batch.size': 200, 'batch.size.max': 200 });
    const sends = Array.from({ length: 200 }, (_, i) => p.send({ topic: 't', value: `value-${i}`.padEnd(40, '.') }));
    const mds = await Promise.all(sends);
    expect(mds.map((m) => m.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(cluster.records('t', 0).map((r) => r.value?.slice(0, 10))).toEqual(Array.from({ length: 200 }, (_, i) => `value-${i}`.padEnd(40, '.').slice(0, 10)));
  });

  it('follows a leader move: NOT_LEADER_OR_FOLLOWER with a leader hint, then metadata refresh', async () => {
    cluster = await MemoryCluster.start({ brokers: 3 });
    cluster.createTopic('t', 1, 3);
    const p = producer();
    expect((await p.send({ topic: 't', value: 'a' })).offset).toBe(0);
    const before = cluster.partition('t', 0).leaderId;
    const other = before === 1 ? 2 : 1;
    cluster.moveLeader('t', 0, other);
    expect((await p.send({ topic: 't', value: 'b' })).offset).toBe(1);
    expect(p.cluster.leaderOf('t', 0)).toBe(other);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a', 'b']);
  });

  it('without idempotence and max.in.flight.requests.per.connection=1, a partition has one batch in flight even across a leader move, so a retry is not overtaken', async () => {
    cluster = await MemoryCluster.start({ brokers: 2 });
    cluster.createTopic('t', 1, 2);
    const p = producer({ acks: '1', 'max.in.flight.requests.per.connection': 1, 'linger.ms': 0 });
    expect(p.isIdempotent).toBe(false);
    expect((await p.send({ topic: 't', value: 'a' })).offset).toBe(0);
    const old = cluster.partition('t', 0).leaderId;
    cluster.moveLeader('t', 0, old === 1 ? 2 : 1);
    // b reaches the old leader; its NOT_LEADER_OR_FOLLOWER answer is held back.
    let release = (): void => undefined;
    cluster.produceStreamDelays.push(new Promise<void>((resolve) => (release = resolve)));
    const b = p.send({ topic: 't', value: 'b' });
    await cluster.waitForCalls('produce', 2);
    // Meanwhile the producer learns the new leader (a periodic or another partition's refresh),
    // and c is sent. Java mutes the partition while b is in flight (guaranteeMessageOrder).
    await p.cluster.refresh();
    const c = p.send({ topic: 't', value: 'c' });
    void p.flush(); // c is due at once (not held to fill up behind b)
    // With the defect c goes out to the new leader at once; give it the chance, then answer b.
    await Promise.race([cluster.waitForCalls('produce', 3), new Promise((resolve) => setTimeout(resolve, 300))]);
    release();
    expect((await b).offset).toBe(1);
    expect((await c).offset).toBe(2);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a', 'b', 'c']);
  });

  it('refreshes metadata when the leader dies without telling anyone (connection errors only)', async () => {
    cluster = await MemoryCluster.start({ brokers: 2 });
    cluster.createTopic('t', 1, 2);
    const p = producer({ 'request.timeout.ms': 2000, 'delivery.timeout.ms': 20_000 });
    expect((await p.send({ topic: 't', value: 'a' })).offset).toBe(0);
    const dead = cluster.partition('t', 0).leaderId;
    cluster.killNode(dead);
    cluster.moveLeader('t', 0, dead === 1 ? 2 : 1);
    expect((await p.send({ topic: 't', value: 'b' })).offset).toBe(1);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a', 'b']);
  });

  it('retries retriable partition errors and fails fast on fatal ones', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 2);
    cluster.produceErrors.set('t-0', [ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.REQUEST_TIMED_OUT]);
    cluster.produceErrors.set('t-1', [ErrorCode.INVALID_RECORD]);
    const p = producer();
    expect((await p.send({ topic: 't', partition: 0, value: 'x' })).offset).toBe(0);
    const err = await p.send({ topic: 't', partition: 1, value: 'y' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrandError);
    expect((err as StrandError).errorName).toBe('INVALID_RECORD');
    // The epoch bump after the fatal failure keeps the partition usable.
    expect((await p.send({ topic: 't', partition: 1, value: 'z' })).offset).toBe(0);
  });

  it('an epoch bump renumbers only the partition that failed: a batch of another partition whose answer was lost keeps its identity and is not written twice', async () => {
    cluster = await MemoryCluster.start({ brokers: 2 });
    cluster.createTopic('t', 2); // partition 0 led by broker 1, partition 1 by broker 2
    cluster.loseProduceResponses.set('t-0', 1); // written, answer lost: retried after the backoff
    cluster.produceErrors.set('t-1', [ErrorCode.INVALID_RECORD]); // fails for good: the epoch is bumped
    const p = producer({ 'retry.backoff.ms': 300, 'retry.backoff.max.ms': 300 });
    await p.connect();
    const [a, b] = await Promise.allSettled([p.send({ topic: 't', partition: 0, value: 'a' }), p.send({ topic: 't', partition: 1, value: 'b' })]);
    expect(b.status).toBe('rejected');
    expect(a.status === 'fulfilled' ? a.value.offset : a.reason).toBe(0);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a']);
    // New records of partition 0 move to the new epoch, numbered from 0 again.
    expect((await p.send({ topic: 't', partition: 0, value: 'c' })).offset).toBe(1);
    expect((await p.send({ topic: 't', partition: 1, value: 'd' })).offset).toBe(0);
    const p0 = cluster.records('t', 0);
    expect(p0.map((r) => [r.value, r.baseSequence])).toEqual([['a', 0], ['c', 0]]);
  });

  it('an epoch bump does not renumber a batch that may already be written: behind a batch expired with an unknown outcome, it is resent under its old identity and not duplicated', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    // Monotonic time the test can move forward, so batch A is past delivery.timeout.ms when its
    // request fails without sleeping that long.
    const realNow = performance.now.bind(performance);
    let skewMs = 0;
    const clock = jest.spyOn(performance, 'now').mockImplementation(() => realNow() + skewMs);
    try {
      const p = producer({ 'linger.ms': 0, 'request.timeout.ms': 4_000, 'delivery.timeout.ms': 5_000 });
      await p.connect();
      // A is written but its answer is held; B, sent behind it, is written and its answer lost,
      // which breaks the stream: both requests fail with NETWORK_EXCEPTION, outcome unknown.
      cluster.produceStreamDelays.push(new Promise<void>(() => undefined));
      const a = p.send({ topic: 't', value: 'a' });
      await cluster.waitForCalls('produce', 1);
      skewMs += 3_000; // A is 3 s older than B
      cluster.loseProduceResponses.set('t-0', 1);
      const b = p.send({ topic: 't', value: 'b' });
      void p.flush(); // B goes out while A is in flight
      await cluster.waitForCalls('produce', 2);
      // Before the producer hears of the broken stream, A is past delivery.timeout.ms and B not:
      // A fails for good, B is retried.
      skewMs += 3_000;
      await expect(a).rejects.toMatchObject({ errorName: 'NETWORK_EXCEPTION' });
      expect((await b).offset).toBe(1);
      expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a', 'b']);
      // The partition then moves on under the new epoch.
      expect((await p.send({ topic: 't', value: 'c' })).offset).toBe(2);
      expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a', 'b', 'c']);
    } finally {
      clock.mockRestore();
    }
  });

  it('a batch whose answer was once lost stays possibly written after a later definite retriable error, so an epoch bump does not renumber it and write it twice', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ 'linger.ms': 0, 'retry.backoff.ms': 100, 'retry.backoff.max.ms': 100 });
    await p.connect();
    // Attempt 1 of a: written, its answer lost (the stream breaks): a may be written.
    cluster.loseProduceResponses.set('t-0', 1);
    const a = p.send({ topic: 't', value: 'a' });
    await cluster.waitForCalls('produce', 1);
    // Attempt 2 of a is answered NOT_ENOUGH_REPLICAS (checked before the duplicate is seen, as
    // Kafka's leader does), held back until c, pipelined behind it, has failed for good
    // (INVALID_RECORD), which asks for an epoch bump that renumbers the partition's waiting batches.
    cluster.produceErrors.set('t-0', [ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.INVALID_RECORD]);
    let release = (): void => undefined;
    cluster.produceStreamDelays.push(new Promise<void>((resolve) => (release = resolve)));
    await cluster.waitForCalls('produce', 2);
    const c = p.send({ topic: 't', value: 'c' });
    void p.flush();
    await expect(c).rejects.toMatchObject({ errorName: 'INVALID_RECORD' });
    release();
    // a's answer said nothing about attempt 1: resent under its old identity, it is deduplicated.
    expect((await a).offset).toBe(0);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a']);
    expect((await p.send({ topic: 't', value: 'd' })).offset).toBe(1);
  });

  it('a first-in-line sequence error (the broker lost the producer state) bumps the epoch and retries instead of failing', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer();
    expect((await p.send({ topic: 't', value: 'a' })).offset).toBe(0);
    // As after retention removed the producer's batches or its state was evicted: the next batch
    // (sequence 1) meets a broker with no state for it and is answered UNKNOWN_PRODUCER_ID.
    cluster.partition('t', 0).producers.clear();
    expect((await p.send({ topic: 't', value: 'b' })).offset).toBe(1);
    // A real gap: OUT_OF_ORDER_SEQUENCE_NUMBER for the batch first in line.
    const entry = [...cluster.partition('t', 0).producers.values()][0] as { recent: [number, number, number][] };
    (entry.recent[entry.recent.length - 1] as [number, number, number])[1] += 3;
    expect((await p.send({ topic: 't', value: 'c' })).offset).toBe(2);
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(['a', 'b', 'c']);
  });

  /** A producer with 2 s request and delivery timeouts on a one-partition topic t; `holdNextAnswer()` holds the next produce answer until its release is called. */
  async function expiringProducer(): Promise<{ p: Producer; holdNextAnswer: () => () => void }> {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ 'linger.ms': 0, 'request.timeout.ms': 2_000, 'delivery.timeout.ms': 2_000 });
    await p.connect();
    const holdNextAnswer = (): (() => void) => {
      let release = (): void => undefined;
      cluster.produceStreamDelays.push(new Promise<void>((resolve) => (release = resolve)));
      return () => release();
    };
    return { p, holdNextAnswer };
  }

  it('fails an in-flight batch at delivery.timeout.ms, not request.timeout.ms later; its late success completes nothing and resolves its sequence without an epoch bump', async () => {
    const { p, holdNextAnswer } = await expiringProducer();
    // A is written, its answer held past its delivery deadline.
    const release = holdNextAnswer();
    const outcomes: (Error | null)[] = [];
    const t0 = performance.now();
    const error = await new Promise<Error | null>((resolve) =>
      p.send({ topic: 't', value: 'a' }, (e) => {
        outcomes.push(e);
        resolve(e);
      }),
    );
    const elapsed = performance.now() - t0;
    expect(error).toBeInstanceOf(StrandError);
    expect((error as StrandError).errorName).toBe('REQUEST_TIMED_OUT');
    expect((error as StrandError).message).toMatch(/Expiring 1 record\(s\) for t-0: \d+ ms has passed since batch creation/);
    expect(elapsed).toBeGreaterThanOrEqual(1_990);
    // Not at delivery.timeout.ms + request.timeout.ms (the request's own deadline is 5 s later still).
    expect(elapsed).toBeLessThan(4_000);
    // B waits for A's answer; A's success shows its sequence used, so B continues it, same epoch.
    const b = p.send({ topic: 't', value: 'b' });
    release();
    expect((await b).offset).toBe(1);
    expect(outcomes).toEqual([error]); // the late success called nobody back
    const stored = cluster.records('t', 0);
    expect(stored.map((r) => [r.value, r.baseSequence, r.producerEpoch])).toEqual([
      ['a', 0, stored[0]?.producerEpoch],
      ['b', 1, stored[0]?.producerEpoch],
    ]);
    expect(cluster.calls.get('produce')).toBe(2);
  });

  it('after an in-flight batch expires unwritten, the partition bumps its epoch once the late answer is in: the next batch goes out once, from sequence 0, without OUT_OF_ORDER_SEQUENCE_NUMBER or duplicates', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ 'linger.ms': 0, 'request.timeout.ms': 2_000, 'delivery.timeout.ms': 2_000 });
    expect((await p.send({ topic: 't', value: 'z' })).offset).toBe(0);
    // A (sequence 1) is refused, not written, and that answer is held past its delivery deadline.
    cluster.produceErrors.set('t-0', [ErrorCode.NOT_ENOUGH_REPLICAS]);
    let release = (): void => undefined;
    cluster.produceStreamDelays.push(new Promise<void>((resolve) => (release = resolve)));
    const t0 = performance.now();
    const a = p.send({ topic: 't', value: 'a' }).catch((e: unknown) => e);
    await expect(a).resolves.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    expect(performance.now() - t0).toBeLessThan(4_000);
    // B is held back while A's fate is unknown, even by flush() (numbered 2 it would meet the gap
    // at 1), then goes out once under the bumped epoch, numbered from 0.
    const b = p.send({ topic: 't', value: 'b' });
    const flushed = p.flush();
    await new Promise<void>((resolve) => setImmediate(resolve)); // the drain flush() asked for
    release();
    await flushed;
    expect((await b).offset).toBe(1);
    const stored = cluster.records('t', 0);
    expect(stored.map((r) => [r.value, r.baseSequence, r.producerEpoch])).toEqual([
      ['z', 0, stored[0]?.producerEpoch],
      ['b', 0, (stored[0]?.producerEpoch ?? 0) + 1],
    ]);
    expect(cluster.calls.get('produce')).toBe(3); // z, A, B: no OUT_OF_ORDER_SEQUENCE_NUMBER round
    expect((await p.send({ topic: 't', value: 'c' })).offset).toBe(2);
  });

  it('a batch held back behind an expired in-flight batch still fails at its own delivery deadline, not when that request ends', async () => {
    const { p, holdNextAnswer } = await expiringProducer();
    const release = holdNextAnswer();
    await expect(p.send({ topic: 't', value: 'a' })).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    // A's request is outstanding until its own deadline (request.timeout.ms + 5 s after it was
    // sent); B, created now, waits behind A's unresolved sequence and expires 2 s from now.
    const t0 = performance.now();
    const b = await p.send({ topic: 't', value: 'b' }).catch((e: unknown) => e);
    expect(b).toBeInstanceOf(StrandError);
    expect((b as StrandError).errorName).toBe('REQUEST_TIMED_OUT');
    expect((b as StrandError).message).toMatch(/Expiring 1 record\(s\) for t-0: \d+ ms has passed since batch creation/);
    expect(performance.now() - t0).toBeLessThan(3_500);
    // A's late success resolves its sequence; B never had one. C continues under the same epoch.
    release();
    expect((await p.send({ topic: 't', value: 'c' })).offset).toBe(1);
    expect(cluster.records('t', 0).map((r) => [r.value, r.baseSequence])).toEqual([
      ['a', 0],
      ['c', 1],
    ]);
  });

  it('records sent while their topic is not in the metadata yet keep their send order once it appears', async () => {
    cluster = await MemoryCluster.start();
    const p = producer({ 'retry.backoff.ms': 10, 'retry.backoff.max.ms': 40 });
    // Each record waited for the topic on its own, refreshing with its own jittered backoff, and
    // was appended when its own wait saw the topic: in whatever order the waits ended.
    const sends = Array.from({ length: 40 }, (_, i) => p.send({ topic: 'late', partition: 0, value: `${i}` }));
    await cluster.waitForCalls('metadata', 4);
    cluster.createTopic('late', 1);
    const mds = await Promise.all(sends);
    expect(mds.map((m) => m.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(cluster.records('late', 0).map((r) => Number(r.value))).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('keeps the process alive while a record waits for its partition to get a leader (a child process running the built client)', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    cluster.partition('t', 0).leaderId = -1; // an election in progress
    // Between metadata refreshes the producer waited on an unref'd timer only: Node exited with
    // the send() unsettled and the record gone.
    const script = `const { Producer } = require(${JSON.stringify(path.resolve(__dirname, '../../dist'))});
const p = new Producer({ 'bootstrap.servers': process.argv[1], 'retry.backoff.ms': 50, 'retry.backoff.max.ms': 50 });
process.on('exit', () => console.log('exit'));
p.send({ topic: 't', value: 'x' }).then((md) => { console.log('ok', md.offset); return p.close(); }, (e) => { console.log('failed', e.errorName); return p.close(); });`;
    const child = spawn(process.execPath, ['-e', script, cluster.bootstrap], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    try {
      // The leader is elected once the producer has refreshed a few times (or its process is gone).
      await Promise.race([cluster.waitForCalls('metadata', 4), closed]);
      cluster.partition('t', 0).leaderId = 1;
      await closed;
    } finally {
      clearTimeout(killer);
    }
    expect(out.trim().split('\n')).toEqual(['ok 0', 'exit']);
  });

  it('fails a record for an unknown topic after max.block.ms', async () => {
    cluster = await MemoryCluster.start();
    const p = producer({ 'max.block.ms': 100 });
    await expect(p.send({ topic: 'nope', value: 'x' })).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });

  it('fails a record at once, with the typed error, for a topic the broker answers with INVALID_TOPIC_EXCEPTION or TOPIC_AUTHORIZATION_FAILED', async () => {
    cluster = await MemoryCluster.start();
    cluster.metadataTopicErrors.set('bad name!', ErrorCode.INVALID_TOPIC_EXCEPTION);
    cluster.metadataTopicErrors.set('denied', ErrorCode.TOPIC_AUTHORIZATION_FAILED);
    // max.block.ms far beyond the test's own timeout: only failing fast lets the test pass.
    const p = producer({ 'max.block.ms': 600_000 });
    await expect(p.send({ topic: 'bad name!', value: 'x' })).rejects.toMatchObject({ errorName: 'INVALID_TOPIC_EXCEPTION' });
    await expect(p.send({ topic: 'denied', value: 'x' })).rejects.toMatchObject({ errorName: 'TOPIC_AUTHORIZATION_FAILED' });
  });

  it('fails a record after max.block.ms even when the metadata request itself hangs (a broker that accepts connections and never answers)', async () => {
    cluster = await MemoryCluster.start();
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    try {
      const p = producer({ 'bootstrap.servers': `127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 'max.block.ms': 300, 'request.timeout.ms': 10_000 });
      const t0 = performance.now();
      // The wait only checked its deadline between refreshes, each bounded by request.timeout.ms.
      await expect(p.send({ topic: 't', value: 'x' })).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' });
      expect(performance.now() - t0).toBeLessThan(3_000);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('a send to a partition beyond the cached metadata refreshes it (partitions just added), and fails after max.block.ms if it never appears', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 2);
    const p = producer({ 'max.block.ms': 300 });
    await p.connect();
    const admin = new Admin({ 'bootstrap.servers': cluster.bootstrap });
    try {
      await admin.createPartitions('t', 4);
    } finally {
      await admin.close();
    }
    expect(await p.send({ topic: 't', partition: 3, value: 'x' })).toMatchObject({ partition: 3, offset: 0 });
    await expect(p.send({ topic: 't', partition: 9, value: 'y' })).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });

  it('acks=0 resolves with offset -1', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ acks: '0' });
    expect((await p.send({ topic: 't', value: 'x' })).offset).toBe(-1);
  });

  it('applies buffer.memory back-pressure without losing or reordering records', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ 'buffer.memory': 4096, 'batch.size': 1024, 'batch.size.max': 1024 });
    const sends = Array.from({ length: 300 }, (_, i) => p.send({ topic: 't', value: `${i}`.padStart(100, '0') }));
    await Promise.all(sends);
    expect(cluster.records('t', 0).map((r) => Number(r.value))).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('refuses at once, with MESSAGE_TOO_LARGE, a record whose batch would exceed max.request.size or buffer.memory (the batch header counts, as in Java)', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    // Java's ensureValidRecordSize compares the record's size in a batch of its own (header
    // included) with both limits. Counting the record alone, one just under buffer.memory waited
    // max.block.ms for a batch larger than the whole buffer, and one just under max.request.size
    // went out in a request above it.
    const tight = producer({ 'buffer.memory': 1000, 'max.block.ms': 5_000 });
    const t0 = performance.now();
    await expect(tight.send({ topic: 't', value: 'x'.repeat(950) })).rejects.toMatchObject({ errorName: 'MESSAGE_TOO_LARGE' });
    expect(performance.now() - t0).toBeLessThan(1_000);
    const small = producer({ 'max.request.size': 1000 });
    await expect(small.send({ topic: 't', value: 'x'.repeat(950) })).rejects.toMatchObject({ errorName: 'MESSAGE_TOO_LARGE' });
    expect(cluster.records('t', 0)).toHaveLength(0);
    await expect(small.send({ topic: 't', value: 'x'.repeat(900) })).resolves.toMatchObject({ offset: 0 });
  });

  it('never builds a batch or a request above max.request.size, even with batch.size and batch.size.max above it', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 3);
    const limit = 4096;
    // batch.size above the limit: each new batch reserved batch.size and filled to it, so one
    // batch (alone in its request) was four times max.request.size.
    const big = producer({ 'max.request.size': limit, 'batch.size': 16_384, 'linger.ms': 20 });
    await big.sendBatch(Array.from({ length: 150 }, (_, i) => ({ topic: 't', partition: i % 3, value: `${i}`.padStart(200, '0') })));
    // batch.size below it but batch.size.max above: a backlog (the first round, drained with
    // batches waiting behind each one) grows the partitions' batch size toward batch.size.max,
    // which the second round's batches were then built at.
    const growing = producer({ 'max.request.size': limit, 'batch.size': 1024, 'batch.size.max': 65_536, 'linger.ms': 0 });
    for (let round = 0; round < 2; round++) {
      await growing.sendBatch(Array.from({ length: 300 }, (_, i) => ({ topic: 't', partition: i % 3, value: `${150 + round * 300 + i}`.padStart(200, '0') })));
    }
    const batches = [0, 1, 2].flatMap((p) => cluster.partition('t', p).batches.map((b) => b.bytes.length));
    expect(batches.length).toBeGreaterThan(0);
    expect(Math.max(...batches)).toBeLessThanOrEqual(limit);
    // Batches of several partitions share a request only while the request stays within the limit.
    const requests = cluster.produceRequestSizes.map((sizes) => sizes.reduce((a, b) => a + b, 0));
    expect(Math.max(...requests)).toBeLessThanOrEqual(limit);
    expect(cluster.produceRequestSizes.some((sizes) => sizes.length > 1)).toBe(true);
    for (const p of [0, 1, 2]) expect(cluster.records('t', p).map((r) => Number(r.value))).toEqual(Array.from({ length: 250 }, (_, i) => i * 3 + p));
  });

  it('a batch.size above buffer.memory does not make every send wait max.block.ms for memory', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    // A new batch reserved batch.size bytes, more than the whole buffer: with nothing buffered
    // nothing would ever free memory, and each send failed after max.block.ms. (The same came
    // from batches grown toward batch.size.max under load; see accumulator.test.ts.)
    const p = producer({ 'buffer.memory': 4096, 'batch.size': 16_384, 'max.block.ms': 1000 });
    await expect(p.send({ topic: 't', value: 'x' })).resolves.toMatchObject({ offset: 0 });
  });

  it('flush() completes under sustained back-pressure: it waits for the records sent before it, not for the sender to pause', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ 'buffer.memory': 4096, 'batch.size': 1024, 'batch.size.max': 1024 });
    let pumping = true;
    let sent = 0;
    const pump = (): void => {
      if (!pumping) return;
      const i = sent++;
      p.send({ topic: 't', value: `${i}`.padStart(100, '0') }, () => pump());
    };
    for (let i = 0; i < 100; i++) pump(); // 100 outstanding at all times: memory stays full
    await new Promise((r) => setTimeout(r, 50));
    const before = sent;
    let deadline: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([p.flush().then(() => true), new Promise<boolean>((r) => (deadline = setTimeout(() => r(false), 10_000)))]);
    clearTimeout(deadline);
    pumping = false;
    expect(flushed).toBe(true);
    await p.flush();
    const values = cluster.records('t', 0).map((r) => Number(r.value));
    expect(values.slice(0, before)).toEqual(Array.from({ length: before }, (_, i) => i));
  });

  it('splits a batch refused with MESSAGE_TOO_LARGE and delivers every record in order, idempotence kept', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1, 1, { 'max.message.bytes': '3000' });
    const p = producer({ 'linger.ms': 50, 'batch.size': 64 * 1024 });
    await p.connect();
    // ~100 records of 200 bytes in one 20 KB batch: refused whole, fine once split small enough.
    const mds = await p.sendBatch(Array.from({ length: 100 }, (_, i) => ({ topic: 't', value: `${i}`.padStart(200, '0') })));
    expect(mds.map((m) => m.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const stored = cluster.records('t', 0);
    expect(stored.map((r) => Number(r.value))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // The pieces kept the big batch's sequence range: one producer, and each stored batch's base
    // sequence is the offset of its first record (contiguous from 0).
    expect(new Set(stored.map((r) => r.producerId)).size).toBe(1);
    const batchStarts = cluster.partition('t', 0).batches.map((b) => b.baseOffset);
    expect(batchStarts.length).toBeGreaterThan(1);
    for (const start of batchStarts) expect(stored[start]?.baseSequence).toBe(start);
    // A single record above the limit still fails (nothing to split).
    await expect(p.send({ topic: 't', value: 'x'.repeat(4000) })).rejects.toMatchObject({ errorName: 'MESSAGE_TOO_LARGE' });
    expect((await p.send({ topic: 't', value: 'after' })).offset).toBe(100);
  });

  it('sticks null-key records to one partition per batch and honours a custom partitioner', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 4);
    const p = producer({ 'linger.ms': 50 });
    const mds = await Promise.all(Array.from({ length: 20 }, () => p.send({ topic: 't', value: 'small' })));
    expect(new Set(mds.map((m) => m.partition)).size).toBe(1);
    const q = producer({}, { partitioner: ({ partitionCount }) => partitionCount - 1 });
    expect((await q.send({ topic: 't', key: 'k', value: 'v' })).partition).toBe(3);
  });

  it('sends gzip batches that the broker stores as sent', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer({ 'compression.type': 'gzip' });
    await p.sendBatch(Array.from({ length: 50 }, (_, i) => ({ topic: 't', value: `gz-${i}` })));
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(Array.from({ length: 50 }, (_, i) => `gz-${i}`));
  });

  it('validates its config with clear errors', () => {
    cluster = undefined as unknown as MemoryCluster;
    expect(() => new Producer({ acks: '2' })).toThrow(/Invalid value 2 for configuration acks/);
    expect(() => new Producer({ 'enable.idempotence': true, acks: '1' })).toThrow(/enable.idempotence=true needs acks=all/);
    // Kafka's checks: idempotence needs retries; delivery.timeout.ms covers linger + one request.
    expect(() => new Producer({ 'enable.idempotence': true, retries: 0 })).toThrow(/enable.idempotence=true needs retries > 0/);
    expect(() => new Producer({ 'delivery.timeout.ms': 1000, 'request.timeout.ms': 1000, 'linger.ms': 5 })).toThrow(/delivery.timeout.ms \(1000\) should be equal to or larger than linger.ms \+ request.timeout.ms \(1005\)/);
    expect(() => new Producer({ 'linger.ms': -1 })).toThrow(/linger.ms: Value must be at least 0/);
    expect(() => new Producer({ 'bootstrap.servers': 'nohost' })).toThrow(/not host:port/);
    expect(() => new Producer({ 'no.such.key': 1 })).toThrow(/Unknown configuration no.such.key/);
    cluster = { stop: async () => undefined } as unknown as MemoryCluster;
  });

  it('rejects sends after close()', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer();
    await p.send({ topic: 't', value: 'x' });
    await p.close();
    await expect(p.send({ topic: 't', value: 'y' })).rejects.toMatchObject({ errorName: 'NETWORK_EXCEPTION' });
  });

  it('a record whose topic metadata arrives after close() fails instead of waiting for ever', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const p = producer();
    const info = await p.cluster.topic('t', performance.now() + 5_000);
    p.cluster.topics.delete('t');
    // The metadata lookup the record waits for answers only once the producer has closed.
    let answer = (): void => undefined;
    jest.spyOn(p.cluster, 'topic').mockImplementation(() => new Promise((resolve) => (answer = () => resolve(info))));
    let result: Error | null | undefined;
    p.send({ topic: 't', value: 'x' }, (error) => (result = error));
    await p.close({ timeoutMs: 0 });
    answer();
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(result).toMatchObject({ errorName: 'NETWORK_EXCEPTION' });
  });
});

describe('Producer over ProduceStream', () => {
  it('sends every request of a broker on one stream and matches answers that come back out of order', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 2);
    // The first request's answer is held until the second one's has been received.
    let release = (): void => undefined;
    cluster.produceStreamDelays.push(new Promise<void>((resolve) => (release = resolve)));
    const p = producer({ 'linger.ms': 0 });
    await p.connect();
    const order: number[] = [];
    const first = p.send({ topic: 't', partition: 0, value: 'a' }).then((md) => (order.push(0), md));
    await cluster.waitForCalls('produce', 1);
    const second = p.send({ topic: 't', partition: 1, value: 'b' }).then((md) => (order.push(1), release(), md));
    const [m0, m1] = await Promise.all([first, second]);
    expect(order).toEqual([1, 0]);
    expect([m0.partition, m0.offset, m1.partition, m1.offset]).toEqual([0, 0, 1, 0]);
    expect(cluster.calls.get('produce')).toBe(2);
    expect(cluster.calls.get('produceStreamOpen')).toBe(1);
  });

  it('falls back to unary Produce when the broker does not implement ProduceStream', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    cluster.produceStreamEnabled = false;
    const p = producer();
    const mds = await Promise.all(Array.from({ length: 20 }, (_, i) => p.send({ topic: 't', value: `v${i}` })));
    expect(mds.map((m) => m.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(cluster.calls.get('produceStreamOpen')).toBeUndefined();
    expect(cluster.records('t', 0).map((r) => r.value)).toEqual(mds.map((_, i) => `v${i}`));
  });

  it('a broken stream fails what was outstanding; the retry goes out on a new stream', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    cluster.callFailures.set('produce', { code: ErrorCode.NETWORK_EXCEPTION, count: 1 });
    const p = producer();
    const mds = await Promise.all(Array.from({ length: 5 }, (_, i) => p.send({ topic: 't', value: `v${i}` })));
    expect(mds.map((m) => m.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(cluster.calls.get('produceStreamOpen')).toBe(2);
  });
});

describe('ProduceStream', () => {
  it('fails a request unanswered by its deadline with REQUEST_TIMED_OUT, then reopens for the next', async () => {
    cluster = await MemoryCluster.start();
    cluster.createTopic('t', 1);
    const [host, port] = cluster.bootstrap.split(':') as [string, string];
    const conn = new BrokerConnection(1, host, Number(port), { maxReceiveBytes: 1 << 20, maxSendBytes: 1 << 20, clientId: '' });
    const stream = new ProduceStream(1);
    const records = encodeRecordBatch({ baseOffset: 0, baseTimestamp: Date.now(), records: [{ value: Buffer.from('x') }] });
    const request = (): ProduceRequest => ({ acks: Acks.ACKS_LEADER, timeoutMs: 1000, topics: [{ name: 't', partitions: [{ partition: 0, records }] }] });
    const signal = new AbortController().signal;
    try {
      cluster.produceStreamDelays.push(2_000);
      const t0 = performance.now();
      await expect(stream.produce(conn, request(), 100, signal)).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
      expect(performance.now() - t0).toBeLessThan(1_500);
      expect(stream.outstandingCount).toBe(0);
      const res = await stream.produce(conn, request(), 5_000, signal);
      expect(res.topics[0]?.partitions[0]).toMatchObject({ errorCode: 0, baseOffset: 1 });
      expect(cluster.calls.get('produceStreamOpen')).toBe(2);
    } finally {
      stream.close();
      conn.close();
    }
  });
});
