/** `strand cluster describe`: brokers, controllers and the active controller; `strand cluster configs`: a broker's settings. */
import type { Command } from 'commander';
import { action, configSourceTag, printJson, printTable, usageExit, withCommon } from './common';
import type { CommonOptions } from './common';
import { withAdmin } from './topics';

export function registerCluster(program: Command): void {
  const cluster = usageExit(program.command('cluster').description('inspect the cluster'));
  withCommon(cluster.command('describe').description('brokers (id, address, state), controllers (id, role, lag), the active controller; exits 3 when unreachable')).action(
    action('cluster describe', async (opts: CommonOptions) => {
      const d = await withAdmin(opts, (admin) => admin.describeCluster());
      if (opts.json) return printJson(d);
      process.stdout.write(`Cluster: ${d.clusterId}\tActiveController: ${d.activeControllerId}\tMetadataOffset: ${d.metadataOffset}\tRaftTerm: ${d.raftTerm}\n\nBrokers\n`);
      printTable(['Id', 'Address', 'State', 'Epoch', 'LastHeartbeatMs'], d.brokers.map((b) => [b.id, `${b.host}:${b.port}`, b.state, b.epoch, b.lastHeartbeatAgeMs]));
      process.stdout.write('\nControllers\n');
      printTable(['Id', 'Address', 'Role', 'Lag'], d.controllers.map((c) => [c.id, `${c.host}:${c.port}`, c.role + (c.id === d.activeControllerId ? ' (active)' : ''), c.lag < 0 ? '-' : c.lag]));
    }),
  );
  withCommon(cluster.command('configs <broker-id>').description("a broker's settings (kafka-configs --describe --entity-type brokers --all): key=value, marked (static) when set in its configuration, (dynamic broker) or (dynamic cluster default) when set with strand configs"))
    .option('--key <name...>', 'only these keys')
    .action(
      action('cluster configs', async (brokerId: string, opts: CommonOptions & { key?: string[] }) => {
        const configs = await withAdmin(opts, (admin) => admin.describeConfigs(brokerId, { type: 'broker', keys: opts.key ?? [] }));
        if (opts.json) return printJson(Object.fromEntries(configs.map((c) => [c.name, { value: c.value, source: c.source }])));
        for (const c of configs) process.stdout.write(`${c.name}=${c.value}${configSourceTag(c.source)}\n`);
      }),
    );
}
