/**
 * Metadata benchmark: `npm run bench:metadata [-- --json] [--partitions 10000,50000] [--topics 1000] [--runs 5] [--dir D]`.
 *
 * A large cluster's metadata image, built in memory: 5 brokers, `--topics` topics sharing each
 * `--partitions` count evenly, replication factor 3 (replicas placed round-robin, the first
 * leading, the ISR full), one topic config each. For each size it times what runs on an event
 * loop in one go (none of these yields):
 * - controller: the Raft snapshot the state machine hands RaftNode every snapshotEveryEntries
 *   applied entries (`snapshotEncode`: image -> MetadataSnapshot bytes) and its restore
 *   (`snapshotRestore`: bytes -> image), in one go as the state machine did until it sliced
 *   them, and as QuorumController's state machine does now, a slice of records per event-loop
 *   turn (`snapshotEncodeSliced`: encodeImageSnapshot, `snapshotRestoreSliced`:
 *   restoreImageSnapshot, each timed whole with its longest stall); one committed PartitionChange batch applied
 *   (`applyOneChange`: decode + image.apply); the snapshot delta a new metadata stream starts
 *   with (`streamSnapshotEncode`: image -> MetadataDelta bytes, what gRPC serializes);
 * - broker: the snapshot delta decoded and turned into an image in one go (`snapshotToImage`),
 *   and as BrokerServer.onMetadata does it, a slice of records per event-loop turn
 *   (`snapshotToImageSliced`: imageFromSnapshot, timed whole with its longest stall); one
 *   PartitionChange delta (`deltaToImage`);
 * - broker, ReplicaManager.applyImage over real logs in a temp directory (broker 1 hosts 3/5 of
 *   the partitions): the first full image (opens every hosted log; yields between opens), the
 *   same image again (a snapshot re-sent after a reconnect, nothing changed), and an image one
 *   PartitionChange later (an ISR shrink of a partition it leads). Each is timed whole
 *   (`totalMs`) with its longest event-loop stall (`maxStallMs`: the largest gap between the
 *   turns of a setImmediate ticker running alongside): what heartbeats, produce and fetch wait.
 * Each open log holds file descriptors: broker 1 hosting 30,000 logs (50,000 partitions) needs a
 * larger `ulimit -n` than 20,000; logs it cannot open stay offline and are retried with every
 * image (`hostedPartitions` < `expectedHostedPartitions`, and a warning in the table).
 * Synchronous figures are the median of `--runs` runs after one warm-up; the broker's
 * re-apply and one-change figures likewise; the first full apply runs once. `--skip-apply`
 * leaves out the applyImage part (no logs, seconds instead of minutes at 50,000 partitions; its
 * figures are null). Prints a table, and with --json one JSON object on the last line:
 * {"10000": {...}, "50000": {...}}.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigResourceType, decodeMetadataDelta, decodeMetadataRecordBatch, decodeMetadataSnapshot, encodeMetadataDelta, encodeMetadataRecordBatch, encodeMetadataSnapshot, metadataDeltaSpans, type MetadataRecord } from '@strand/protocol';
import { MetadataImage, encodeImageSnapshot, restoreImageSnapshot, topicIdToBytes } from '@strand/controller';
import { ReplicaManager } from '../server/replica-manager';
import { imageFromSnapshot } from '../server/snapshot-image';
import { benchHost, clusterRecords, quiet, withStallMeter, type Stalled } from './bench-support';

interface Args {
  json: boolean;
  partitions: number[];
  topics: number;
  runs: number;
  dir: string;
  skipApply: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, partitions: [10_000, 50_000], topics: 1000, runs: 5, dir: os.tmpdir(), skipApply: false };
  const positive = (a: string | undefined, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${a ?? ''} needs a positive integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--partitions') args.partitions = String(argv[++i]).split(',').map((v) => positive(a, v));
    else if (a === '--topics') args.topics = positive(a, argv[++i]);
    else if (a === '--runs') args.runs = positive(a, argv[++i]);
    else if (a === '--dir') args.dir = String(argv[++i]);
    else if (a === '--skip-apply') args.skipApply = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench:metadata -- [--json] [--partitions 10000,50000] [--topics 1000] [--runs 5] [--dir /tmp] [--skip-apply]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a ?? ''}`);
  }
  return args;
}

const BROKERS = 5;
const RF = 3;
/** The broker whose ReplicaManager is measured. */
const ME = 1;

/** The records of a cluster of `partitions` partitions over `topics` topics (see the header). */
function sizeRecords(partitions: number, topics: number): MetadataRecord[] {
  return clusterRecords({
    brokers: BROKERS,
    replicationFactor: RF,
    partitions,
    perTopic: Math.ceil(partitions / topics),
    topicPrefix: 'topic-',
    idBase: 0x10000000,
    idPad: 'a',
    // Page-cache flushing keeps opening thousands of logs about the metadata, not fsyncs.
    afterTopic: (name) => [{ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: name, name: 'flush.policy', value: 'page-cache' } }],
  });
}

