/**
 * The consumer's fetch transport to one broker: the broker's bidirectional FetchStream (one
 * long-lived gRPC call; requests go out on it and responses come back in order), instead of a
 * unary Fetch per request, which costs a new HTTP/2 stream, headers and a deadline each time.
 *
 * One request is outstanding per stream (the consumer keeps at most one fetch per broker in
 * flight), bounded by its own timeout: a response that does not come in time fails the request
 * with REQUEST_TIMED_OUT and ends the stream. Any stream error fails the outstanding request with
 * the StrandError it maps to and ends the stream; the next fetch opens a new one (the consumer
 * backs off between failures). A broker that does not implement FetchStream (UNIMPLEMENTED)
 * gets unary Fetch requests from then on. A stream lives on one BrokerConnection; when the
 * cluster replaces that connection (a reconnect after failures), the next fetch reopens on the
 * new one.
 */
import * as grpc from '@grpc/grpc-js';
import { StrandError } from '@strand/protocol';
import type { FetchRequest, FetchResponse } from '@strand/protocol';
import type { BrokerConnection, UnaryMethod } from '../cluster/connection';
import { cancelQuietly, onAbortWhileOpen } from '../cluster/call-lifecycle';
import { toStrandError } from '../errors';

interface Outstanding {
  request: FetchRequest;
  deadlineMs: number;
  resolve(res: FetchResponse): void;
  reject(err: StrandError): void;
  timer: NodeJS.Timeout;
}

export class FetchStream {
  private call: grpc.ClientDuplexStream<FetchRequest, FetchResponse> | undefined;
  private conn: BrokerConnection | undefined;
  private outstanding: Outstanding | undefined;
  /** Set once the broker answered UNIMPLEMENTED: unary Fetch from then on. */
  private unary = false;
  private closed = false;

  constructor(readonly nodeId: number) {}

  /** Whether requests go over unary Fetch (the broker has no FetchStream). */
  get usesUnary(): boolean {
    return this.unary;
  }

  /** Sends `request` on `conn` and resolves with its response; rejects with a StrandError. */
  fetch(conn: BrokerConnection, request: FetchRequest, timeoutMs: number, signal: AbortSignal): Promise<FetchResponse> {
    if (this.closed || signal.aborted) return Promise.reject(new StrandError('NETWORK_EXCEPTION', `fetch from broker ${this.nodeId}: the consumer is closed`));
    if (this.unary) return conn.unary(conn.client.fetch as UnaryMethod<FetchRequest, FetchResponse>, request, timeoutMs, 'Fetch', signal);
    if (this.outstanding !== undefined) return Promise.reject(new StrandError('INVALID_REQUEST', `a fetch from broker ${this.nodeId} is already outstanding`));
    if (this.call !== undefined && this.conn !== conn) this.end();
    const call = this.call ?? this.open(conn, signal);
    return new Promise<FetchResponse>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new StrandError('REQUEST_TIMED_OUT', `FetchStream to ${conn.address}: no response within ${timeoutMs} ms`)), timeoutMs);
      this.outstanding = { request, deadlineMs: performance.now() + timeoutMs, resolve, reject, timer };
      call.write(request);
    });
  }

  private open(conn: BrokerConnection, signal: AbortSignal): grpc.ClientDuplexStream<FetchRequest, FetchResponse> {
    const call = conn.client.fetchStream(conn.callMetadata());
    this.call = call;
    this.conn = conn;
    call.on('data', (res: FetchResponse) => {
      const o = this.outstanding;
      if (o === undefined || this.call !== call) return;
      this.outstanding = undefined;
      clearTimeout(o.timer);
      o.resolve(res);
    });
    call.on('error', (e: unknown) => {
      if (this.call !== call) return;
      const code = (e as { code?: unknown }).code;
      const o = this.outstanding;
      if (code === grpc.status.UNIMPLEMENTED && o !== undefined && !this.closed) {
        // A broker without FetchStream: this request and every later one go as unary Fetch.
        this.unary = true;
        this.outstanding = undefined;
        this.end();
        clearTimeout(o.timer);
        conn.unary(conn.client.fetch as UnaryMethod<FetchRequest, FetchResponse>, o.request, Math.max(1, o.deadlineMs - performance.now()), 'Fetch', signal).then(o.resolve, (err: unknown) => o.reject(toStrandError(err, 'Fetch')));
        return;
      }
      if (code === grpc.status.UNIMPLEMENTED) this.unary = true;
      this.fail(toStrandError(e, `FetchStream to ${conn.address}`));
    });
    call.on('end', () => {
      if (this.call === call) this.fail(new StrandError('NETWORK_EXCEPTION', `FetchStream to ${conn.address}: the broker ended the stream`));
    });
    onAbortWhileOpen(call, signal, () => this.close());
    return call;
  }

  /** Fails the outstanding request (if any) and ends the stream; the next fetch reopens. */
  private fail(err: StrandError): void {
    const o = this.outstanding;
    this.outstanding = undefined;
    this.end();
    if (o !== undefined) {
      clearTimeout(o.timer);
      o.reject(err);
    }
  }

  private end(): void {
    const call = this.call;
    this.call = undefined;
    this.conn = undefined;
    if (call !== undefined) cancelQuietly(call);
  }

  /** Fails the outstanding request and ends the stream for good. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new StrandError('NETWORK_EXCEPTION', `fetch from broker ${this.nodeId}: the consumer is closed`));
  }
}
