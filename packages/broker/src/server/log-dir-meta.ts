/**
 * The broker's log directory identity, Kafka's `meta.properties`: the cluster id (learnt at the
 * first registration), the node id and `directory.id`, made once for the directory. A wiped or
 * replaced disk has no meta.properties, so it gets a new directory id: the controller, seeing the
 * id change, knows the broker no longer holds what it held.
 *
 * Also the clean-shutdown marker: written by a clean stop, consumed at start.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { readFileIfExists, writeFileAtomic } from '@strand/storage';

export const META_PROPERTIES = 'meta.properties';
const CLEAN_SHUTDOWN_MARKER = '.strand-clean-shutdown';

export class LogDirMeta {
  /** '' until the first registration answers with it. */
  clusterId: string;
  readonly directoryId: string;
  /** Whether the previous process stopped cleanly (a new directory counts as clean). */
  readonly previousShutdownClean: boolean;
  private written: boolean;

  /**
   * Reads the directory's identity and consumes the clean-shutdown marker. A directory from
   * before directory.id keeps its logs: its new id is written at once, so that a crash before
   * registration cannot make the next start look like a wiped disk.
   */
  constructor(private readonly logDir: string, private readonly nodeId: number) {
    const metaFile = path.join(logDir, META_PROPERTIES);
    const marker = path.join(logDir, CLEAN_SHUTDOWN_MARKER);
    const meta = readFileIfExists(metaFile);
    this.previousShutdownClean = fs.existsSync(marker) || meta === undefined;
    fs.rmSync(marker, { force: true });
    this.clusterId = /^cluster\.id=(\S+)/m.exec(meta ?? '')?.[1] ?? '';
    const dirId = /^directory\.id=(\S+)/m.exec(meta ?? '')?.[1];
    this.directoryId = dirId ?? randomUUID();
    this.written = dirId !== undefined && this.clusterId !== '';
    if (!this.written && this.clusterId !== '') this.write();
  }

  /** After a registration: records the cluster id (if new) and the directory id. */
  registered(clusterId: string): void {
    if (this.clusterId === '') this.clusterId = clusterId;
    if (!this.written) this.write();
  }

  /** A clean stop: the next start reports previousShutdownClean. */
  markCleanShutdown(): void {
    fs.writeFileSync(path.join(this.logDir, CLEAN_SHUTDOWN_MARKER), '');
  }

  private write(): void {
    writeFileAtomic(path.join(this.logDir, META_PROPERTIES), `version=1\ncluster.id=${this.clusterId}\nnode.id=${this.nodeId}\ndirectory.id=${this.directoryId}\n`);
    this.written = true;
  }
}
