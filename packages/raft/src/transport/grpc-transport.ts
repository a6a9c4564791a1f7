// Raft transport over gRPC (proto/raft.proto): one client stream per peer carrying batches of
// messages; this node's server receives every peer's stream. Raft messages are one-way and
// loss-tolerant, so the transport never blocks the node:
//
// - back-pressure: each peer has a bounded queue (maxQueuedMessagesPerPeer). While the stream
//   reports a full buffer (write() === false) messages wait for 'drain'; when the queue is full
//   the oldest messages are dropped (and counted): the core's heartbeats and probes recover.
// - batching: each send() call (a whole Ready's messages) is written at once, per peer, in
//   MessageBatch writes of at most maxBatchBytes; what waits for 'drain' or a reconnect goes
//   out together later.
// - reconnects: a failed or ended stream is reopened on the next flush after a backoff that
//   doubles from reconnectMinMs to reconnectMaxMs (20-250 ms by default, with jitter), and resets once a stream has
//   lived for a second.

import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { RaftClient, RaftMessage, RaftMessageBatch, RaftSendAck, RaftServer, RaftService } from '@strand/protocol';
import { Message, NodeId } from '../core/types';
import { Transport } from './transport';
import { fromWire, toWire } from './wire';

export interface GrpcTransportOptions {
  readonly id: NodeId;
  /** Batches carrying another cluster id are refused. */
  readonly clusterId: string;
  /** "host:port" to listen on; port 0 picks a free port (see start()). Ignored with `server`. */
  readonly listen: string;
  /**
   * A server owned by the caller (e.g. the controller's, so Raft and the controller service share
   * one listener, as KRaft's controller listener does). The transport only adds its service to it;
   * the caller binds, starts and shuts it down.
   */
  readonly server?: grpc.Server;
  /** Peer id -> "host:port". */
  readonly peers: Readonly<Record<NodeId, string>>;
  /** Messages queued per peer before the oldest are dropped. Default 10_000. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Bytes of entries per MessageBatch write. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Reconnect backoff bounds in ms. Defaults 20 and 250 (a restarted peer should rejoin within a few heartbeats). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** Largest gRPC message accepted. Default 64 MiB. */
  readonly maxMessageBytes?: number;
}

export interface TransportStats {
  sent: number;
  received: number;
  droppedQueueFull: number;
  invalid: number;
  reconnects: number;
}

function approxBytes(m: Message): number {
  let n = 64;
  for (const e of m.entries) n += e.data.byteLength + 24;
  if (m.snapshot !== null) n += m.snapshot.data.byteLength + 64;
  return n;
}

class PeerLink {
  private readonly client: RaftClient;
  private stream: grpc.ClientWritableStream<RaftMessageBatch> | null = null;
  private openedAt = 0;
  private queue: Message[] = [];
  private writable = true;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryAt = 0;
  private backoffMs: number;
  private closed = false;

  constructor(
    readonly peer: NodeId,
    readonly address: string,
    private readonly t: { id: NodeId; clusterId: string; maxQueued: number; maxBatchBytes: number; minMs: number; maxMs: number; stats: TransportStats },
    maxMessageBytes: number,
  ) {
    this.backoffMs = t.minMs;
    this.client = new RaftClient(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.max_receive_message_length': maxMessageBytes,
      // Reconnect quickly: a peer that restarts should rejoin within a heartbeat or two.
      'grpc.initial_reconnect_backoff_ms': t.minMs,
      'grpc.min_reconnect_backoff_ms': t.minMs,
      'grpc.max_reconnect_backoff_ms': t.maxMs,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
  }

  enqueue(m: Message): void {
    if (this.closed) return;
    this.queue.push(m);
    if (this.queue.length > this.t.maxQueued) {
      const over = this.queue.length - this.t.maxQueued;
      this.queue.splice(0, over);
      this.t.stats.droppedQueueFull += over;
    }
  }

  /** Write what is queued now (the caller batched a whole Ready's messages before calling). */
  flushNow(): void {
    this.flush();
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0) return;
    if (this.stream === null) {
      const wait = this.retryAt - performance.now();
      if (wait > 0) {
        if (this.retryTimer === null) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.flush();
          }, Math.ceil(wait));
        }
        return;
      }
      this.open();
    }
    const stream = this.stream;
    if (stream === null) return;
    while (this.writable && this.queue.length > 0) {
      const batch: RaftMessage[] = [];
      let bytes = 0;
      let n = 0;
      for (; n < this.queue.length; n++) {
        const m = this.queue[n];
        if (m === undefined) break;
        const b = approxBytes(m);
        if (batch.length > 0 && bytes + b > this.t.maxBatchBytes) break;
        batch.push(toWire(m));
        bytes += b;
      }
      this.queue = n === this.queue.length ? [] : this.queue.slice(n);
      this.t.stats.sent += batch.length;
      this.writable = stream.write({ from: this.t.id, clusterId: this.t.clusterId, messages: batch });
    }
  }

  private open(): void {
    const md = new grpc.Metadata();
    this.openedAt = performance.now();
    const stream = this.client.send(md, {}, (err: grpc.ServiceError | null) => {
      if (this.stream !== stream) return;
      this.stream = null;
      this.writable = true;
      if (err !== null) this.failed();
      if (this.queue.length > 0) this.flush();
    });
    stream.on('error', () => {
      // Reported through the callback above; the listener keeps it from being "unhandled".
    });
    stream.on('drain', () => {
      if (this.stream !== stream) return;
      this.writable = true;
      this.flush();
    });
    this.stream = stream;
  }

  private failed(): void {
    this.t.stats.reconnects++;
    if (performance.now() - this.openedAt > 1000) this.backoffMs = this.t.minMs;
    else this.backoffMs = Math.min(this.t.maxMs, this.backoffMs * 2);
    const jitter = 0.5 + Math.random() / 2;
    this.retryAt = performance.now() + this.backoffMs * jitter;
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    const s = this.stream;
    this.stream = null;
    if (s !== null) s.end();
    this.client.close();
  }
}

