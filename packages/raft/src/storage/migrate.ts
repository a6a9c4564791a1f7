// Moving a node's Raft log from LevelStorage (Strand's first format) to WalStorage.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { LevelStorage } from './level-storage';
import { fsyncDir } from '@strand/storage';
import { WalStorage } from './wal-storage';

/**
 * Copies the Raft log in the LevelStorage directory `levelDir` into a new WalStorage directory
 * `walDir`, then removes `levelDir`. Returns whether there was anything to migrate.
 *
 * Crash-safe at every step: the WAL is built in `<walDir>.migrating`, made durable and renamed to
 * `walDir` (directory synced) before `levelDir` is removed. A crash before the rename leaves the
 * level log in place and the next start migrates again; a crash after it leaves both, and the next
 * start just removes the level copy.
 */
export async function migrateLevelToWal(levelDir: string, walDir: string): Promise<boolean> {
  if (!fs.existsSync(levelDir)) return false;
  if (fs.existsSync(walDir)) {
    fs.rmSync(levelDir, { recursive: true, force: true });
    return true;
  }
  const tmp = `${walDir}.migrating`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const level = new LevelStorage(levelDir);
  const state = await level.load();
  await level.close();
  const wal = new WalStorage(tmp);
  await wal.load();
  // The snapshot record replaces the (empty) log and the entries follow it: load() gives back
  // exactly this state.
  if (state !== null) await wal.save({ hardState: state.hardState, snapshot: state.snapshot, entries: state.entries });
  await wal.close();
  fsyncDir(tmp);
  fs.renameSync(tmp, walDir);
  fsyncDir(path.dirname(walDir));
  fs.rmSync(levelDir, { recursive: true, force: true });
  return true;
}
