/**
 * The client commands of the `strand` CLI (topics, produce, consume, cluster, configs, groups, reassign,
 * leader-election, get-offsets, log-dirs, metadata-quorum, bench) and the offline dump-log,
 * registered on the program by one call from bin/strand.ts.
 */
import type { Command } from 'commander';
import { registerBench } from './bench';
import { registerCluster } from './cluster';
import { registerConfigs } from './configs';
import { registerConsume } from './consume';
import { registerDumpLog } from './dump-log';
import { registerGetOffsets } from './get-offsets';
import { registerGroups } from './groups';
import { registerLeaderElection } from './leader-election';
import { registerLogDirs } from './log-dirs';
import { registerMetadataQuorum } from './metadata-quorum';
import { registerProduce } from './produce';
import { registerReassign } from './reassign';
import { registerTopics } from './topics';
import { usageExit } from './common';

export function registerClientCommands(program: Command): void {
  registerTopics(program);
  registerProduce(program);
  registerConsume(program);
  registerCluster(program);
  registerConfigs(program);
  registerGroups(program);
  registerReassign(program);
  registerLeaderElection(program);
  registerGetOffsets(program);
  registerDumpLog(program);
  registerLogDirs(program);
  registerMetadataQuorum(program);
  registerBench(program);
  // Usage errors exit with 2 (documented exit codes): of every command (the node commands
  // `server` and `dev` too, registered before this) and of `strand` itself (unknown command).
  applyUsageExit(program);
}

function applyUsageExit(cmd: Command): void {
  usageExit(cmd);
  for (const sub of cmd.commands) applyUsageExit(sub);
}