/** An ISR shrink of the first partition broker ME leads: [ME, a, b] -> [ME, a]. */
function oneChange(image: MetadataImage): MetadataRecord[] {
  for (const [t, p] of image.allPartitions()) {
    if (p.leader !== ME) continue;
    return [{ partitionChange: { topicId: topicIdToBytes(t.id), partition: p.partition, isr: { values: p.isr.slice(0, p.isr.length - 1) }, replicas: null, addingReplicas: null, removingReplicas: null } }];
  }
  throw new Error('broker 1 leads nothing');
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

/** Median ms of `runs` calls of `f`, after one warm-up call. */
function timeSync(runs: number, f: () => unknown): number {
  f();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** `f` run `runs` times after a warm-up under withStallMeter: the medians of its totals and of its longest stalls. */
async function stalls(runs: number, f: () => Promise<void>): Promise<Stalled> {
  const xs: Stalled[] = [];
  for (let i = 0; i <= runs; i++) {
    const s = await withStallMeter(f);
    if (i > 0) xs.push(s);
  }
  return { totalMs: median(xs.map((x) => x.totalMs)), maxStallMs: median(xs.map((x) => x.maxStallMs)) };
}

interface SizeResult {
  partitions: number;
  topics: number;
  hostedPartitions: number;
  /** What broker 1 should host (3/5 of the partitions); fewer when opens failed, e.g. ulimit -n (EMFILE). */
  expectedHostedPartitions: number;
  snapshotBytes: number;
  controller: { snapshotEncodeMs: number; snapshotRestoreMs: number; snapshotEncodeSliced: Stalled; snapshotRestoreSliced: Stalled; applyOneChangeMs: number; streamSnapshotEncodeMs: number };
  /** The applyImage figures are null with --skip-apply. */
  broker: { snapshotToImageMs: number; snapshotToImageSliced: Stalled; deltaToImageMs: number; applyFirstImage: Stalled | null; applySameImage: Stalled | null; applyOneChange: Stalled | null };
}

async function measure(partitions: number, args: Args): Promise<SizeResult> {
  const topics = Math.min(args.topics, partitions);
  const image = MetadataImage.fromRecords(1000, sizeRecords(partitions, topics));
  // As QuorumController's state machine: snapshot() and restore().
  const snapshot = (): Uint8Array => encodeMetadataSnapshot({ offset: image.offset, records: image.toRecords() });
  const restore = (data: Uint8Array): MetadataImage => {
    const snap = decodeMetadataSnapshot(data);
    return MetadataImage.fromRecords(snap.offset, snap.records);
  };
  const snap = snapshot();
  const restored = restore(snap);
  if (restored.offset !== image.offset || [...restored.allPartitions()].length !== partitions) throw new Error('snapshot round trip lost partitions');
  const changeRecords = oneChange(image);
  const changeBatch = encodeMetadataRecordBatch({ records: changeRecords });
  const streamSnapshot = (): Uint8Array => encodeMetadataDelta({ snapshot: true, offset: image.offset, records: image.toRecords() });
  const deltaBytes = streamSnapshot();
  const changeDelta = encodeMetadataDelta({ snapshot: false, offset: image.offset + 1, records: changeRecords });

  // As QuorumController's state machine does since: a slice of records per turn.
  const slicedEncode = await stalls(args.runs, async () => {
    const bytes = await encodeImageSnapshot(image);
    if (bytes.byteLength !== snap.byteLength) throw new Error('sliced snapshot encode differs');
  });
  const slicedRestore = await stalls(args.runs, async () => {
    await restoreImageSnapshot(snap);
  });
  const controller = {
    snapshotEncodeMs: timeSync(args.runs, snapshot),
    snapshotRestoreMs: timeSync(args.runs, () => restore(snap)),
    snapshotEncodeSliced: slicedEncode,
    snapshotRestoreSliced: slicedRestore,
    applyOneChangeMs: timeSync(args.runs, () => image.apply(image.offset + 1, decodeMetadataRecordBatch(changeBatch).records)),
    streamSnapshotEncodeMs: timeSync(args.runs, streamSnapshot),
  };
  // As BrokerServer.onMetadata, after gRPC decoded the message.
  const snapshotToImageMs = timeSync(args.runs, () => {
    const d = decodeMetadataDelta(deltaBytes);
    return MetadataImage.fromRecords(d.offset, d.records);
  });
  // As BrokerServer.onMetadata does since: a slice of records per event-loop turn.
  const snapshotToImageSliced = await stalls(args.runs, async () => {
    await imageFromSnapshot(metadataDeltaSpans(deltaBytes));
  });
  const deltaToImageMs = timeSync(args.runs, () => {
    const d = decodeMetadataDelta(changeDelta);
    return image.apply(d.offset, d.records);
  });
  const expectedHostedPartitions = [...image.allPartitions()].filter(([, p]) => p.replicas.includes(ME)).length;
  if (args.skipApply) {
    return {
      partitions,
      topics,
      hostedPartitions: 0,
      expectedHostedPartitions,
      snapshotBytes: snap.byteLength,
      controller,
      broker: { snapshotToImageMs, snapshotToImageSliced, deltaToImageMs, applyFirstImage: null, applySameImage: null, applyOneChange: null },
    };
  }

  const dir = fs.mkdtempSync(path.join(args.dir, 'strand-metadata-bench-'));
  try {
    const rm = new ReplicaManager(dir, benchHost(ME), quiet);
    try {
      const applyFirstImage = await withStallMeter(() => rm.applyImage(image));
      const hostedPartitions = rm.all().length;
      const same: Stalled[] = [];
      const changed: Stalled[] = [];
      let current = image;
      for (let i = 0; i <= args.runs; i++) {
        // Alternate so each change is a real one: the ISR shrinks, then grows back.
        const s = await withStallMeter(() => rm.applyImage(current));
        const next = current.apply(current.offset + 1, i % 2 === 0 ? changeRecords : restoreIsr(current, changeRecords));
        const c = await withStallMeter(() => rm.applyImage(next));
        current = next;
        if (i > 0) {
          same.push(s);
          changed.push(c);
        }
      }
      const med = (xs: Stalled[]): Stalled => ({ totalMs: median(xs.map((x) => x.totalMs)), maxStallMs: median(xs.map((x) => x.maxStallMs)) });
      return {
        partitions,
        topics,
        hostedPartitions,
        expectedHostedPartitions,
        snapshotBytes: snap.byteLength,
        controller,
        broker: { snapshotToImageMs, snapshotToImageSliced, deltaToImageMs, applyFirstImage, applySameImage: med(same), applyOneChange: med(changed) },
      };
    } finally {
      await rm.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The change that undoes `change` (the ISR back to the full replica set). */
function restoreIsr(image: MetadataImage, change: MetadataRecord[]): MetadataRecord[] {
  return change.map((r) => {
    const x = r.partitionChange;
    if (!x) return r;
    const p = image.partition(Buffer.from(x.topicId).toString('hex'), x.partition);
    if (p === undefined) throw new Error('partition gone');
    return { partitionChange: { ...x, isr: { values: [...p.replicas] } } };
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const out: Record<string, SizeResult> = {};
  for (const n of args.partitions) {
    const r = await measure(n, args);
    out[String(n)] = r;
    if (!args.json) {
      const f = (x: number): string => x.toFixed(2).padStart(9);
      const s = (x: Stalled | null): string => (x === null ? '        - (--skip-apply)' : `${f(x.totalMs)} ms total, ${f(x.maxStallMs)} ms longest stall`);
      process.stdout.write(
        [
          `${r.partitions} partitions (${r.topics} topics, RF ${RF}, ${BROKERS} brokers; broker ${ME} hosts ${r.hostedPartitions}); snapshot ${(r.snapshotBytes / 1024 / 1024).toFixed(2)} MiB`,
          ...(r.hostedPartitions < r.expectedHostedPartitions && !args.skipApply ? [`  WARNING: only ${r.hostedPartitions} of ${r.expectedHostedPartitions} logs opened (raise ulimit -n): each later image retries the rest`] : []),
          `  controller snapshot encode       ${f(r.controller.snapshotEncodeMs)} ms (in one go)`,
          `  controller snapshot encode, sliced ${s(r.controller.snapshotEncodeSliced)}`,
          `  controller snapshot restore      ${f(r.controller.snapshotRestoreMs)} ms (in one go)`,
          `  controller snapshot restore, sliced ${s(r.controller.snapshotRestoreSliced)}`,
          `  controller apply one change      ${f(r.controller.applyOneChangeMs)} ms`,
          `  controller stream snapshot encode${f(r.controller.streamSnapshotEncodeMs)} ms`,
          `  broker snapshot delta -> image   ${f(r.broker.snapshotToImageMs)} ms (in one go)`,
          `  broker snapshot, sliced          ${s(r.broker.snapshotToImageSliced)}`,
          `  broker one-change delta -> image ${f(r.broker.deltaToImageMs)} ms`,
          `  broker applyImage, first full    ${s(r.broker.applyFirstImage)}`,
          `  broker applyImage, same again    ${s(r.broker.applySameImage)}`,
          `  broker applyImage, one change    ${s(r.broker.applyOneChange)}`,
          '',
        ].join('\n'),
      );
    }
  }
  if (args.json) process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
