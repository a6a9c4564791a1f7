/**
 * One gRPC channel to one broker, with promise-returning calls that are bounded by a deadline and
 * cancellable by an AbortSignal or by close().
 *
 * The channel's HTTP/2 flow-control window is raised to 16 MiB: with grpc-js's default 64 KiB,
 * server-to-client fetch throughput on loopback stays a fraction of what it is with the larger
 * window (measured: 600–830 MB/s at 16 MiB, see TOOLCHAIN.md). The receive limit is raised from
 * grpc's 4 MiB default to fit the largest fetch response the consumer asks for.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerClient, StrandError } from '@strand/protocol';
import { abortError, toStrandError } from '../errors';

/** A unary method of the generated BrokerClient. */
export type UnaryMethod<Req, Res> = (request: Req, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

export interface ConnectionOptions {
  /** Largest response accepted (bytes). */
  maxReceiveBytes: number;
  /** Largest request sent (bytes). */
  maxSendBytes: number;
  /**
   * The client's client.id, sent as the `client-id` metadata entry of every call (Kafka sends it
   * in every request header); the broker records it for group members. Empty: not sent.
   */
  clientId: string;
}

const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

export class BrokerConnection {
  readonly client: BrokerClient;
  private readonly calls = new Set<grpc.ClientUnaryCall>();
  private readonly clientId: string;
  private closed = false;

  constructor(
    /** Broker id, or a negative id for a bootstrap address not yet matched to a broker. */
    readonly nodeId: number,
    readonly host: string,
    readonly port: number,
    options: ConnectionOptions,
  ) {
    this.clientId = options.clientId;
    this.client = new BrokerClient(`${host}:${port}`, grpc.credentials.createInsecure(), {
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
      'grpc.max_receive_message_length': options.maxReceiveBytes,
      'grpc.max_send_message_length': options.maxSendBytes,
      // Detect a dead peer on an idle connection instead of waiting for the OS.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // Fail fast on a refused connection so retries (with our backoff) pick another broker.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
    });
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Metadata for one call (unary or stream): the client-id entry. A new object per call. */
  callMetadata(): grpc.Metadata {
    const m = new grpc.Metadata();
    if (this.clientId !== '') m.set('client-id', this.clientId);
    return m;
  }

  /**
   * One unary call. Rejects with a StrandError: the Kafka error the broker sent, or
   * NETWORK_EXCEPTION / REQUEST_TIMED_OUT for transport failures.
   */
  unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, timeoutMs: number, what: string, signal?: AbortSignal): Promise<Res> {
    if (this.closed) return Promise.reject(new StrandError('NETWORK_EXCEPTION', `${what}: connection to ${this.address} is closed`));
    if (signal?.aborted) return Promise.reject(abortError(signal, what));
    return new Promise<Res>((resolve, reject) => {
      // grpc-js deadlines are wall-clock Dates by API; the bound itself is relative.
      const call = method.call(this.client, request, this.callMetadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, response?: Res) => {
        this.calls.delete(call);
        signal?.removeEventListener('abort', onAbort);
        if (err !== null) reject(signal?.aborted ? abortError(signal, what) : toStrandError(err, `${what} to ${this.address}`));
        else if (response === undefined) reject(new StrandError('NETWORK_EXCEPTION', `${what} to ${this.address}: empty response`));
        else resolve(response);
      });
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.calls.add(call);
    });
  }

  /** Cancels every call in flight and closes the channel. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    this.client.close();
  }
}
