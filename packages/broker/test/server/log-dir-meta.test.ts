/**
 * meta.properties: the directory id is made once, survives restarts, is new for a wiped
 * directory, and is recorded before registration for a directory from before directory.id.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogDirMeta, META_PROPERTIES, formatLogDir, readMetaProperties } from '../../src/server/log-dir-meta';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-meta-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const metaFile = (): string => fs.readFileSync(path.join(dir, META_PROPERTIES), 'utf8');

test('a new directory: clean, no cluster id, written at the first registration; the id survives restarts', () => {
  const first = new LogDirMeta(dir, 4);
  expect(first).toMatchObject({ clusterId: '', previousShutdownClean: true });
  expect(fs.existsSync(path.join(dir, META_PROPERTIES))).toBe(false);
  first.registered('cluster-a');
  expect(metaFile()).toBe(`version=1\ncluster.id=cluster-a\nnode.id=4\ndirectory.id=${first.directoryId}\n`);
  // Killed (no marker): the same id, an unclean previous shutdown.
  const second = new LogDirMeta(dir, 4);
  expect(second).toMatchObject({ clusterId: 'cluster-a', directoryId: first.directoryId, previousShutdownClean: false });
  second.markCleanShutdown();
  const third = new LogDirMeta(dir, 4);
  expect(third).toMatchObject({ directoryId: first.directoryId, previousShutdownClean: true });
  // The marker is consumed at start.
  expect(new LogDirMeta(dir, 4).previousShutdownClean).toBe(false);
});

test('a wiped directory gets a new id', () => {
  const before = new LogDirMeta(dir, 1);
  before.registered('c');
  fs.rmSync(dir, { recursive: true });
  fs.mkdirSync(dir);
  const after = new LogDirMeta(dir, 1);
  expect(after.directoryId).not.toBe(before.directoryId);
  expect(after.clusterId).toBe('');
});

test('a directory from before directory.id keeps its cluster id and records its new id before registering', () => {
  fs.writeFileSync(path.join(dir, META_PROPERTIES), 'version=1\ncluster.id=old\nnode.id=2\n');
  const meta = new LogDirMeta(dir, 2);
  expect(meta.clusterId).toBe('old');
  expect(metaFile()).toContain(`directory.id=${meta.directoryId}\n`);
  expect(new LogDirMeta(dir, 2).directoryId).toBe(meta.directoryId);
});

test('a formatted directory (strand storage format): its cluster id and directory id are used, the start counts as clean, and another node\'s directory is refused', () => {
  const dirId = formatLogDir(dir, 'AAAAAAAAAAAAAAAAAAAAAQ', 2);
  expect(readMetaProperties(dir)).toEqual({ clusterId: 'AAAAAAAAAAAAAAAAAAAAAQ', nodeId: 2, directoryId: dirId });
  const meta = new LogDirMeta(dir, 2);
  expect(meta).toMatchObject({ clusterId: 'AAAAAAAAAAAAAAAAAAAAAQ', directoryId: dirId, previousShutdownClean: true });
  meta.registered('AAAAAAAAAAAAAAAAAAAAAQ');
  expect(metaFile()).toBe(`version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAQ\nnode.id=2\ndirectory.id=${dirId}\n`);
  expect(() => new LogDirMeta(dir, 3)).toThrow(/belongs to node 2 .* not to node\.id 3/);
  expect(readMetaProperties(path.join(dir, 'none'))).toBeUndefined();
});
