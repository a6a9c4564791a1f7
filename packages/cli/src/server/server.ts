/**
 * `strand server`: one process with the roles its configuration names. Every listener is created
 * here, in one place, so TLS/mTLS credentials and authentication can later be added here alone.
 * SIGTERM/SIGINT stop it gracefully; SIGKILL is survivable by construction (every layer recovers
 * from its durable state on the next start).
 */
import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { BROKER_CONFIG, BROKER_MESSAGE_MAX_BYTES, BrokerServer, configValueString } from '@strand/broker';
import { createLogger, type Logger } from './logger';
import { createNodeHttp } from './http-server';
import { startControllerRole, type ControllerRole } from './controller-role';
import { KAFKA_IGNORED_KEYS, SERVER_CONFIG, resolveServerConfig, type Listener, type ResolvedServerConfig } from './server-config';

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
  broker: BrokerServer | null;
  /** Bound ports by listener name. */
  ports: Map<string, number>;
  stop(): Promise<void>;
}

/** Largest gRPC message the controller listener accepts (the broker listeners: BROKER_MESSAGE_MAX_BYTES). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function bind(server: grpc.Server, l: Listener): Promise<number> {
  const address = l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`cannot bind listener ${l.name} on ${address}: ${err.message}`)) : resolve(port)));
  });
}

function shutdownServer(s: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
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

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const config = resolveServerConfig({ ...(opts.configFile === undefined ? {} : { file: opts.configFile }), overrides: opts.overrides ?? [], env: opts.env ?? {} });
  const logger = createLogger({ level: config.values['log.level'], pretty: opts.pretty ?? false, name: 'strand', base: { nodeId: config.nodeId } });
  for (const [key, def] of Object.entries(KAFKA_IGNORED_KEYS)) {
    if (config.explicitKeys.has(key)) logger.warn({ key, value: (config.values as Record<string, unknown>)[key] }, `${key} has no effect: ${def.doc.replace(/^Kafka's key, accepted and ignored: /, '')}`);
  }
  const ports = new Map<string, number>();
  const nodeHttp = config.http ? createNodeHttp(config.nodeId) : null;
  if (nodeHttp && config.http) ports.set('HTTP', await nodeHttp.listen(config.http));
  let controller: ControllerRole | null = null;
  let controllerServer: grpc.Server | null = null;
  if (config.roles.controller) {
    controllerServer = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
    const name = config.values['controller.listener.names'].toUpperCase();
    const listener = config.listeners.get(name) as Listener;
    controller = await startControllerRole(config, controllerServer, logger);
    ports.set(name, await bind(controllerServer, listener));
  }
  let broker: BrokerServer | null = null;
  // One gRPC server per broker listener: each carries a broker service instance that knows its
  // listener's name, so answers name brokers by the endpoints of the listener the client used.
  const brokerServers: grpc.Server[] = [];
  if (config.roles.broker) {
    const boundPorts = new Map<string, number>();
    const brokerConfig = BROKER_CONFIG.parse(Object.fromEntries(BROKER_CONFIG.names().map((k) => [k, (config.values as Record<string, string | number | boolean | string[]>)[k]])));
    const b = new BrokerServer({
      brokerId: config.nodeId,
      logDir: path.resolve(config.values['log.dirs'][0] as string),
      controllers: config.voters,
      listeners: config.brokerListeners.map((l) => {
        const advertised = config.advertised.get(l.name) as Listener;
        return { name: l.name, advertisedHost: advertised.host, advertisedPort: () => (advertised.port === 0 ? (boundPorts.get(l.name) ?? 0) : advertised.port) };
      }),
      interBrokerListenerName: config.interBrokerListener,
      config: brokerConfig,
      topicDefaults: config.topicDefaults,
      logger: logger.child({ role: 'broker' }),
      ...(nodeHttp ? { metrics: nodeHttp.metricsSink } : {}),
      nodeConfigs: () =>
        SERVER_CONFIG.names().map((name) => ({
          name,
          value: configValueString((config.values as Record<string, unknown>)[name]),
          isDefault: !config.explicitKeys.has(name),
          doc: SERVER_CONFIG.spec[name as keyof typeof SERVER_CONFIG.spec].doc,
        })),
      // Kafka halts a broker whose only log directory failed: exit at once (no controlled
      // shutdown, whose checkpoints would write to the failed disk); the controller fences this
      // broker when its heartbeats stop, and a restart recovers the logs from what is on disk.
      onFatal: () => process.exit(1),
    });
    broker = b;
    for (const listener of config.brokerListeners) {
      // fetch.max.bytes and replica.fetch.response.max.bytes stay below this (FETCH_RESPONSE_MAX_BYTES).
      const server = new grpc.Server({ 'grpc.max_receive_message_length': BROKER_MESSAGE_MAX_BYTES, 'grpc.max_send_message_length': BROKER_MESSAGE_MAX_BYTES });
      brokerServers.push(server);
      b.addTo(server, listener.name);
      const port = await bind(server, listener);
      boundPorts.set(listener.name, port);
      ports.set(listener.name, port);
    }
    await b.start();
  }
  nodeHttp?.attach({ broker, controller: controller?.controller ?? null });
  logger.info({ roles: config.values['process.roles'], listeners: Object.fromEntries(ports), voters: config.values['controller.quorum.voters'] }, 'strand server started');
  let stopping: Promise<void> | null = null;
  return {
    config,
    logger,
    controller,
    broker,
    ports,
    stop: () => {
      stopping ??= (async () => {
        logger.info({}, 'strand server stopping');
        // Broker first: its controlled shutdown needs the controller quorum.
        if (broker) await broker.stop(true);
        await Promise.all(brokerServers.map((s) => shutdownServer(s)));
        if (controller) await controller.stop();
        if (controllerServer) await shutdownServer(controllerServer);
        if (nodeHttp) await nodeHttp.close();
        logger.info({}, 'strand server stopped');
      })();
      return stopping;
    },
  };
}
