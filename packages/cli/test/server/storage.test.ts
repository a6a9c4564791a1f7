/**
 * `strand storage` as functions (Kafka's kafka-storage): cluster ids in Kafka's form, format all
 * or nothing over a node's directories (refusing formatted ones unless --ignore-formatted, always
 * refusing another cluster's or node's, and a directory a node already used unformatted), info.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StrandError } from '@strand/protocol';
import { checkClusterId, formatStorage, randomClusterId, storageInfo } from '../../src/server/storage';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-storage-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function node(id: number, extra: string[] = []): { overrides: string[]; env: NodeJS.ProcessEnv } {
  return {
    overrides: [`node.id=${id}`, `controller.quorum.voters=${id}@127.0.0.1:9193`, 'process.roles=controller,broker', 'listeners=BROKER://127.0.0.1:9093,CONTROLLER://127.0.0.1:9193', `log.dirs=${path.join(root, 'logs')}`, `metadata.log.dir=${path.join(root, 'meta')}`, ...extra],
    env: {},
  };
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e: unknown) {
    return e instanceof StrandError ? `${e.errorName}: ${e.message}` : e instanceof Error ? e.message : String(e);
  }
  throw new Error('expected an error');
}

test('cluster ids: Kafka\'s 22-character form, or a UUID; anything else is refused', () => {
  const ids = new Set(Array.from({ length: 200 }, () => randomClusterId()));
  expect(ids.size).toBe(200);
  for (const id of ids) {
    expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(checkClusterId(id)).toBe(id);
  }
  expect(checkClusterId('MkU3OEVBNTcwNTJENDM2Qk')).toBe('MkU3OEVBNTcwNTJENDM2Qk');
  expect(checkClusterId('0b1c7a3e-2f4d-4c5e-9a8b-7c6d5e4f3a2b')).toBe('0b1c7a3e-2f4d-4c5e-9a8b-7c6d5e4f3a2b');
  for (const bad of ['foo', '', 'AAAAAAAAAAAAAAAAAAAAAA', 'MkU3OEVBNTcwNTJENDM2Q!', '00000000-0000-0000-0000-000000000000']) expect(errorOf(() => checkClusterId(bad))).toMatch(/^INVALID_CONFIG: Cluster ID string .* does not appear to be a valid UUID/);
});

test('format writes every directory of the node once, then refuses or skips them, and refuses another cluster\'s or node\'s', () => {
  const id = randomClusterId();
  const r = formatStorage({ ...node(1), clusterId: id, ignoreFormatted: false });
  expect(r).toEqual({ formatted: [path.join(root, 'logs'), path.join(root, 'meta')], skipped: [] });
  expect(storageInfo(node(1)).map((d) => [d.state, d.clusterId, d.nodeId])).toEqual([
    ['formatted', id, 1],
    ['formatted', id, 1],
  ]);
  expect(errorOf(() => formatStorage({ ...node(1), clusterId: id, ignoreFormatted: false }))).toMatch(/Log directory .*logs is already formatted\. Use --ignore-formatted/);
  expect(formatStorage({ ...node(1), clusterId: id, ignoreFormatted: true })).toEqual({ formatted: [], skipped: [path.join(root, 'logs'), path.join(root, 'meta')] });
  expect(errorOf(() => formatStorage({ ...node(1), clusterId: randomClusterId(), ignoreFormatted: true }))).toMatch(/^INCONSISTENT_CLUSTER_ID: .*logs is already formatted for cluster/);
  expect(errorOf(() => formatStorage({ ...node(2), clusterId: id, ignoreFormatted: true }))).toMatch(/^INCONSISTENT_CLUSTER_ID: .*and node 1, not cluster .* and node 2/);
});

test('format is all or nothing, counts log.dirs and metadata.log.dir once when they are one directory, and refuses a directory a node used unformatted', () => {
  const id = randomClusterId();
  // The metadata directory holds a Raft log but no meta.properties: nothing is written anywhere.
  fs.mkdirSync(path.join(root, 'meta', '__cluster_metadata'), { recursive: true });
  expect(errorOf(() => formatStorage({ ...node(1), clusterId: id, ignoreFormatted: false }))).toMatch(/^INVALID_CONFIG: .*meta is not empty but has no meta\.properties/);
  expect(storageInfo(node(1)).map((d) => d.state)).toEqual(['missing', 'unformatted']);
  // One directory for both (the default metadata.log.dir), a fresh volume's lost+found in it.
  const shared = path.join(root, 'shared');
  fs.mkdirSync(path.join(shared, 'lost+found'), { recursive: true });
  const one = node(1, [`log.dirs=${shared}`, `metadata.log.dir=${shared}`]);
  expect(formatStorage({ ...one, clusterId: id, ignoreFormatted: false }).formatted).toEqual([shared]);
});
