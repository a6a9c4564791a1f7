/**
 * Turning transport failures into Strand's typed errors.
 *
 * A whole-call failure arrives as a gRPC error; when the broker meant a Kafka error it puts the
 * code in the `strand-error-code` metadata key, so we rebuild exactly that StrandError. Failures
 * without a code are transport conditions and map to the Kafka error a Java client would raise:
 * an unreachable or reset connection is NETWORK_EXCEPTION (retriable), a passed deadline is
 * REQUEST_TIMED_OUT (retriable). Everything the client throws for an expected failure is a
 * StrandError, so callers test `retriable`, `hasStaleMetadata` and `needsRejoin` only.
 */
import { ERROR_CODE_METADATA_KEY, GrpcStatus, StrandError } from '@strand/protocol';

interface GrpcLikeError {
  code?: unknown;
  details?: unknown;
  message?: unknown;
  metadata?: { get(key: string): unknown[] };
}

/** Maps anything a gRPC call rejected with to a StrandError (a StrandError passes through). */
export function toStrandError(e: unknown, what: string): StrandError {
  if (e instanceof StrandError) return e;
  const g = (typeof e === 'object' && e !== null ? e : {}) as GrpcLikeError;
  const details = typeof g.details === 'string' && g.details !== '' ? g.details : typeof g.message === 'string' ? g.message : String(e);
  const values = g.metadata !== undefined && typeof g.metadata.get === 'function' ? g.metadata.get(ERROR_CODE_METADATA_KEY) : [];
  const raw = values.length > 0 ? Number(String(values[0])) : NaN;
  if (Number.isInteger(raw)) return StrandError.fromCode(raw, `${what}: ${details}`);
  switch (g.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new StrandError('REQUEST_TIMED_OUT', `${what}: ${details}`, { cause: e });
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.CANCELLED:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.UNKNOWN:
      return new StrandError('NETWORK_EXCEPTION', `${what}: ${details}`, { cause: e });
    case GrpcStatus.UNIMPLEMENTED:
      return new StrandError('UNSUPPORTED_VERSION', `${what}: ${details}`, { cause: e });
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new StrandError('MESSAGE_TOO_LARGE', `${what}: ${details}`, { cause: e });
    default:
      return new StrandError('UNKNOWN_SERVER_ERROR', `${what}: ${details}`, { cause: e });
  }
}

/** Throws the StrandError for a non-zero Kafka code carried inside a response. */
export function throwIfError(code: number, message: string | undefined, what: string): void {
  if (code !== 0) throw StrandError.fromCode(code, message !== undefined && message !== '' ? `${what}: ${message}` : undefined);
}

/** The error a cancelled operation rejects with (close() or an AbortSignal). */
export function abortError(signal: AbortSignal | undefined, what: string): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new StrandError('REQUEST_TIMED_OUT', `${what} was cancelled`);
}
