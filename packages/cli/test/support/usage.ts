/** The message of the UsageError `f` throws (fails the test if it throws nothing or something else). */
import { UsageError } from '../../src/commands/common';

export function usage(f: () => unknown): string {
  try {
    f();
  } catch (e: unknown) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error('no UsageError thrown');
}
