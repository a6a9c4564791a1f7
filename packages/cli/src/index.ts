/** @strand/cli: the `strand` command and the server process it runs. */
export { KAFKA_IGNORED_KEYS, SERVER_CONFIG, configFromEnv, parseListeners, parseOverrides, parseProperties, parseVoters, readConfigFile, resolveServerConfig } from './server/server-config';
export type { Listener, ResolvedServerConfig, ServerConfig, Voter } from './server/server-config';
export { startServer } from './server/server';
export type { RunningServer, ServerOptions } from './server/server';
export { createLogger } from './server/logger';
export { MALLOC_TUNABLES, withMallocTunables } from './malloc-tunables';
