/**
 * The client commands of the `strand` CLI (topics, produce, consume, cluster, groups, reassign, bench),
 * registered on the program by one call from bin/strand.ts.
 */
import type { Command } from 'commander';
import { registerBench } from './bench';
import { registerCluster } from './cluster';
import { registerConsume } from './consume';
import { registerGroups } from './groups';
import { registerProduce } from './produce';
import { registerReassign } from './reassign';
import { registerTopics } from './topics';
import { usageExit } from './common';

export function registerClientCommands(program: Command): void {
  registerTopics(program);
  registerProduce(program);
  registerConsume(program);
  registerCluster(program);
  registerGroups(program);
  registerReassign(program);
  registerBench(program);
  // Usage errors of every client command exit with 2 (documented exit codes).
  for (const cmd of program.commands) if (['topics', 'produce', 'consume', 'cluster', 'groups', 'reassign', 'bench'].includes(cmd.name())) applyUsageExit(cmd);
}

function applyUsageExit(cmd: Command): void {
  usageExit(cmd);
  for (const sub of cmd.commands) applyUsageExit(sub);
}
