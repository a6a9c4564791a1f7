/**
 * Waits, on the monotonic clock, until `f` returns a value other than undefined (a throw counts
 * as "not yet"), polling every `pollMs`; fails naming `what` after `timeoutMs`.
 */
export async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number, pollMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
