// The IPC messages between ProcessCluster (parent) and raft-process (child).

import { NodeStatus } from '../node/raft-node';
import { TransportStats } from '../transport/grpc-transport';

export interface StartConfig {
  readonly id: string;
  readonly clusterId: string;
  readonly dataDir: string;
  /** 0 for a free port (first start), the previous port on restart. */
  readonly port: number;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly snapshotEveryEntries: number;
  readonly keepValues: boolean;
  /** RaftNodeOptions.asyncLeaderWrites (default true). */
  readonly asyncLeaderWrites?: boolean;
}

export type ProcessRequest =
  | { readonly op: 'start'; readonly reqId: number; readonly config: StartConfig }
  /** Start the node; `voters` bootstraps a new cluster, null starts a node that will be added as a learner. */
  | { readonly op: 'peers'; readonly reqId: number; readonly peers: Readonly<Record<string, string>>; readonly voters: readonly string[] | null }
  /** A membership change proposed on this node (the leader); `address` is the added member's host:port. */
  | { readonly op: 'change'; readonly reqId: number; readonly change: 'add-learner' | 'promote' | 'remove'; readonly nodeId: string; readonly address?: string }
  | { readonly op: 'propose'; readonly reqId: number; readonly data: string }
  | { readonly op: 'status'; readonly reqId: number }
  | { readonly op: 'dump'; readonly reqId: number }
  | { readonly op: 'load'; readonly reqId: number; readonly count: number; readonly concurrency: number; readonly bytes: number }
  | { readonly op: 'latency'; readonly reqId: number; readonly count: number; readonly bytes: number }
  | { readonly op: 'stop'; readonly reqId: number };

export interface ErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly leaderHint: string;
}

export type ProcessReply =
  | { readonly reqId: number; readonly ok: false; readonly error: ErrorInfo }
  | { readonly reqId: number; readonly ok: true; readonly index: number }
  | { readonly reqId: number; readonly ok: true; readonly status: NodeStatus; readonly metrics: Readonly<Record<string, number>>; readonly transport: TransportStats | null; readonly peers: Readonly<Record<string, string>> }
  | { readonly reqId: number; readonly ok: true; readonly values: readonly string[]; readonly count: number; readonly hash: number }
  | { readonly reqId: number; readonly ok: true; readonly committed: number; readonly failed: number; readonly ms: number }
  | { readonly reqId: number; readonly ok: true; readonly latenciesMs: readonly number[] }
  | { readonly reqId: number; readonly ok: true };

export type ProcessEvent =
  | { readonly ev: 'listening'; readonly id: string; readonly port: number }
  | { readonly ev: 'ready'; readonly id: string }
  | { readonly ev: 'leader'; readonly id: string; readonly role: string; readonly leader: string; readonly term: number }
  | { readonly ev: 'leader-ready'; readonly id: string; readonly term: number };
