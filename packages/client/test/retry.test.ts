/**
 * Checks retries: exponential growth capped at the maximum, ±20 % jitter from an injected random
 * source, retry only of retriable StrandErrors, the retry count bound, the deadline bound, and
 * cancellation through an AbortSignal. Waits are a few milliseconds; nothing sleeps to
 * synchronize.
 */
import { StrandError } from '@strand/protocol';
import { backoffMs, monotonicMs, withRetries } from '../src/retry';

describe('backoffMs', () => {
  it('doubles per attempt up to the cap, spread by the jitter', () => {
    const mid = { initialMs: 100, maxMs: 1000, random: () => 0.5 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffMs(a, mid))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffMs(1, { initialMs: 100, maxMs: 1000, random: () => 0 })).toBe(160);
    expect(backoffMs(1, { initialMs: 100, maxMs: 1000, random: () => 0.999999 })).toBe(240);
  });
});

describe('withRetries', () => {
  const fast = { initialMs: 1, maxMs: 2 };

  it('retries retriable errors until success', async () => {
    let calls = 0;
    const seen: string[] = [];
    const out = await withRetries(
      async () => {
        calls++;
        if (calls < 3) throw new StrandError('NOT_LEADER_OR_FOLLOWER');
        return 'ok';
      },
      { ...fast, retries: 5, onRetry: (e) => void seen.push(e.errorName) },
    );
    expect(out).toBe('ok');
    expect(calls).toBe(3);
    expect(seen).toEqual(['NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_OR_FOLLOWER']);
  });

  it('does not retry non-retriable errors or plain Errors', async () => {
    let calls = 0;
    await expect(
      withRetries(async () => {
        calls++;
        throw new StrandError('TOPIC_ALREADY_EXISTS');
      }, { ...fast, retries: 5 }),
    ).rejects.toMatchObject({ errorName: 'TOPIC_ALREADY_EXISTS' });
    expect(calls).toBe(1);
    await expect(withRetries(async () => Promise.reject(new Error('bug')), { ...fast, retries: 5 })).rejects.toThrow('bug');
  });

  it('stops after the retry count and at the deadline', async () => {
    let calls = 0;
    await expect(
      withRetries(async () => {
        calls++;
        throw new StrandError('REQUEST_TIMED_OUT');
      }, { ...fast, retries: 2 }),
    ).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withRetries(async () => {
        calls++;
        throw new StrandError('REQUEST_TIMED_OUT');
      }, { initialMs: 50, maxMs: 50, retries: 100, deadlineMs: monotonicMs() + 10 }),
    ).rejects.toMatchObject({ errorName: 'REQUEST_TIMED_OUT' });
    expect(calls).toBe(1);
  });

  it('is cancelled by an AbortSignal during its wait', async () => {
    const ac = new AbortController();
    const p = withRetries(
      async () => {
        throw new StrandError('NETWORK_EXCEPTION');
      },
      { initialMs: 10_000, maxMs: 10_000, retries: 10, signal: ac.signal },
    );
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});
