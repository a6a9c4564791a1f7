/**
 * `strand metadata-quorum describe --status | --replication`, Kafka's kafka-metadata-quorum
 * (KIP-595, KIP-836), from Admin.describeMetadataQuorum (the active controller's view):
 *
 *   --status       ClusterId, LeaderId, LeaderEpoch, HighWatermark, MaxFollowerLag,
 *                  MaxFollowerLagTimeMs, CurrentVoters, CurrentObservers (one "Key: value" line
 *                  each, as Kafka's tool prints them)
 *   --replication  NodeId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status, the
 *                  leader first, then the other voters, then the observers (Raft learners and
 *                  brokers: a broker's offset is the metadata it last reported applied)
 *
 * MaxFollowerLag and MaxFollowerLagTimeMs are computed as Kafka's tool computes them: from the
 * voter with the lowest log end offset, its lag in offsets behind the leader and in ms between
 * the leader's and its last caught-up times (-1 when that time is unknown). `--human-readable`
 * prints the times as "N ms ago". Exit 0, 2 for usage errors, 3 when the cluster cannot be reached.
 */
import type { Command } from 'commander';
import type { QuorumInfo, QuorumReplica } from '@strand/client';
import { UsageError, action, printJson, printTable, withCommon } from './common';
import type { CommonOptions } from './common';
import { withAdmin } from './topics';

interface QuorumOptions extends CommonOptions {
  status?: boolean;
  replication?: boolean;
  humanReadable?: boolean;
}

export interface QuorumStatus {
  clusterId: string;
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  maxFollowerLag: number;
  maxFollowerLagTimeMs: number;
  currentVoters: number[];
  currentObservers: number[];
}

/** The --status figures, as Kafka's MetadataQuorumCommand derives them from the QuorumInfo. */
export function quorumStatus(clusterId: string, q: QuorumInfo): QuorumStatus {
  const leader = q.voters.find((v) => v.replicaId === q.leaderId);
  // The voter furthest behind; the leader itself when none is behind it.
  const laggiest = q.voters.reduce<QuorumReplica | undefined>((min, v) => (min === undefined || v.logEndOffset < min.logEndOffset ? v : min), leader);
  let maxFollowerLag = 0;
  let maxFollowerLagTimeMs = 0;
  if (leader !== undefined && laggiest !== undefined && laggiest !== leader) {
    maxFollowerLag = laggiest.logEndOffset < 0 ? -1 : leader.logEndOffset - laggiest.logEndOffset;
    maxFollowerLagTimeMs = leader.lastCaughtUpTimestamp !== undefined && laggiest.lastCaughtUpTimestamp !== undefined ? leader.lastCaughtUpTimestamp - laggiest.lastCaughtUpTimestamp : -1;
  }
  return {
    clusterId,
    leaderId: q.leaderId,
    leaderEpoch: q.leaderEpoch,
    highWatermark: q.highWatermark,
    maxFollowerLag,
    maxFollowerLagTimeMs,
    currentVoters: q.voters.map((v) => v.replicaId),
    currentObservers: q.observers.map((o) => o.replicaId),
  };
}

export interface ReplicationRow extends QuorumReplica {
  /** The leader's log end offset minus this replica's (-1: its offset is unknown). */
  lag: number;
  status: 'Leader' | 'Follower' | 'Observer';
}

/** The --replication rows: the leader, the other voters, then the observers. */
export function replicationRows(q: QuorumInfo): ReplicationRow[] {
  const leaderEnd = q.voters.find((v) => v.replicaId === q.leaderId)?.logEndOffset ?? -1;
  const row = (r: QuorumReplica, status: ReplicationRow['status']): ReplicationRow => ({ ...r, lag: r.logEndOffset < 0 || leaderEnd < 0 ? -1 : Math.max(0, leaderEnd - r.logEndOffset), status });
  return [
    ...q.voters.filter((v) => v.replicaId === q.leaderId).map((v) => row(v, 'Leader')),
    ...q.voters.filter((v) => v.replicaId !== q.leaderId).map((v) => row(v, 'Follower')),
    ...q.observers.map((o) => row(o, 'Observer')),
  ];
}

export function registerMetadataQuorum(program: Command): void {
  const quorum = program.command('metadata-quorum').description("the controllers' metadata quorum (Kafka's kafka-metadata-quorum)");
  withCommon(quorum.command('describe').description('the quorum as the active controller sees it: --status (leader, epoch, high watermark, lag) or --replication (per voter and observer)'))
    .option('--status', 'leader, epoch, high watermark, the largest follower lag, voters and observers')
    .option('--replication', 'one row per voter and observer: log end offset, lag, last fetch and caught-up times, role')
    .option('--human-readable', 'times as "N ms ago" instead of ms since the epoch')
    .action(
      action('metadata-quorum describe', async (opts: QuorumOptions) => {
        if (opts.status === opts.replication) throw new UsageError('give one of --status or --replication');
        const { clusterId, q } = await withAdmin(opts, async (admin) => ({ q: await admin.describeMetadataQuorum(), clusterId: (await admin.describeCluster()).clusterId }));
        if (opts.status === true) {
          const s = quorumStatus(clusterId, q);
          if (opts.json) return printJson(s);
          const lines: [string, string | number][] = [
            ['ClusterId', s.clusterId],
            ['LeaderId', s.leaderId],
            ['LeaderEpoch', s.leaderEpoch],
            ['HighWatermark', s.highWatermark],
            ['MaxFollowerLag', s.maxFollowerLag],
            ['MaxFollowerLagTimeMs', s.maxFollowerLagTimeMs],
            ['CurrentVoters', `[${s.currentVoters.join(',')}]`],
            ['CurrentObservers', `[${s.currentObservers.join(',')}]`],
          ];
          for (const [k, v] of lines) process.stdout.write(`${`${k}:`.padEnd(24)}${v}\n`);
          return;
        }
        const rows = replicationRows(q);
        if (opts.json) return printJson(rows.map((r) => ({ nodeId: r.replicaId, logEndOffset: r.logEndOffset, lag: r.lag, lastFetchTimestamp: r.lastFetchTimestamp ?? -1, lastCaughtUpTimestamp: r.lastCaughtUpTimestamp ?? -1, status: r.status })));
        const now = Date.now();
        const time = (t: number | undefined): string | number => (t === undefined ? -1 : opts.humanReadable === true ? `${Math.max(0, now - t)} ms ago` : t);
        printTable(['NodeId', 'LogEndOffset', 'Lag', 'LastFetchTimestamp', 'LastCaughtUpTimestamp', 'Status'], rows.map((r) => [r.replicaId, r.logEndOffset, r.lag, time(r.lastFetchTimestamp), time(r.lastCaughtUpTimestamp), r.status]));
      }),
    );
}
