/**
 * The controller role of `strand server`: a QuorumController on a WalStorage Raft log in
 * `<metadata.log.dir>/__cluster_metadata/raft-wal` (the directory locked against a second
 * process), with Raft and the controller API served on the same gRPC server (the CONTROLLER
 * listener). A Raft log left by an earlier version in LevelStorage (`.../raft`) is moved into the
 * WAL at start-up.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DirectoryLock } from '@strand/storage';
import { GrpcTransport, WalStorage, migrateLevelToWal } from '@strand/raft';
import { QuorumController, addControllerService } from '@strand/controller';
import { CONTROLLER_CONFIG } from '@strand/controller';
import { readMetaProperties } from '@strand/broker';
import type { Logger } from './logger';
import type { ResolvedServerConfig } from './server-config';

export interface ControllerRole {
  controller: QuorumController;
  stop(): Promise<void>;
}

/** Identifies the quorum on the Raft wire: controllers configured with other voters refuse each other. */
function quorumId(cfg: ResolvedServerConfig): string {
  return cfg.voters
    .map((v) => `${v.id}@${v.host}:${v.port}`)
    .sort()
    .join(',');
}

export async function startControllerRole(cfg: ResolvedServerConfig, server: grpc.Server, logger: Logger): Promise<ControllerRole> {
  // A metadata directory formatted by `strand storage format` names the cluster id the first
  // active controller writes (unformatted: a random one) and the node it belongs to.
  const meta = readMetaProperties(cfg.metadataLogDir);
  if (meta?.nodeId !== undefined && meta.nodeId !== cfg.nodeId) throw new Error(`metadata directory ${cfg.metadataLogDir} belongs to node ${meta.nodeId} (its meta.properties says so), not to node.id ${cfg.nodeId}`);
  const dir = path.join(cfg.metadataLogDir, '__cluster_metadata');
  fs.mkdirSync(dir, { recursive: true });
  const lock = DirectoryLock.acquire(dir);
  const walDir = path.join(dir, 'raft-wal');
  if (await migrateLevelToWal(path.join(dir, 'raft'), walDir)) logger.info({ dir: walDir }, 'moved the Raft log from level to the write-ahead log');
  const storage = new WalStorage(walDir);
  const peers = Object.fromEntries(cfg.voters.map((v) => [String(v.id), `${v.host}:${v.port}`]));
  const transport = new GrpcTransport({ id: String(cfg.nodeId), clusterId: quorumId(cfg), listen: '', peers, server });
  const controllerConfig = CONTROLLER_CONFIG.parse(Object.fromEntries(CONTROLLER_CONFIG.names().map((k) => [k, String((cfg.values as Record<string, unknown>)[k])])));
  const tickMs = cfg.values['controller.quorum.tick.ms'];
  const voters = new Map(cfg.voters.map((v) => [v.id, { host: v.host, port: v.port }]));
  const log = logger.child({ role: 'controller' });
  const controller = new QuorumController({
    nodeId: cfg.nodeId,
    voters,
    storage,
    transport,
    config: controllerConfig,
    tickMs,
    electionTicks: Math.max(2, Math.ceil(cfg.values['controller.quorum.election.timeout.ms'] / tickMs)),
    logger: { info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m) },
    ...(meta?.clusterId === undefined ? {} : { clusterId: meta.clusterId }),
  });
  addControllerService(server, controller, voters);
  await controller.start();
  return {
    controller,
    stop: async () => {
      await controller.stop();
      await transport.close();
      await storage.close();
      lock.release();
    },
  };
}
