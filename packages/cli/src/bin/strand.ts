#!/usr/bin/env node
/**
 * The `strand` command. `strand server` runs a node; more commands arrive with the client.
 */
import { Command } from 'commander';
import { StrandError } from '@strand/protocol';
import { registerClientCommands } from '../commands';
import { rerunWithMallocTunables } from '../malloc-tunables';

// Output piped into a reader that stops early (`strand topics list | head -1`): end quietly, as
// Kafka's tools do, instead of an unhandled EPIPE. A command with its own handler (consume, which
// closes its consumer first) takes care of it itself.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  if (process.stdout.listenerCount('error') === 1) process.exit(0);
});

const program = new Command();
program.name('strand').description('Strand: a Kafka-class distributed commit log').version('0.1.0');

program
  .command('server')
  .description('run a Strand node (controller, broker, or both), configured the Kafka way')
  .option('-c, --config <file>', 'a properties (key=value) or YAML configuration file')
  .option('-o, --override <key=value>', 'set a configuration key (repeatable; wins over the file)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--roles <roles>', 'shorthand for --override process.roles=<roles>')
  .option('--node-id <id>', 'shorthand for --override node.id=<id>')
  .option('--pretty', 'human-readable logs instead of JSON', false)
  .action(async (opts: { config?: string; override: string[]; roles?: string; nodeId?: string; pretty: boolean }) => {
    const overrides = [...(opts.roles ? [`process.roles=${opts.roles}`] : []), ...(opts.nodeId ? [`node.id=${opts.nodeId}`] : []), ...opts.override];
    // Handlers from the start: a signal during start-up (which may wait minutes for the
    // controllers) must end the process, also as PID 1 in a container, where a signal without a
    // handler is ignored. Nothing is acknowledged before start-up ends, and every store is
    // crash-safe, so exiting at once is safe; the directory locks of this pid are then stale.
    let running: Awaited<ReturnType<typeof import('../server/server.js').startServer>> | undefined;
    const shutdown = (signal: string): void => {
      if (running === undefined) {
        process.stderr.write(`strand server: ${signal} during start-up; exiting\n`);
        process.exit(0);
      }
      const server = running;
      server.logger.info({ signal }, 'signal received');
      server.stop().then(
        () => process.exit(0),
        (e: unknown) => {
          server.logger.error({ err: e }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    try {
      // Loaded here, not at the top: the client commands start ~40% faster without the node's code.
      const { startServer } = require('../server/server') as typeof import('../server/server.js');
      running = await startServer({ ...(opts.config === undefined ? {} : { configFile: opts.config }), overrides, env: process.env, pretty: opts.pretty });
    } catch (e: unknown) {
      process.stderr.write(`strand server: ${e instanceof StrandError ? `${e.errorName}: ${e.message}` : e instanceof Error ? e.message : String(e)}\n`);
      // As documented: 2 for a configuration error, 1 for anything else (a locked directory, a
      // port in use, unreachable controllers).
      process.exit(e instanceof StrandError && e.errorName === 'INVALID_CONFIG' ? 2 : 1);
    }
  });

const storage = program.command('storage').description("a node's storage before its first start (Kafka's kafka-storage): random-uuid, format, info");
const storageAction =
  <A extends unknown[]>(fn: (...args: A) => void) =>
  (...args: A): void => {
    try {
      fn(...args);
    } catch (e: unknown) {
      process.stderr.write(`strand storage: ${e instanceof StrandError ? `${e.errorName}: ${e.message}` : e instanceof Error ? e.message : String(e)}\n`);
      process.exit(e instanceof StrandError && e.errorName === 'INVALID_CONFIG' ? 2 : 1);
    }
  };
type StorageCliOptions = { config?: string; override: string[] };
const storageOpts = (o: StorageCliOptions): import('../server/storage.js').StorageOptions => ({ ...(o.config === undefined ? {} : { configFile: o.config }), overrides: o.override, env: process.env });
storage
  .command('random-uuid')
  .description('print a new cluster id (Kafka\'s 22-character form)')
  .action(
    storageAction(() => {
      const { randomClusterId } = require('../server/storage') as typeof import('../server/storage.js');
      process.stdout.write(`${randomClusterId()}\n`);
    }),
  );
storage
  .command('format')
  .description("write meta.properties (cluster id, node id, directory id) into the node's log.dirs and metadata.log.dir; the node then starts only into that cluster")
  .requiredOption('-t, --cluster-id <id>', 'the cluster id (from strand storage random-uuid)')
  .option('-c, --config <file>', 'the node\'s configuration file (as strand server)')
  .option('-o, --override <key=value>', 'a configuration key (repeatable, as strand server)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('-g, --ignore-formatted', 'leave directories already formatted for this cluster and node as they are, and succeed', false)
  .action(
    storageAction((o: StorageCliOptions & { clusterId: string; ignoreFormatted: boolean }) => {
      const { formatStorage } = require('../server/storage') as typeof import('../server/storage.js');
      const r = formatStorage({ ...storageOpts(o), clusterId: o.clusterId, ignoreFormatted: o.ignoreFormatted });
      for (const dir of r.formatted) process.stdout.write(`Formatting ${dir} with cluster.id ${o.clusterId}.\n`);
      if (r.formatted.length === 0) process.stdout.write('All of the log directories are already formatted.\n');
    }),
  );
storage
  .command('info')
  .description("what the node's directories hold: formatted (cluster.id, node.id, directory.id), unformatted, or missing")
  .option('-c, --config <file>', 'the node\'s configuration file (as strand server)')
  .option('-o, --override <key=value>', 'a configuration key (repeatable, as strand server)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .action(
    storageAction((o: StorageCliOptions) => {
      const { storageInfo } = require('../server/storage') as typeof import('../server/storage.js');
      for (const d of storageInfo(storageOpts(o))) {
        process.stdout.write(d.state === 'formatted' ? `${d.dir}: cluster.id=${d.clusterId ?? ''} node.id=${d.nodeId ?? ''} directory.id=${d.directoryId ?? ''}\n` : `${d.dir}: ${d.state}\n`);
      }
    }),
  );

program
  .command('dev')
  .description('run a local three-node development cluster (controller+broker per node) until Ctrl-C')
  .option('--data-dir <dir>', 'where the nodes keep their data and logs', './data')
  .option('--nodes <n>', 'number of nodes', '3')
  .option('--broker-port <port>', 'broker port of node 1 (node N uses port+N-1)', '9093')
  .option('--controller-port <port>', 'controller port of node 1 (node N uses port+N-1)', '9193')
  .option('--http-port <port>', 'HTTP (/metrics, /healthz, /readyz) port of node 1 (node N uses port+N-1)', '9300')
  .option('-o, --override <key=value>', 'a configuration key for every node (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--verbose', 'also print every node\'s log lines', false)
  .action(async (opts: { dataDir: string; nodes: string; brokerPort: string; controllerPort: string; httpPort: string; override: string[]; verbose: boolean }) => {
    const num = (name: string, v: string, min: number, max: number): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        process.stderr.write(`strand dev: ${name} must be an integer in [${min}, ${max}], got ${v}\n`);
        process.exit(2);
      }
      return n;
    };
    const { runDevCluster } = require('../dev/dev-cluster') as typeof import('../dev/dev-cluster.js');
    const code = await runDevCluster({
      dataDir: opts.dataDir,
      nodes: num('--nodes', opts.nodes, 1, 9),
      brokerBasePort: num('--broker-port', opts.brokerPort, 1, 65535),
      controllerBasePort: num('--controller-port', opts.controllerPort, 1, 65535),
      httpBasePort: num('--http-port', opts.httpPort, 1, 65535),
      overrides: opts.override,
      verbose: opts.verbose,
      out: (line) => process.stdout.write(`${line}\n`),
    });
    process.exit(code);
  });

registerClientCommands(program);

// `strand bench` measures the cluster, so its own client runs with the malloc settings the
// nodes get (src/malloc-tunables.ts): in a child process, when this one was started without them.
if (!(process.argv[2] === 'bench' && rerunWithMallocTunables())) {
  program.parseAsync(process.argv).catch((e: unknown) => {
    process.stderr.write(`strand: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
