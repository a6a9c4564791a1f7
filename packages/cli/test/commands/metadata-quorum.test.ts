/**
 * `strand metadata-quorum describe`: the --status figures and the --replication rows derived as
 * Kafka's MetadataQuorumCommand derives them, then the built binary against the in-memory twin
 * (whose DescribeQuorum answer the test sets): Kafka's "Key: value" lines, the table, --json and
 * the usage error. The real quorum's answer is tested across processes in test/metadata-quorum.test.ts.
 */
import type { QuorumInfo } from '@strand/client';
import { quorumStatus, replicationRows } from '../../src/commands/metadata-quorum';
import { useTwinCluster } from '../support/twin-cluster';

const quorum: QuorumInfo = {
  leaderId: 2,
  leaderEpoch: 7,
  highWatermark: 120,
  voters: [
    { replicaId: 1, logEndOffset: 100, lastFetchTimestamp: 5_000, lastCaughtUpTimestamp: 4_000 },
    { replicaId: 2, logEndOffset: 121, lastFetchTimestamp: 9_000, lastCaughtUpTimestamp: 9_000 },
    { replicaId: 3, logEndOffset: 121, lastFetchTimestamp: 8_900, lastCaughtUpTimestamp: 8_900 },
  ],
  observers: [
    { replicaId: 4, logEndOffset: 119, lastFetchTimestamp: 8_000, lastCaughtUpTimestamp: 7_000 },
    { replicaId: 5, logEndOffset: -1 },
  ],
};

describe('quorumStatus and replicationRows', () => {
  it('take the largest follower lag from the voter furthest behind, and list the leader, followers, observers', () => {
    expect(quorumStatus('c', quorum)).toEqual({ clusterId: 'c', leaderId: 2, leaderEpoch: 7, highWatermark: 120, maxFollowerLag: 21, maxFollowerLagTimeMs: 5_000, currentVoters: [1, 2, 3], currentObservers: [4, 5] });
    expect(replicationRows(quorum).map((r) => [r.replicaId, r.lag, r.status])).toEqual([
      [2, 0, 'Leader'],
      [1, 21, 'Follower'],
      [3, 0, 'Follower'],
      [4, 2, 'Observer'],
      [5, -1, 'Observer'],
    ]);
  });

  it('report no lag when every voter is at the leader, and -1 ms when the laggard was never caught up', () => {
    const caughtUp: QuorumInfo = { ...quorum, voters: quorum.voters.map((v) => ({ ...v, logEndOffset: 121 })) };
    expect(quorumStatus('c', caughtUp)).toMatchObject({ maxFollowerLag: 0, maxFollowerLagTimeMs: 0 });
    const never: QuorumInfo = { ...quorum, voters: [{ replicaId: 1, logEndOffset: 3 }, ...quorum.voters.slice(1)] };
    expect(quorumStatus('c', never)).toMatchObject({ maxFollowerLag: 118, maxFollowerLagTimeMs: -1 });
  });
});

describe('strand metadata-quorum describe', () => {
  const twin = useTwinCluster();
  const rows = (stdout: string): string[] => stdout.split('\n').map((l) => l.split(/\s+/).join(' '));

  it('prints --status as Kafka does, --replication as a table or --json, and needs one of the two', async () => {
    twin.mem.quorum = {
      errorCode: 0,
      errorMessage: '',
      leaderId: quorum.leaderId,
      leaderEpoch: quorum.leaderEpoch,
      highWatermark: quorum.highWatermark,
      currentVoters: quorum.voters.map((v) => ({ replicaId: v.replicaId, logEndOffset: v.logEndOffset, lastFetchTimestamp: v.lastFetchTimestamp ?? -1, lastCaughtUpTimestamp: v.lastCaughtUpTimestamp ?? -1 })),
      observers: quorum.observers.map((v) => ({ replicaId: v.replicaId, logEndOffset: v.logEndOffset, lastFetchTimestamp: v.lastFetchTimestamp ?? -1, lastCaughtUpTimestamp: v.lastCaughtUpTimestamp ?? -1 })),
    };
    let r = await twin.strand(['metadata-quorum', 'describe', '--status']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(rows(r.stdout)).toEqual([
      `ClusterId: ${twin.mem.clusterId}`,
      'LeaderId: 2',
      'LeaderEpoch: 7',
      'HighWatermark: 120',
      'MaxFollowerLag: 21',
      'MaxFollowerLagTimeMs: 5000',
      'CurrentVoters: [1,2,3]',
      'CurrentObservers: [4,5]',
      '',
    ]);
    r = await twin.strand(['metadata-quorum', 'describe', '--replication']);
    expect(rows(r.stdout)).toEqual([
      'NodeId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status',
      '2 121 0 9000 9000 Leader',
      '1 100 21 5000 4000 Follower',
      '3 121 0 8900 8900 Follower',
      '4 119 2 8000 7000 Observer',
      '5 -1 -1 -1 -1 Observer',
      '',
    ]);
    r = await twin.strand(['metadata-quorum', 'describe', '--replication', '--json']);
    expect(JSON.parse(r.stdout)[4]).toEqual({ nodeId: 5, logEndOffset: -1, lag: -1, lastFetchTimestamp: -1, lastCaughtUpTimestamp: -1, status: 'Observer' });
    r = await twin.strand(['metadata-quorum', 'describe', '--replication', '--human-readable']);
    expect(rows(r.stdout)[2]).toMatch(/^1 100 21 \d+ ms ago \d+ ms ago Follower$/);
    r = await twin.strand(['metadata-quorum', 'describe']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/give one of --status or --replication/)]);
  }, 60_000);
});
