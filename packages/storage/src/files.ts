/**
 * Small file helpers shared by the log: atomic replace, directory fsync.
 *
 * The asynchronous helpers (a broker flushing, opening or closing thousands of logs at once calls
 * them thousands of times at once) bound what they hold: at most ASYNC_OPENS_IN_FLIGHT
 * descriptors process-wide, each taken only for its open-fsync-close, and an open that finds
 * none free (EMFILE/ENFILE: another part of the process holds them) waits and retries, up to
 * DESCRIPTOR_WAIT_MAX_MS, as a shortage to outlast, not a disk failure: nothing was written or
 * fsynced yet. A failed fsync is never retried (the kernel may have dropped the dirty pages).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

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

/**
 * Descriptors the asynchronous helpers of this module hold at once, process-wide (directory
 * fsyncs, synced file writes, empty files created). libuv runs 4 file operations at a time by
 * default: more in flight would only queue there, each holding a descriptor.
 */
export const ASYNC_OPENS_IN_FLIGHT = 32;
/** How long an asynchronous open that finds no free descriptor (EMFILE, ENFILE) retries, in ms. */
export const DESCRIPTOR_WAIT_MAX_MS = 30_000;

let descriptorsHeld = 0;
const descriptorWaiters: Array<() => void> = [];

/** Runs `f` holding one of the ASYNC_OPENS_IN_FLIGHT descriptor slots (FIFO when none is free). */
async function withDescriptor<T>(f: () => Promise<T>): Promise<T> {
  if (descriptorsHeld < ASYNC_OPENS_IN_FLIGHT) descriptorsHeld++;
  else await new Promise<void>((resolve) => descriptorWaiters.push(resolve));
  try {
    return await f();
  } finally {
    // The slot passes straight to the next waiter, if any.
    const next = descriptorWaiters.shift();
    if (next !== undefined) next();
    else descriptorsHeld--;
  }
}

/**
 * `open`, retried while the process (or the system) has no free descriptor: with backoff from
 * 1 ms to 1 s, up to DESCRIPTOR_WAIT_MAX_MS, then the EMFILE/ENFILE error is thrown.
 */
async function openRetrying<T>(open: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + DESCRIPTOR_WAIT_MAX_MS;
  for (let delayMs = 1; ; delayMs = Math.min(2 * delayMs, 1000)) {
    try {
      return await open();
    } catch (e: unknown) {
      if (!(isErrno(e, 'EMFILE') || isErrno(e, 'ENFILE')) || performance.now() + delayMs > deadline) throw e;
      await new Promise<void>((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** Writes `contents` to `file` and fdatasyncs it, off the event loop (no rename: the caller's). */
export function writeFileSyncedAsync(file: string, contents: string | Uint8Array): Promise<void> {
  return withDescriptor(async () => {
    const h = await openRetrying(() => fs.promises.open(file, 'w'));
    try {
      await h.writeFile(contents);
      await h.datasync();
    } finally {
      await h.close();
    }
  });
}

/**
 * Creates `file` empty (or empties it), off the event loop, without fsyncing it: for a marker
 * whose existence is all it says, made durable by an fsync of its directory.
 */
export function createEmptyFileAsync(file: string): Promise<void> {
  return withDescriptor(async () => {
    const h = await openRetrying(() => fs.promises.open(file, 'w'));
    await h.close();
  });
}

/** A directory's fsync not yet started (callers join it) and the one running, if any. */
interface DirFsyncs {
  queued: Promise<void> | null;
  running: Promise<void> | null;
}
const dirFsyncs = new Map<string, DirFsyncs>();

/**
 * fsyncDir off the event loop, shared: every caller asking for a directory before its next fsync
 * starts waits for that one fsync (thousands of new logs closing at once ask for their common
 * parent), and a caller arriving while one runs gets the next, which starts once that one ends:
 * an fsync that began before the caller's changes may not cover them. So each caller resolves
 * only after an fsync of `dir` that started after it called, and a directory has at most one
 * fsync running. A failure rejects every caller that shared that fsync.
 */
export function fsyncDirAsync(dir: string): Promise<void> {
  const key = path.resolve(dir);
  let state = dirFsyncs.get(key);
  if (state === undefined) {
    state = { queued: null, running: null };
    dirFsyncs.set(key, state);
  }
  if (state.queued !== null) return state.queued;
  const s = state;
  const previous = s.running;
  const token: { promise: Promise<void> | null } = { promise: null };
  const run = async (): Promise<void> => {
    // Always yields first, so `token.promise` is set before it is read below.
    await previous?.catch(() => undefined);
    await withDescriptor(async () => {
      // Started: later callers wait for the next fsync.
      s.queued = null;
      s.running = token.promise;
      const fd = await openRetrying(() => new Promise<number>((resolve, reject) => fs.open(key, 'r', (err, fd) => (err ? reject(err) : resolve(fd)))));
      try {
        await new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
      } finally {
        await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
      }
    });
  };
  const promise = run().finally(() => {
    if (s.running === promise) s.running = null;
    if (s.queued === promise) s.queued = null;
    if (s.running === null && s.queued === null && dirFsyncs.get(key) === s) dirFsyncs.delete(key);
  });
  token.promise = promise;
  s.queued = promise;
  return promise;
}

/** writeFileAtomic off the event loop: temp file written and fdatasynced, renamed, directory fsynced. */
export async function writeFileAtomicAsync(file: string, contents: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFileSyncedAsync(tmp, contents);
  await fs.promises.rename(tmp, file);
  await fsyncDirAsync(path.dirname(file));
}
