/**
 * The high watermark checkpoint (`replication-offset-checkpoint`) is replaced as Kafka's
 * CheckpointFile replaces it (`Utils.atomicMoveWithFallback`): temp file synced, renamed over the
 * old one, then the log directory fsynced, so that the rename itself is durable. Checked for the
 * periodic write (off the event loop) and the one at close, by wrapping node:fs (every call
 * passes through to the real one) and recording renames and fsyncs in order.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRecordBatch } from '@strand/protocol';
import { MetadataImage, topicIdToBytes } from '@strand/controller';
import { ReplicaManager } from '../../src/server/replica-manager';
import type { PartitionHost } from '../../src/server/partition';

/** What the wrapped node:fs saw: `rename <to>` and `fsync <path opened>`, in order. */
interface FsRecorder {
  mockEvents: string[];
}

jest.mock('node:fs', () => {
  const real = jest.requireActual<typeof import('node:fs')>('node:fs');
  const events: string[] = [];
  const opened = new Map<number, string>();
  return {
    ...real,
    mockEvents: events,
    openSync: (file: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode | null): number => {
      const fd = real.openSync(file, flags, mode);
      opened.set(fd, String(file));
      return fd;
    },
    fsyncSync: (fd: number): void => {
      events.push(`fsync ${opened.get(fd) ?? fd}`);
      real.fsyncSync(fd);
    },
    renameSync: (from: fs.PathLike, to: fs.PathLike): void => {
      real.renameSync(from, to);
      events.push(`rename ${String(to)}`);
    },
    open: (file: fs.PathLike, flags: fs.OpenMode, cb: (err: NodeJS.ErrnoException | null, fd: number) => void): void => {
      real.open(file, flags, (err, fd) => {
        if (err === null) opened.set(fd, String(file));
        cb(err, fd);
      });
    },
    fsync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
      events.push(`fsync ${opened.get(fd) ?? fd}`);
      real.fsync(fd, cb);
    },
    promises: {
      ...real.promises,
      rename: async (from: fs.PathLike, to: fs.PathLike): Promise<void> => {
        await real.promises.rename(from, to);
        events.push(`rename ${String(to)}`);
      },
    },
  };
});

const events = (fs as unknown as FsRecorder).mockEvents;
const topicId = '0123456789abcdef0123456789abcdef';

test('the checkpoint rename is followed by an fsync of the log directory, periodic and at close', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-hwcp-'));
  try {
    const host: PartitionHost = { brokerId: 1, nowMs: () => performance.now(), sendAlterPartition: () => undefined, replicaLagTimeMaxMs: 30_000, maxPendingProduces: 100 };
    const rm = new ReplicaManager(dir, host, { info: () => undefined, warn: () => undefined });
    await rm.applyImage(MetadataImage.fromRecords(10, [
      { cluster: { clusterId: 'c' } },
      { registerBroker: { brokerId: 1, incarnationId: 'i', brokerEpoch: 1, endpoints: [{ listener: 'BROKER', host: '127.0.0.1', port: 1 }], fenced: false, inControlledShutdown: false, previousShutdownClean: true } },
      { topic: { name: 't', topicId: topicIdToBytes(topicId) } },
      { partition: { topicId: topicIdToBytes(topicId), partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, addingReplicas: [], removingReplicas: [] } },
    ]));
    const p = rm.partitionByName('t', 0);
    expect((await p?.produce(encodeRecordBatch({ records: [{ key: null, value: Buffer.from('v') }], baseTimestamp: 1 }), 1, 5000))?.errorCode).toBe(0);
    const file = path.join(dir, 'replication-offset-checkpoint');
    const afterRename = (): string[] => events.slice(events.lastIndexOf(`rename ${file}`));

    events.length = 0;
    await rm.checkpointHighWatermarksAsync();
    expect(fs.readFileSync(file, 'utf8')).toBe('0\n1\nt 0 1\n');
    expect(afterRename()).toContain(`fsync ${dir}`);

    events.length = 0;
    await rm.close();
    expect(afterRename()).toContain(`fsync ${dir}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