export class GrpcTransport implements Transport {
  readonly stats: TransportStats = { sent: 0, received: 0, droppedQueueFull: 0, invalid: 0, reconnects: 0 };
  private readonly server: grpc.Server;
  private readonly links = new Map<NodeId, PeerLink>();
  private handler: (m: Message) => void = () => {};
  private readonly cfg: { id: NodeId; clusterId: string; maxQueued: number; maxBatchBytes: number; minMs: number; maxMs: number; stats: TransportStats };
  private readonly maxMessageBytes: number;
  private readonly ownsServer: boolean;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.maxMessageBytes = opts.maxMessageBytes ?? 64 << 20;
    this.cfg = {
      id: opts.id,
      clusterId: opts.clusterId,
      maxQueued: opts.maxQueuedMessagesPerPeer ?? 10_000,
      maxBatchBytes: opts.maxBatchBytes ?? 4 << 20,
      minMs: opts.reconnectMinMs ?? 20,
      maxMs: opts.reconnectMaxMs ?? 250,
      stats: this.stats,
    };
    for (const [k, v] of [['maxQueuedMessagesPerPeer', this.cfg.maxQueued], ['maxBatchBytes', this.cfg.maxBatchBytes], ['reconnectMinMs', this.cfg.minMs], ['reconnectMaxMs', this.cfg.maxMs]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`grpc transport: ${k} must be a positive integer, got ${v}`);
    }
    this.ownsServer = opts.server === undefined;
    this.server = opts.server ?? new grpc.Server({ 'grpc.max_receive_message_length': this.maxMessageBytes });
    const impl: RaftServer = {
      send: (call: grpc.ServerReadableStream<RaftMessageBatch, RaftSendAck>, callback: grpc.sendUnaryData<RaftSendAck>) => {
        let accepted = 0;
        let done = false;
        const finish = (err: grpc.ServiceError | null): void => {
          if (done) return;
          done = true;
          if (err !== null) callback(err);
          else callback(null, { accepted });
        };
        call.on('data', (batch: RaftMessageBatch) => {
          if (batch.clusterId !== this.opts.clusterId) {
            this.stats.invalid += batch.messages.length;
            const e: grpc.ServiceError = Object.assign(new Error(`cluster id ${batch.clusterId} is not ${this.opts.clusterId}`), {
              code: grpc.status.PERMISSION_DENIED,
              details: 'wrong cluster id',
              metadata: new grpc.Metadata(),
            });
            finish(e);
            return;
          }
          for (const w of batch.messages) {
            let m: Message;
            try {
              m = fromWire(w);
            } catch {
              this.stats.invalid++;
              continue;
            }
            if (m.from !== batch.from || m.to !== this.opts.id) {
              this.stats.invalid++;
              continue;
            }
            accepted++;
            this.stats.received++;
            this.handler(m);
          }
        });
        call.on('end', () => finish(null));
        call.on('error', () => finish(null));
      },
    };
    this.server.addService(RaftService, impl);
    for (const [peer, addr] of Object.entries(opts.peers)) if (peer !== opts.id) this.setPeer(peer, addr);
  }

  /** Start listening; resolves with the bound port (-1 with a caller-owned server: not bound here). */
  start(): Promise<number> {
    if (!this.ownsServer) return Promise.resolve(-1);
    return new Promise((resolve, reject) => {
      this.server.bindAsync(this.opts.listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err !== null) reject(err);
        else resolve(port);
      });
    });
  }

  /** Add or re-point a peer (e.g. when a member is added). A no-op for an unchanged address. */
  setPeer(peer: NodeId, address: string): void {
    if (peer === this.opts.id) return;
    const old = this.links.get(peer);
    if (old !== undefined && old.address === address) return;
    old?.close();
    this.links.set(peer, new PeerLink(peer, address, this.cfg, this.maxMessageBytes));
  }

  /** Close the link to a removed member. */
  removePeer(peer: NodeId): void {
    this.links.get(peer)?.close();
    this.links.delete(peer);
  }

  /** Peer id -> address of every link (for status and tests). */
  peers(): Record<NodeId, string> {
    const out: Record<NodeId, string> = {};
    for (const [id, l] of this.links) out[id] = l.address;
    return out;
  }

  send(messages: readonly Message[]): void {
    // One write per peer per call: the node hands over a whole Ready's messages at once, so
    // batching needs no extra event-loop turn (which would add latency to every hop).
    const touched = new Set<PeerLink>();
    for (const m of messages) {
      const link = this.links.get(m.to);
      if (link === undefined) continue;
      link.enqueue(m);
      touched.add(link);
    }
    for (const link of touched) link.flushNow();
  }

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    for (const l of this.links.values()) l.close();
    this.links.clear();
    if (!this.ownsServer) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
