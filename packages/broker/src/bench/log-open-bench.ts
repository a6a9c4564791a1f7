/**
 * Log-open benchmark: `npm run bench:log-open [-- --json] [--logs 2000,6000] [--batches 1] [--dir D]`.
 *
 * What a broker hosting thousands of partitions spends opening their logs, on the real disk
 * (`--dir`, default the current directory: /tmp may be a tmpfs, where fsyncs cost nothing). For
 * each count N: an image of N partitions (100 per topic, RF 3 over brokers 1-3, the leader
 * rotating, so broker 1 hosts all N and leads a third), then, with ReplicaManager as the broker
 * uses it:
 * - `create`: the first applyImage over an empty log directory (creates every log);
 * - `--batches` small batches appended to each log and flushed, a hundred logs at a time (so the
 *   logs hold data, as real ones do);
 * - `close`: ReplicaManager.close(), a clean shutdown;
 * - `reopen`: a new ReplicaManager and the same image, as a broker restarting after a clean
 *   shutdown opens its logs;
 * - `takeover`: an image in which broker 1 leads every partition in the next leader epoch (the
 *   other two brokers failed), so it becomes leader of the two thirds it followed; then the
 *   logs are abandoned (as a crash would: no fsyncs, to keep the run short) and the directory
 *   deleted.
 * Each step is timed whole (`totalMs`), with its longest event-loop stall (`maxStallMs`: the
 * largest gap between turns of a setImmediate ticker alongside) and the fsync-family calls it
 * made (`fsyncs`: fsync and fdatasync, sync, callback and promise forms, counted by wrapping
 * node:fs), also per log. Runs each count once (fsync-bound: minutes at 6,000 logs on a slow
 * disk) and deletes its directory. `--json`: one JSON object on the last line.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { encodeRecordBatch, type MetadataRecord, type RawConfig } from '@strand/protocol';
import { MetadataImage } from '@strand/controller';
import { ReplicaManager } from '../server/replica-manager';
import { benchHost, clusterRecords, quiet, withStallMeter, type Stalled } from './bench-support';

interface Args {
  json: boolean;
  logs: number[];
  batches: number;
  dir: string;
  config: RawConfig;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, logs: [2000, 6000], batches: 1, dir: process.cwd(), config: {} };
  const count = (a: string | undefined, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${a ?? ''} needs an integer >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--logs') args.logs = String(argv[++i]).split(',').map((v) => count(a, v, 1));
    else if (a === '--batches') args.batches = count(a, argv[++i], 0);
    else if (a === '--dir') args.dir = String(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench:log-open -- [--json] [--logs 2000,6000] [--batches 1] [--dir .]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a ?? ''}`);
  }
  return args;
}

const BROKERS = 3;
const ME = 1;
const PER_TOPIC = 100;

function logsRecords(logs: number): MetadataRecord[] {
  return clusterRecords({ brokers: BROKERS, replicationFactor: BROKERS, partitions: logs, perTopic: PER_TOPIC, topicPrefix: 'open-', idBase: 0x20000000, idPad: 'b' });
}

/** Counts fsync-family calls by wrapping node:fs itself (the built packages call through it). */
class FsyncCounter {
  count = 0;
  constructor() {
    const nodeFs = createRequire(__filename)('node:fs') as typeof fs;
    const mutable = nodeFs as unknown as Record<string, unknown>;
    for (const name of ['fsyncSync', 'fdatasyncSync', 'fsync', 'fdatasync'] as const) {
      const real = nodeFs[name] as (...a: unknown[]) => unknown;
      mutable[name] = (...a: unknown[]): unknown => {
        this.count++;
        return real.apply(nodeFs, a);
      };
    }
    const handle = nodeFs.promises.open(__filename, 'r');
    void handle.then((h) => h.close());
    this.handlePrototype = handle.then((h) => Object.getPrototypeOf(h) as Record<string, unknown>);
  }
  private readonly handlePrototype: Promise<Record<string, unknown>>;

  async install(): Promise<void> {
    const proto = await this.handlePrototype;
    const self = this;
    for (const name of ['sync', 'datasync']) {
      const real = proto[name] as (...a: unknown[]) => unknown;
      proto[name] = function (this: unknown, ...a: unknown[]): unknown {
        self.count++;
        return real.apply(this, a);
      };
    }
  }
}

