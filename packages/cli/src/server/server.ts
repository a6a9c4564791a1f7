/**
 * `strand server`: one process with the roles its configuration names. Every listener is created
 * here, in one place, so TLS/mTLS credentials and authentication can later be added here alone.
 * SIGTERM/SIGINT stop it gracefully; SIGKILL is survivable by construction (every layer recovers
 * from its durable state on the next start).
 */
import * as grpc from '@grpc/grpc-js';
import { createLogger, type Logger } from './logger';
import { startControllerRole, type ControllerRole } from './controller-role';
import { resolveServerConfig, type Listener, type ResolvedServerConfig } from './server-config';

export interface ServerOptions {
  configFile?: string;
  overrides?: readonly string[];
  env?: NodeJS.ProcessEnv;
  pretty?: boolean;
}

export interface RunningServer {
  config: ResolvedServerConfig;
  logger: Logger;
  controller: ControllerRole | null;
  /** Bound ports by listener name. */
  ports: Map<string, number>;
  stop(): Promise<void>;
}

/** Largest gRPC message the listeners accept (a produce or replication batch fits well under it). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function bind(server: grpc.Server, l: Listener): Promise<number> {
  const address = l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`cannot bind listener ${l.name} on ${address}: ${err.message}`)) : resolve(port)));
  });
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const config = resolveServerConfig({ ...(opts.configFile === undefined ? {} : { file: opts.configFile }), overrides: opts.overrides ?? [], env: opts.env ?? {} });
  const logger = createLogger({ level: config.values['log.level'], pretty: opts.pretty ?? false, name: 'strand', base: { nodeId: config.nodeId } });
  if (config.roles.broker) {
    throw new Error('the broker role is not in this build yet (packages/broker has no server); run with process.roles=controller');
  }
  const ports = new Map<string, number>();
  let controller: ControllerRole | null = null;
  let controllerServer: grpc.Server | null = null;
  if (config.roles.controller) {
    controllerServer = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
    const name = config.values['controller.listener.names'].toUpperCase();
    const listener = config.listeners.get(name) as Listener;
    controller = await startControllerRole(config, controllerServer, logger);
    ports.set(name, await bind(controllerServer, listener));
  }
  logger.info({ roles: config.values['process.roles'], listeners: Object.fromEntries(ports), voters: config.values['controller.quorum.voters'] }, 'strand server started');
  let stopping: Promise<void> | null = null;
  return {
    config,
    logger,
    controller,
    ports,
    stop: () => {
      stopping ??= (async () => {
        logger.info({}, 'strand server stopping');
        if (controller) await controller.stop();
        if (controllerServer) {
          const s = controllerServer;
          await new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              s.forceShutdown();
              resolve();
            }, 2000);
            s.tryShutdown(() => {
              clearTimeout(t);
              resolve();
            });
          });
        }
        logger.info({}, 'strand server stopped');
      })();
      return stopping;
    },
  };
}
