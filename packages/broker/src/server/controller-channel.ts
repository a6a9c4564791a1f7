/**
 * The broker's connection to the controller quorum: unary calls go to the active controller
 * (following NOT_CONTROLLER answers that name it, trying the voters in turn otherwise, with
 * backoff, until a deadline), and the metadata stream is read from the active controller only,
 * reconnecting from the last applied offset when it breaks, and moving to whichever controller
 * last answered a call when that is another one (a paused or hung controller cannot end the
 * stream it serves).
 */
import * as grpc from '@grpc/grpc-js';
import { ControllerClient, ControllerService, StrandError, metadataDeltaSpans, type FetchMetadataRequest, type MetadataRecordSpans } from '@strand/protocol';

export interface ControllerAddress {
  id: number;
  host: string;
  port: number;
}

/**
 * The metadata stream sends a whole image as one message (~1.5 MB per 40,000 partitions), past
 * grpc-js's default 4 MiB limit in a large cluster; the controller's listener takes as much.
 */
const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;

type Unary<Req, Res> = (c: ControllerClient, req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

/** Retry pause bounds when no controller answers (ms). */
const BACKOFF_MIN_MS = 25;
const BACKOFF_MAX_MS = 1000;

function isServiceError(e: unknown): e is grpc.ServiceError {
  return typeof e === 'object' && e !== null && 'code' in e && 'metadata' in e;
}

export class ControllerChannel {
  private readonly clients = new Map<string, ControllerClient>();
  private active: string | undefined;
  private next = 0;
  private closed = false;
  private readonly addresses: string[];
  /** Told of each controller that answers a call: the active one at that moment. */
  private readonly answered = new Set<(address: string) => void>();

  constructor(voters: readonly ControllerAddress[]) {
    this.addresses = voters.map((v) => `${v.host}:${v.port}`);
    if (this.addresses.length === 0) throw new Error('controller channel: no controller addresses');
  }

  private client(address: string): ControllerClient {
    let c = this.clients.get(address);
    if (c === undefined) {
      c = new ControllerClient(address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000, 'grpc.max_receive_message_length': MAX_RECEIVE_BYTES });
      this.clients.set(address, c);
    }
    return c;
  }

  /**
   * Calls the active controller. Retries NOT_CONTROLLER and unreachable controllers until
   * `timeoutMs`; any other failure is returned at once (as a StrandError when it carries a code).
   */
  async call<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs = 10_000): Promise<Res> {
    const deadline = performance.now() + timeoutMs;
    let backoff = BACKOFF_MIN_MS;
    let last: unknown = new StrandError('NOT_CONTROLLER', 'no controller answered');
    while (!this.closed && performance.now() < deadline) {
      const address = this.active ?? (this.addresses[this.next++ % this.addresses.length] as string);
      const perCallMs = Math.max(100, Math.min(5000, deadline - performance.now()));
      try {
        const res = await new Promise<Res>((resolve, reject) => {
          method(this.client(address), req, new grpc.Metadata(), { deadline: Date.now() + perCallMs }, (err, r) => (err || r === undefined ? reject(err ?? new Error('empty response')) : resolve(r)));
        });
        this.active = address;
        for (const listener of this.answered) listener(address);
        return res;
      } catch (e: unknown) {
        last = e;
        if (!isServiceError(e)) throw e;
        const code = Number(e.metadata.get('strand-error-code')[0] ?? NaN);
        const hint = e.metadata.get('strand-controller-address')[0];
        if (code === 41 /* NOT_CONTROLLER */ || e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
          this.active = typeof hint === 'string' && hint !== address ? hint : undefined;
          if (this.active === undefined) {
            await new Promise((r) => setTimeout(r, backoff));
            backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
          }
          continue;
        }
        if (Number.isInteger(code)) throw StrandError.fromCode(code, e.details);
        throw e;
      }
    }
    throw last;
  }

  /**
   * Follows the metadata log: opens a FetchMetadata stream to a controller from
   * `afterOffset()`, calls `onDelta` for each delta, and reconnects (to the next controller,
   * after a backoff) whenever the stream ends. When a call is answered by another controller
   * than the stream's, the stream moves there at once: only the active controller answers
   * calls, and one that stopped being active without ending its streams (paused, or hung on its
   * disk) would otherwise leave the broker on stale metadata for as long as it stays stopped,
   * as Kafka's observers leave a leader whose fetches time out. Returns a function that stops it.
   *
   * Deltas arrive with their records not yet decoded (metadataDeltaSpans: gRPC's deserializer
   * runs in one turn, and a snapshot's records are most of a stream's decoding work). When
   * `onDelta` returns a promise (a large snapshot applied over several turns), the stream is
   * paused until it settles, so deltas are still handled one at a time, in order; a rejection
   * ends the stream as a throw does.
   */
  followMetadata(afterOffset: () => number, brokerId: number, onDelta: (d: MetadataRecordSpans) => void | Promise<void>, onError: (e: unknown) => void): () => void {
    let stopped = false;
    let call: grpc.ClientReadableStream<MetadataRecordSpans> | null = null;
    let timer: NodeJS.Timeout | null = null;
    let backoff = BACKOFF_MIN_MS;
    let index = 0;
    let hinted: string | undefined;
    let streamAddress: string | undefined;
    let moveTo: ((address: string) => void) | undefined;
    const onAnswered = (address: string): void => {
      if (address !== streamAddress) moveTo?.(address);
    };
    this.answered.add(onAnswered);
    const connect = (): void => {
      if (stopped || this.closed) return;
      // Only the active controller serves the stream: the one a refusal named, else the one
      // calls last reached, else each in turn.
      const address = hinted ?? this.active ?? (this.addresses[index++ % this.addresses.length] as string);
      hinted = undefined;
      const m = ControllerService.fetchMetadata;
      const c = this.client(address).makeServerStreamRequest<FetchMetadataRequest, MetadataRecordSpans>(m.path, m.requestSerialize, metadataDeltaSpans, { afterOffset: afterOffset(), brokerId });
      call = c;
      streamAddress = address;
      let ended = false;
      let moved = false;
      const retry = (): void => {
        if (ended) return;
        ended = true;
        streamAddress = undefined;
        moveTo = undefined;
        if (stopped || this.closed) return;
        timer = setTimeout(connect, backoff);
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      };
      moveTo = (active: string): void => {
        if (ended) return;
        ended = true;
        moved = true;
        streamAddress = undefined;
        moveTo = undefined;
        hinted = active;
        backoff = BACKOFF_MIN_MS;
        c.cancel();
        if (!stopped && !this.closed) connect();
      };
      c.on('data', (d: MetadataRecordSpans) => {
        if (moved) return; // the next stream starts from what this one delivered
        backoff = BACKOFF_MIN_MS;
        let pending: void | Promise<void>;
        try {
          pending = onDelta(d);
        } catch (e: unknown) {
          onError(e);
          c.cancel();
          return;
        }
        if (pending === undefined) return;
        c.pause();
        pending.then(
          () => {
            if (!ended) c.resume();
          },
          (e: unknown) => {
            if (ended) return;
            onError(e);
            c.cancel();
          },
        );
      });
      c.on('error', (e: unknown) => {
        if (moved) return; // cancelled here to move to the active controller
        if (isServiceError(e)) {
          const hint = e.metadata.get('strand-controller-address')[0];
          if (typeof hint === 'string' && hint !== address) {
            // NOT_CONTROLLER naming the active one: go there without waiting.
            hinted = hint;
            backoff = BACKOFF_MIN_MS;
          }
          if (this.active === address) this.active = undefined;
        }
        if (!stopped) onError(e);
        retry();
      });
      c.on('end', retry);
    };
    connect();
    return () => {
      stopped = true;
      this.answered.delete(onAnswered);
      if (timer) clearTimeout(timer);
      call?.cancel();
    };
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