const counter = new FsyncCounter();

interface Step extends Stalled {
  fsyncs: number;
}

/** Times `f` under withStallMeter and counts its fsyncs. */
async function measureStep(f: () => Promise<void>): Promise<Step> {
  const fsyncs0 = counter.count;
  const s = await withStallMeter(f);
  return { ...s, fsyncs: counter.count - fsyncs0 };
}

interface CountResult {
  logs: number;
  opened: number;
  reopened: number;
  /** Logs the reopen found without a clean-shutdown marker (recovered): 0 expected. */
  recoveredOnReopen: number;
  create: Step;
  closeAfterCreate: Step;
  reopen: Step;
  /** Partitions broker 1 leads after the takeover image. */
  ledAfterTakeover: number;
  takeover: Step;
}

async function measure(logs: number, args: Args): Promise<CountResult> {
  const image = MetadataImage.fromRecords(1000, logsRecords(logs));
  const host = benchHost(ME);
  const dir = fs.mkdtempSync(path.join(args.dir, 'strand-log-open-bench-'));
  try {
    let rm = new ReplicaManager(dir, host, quiet, '', args.config);
    const create = await measureStep(() => rm.applyImage(image));
    const opened = rm.all().length;
    const batch = Buffer.from(encodeRecordBatch({ records: [{ value: Buffer.alloc(100) }], baseTimestamp: Date.now() }));
    // A hundred logs at a time, each flushed: before directory fsyncs were shared and bounded
    // (storage's fsyncDirAsync), thousands of flushes at once ran out of descriptors (EMFILE
    // failed the logs); kept so that figures compare across versions.
    const all = rm.all();
    for (let i = 0; i < all.length; i += 100) {
      const some = all.slice(i, i + 100);
      for (const p of some) for (let b = 0; b < args.batches; b++) p.log.appendAsLeader(Buffer.from(batch), 0);
      await Promise.all(some.map((p) => p.log.flush()));
    }
    const closeAfterCreate = await measureStep(() => rm.close());
    rm = new ReplicaManager(dir, host, quiet, '', args.config);
    const reopen = await measureStep(() => rm.applyImage(image));
    const reopened = rm.all().length;
    const recoveredOnReopen = rm.all().filter((p) => !p.log.openedCleanly).length;
    const takeoverImage = MetadataImage.fromRecords(
      1001,
      logsRecords(logs).map((r): MetadataRecord => {
        const p = r.partition;
        return p === undefined ? r : { partition: { ...p, leader: ME, leaderEpoch: p.leaderEpoch + 1, partitionEpoch: p.partitionEpoch + 1 } };
      }),
    );
    const takeover = await measureStep(() => rm.applyImage(takeoverImage));
    const ledAfterTakeover = rm.all().filter((p) => p.isLeader).length;
    for (const p of rm.all()) p.log.abandon();
    return { logs, opened, reopened, recoveredOnReopen, create, closeAfterCreate, reopen, ledAfterTakeover, takeover };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  await counter.install();
  const out: Record<string, CountResult> = {};
  for (const n of args.logs) {
    const r = await measure(n, args);
    out[String(n)] = r;
    if (!args.json) {
      const f = (x: number): string => x.toFixed(0).padStart(8);
      const s = (x: Step): string => `${f(x.totalMs)} ms total, ${f(x.maxStallMs)} ms longest stall, ${f(x.fsyncs)} fsyncs (${(x.fsyncs / n).toFixed(2)} per log)`;
      process.stdout.write(
        [
          `${n} logs (broker ${ME} leads a third), ${args.batches} batch(es) each, in ${args.dir}`,
          ...(r.opened < n || r.reopened < n ? [`  WARNING: opened ${r.opened}, reopened ${r.reopened} of ${n} (ulimit -n?)`] : []),
          ...(r.recoveredOnReopen > 0 ? [`  WARNING: ${r.recoveredOnReopen} logs were recovered on the clean reopen`] : []),
          `  create (first applyImage)  ${s(r.create)}`,
          `  close                      ${s(r.closeAfterCreate)}`,
          `  reopen (clean shutdown)    ${s(r.reopen)}`,
          `  takeover (leads all ${r.ledAfterTakeover}) ${s(r.takeover)}`,
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
