// How a RaftNode reaches its peers. Sends are fire-and-forget: Raft tolerates loss, so a
// transport drops (and counts) rather than blocks when a peer is slow or down, and the core's
// retries (heartbeats, probes) recover. Every queue inside a transport is bounded.

import { Message, NodeId } from '../core/types';

export interface Transport {
  /** Queue messages for their peers; never throws for an unreachable peer. */
  send(messages: readonly Message[]): void;
  /** Register the handler for inbound messages (one handler; later calls replace it). */
  onMessage(handler: (m: Message) => void): void;
  /**
   * Learn (or re-point) a member's address. RaftNode calls it for every member whose conf
   * change carried an address (also when replaying the log or restoring a snapshot), so it
   * must be cheap and idempotent for an unchanged address. Optional: a transport without it
   * only reaches the peers it was configured with.
   */
  setPeer?(peer: NodeId, address: string): void;
  /** Forget a removed member. Optional, like setPeer. */
  removePeer?(peer: NodeId): void;
  close(): Promise<void>;
}

/**
 * In-process network for tests: delivers asynchronously (setImmediate) so a node never
 * re-enters itself, and lets a test cut links.
 */
export class MemoryNetwork {
  private readonly handlers = new Map<NodeId, (m: Message) => void>();
  private readonly cuts = new Set<string>();
  /** Drops every message it returns true for (tests: e.g. appends carrying entries, not heartbeats). */
  drop: ((m: Message) => boolean) | undefined;

  transport(id: NodeId): Transport {
    return {
      send: (messages) => {
        for (const m of messages) {
          if (this.cuts.has(`${m.from}>${m.to}`) || this.cuts.has(`*>${m.to}`) || this.cuts.has(`${m.from}>*`) || this.drop?.(m) === true) continue;
          setImmediate(() => this.handlers.get(m.to)?.(m));
        }
      },
      onMessage: (h) => {
        this.handlers.set(id, h);
      },
      close: async () => {
        this.handlers.delete(id);
      },
    };
  }

  isolate(id: NodeId): void {
    this.cuts.add(`*>${id}`);
    this.cuts.add(`${id}>*`);
  }

  heal(): void {
    this.cuts.clear();
  }
}
