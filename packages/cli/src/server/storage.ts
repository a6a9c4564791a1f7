/**
 * `strand storage` (Kafka's kafka-storage): `random-uuid` prints a new cluster id, `format` writes
 * a node's meta.properties (cluster id, node id, directory id) into its log and metadata
 * directories before the first start, and `info` shows what they hold. Formatting is optional in
 * Strand (an unformatted node starts and learns the cluster id from the controllers), but a
 * formatted one starts only into the cluster it was formatted for: Kafka's deploy scripts
 * (`kafka-storage format -t $(kafka-storage random-uuid) -c server.properties`) work unchanged.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { META_PROPERTIES, formatLogDir, readMetaProperties } from '@strand/broker';
import { StrandError } from '@strand/protocol';
import { resolveServerConfig } from './server-config';

/** Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64 without padding (22 characters). */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // Kafka never hands out an id starting with '-' (it would read as an option).
    if (!id.startsWith('-')) return id;
  }
}

/**
 * A cluster id as kafka-storage format accepts it: Kafka's 22-character base64 form of 16 bytes
 * (not all zero), or a UUID in its usual hex form (what an unformatted Strand cluster picks).
 * Throws INVALID_CONFIG otherwise.
 */
export function checkClusterId(id: string): string {
  const kafka = /^[A-Za-z0-9_-]{22}$/.test(id) && Buffer.from(id, 'base64url').length === 16;
  const hex = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
  if ((!kafka && !hex) || /^[0-]+$/.test(id) || (kafka && Buffer.from(id, 'base64url').every((b) => b === 0))) {
    throw new StrandError('INVALID_CONFIG', `Cluster ID string ${id} does not appear to be a valid UUID (use strand storage random-uuid)`);
  }
  return id;
}

export interface StorageOptions {
  configFile?: string;
  overrides?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** The directories of a node's configuration that format writes: log.dirs and metadata.log.dir, once each. */
function nodeDirectories(opts: StorageOptions): { nodeId: number; dirs: string[] } {
  const cfg = resolveServerConfig({ ...(opts.configFile === undefined ? {} : { file: opts.configFile }), overrides: opts.overrides ?? [], env: opts.env ?? {} });
  const dirs = [...new Set([...cfg.values['log.dirs'].map((d) => path.resolve(d)), cfg.metadataLogDir])];
  return { nodeId: cfg.nodeId, dirs };
}

export interface FormatResult {
  formatted: string[];
  /** Already formatted (for this cluster and node) and left as they were, with --ignore-formatted. */
  skipped: string[];
}

/**
 * Formats every directory of the node, all or nothing: any already formatted stops it (Kafka's
 * "Log directory X is already formatted") unless `ignoreFormatted`, and one formatted for another
 * cluster or node stops it even then (formatting over it would hide the mismatch). A directory
 * that holds data but no meta.properties (started before, unformatted) is refused as well: its
 * cluster id is already decided by the controllers, not by this command.
 */
export function formatStorage(opts: StorageOptions & { clusterId: string; ignoreFormatted: boolean }): FormatResult {
  const clusterId = checkClusterId(opts.clusterId);
  const { nodeId, dirs } = nodeDirectories(opts);
  const todo: string[] = [];
  const skipped: string[] = [];
  for (const dir of dirs) {
    const meta = readMetaProperties(dir);
    if (meta === undefined) {
      // A fresh volume's lost+found is not data.
      const entries = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((e) => e !== 'lost+found');
      if (entries.length > 0) throw new StrandError('INVALID_CONFIG', `${dir} is not empty but has no ${META_PROPERTIES}: a node started there unformatted; it keeps the cluster id its controllers chose and needs no format`);
      todo.push(dir);
      continue;
    }
    if ((meta.clusterId !== undefined && meta.clusterId !== clusterId) || (meta.nodeId !== undefined && meta.nodeId !== nodeId)) {
      throw new StrandError('INCONSISTENT_CLUSTER_ID', `${dir} is already formatted for cluster ${meta.clusterId ?? '?'} and node ${meta.nodeId ?? '?'}, not cluster ${clusterId} and node ${nodeId}`);
    }
    if (!opts.ignoreFormatted) throw new Error(`Log directory ${dir} is already formatted. Use --ignore-formatted to ignore this directory and format the others.`);
    skipped.push(dir);
  }
  for (const dir of todo) formatLogDir(dir, clusterId, nodeId);
  return { formatted: todo, skipped };
}

export interface DirectoryInfo {
  dir: string;
  /** missing: no directory; unformatted: no meta.properties. */
  state: 'formatted' | 'unformatted' | 'missing';
  clusterId?: string;
  nodeId?: number;
  directoryId?: string;
}

/** kafka-storage info: what each of the node's directories holds. */
export function storageInfo(opts: StorageOptions): DirectoryInfo[] {
  return nodeDirectories(opts).dirs.map((dir): DirectoryInfo => {
    if (!fs.existsSync(dir)) return { dir, state: 'missing' };
    const meta = readMetaProperties(dir);
    return meta === undefined ? { dir, state: 'unformatted' } : { dir, state: 'formatted', ...meta };
  });
}
