/**
 * Plumbing shared by the client's long-lived gRPC calls (the consumer's FetchStream, the
 * producer's ProduceStream): tie a call to an AbortSignal for as long as the call lives, and
 * cancel a call without its CANCELLED status being reported as an error.
 */
import type * as grpc from '@grpc/grpc-js';

/** Calls `onAbort` if `signal` aborts while `call` is alive; the listener goes when the call ends. */
export function onAbortWhileOpen<Req, Res>(call: grpc.ClientDuplexStream<Req, Res>, signal: AbortSignal, onAbort: () => void): void {
  signal.addEventListener('abort', onAbort, { once: true });
  const cleanup = (): void => signal.removeEventListener('abort', onAbort);
  call.on('status', cleanup);
  call.on('close', cleanup);
}

/** Cancels `call`, dropping its further data and the CANCELLED error the cancel itself reports. */
export function cancelQuietly<Req, Res>(call: grpc.ClientDuplexStream<Req, Res>): void {
  call.removeAllListeners('data');
  call.on('error', () => undefined);
  call.cancel();
}
