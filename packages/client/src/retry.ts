/**
 * Retries with exponential backoff and jitter, for retriable errors only (the kafkajs rule).
 *
 * The backoff doubles from `retry.backoff.ms` up to `retry.backoff.max.ms`, and each wait is
 * spread by ±20 % (Kafka's KIP-580 jitter) so a fleet of clients that failed together does not
 * retry together. Every loop is bounded three ways: a retry count, a monotonic deadline, and an
 * AbortSignal; whichever ends first wins. Waiting is a cancellable timer, never a busy loop.
 */
import { StrandError } from '@strand/protocol';
import { abortError } from './errors';

/** Monotonic milliseconds: deadlines must not move with the wall clock. */
export function monotonicMs(): number {
  return performance.now();
}

export interface BackoffOptions {
  /** First wait (ms). */
  initialMs: number;
  /** Largest wait (ms). */
  maxMs: number;
  /** Relative spread of each wait, 0..1 (Kafka uses 0.2). */
  jitter?: number;
  /** Uniform [0, 1) source; injectable so tests are deterministic. */
  random?: () => number;
}

/** The wait before retry number `attempt` (0-based): initial * 2^attempt, capped, ± jitter. */
export function backoffMs(attempt: number, options: BackoffOptions): number {
  const base = Math.min(options.maxMs, options.initialMs * Math.pow(2, Math.min(attempt, 30)));
  const jitter = options.jitter ?? 0.2;
  const r = (options.random ?? Math.random)();
  const spread = base * jitter * (2 * r - 1);
  return Math.max(0, Math.round(Math.min(options.maxMs, base + spread)));
}

/** A timer that rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, 'wait'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal, 'wait'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends BackoffOptions {
  /** Retries after the first attempt (so at most retries + 1 attempts). */
  retries: number;
  /** Monotonic deadline (monotonicMs()) after which no new attempt starts. */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Called before each retry's wait, e.g. to refresh metadata after a stale-metadata error. */
  onRetry?: (error: StrandError, attempt: number) => void | Promise<void>;
  /** Overrides which errors are retried (default: StrandError with `retriable`). */
  isRetriable?: (error: unknown) => boolean;
}

/** Whether `e` may succeed when retried: only StrandErrors flagged retriable. */
export function isRetriable(e: unknown): boolean {
  return e instanceof StrandError && e.retriable;
}

/** Runs `fn` until it succeeds, a non-retriable error occurs, or a bound is reached. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retriable = options.isRetriable ?? isRetriable;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw abortError(options.signal, 'operation');
    try {
      return await fn(attempt);
    } catch (e: unknown) {
      if (!retriable(e) || attempt >= options.retries) throw e;
      const wait = backoffMs(attempt, options);
      if (options.deadlineMs !== undefined && monotonicMs() + wait >= options.deadlineMs) throw e;
      if (options.onRetry !== undefined && e instanceof StrandError) await options.onRetry(e, attempt);
      await sleep(wait, options.signal);
    }
  }
}
