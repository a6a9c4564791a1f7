/**
 * The broker's log directory identity, Kafka's `meta.properties`: the cluster id (learnt at the
 * first registration), the node id and `directory.id`, made once for the directory. A wiped or
 * replaced disk has no meta.properties, so it gets a new directory id: the controller, seeing the
 * id change, knows the broker no longer holds what it held.
 *
 * Also the clean-shutdown marker: written by a clean stop, consumed at start.
 *
 * `strand storage format` (Kafka's kafka-storage) may write meta.properties before the first
 * start, with the cluster id the operator chose: the broker then registers with it, and a
 * controller that formats its metadata directory writes it as the new cluster's id.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { readFileIfExists, writeFileAtomic } from '@strand/storage';

export const META_PROPERTIES = 'meta.properties';
const CLEAN_SHUTDOWN_MARKER = '.strand-clean-shutdown';

/** A directory's meta.properties, as far as it sets each key. */
export interface MetaProperties {
  clusterId?: string;
  nodeId?: number;
  directoryId?: string;
}

/** Reads `<dir>/meta.properties`; undefined when the directory has none. */
export function readMetaProperties(dir: string): MetaProperties | undefined {
  const text = readFileIfExists(path.join(dir, META_PROPERTIES));
  if (text === undefined) return undefined;
  const get = (key: string): string | undefined => new RegExp(`^${key.replace('.', '\\.')}=(\\S+)`, 'm').exec(text)?.[1];
  const nodeId = get('node.id');
  const out: MetaProperties = {};
  const clusterId = get('cluster.id');
  const directoryId = get('directory.id');
  if (clusterId !== undefined) out.clusterId = clusterId;
  if (nodeId !== undefined && /^\d+$/.test(nodeId)) out.nodeId = Number(nodeId);
  if (directoryId !== undefined) out.directoryId = directoryId;
  return out;
}

function metaText(clusterId: string, nodeId: number, directoryId: string): string {
  return `version=1\ncluster.id=${clusterId}\nnode.id=${nodeId}\ndirectory.id=${directoryId}\n`;
}

/**
 * Kafka's `kafka-storage format` for one directory: creates it, writes meta.properties (the
 * cluster id, the node id and a new directory id) and the clean-shutdown marker (a formatted
 * directory holds nothing that could have been lost). The caller checks it was not formatted.
 */
export function formatLogDir(dir: string, clusterId: string, nodeId: number): string {
  fs.mkdirSync(dir, { recursive: true });
  const directoryId = randomUUID();
  writeFileAtomic(path.join(dir, META_PROPERTIES), metaText(clusterId, nodeId, directoryId));
  fs.writeFileSync(path.join(dir, CLEAN_SHUTDOWN_MARKER), '');
  return directoryId;
}

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
    const marker = path.join(logDir, CLEAN_SHUTDOWN_MARKER);
    const meta = readMetaProperties(logDir);
    // Kafka refuses a directory of another node (a disk or volume moved to the wrong one): its
    // replicas would be taken for this node's.
    if (meta?.nodeId !== undefined && meta.nodeId !== nodeId) {
      throw new Error(`log directory ${logDir} belongs to node ${meta.nodeId} (its meta.properties says so), not to node.id ${nodeId}`);
    }
    this.previousShutdownClean = fs.existsSync(marker) || meta === undefined;
    fs.rmSync(marker, { force: true });
    this.clusterId = meta?.clusterId ?? '';
    const dirId = meta?.directoryId;
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
    writeFileAtomic(path.join(this.logDir, META_PROPERTIES), metaText(this.clusterId, this.nodeId, this.directoryId));
    this.written = true;
  }
}
