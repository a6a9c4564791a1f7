/** Small file helpers shared by the log: atomic replace, directory fsync. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** fsyncs a directory so that file creations, renames and deletions in it are durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `file` with `contents` atomically and durably: write a temp file, fsync it, rename it
 * over the old one, fsync the directory. A crash leaves either the old or the new contents.
 */
export function writeFileAtomic(file: string, contents: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const bytes = typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents;
    // A regular file may take less than asked at once (near ENOSPC): a short file must never be
    // renamed into place.
    for (let off = 0; off < bytes.byteLength; ) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** Reads a file as UTF-8, or undefined if it does not exist. */
export function readFileIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e: unknown) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

/** Whether `e` is a Node system error with `code` (structural: errors may come from another realm). */
export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/** Writes `contents` to `file` and fdatasyncs it, off the event loop (no rename: the caller's). */
export async function writeFileSyncedAsync(file: string, contents: string | Uint8Array): Promise<void> {
  const h = await fs.promises.open(file, 'w');
  try {
    await h.writeFile(contents);
    await h.datasync();
  } finally {
    await h.close();
  }
}

/** fsyncDir off the event loop. */
export function fsyncDirAsync(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.open(dir, 'r', (err, fd) => {
      if (err) return reject(err);
      fs.fsync(fd, (err2) => {
        fs.close(fd, () => (err2 ? reject(err2) : resolve()));
      });
    });
  });
}

/** writeFileAtomic off the event loop: temp file written and fdatasynced, renamed, directory fsynced. */
export async function writeFileAtomicAsync(file: string, contents: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFileSyncedAsync(tmp, contents);
  await fs.promises.rename(tmp, file);
  await fsyncDirAsync(path.dirname(file));
}
