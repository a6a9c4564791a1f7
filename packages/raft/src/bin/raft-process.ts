// One Raft node in its own process: WalStorage in a data directory, GrpcTransport on
// loopback, a small state machine, driven over the IPC channel by a parent (ProcessCluster, used
// by the multi-process test and the benchmark). Not a production server: the controller will
// embed RaftNode itself. The process exits when the parent disconnects, so a crashed test
// leaves no orphans.
//
// IPC protocol (JSON): see ProcessRequest / ProcessReply in process-protocol.ts.

import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { NotLeaderError } from '../node/errors';
import { RaftNode, StateMachine } from '../node/raft-node';
import { WalStorage } from '../storage/wal-storage';
import { GrpcTransport } from '../transport/grpc-transport';
import { Role } from '../core/types';
import { ProcessEvent, ProcessReply, ProcessRequest, StartConfig } from './process-protocol';

/** Keeps every applied value (tests) or only a count and a hash (benchmarks). */
class ValueMachine implements StateMachine {
  values: string[] = [];
  count = 0;
  hash = 0;
  constructor(private readonly keepValues: boolean) {}
  apply(_index: number, data: Uint8Array): void {
    this.count++;
    for (let i = 0; i < data.byteLength; i++) this.hash = (Math.imul(this.hash ^ (data[i] ?? 0), 0x01000193) >>> 0);
    if (this.keepValues) this.values.push(Buffer.from(data).toString('utf8'));
  }
  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify({ count: this.count, hash: this.hash, values: this.values }));
  }
  restore(data: Uint8Array): void {
    const parsed: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) throw new Error('bad snapshot');
    const r = parsed as Record<string, unknown>;
    this.count = typeof r['count'] === 'number' ? r['count'] : 0;
    this.hash = typeof r['hash'] === 'number' ? r['hash'] : 0;
    this.values = Array.isArray(r['values']) ? r['values'].map(String) : [];
  }
}

function send(m: ProcessReply | ProcessEvent): void {
  if (process.send !== undefined && process.connected) process.send(m);
}

function errorInfo(e: unknown): { name: string; message: string; leaderHint: string } {
  if (e instanceof NotLeaderError) return { name: e.name, message: e.message, leaderHint: e.leaderHint };
  if (e instanceof Error) return { name: e.name, message: e.message, leaderHint: '' };
  return { name: 'Error', message: String(e), leaderHint: '' };
}

let node: RaftNode | null = null;
let transport: GrpcTransport | null = null;
let storage: WalStorage | null = null;
let sm: ValueMachine | null = null;
let cfg: StartConfig | null = null;

async function handle(req: ProcessRequest): Promise<void> {
  switch (req.op) {
    case 'start': {
      cfg = req.config;
      transport = new GrpcTransport({ id: cfg.id, clusterId: cfg.clusterId, listen: `127.0.0.1:${cfg.port}`, peers: {} });
      const port = await transport.start();
      send({ ev: 'listening', id: cfg.id, port });
      return;
    }
    case 'peers': {
      if (cfg === null || transport === null) throw new Error('peers before start');
      for (const [id, addr] of Object.entries(req.peers)) if (id !== cfg.id) transport.setPeer(id, addr);
      storage = new WalStorage(join(cfg.dataDir, 'raft-wal'));
      sm = new ValueMachine(cfg.keepValues);
      const n = new RaftNode({
        id: cfg.id,
        storage,
        transport,
        stateMachine: sm,
        ...(req.voters === null ? {} : { bootstrapVoters: req.voters }),
        tickMs: cfg.tickMs,
        electionTicks: cfg.electionTicks,
        snapshotEveryEntries: cfg.snapshotEveryEntries,
        asyncLeaderWrites: cfg.asyncLeaderWrites ?? true,
      });
      node = n;
      n.onLeaderChange((s) => {
        send({ ev: 'leader', id: n.id, role: s.role, leader: s.leader, term: s.term });
        if (s.role === Role.Leader) {
          // "Ready" = an entry of this term is committed and applied: the read barrier needs it.
          n.readBarrier().then(
            () => send({ ev: 'leader-ready', id: n.id, term: s.term }),
            () => {},
          );
        }
      });
      await n.start();
      send({ ev: 'ready', id: n.id });
      return;
    }
    case 'propose': {
      const n = node;
      if (n === null) throw new Error('not started');
      try {
        const index = await n.propose(Buffer.from(req.data, 'utf8'));
        send({ reqId: req.reqId, ok: true, index });
      } catch (e: unknown) {
        send({ reqId: req.reqId, ok: false, error: errorInfo(e) });
      }
      return;
    }
    case 'status': {
      const n = node;
      if (n === null) throw new Error('not started');
      send({ reqId: req.reqId, ok: true, status: n.status(), metrics: { ...n.metrics }, transport: transport === null ? null : { ...transport.stats }, peers: transport?.peers() ?? {} });
      return;
    }
    case 'change': {
      const n = node;
      if (n === null) throw new Error('not started');
      try {
        const index =
          req.change === 'add-learner' ? await n.addLearner(req.nodeId, req.address) : req.change === 'promote' ? await n.promoteLearner(req.nodeId, req.address) : await n.removeMember(req.nodeId);
        send({ reqId: req.reqId, ok: true, index });
      } catch (e: unknown) {
        send({ reqId: req.reqId, ok: false, error: errorInfo(e) });
      }
      return;
    }
    case 'dump': {
      const n = node;
      const m = sm;
      if (n === null || m === null) throw new Error('not started');
      try {
        await n.readBarrier();
        send({ reqId: req.reqId, ok: true, values: m.values, count: m.count, hash: m.hash });
      } catch (e: unknown) {
        send({ reqId: req.reqId, ok: false, error: errorInfo(e) });
      }
      return;
    }
    case 'load': {
      // Pipelined load: keep `concurrency` proposals in flight until `count` are applied.
      const n = node;
      if (n === null) throw new Error('not started');
      const payload = Buffer.alloc(req.bytes, 'x');
      let started = 0;
      let done = 0;
      let failed = 0;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const next = (): void => {
          if (started >= req.count) {
            if (done + failed === req.count) resolve();
            return;
          }
          started++;
          n.propose(payload).then(
            () => {
              done++;
              next();
            },
            () => {
              failed++;
              next();
            },
          );
        };
        for (let i = 0; i < Math.min(req.concurrency, req.count); i++) next();
      });
      send({ reqId: req.reqId, ok: true, committed: done, failed, ms: performance.now() - t0 });
      return;
    }
    case 'latency': {
      // One proposal at a time: each latency is propose -> applied on the leader.
      const n = node;
      if (n === null) throw new Error('not started');
      const payload = Buffer.alloc(req.bytes, 'y');
      const lat: number[] = [];
      for (let i = 0; i < req.count; i++) {
        const t = performance.now();
        await n.propose(payload);
        lat.push(performance.now() - t);
      }
      send({ reqId: req.reqId, ok: true, latenciesMs: lat });
      return;
    }
    case 'stop': {
      await node?.stop();
      await transport?.close();
      await storage?.close();
      send({ reqId: req.reqId, ok: true });
      process.exit(0);
    }
  }
}

process.on('message', (raw: unknown) => {
  const req = raw as ProcessRequest;
  handle(req).catch((e: unknown) => {
    const reqId = 'reqId' in req ? req.reqId : -1;
    send({ reqId, ok: false, error: errorInfo(e) });
  });
});
process.on('disconnect', () => process.exit(0));
