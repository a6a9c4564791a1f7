/**
 * The metadata image and the controller's pure decisions, record type by record type and
 * rejection path by rejection path: registration and fencing, unfencing once caught up,
 * controlled shutdown, elections only from the live ISR (last replica standing, unclean opt-in),
 * AlterPartition's epoch checks, topic creation with placement and validation, configs,
 * preferred and unclean elections, producer id blocks, and snapshot round trips.
 */
import { AlterConfigOp, ConfigResourceType, ErrorCode, TOPIC_CONFIG, type MetadataRecord } from '@strand/protocol';
import {
  MetadataImage,
  allocateProducerIds,
  alterBrokerConfigs,
  alterPartition,
  alterTopicConfigs,
  autoRebalance,
  brokerHeartbeat,
  configChangesFromRequest,
  createPartitions,
  createTopics,
  deleteTopics,
  describeTopicConfigs,
  electLeaders,
  fenceBrokers,
  placeReplicas,
  registerBroker,
  topicIdToBytes,
  type PartitionState,
} from '../src';
import { TOPIC, clusterWith, config, nextTopicId, run, topic, withTopic } from './fixtures';

function part(image: MetadataImage, name: string, p = 0): PartitionState {
  return image.topicByName(name)!.partitions.get(p)!;
}

describe('metadata image', () => {
  it('applies every record type and round-trips through a snapshot', () => {
    let image = clusterWith([1, 2, 3], ['a', 'b', 'a']);
    image = withTopic(image, topic('t', 3, 3, { 'retention.ms': '1000' }));
    image = run(image, allocateProducerIds(image, 1, image.brokers.get(1)!.epoch, 1000)).image;
    image = run(image, fenceBrokers(image, [2])).image;
    const snap = MetadataImage.fromRecords(image.offset, image.toRecords());
    expect(snap.toRecords()).toEqual(image.toRecords());
    expect(snap.clusterId).toBe('test-cluster');
    expect(snap.nextProducerId).toBe(1000);
    expect(snap.brokers.get(2)!.fenced).toBe(true);
    expect(snap.configsOf(TOPIC, 't').get('retention.ms')).toBe('1000');
    expect([...snap.topicByName('t')!.partitions.values()].map((p) => p.isr.includes(2))).toEqual([false, false, false]);
  });

  it('throws on records that contradict the image (a logic bug, not input)', () => {
    const image = clusterWith([1]);
    expect(() => image.apply(99, [{ fenceBroker: { brokerId: 1, brokerEpoch: 12345 } }])).toThrow(/not registered/);
    expect(() => image.apply(99, [{ removeTopic: { topicId: Buffer.alloc(16) } }])).toThrow(/unknown topic/);
    expect(() => image.apply(99, [{} as MetadataRecord])).toThrow(/empty or unknown/);
  });

  it('gives each registration the offset of its batch as broker epoch', () => {
    const image = clusterWith([1, 2]);
    const e1 = image.brokers.get(1)!.epoch;
    const e2 = image.brokers.get(2)!.epoch;
    expect(e2).toBeGreaterThan(e1);
    const again = run(image, registerBroker(image, { brokerId: 1, incarnationId: 'inc-1b', endpoints: [{ listener: 'PLAINTEXT', host: 'h', port: 1 }], clusterId: 'test-cluster', previousShutdownClean: false }, () => false));
    expect(again.result.brokerEpoch).toBeGreaterThan(e2);
    expect(again.image.brokers.get(1)!.fenced).toBe(true);
  });
});

describe('broker lifecycle', () => {
  it('refuses a duplicate live registration, another cluster, and bad requests', () => {
    const image = clusterWith([1]);
    const req = { brokerId: 1, incarnationId: 'other', endpoints: [{ listener: 'PLAINTEXT', host: 'h', port: 1 }], clusterId: '', previousShutdownClean: true };
    expect(registerBroker(image, req, () => true).finish(image).errorCode).toBe(ErrorCode.DUPLICATE_BROKER_REGISTRATION);
    expect(registerBroker(image, req, () => false).records).toHaveLength(1);
    expect(registerBroker(image, { ...req, clusterId: 'nope' }, () => false).finish(image).errorCode).toBe(ErrorCode.INCONSISTENT_CLUSTER_ID);
    expect(registerBroker(image, { ...req, endpoints: [] }, () => false).finish(image).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    const twice = [{ listener: 'INTERNAL', host: 'h', port: 1 }, { listener: 'INTERNAL', host: 'h', port: 2 }];
    expect(registerBroker(image, { ...req, endpoints: twice }, () => false).finish(image)).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'broker 1: listener INTERNAL registered twice' });
    expect(registerBroker(image, { ...req, endpoints: [{ listener: 'INTERNAL', host: 'h', port: 0 }] }, () => false).finish(image).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect(registerBroker(image, { ...req, endpoints: [{ listener: '', host: 'h', port: 1 }] }, () => false).finish(image).errorCode).toBe(ErrorCode.INVALID_REQUEST);
  });

  it('keeps every listener a broker registers, through a snapshot too', () => {
    let image = MetadataImage.EMPTY;
    const endpoints = [{ listener: 'INTERNAL', host: 'broker-1', port: 9093 }, { listener: 'EXTERNAL', host: 'localhost', port: 19093 }];
    image = run(image, registerBroker(image, { brokerId: 9, incarnationId: 'x', endpoints, clusterId: '', previousShutdownClean: true }, () => false)).image;
    expect(image.brokers.get(9)!.endpoints).toEqual(endpoints);
    expect(MetadataImage.fromRecords(image.offset, image.toRecords()).brokers.get(9)!.endpoints).toEqual(endpoints);
  });

  it('unfences only once the broker has caught up with its own registration', () => {
    let image = MetadataImage.EMPTY;
    image = run(image, registerBroker(image, { brokerId: 7, incarnationId: 'x', endpoints: [{ listener: 'PLAINTEXT', host: 'h', port: 1 }], clusterId: '', previousShutdownClean: true }, () => false)).image;
    const epoch = image.brokers.get(7)!.epoch;
    const behind = run(image, brokerHeartbeat(image, 7, epoch, epoch - 1, false));
    expect(behind.result).toMatchObject({ errorCode: 0, isCaughtUp: false, isFenced: true });
    const caught = run(image, brokerHeartbeat(image, 7, epoch, epoch, false));
    expect(caught.result).toMatchObject({ isCaughtUp: true, isFenced: false });
    expect(brokerHeartbeat(image, 7, epoch + 1, epoch, false).finish(image).errorCode).toBe(ErrorCode.STALE_BROKER_EPOCH);
    expect(brokerHeartbeat(image, 8, 1, 1, false).finish(image).errorCode).toBe(ErrorCode.BROKER_ID_NOT_REGISTERED);
  });

  it('fencing moves leadership to a live ISR member and bumps epochs', () => {
    let image = withTopic(clusterWith([1, 2, 3]), topic('t', 1, 3));
    const before = part(image, 't');
    image = run(image, fenceBrokers(image, [before.leader])).image;
    const after = part(image, 't');
    expect(after.leader).not.toBe(before.leader);
    expect(after.isr).not.toContain(before.leader);
    expect(after.isr).toContain(after.leader);
    expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
    expect(after.partitionEpoch).toBe(before.partitionEpoch + 1);
  });

  it('keeps the last replica standing in the ISR and waits for it (no unclean election)', () => {
    let image = withTopic(clusterWith([1, 2]), topic('t', 1, 2));
    const p0 = part(image, 't');
    const [first, second] = [p0.leader, p0.isr.find((r) => r !== p0.leader)!];
    image = run(image, fenceBrokers(image, [second])).image;
    expect(part(image, 't').isr).toEqual([first]);
    image = run(image, fenceBrokers(image, [first])).image;
    expect(part(image, 't')).toMatchObject({ leader: -1, isr: [first] });
    // The out-of-sync replica comes back first: still no leader.
    image = run(image, brokerHeartbeat(image, second, image.brokers.get(second)!.epoch, image.offset, false)).image;
    expect(part(image, 't').leader).toBe(-1);
    // The last ISR member returns: elected again.
    image = run(image, brokerHeartbeat(image, first, image.brokers.get(first)!.epoch, image.offset, false)).image;
    expect(part(image, 't').leader).toBe(first);
  });

  it('a broker back with another log directory leaves even the ISR it alone held', () => {
    const endpoints = (id: number) => [{ listener: 'PLAINTEXT', host: 'h', port: id }];
    const register = (image: MetadataImage, id: number, inc: string, logDirId: string) =>
      run(image, registerBroker(image, { brokerId: id, incarnationId: inc, endpoints: endpoints(id), clusterId: 'test-cluster', previousShutdownClean: false, logDirId }, () => false)).image;
    const unfence = (image: MetadataImage, id: number) => run(image, brokerHeartbeat(image, id, image.brokers.get(id)!.epoch, image.offset, false)).image;
    let image = clusterWith([]);
    for (const id of [1, 2]) image = unfence(register(image, id, `inc-${id}`, `dir-${id}`), id);
    image = withTopic(image, { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [] });
    image = run(image, fenceBrokers(image, [2])).image;
    expect(part(image, 't')).toMatchObject({ leader: 1, isr: [1] });
    // Broker 1 restarts with its logs: it is still the last replica standing, elected again.
    const kept = unfence(register(image, 1, 'inc-1b', 'dir-1'), 1);
    expect(part(kept, 't')).toMatchObject({ leader: 1, isr: [1] });
    // Broker 1 restarts with a wiped disk (a new directory id): nobody holds the data any more.
    image = register(image, 1, 'inc-1c', 'dir-1-new');
    expect(image.brokers.get(1)!.logDirId).toBe('dir-1-new');
    expect(MetadataImage.fromRecords(image.offset, image.toRecords()).brokers.get(1)).toMatchObject({ logDirId: 'dir-1-new', logDirReplaced: true });
    expect(part(image, 't')).toMatchObject({ leader: -1, isr: [] });
    image = unfence(image, 1);
    image = unfence(register(image, 2, 'inc-2b', 'dir-2'), 2);
    expect(part(image, 't')).toMatchObject({ leader: -1, isr: [] });
    // An unclean election is the operator's choice; it takes the replica that kept its logs.
    expect(image.brokers.get(1)!.logDirReplaced).toBe(true);
    image = run(image, electLeaders(image, 'unclean', [{ topic: 't', partition: 0 }])).image;
    expect(part(image, 't')).toMatchObject({ leader: 2, isr: [2] });
    // Registered again on the same (new) directory (a retry, a restart): still the replaced one.
    image = register(image, 1, 'inc-1d', 'dir-1-new');
    expect(image.brokers.get(1)!.logDirReplaced).toBe(true);
  });

  /** The follower of `name`'s partition 0 leaves the ISR, the leader fails, the follower returns: the partition is offline. */
  function offline(start: MetadataImage, name: string): { image: MetadataImage; other: number } {
    const p0 = part(start, name);
    const other = p0.replicas.find((r) => r !== p0.leader)!;
    let image = run(start, fenceBrokers(start, [other])).image;
    image = run(image, fenceBrokers(image, [p0.leader])).image;
    image = run(image, brokerHeartbeat(image, other, image.brokers.get(other)!.epoch, image.offset, false)).image;
    expect(part(image, name).leader).toBe(-1);
    return { image, other };
  }

  it('elects an out-of-sync replica only where the topic enables unclean election', () => {
    let { image, other } = offline(withTopic(clusterWith([1, 2]), topic('t', 1, 2)), 't');
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'unclean.leader.election.enable', value: 'true' }], false)).image;
    expect(part(image, 't')).toMatchObject({ leader: other, isr: [other] });
  });

  it('elects an out-of-sync replica where the cluster-wide dynamic default enables unclean election, unless the topic turns it off', () => {
    let image = withTopic(withTopic(clusterWith([1, 2]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [] }), {
      name: 'off',
      numPartitions: -1,
      replicationFactor: -1,
      assignments: [{ partition: 0, brokerIds: [1, 2] }],
      configs: [{ name: 'unclean.leader.election.enable', value: 'false' }],
    });
    // Broker 2 leaves the ISRs, then the leader (1) fails: both partitions go offline.
    image = run(image, fenceBrokers(image, [2])).image;
    image = run(image, fenceBrokers(image, [1])).image;
    image = run(image, brokerHeartbeat(image, 2, image.brokers.get(2)!.epoch, image.offset, false)).image;
    expect([part(image, 't').leader, part(image, 'off').leader]).toEqual([-1, -1]);
    // For one broker the key is refused: the controller reads it cluster-wide only.
    expect(run(image, alterBrokerConfigs(image, '2', [{ name: 'unclean.leader.election.enable', value: 'true' }], false)).result.errorCode).toBe(ErrorCode.INVALID_CONFIG);
    const validated = run(image, alterBrokerConfigs(image, '', [{ name: 'unclean.leader.election.enable', value: 'true' }], true));
    expect([validated.result.errorCode, part(validated.image, 't').leader]).toEqual([0, -1]);
    image = run(image, alterBrokerConfigs(image, '', [{ name: 'unclean.leader.election.enable', value: 'TRUE' }], false)).image;
    expect(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, '').get('unclean.leader.election.enable')).toBe('true');
    expect(part(image, 't')).toMatchObject({ leader: 2, isr: [2] });
    expect(part(image, 'off').leader).toBe(-1);
    // The topic deleting its own 'false' falls back to the cluster default, and elects.
    image = run(image, alterTopicConfigs(image, 'off', [{ name: 'unclean.leader.election.enable', value: undefined }], false)).image;
    expect(part(image, 'off')).toMatchObject({ leader: 2, isr: [2] });
  });

  it('reads unclean.leader.election.enable as Kafka does, case-insensitively (TRUE enables it)', () => {
    let { image, other } = offline(withTopic(clusterWith([1, 2]), topic('t', 1, 2)), 't');
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'unclean.leader.election.enable', value: ' TRUE' }], false)).image;
    expect(part(image, 't')).toMatchObject({ leader: other, isr: [other] });
    // And at creation, read by a later election: the leader fails, the out-of-sync replica takes over.
    image = withTopic(clusterWith([1, 2]), topic('u', 1, 2, { 'unclean.leader.election.enable': 'True' }));
    const u = part(image, 'u');
    const follower = u.replicas.find((r) => r !== u.leader)!;
    image = run(image, fenceBrokers(image, [follower])).image;
    image = run(image, fenceBrokers(image, [u.leader])).image;
    image = run(image, brokerHeartbeat(image, follower, image.brokers.get(follower)!.epoch, image.offset, false)).image;
    expect(part(image, 'u')).toMatchObject({ leader: follower, isr: [follower] });
  });

  it('prefers a cleanly restarted ISR member over one that crashed (KIP-966)', () => {
    let image = withTopic(clusterWith([1, 2, 3]), { name: 't', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2, 3] }], configs: [] });
    // Broker 2 crashes and comes back with an unclean shutdown; it is unfenced again.
    image = run(image, registerBroker(image, { brokerId: 2, incarnationId: 'inc-2b', endpoints: [{ listener: 'PLAINTEXT', host: 'h', port: 2 }], clusterId: '', previousShutdownClean: false }, () => false)).image;
    image = run(image, brokerHeartbeat(image, 2, image.brokers.get(2)!.epoch, image.offset, false)).image;
    const id = image.topicByName('t')!.id;
    const p = image.partition(id, 0)!;
    image = run(image, alterPartition(image, p.leader, image.brokers.get(p.leader)!.epoch, id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [1, 2, 3], newIsrWithEpochs: [] }])).image;
    // The leader (1) fails: replica order would pick 2, but 3 restarted cleanly.
    image = run(image, fenceBrokers(image, [1])).image;
    expect(part(image, 't').leader).toBe(3);
  });

  it('controlled shutdown moves leadership first, then lets the broker stop', () => {
    let image = withTopic(clusterWith([1, 2, 3]), topic('t', 3, 2));
    const leaders = [0, 1, 2].map((p) => part(image, 't', p).leader);
    const victim = leaders[0]!;
    const { image: after, result } = run(image, brokerHeartbeat(image, victim, image.brokers.get(victim)!.epoch, image.offset, true));
    image = after;
    expect(result.shouldShutDown).toBe(true);
    for (let p = 0; p < 3; p++) {
      expect(part(image, 't', p).leader).not.toBe(victim);
      expect(part(image, 't', p).leader).not.toBe(-1);
    }
    expect(image.brokers.get(victim)!.inControlledShutdown).toBe(true);
  });

  it('a broker whose controlled shutdown completed is fenced, so its restart registers at once (Kafka fences it then)', () => {
    let image = withTopic(clusterWith([1, 2, 3]), topic('t', 3, 2));
    const victim = part(image, 't', 0).leader;
    const { image: after, result } = run(image, brokerHeartbeat(image, victim, image.brokers.get(victim)!.epoch, image.offset, true));
    image = after;
    expect(result).toMatchObject({ shouldShutDown: true, isFenced: true });
    expect(image.brokers.get(victim)!.fenced).toBe(true);
    for (let p = 0; p < 3; p++) expect(part(image, 't', p).isr).not.toContain(victim);
    // Its session is still alive (it stopped a moment ago): the new incarnation is accepted.
    const req = { brokerId: victim, incarnationId: 'restarted', endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9100 + victim }], clusterId: '', previousShutdownClean: true };
    const registered = run(image, registerBroker(image, req, () => true));
    expect(registered.result.errorCode).toBe(ErrorCode.NONE);
    expect(registered.image.brokers.get(victim)!.incarnationId).toBe('restarted');
  });
});

describe('AlterPartition', () => {
  function setup(): { image: MetadataImage; id: string; p: PartitionState } {
    const image = withTopic(clusterWith([1, 2, 3]), topic('t', 1, 3));
    const t = image.topicByName('t')!;
    return { image, id: t.id, p: t.partitions.get(0)! };
  }

  it('refuses a member whose broker registered again since the leader saw it (KIP-903)', () => {
    const { image: start, id, p } = setup();
    const leader = p.leader;
    const follower = p.isr.find((r) => r !== leader)!;
    const leaderEpoch = start.brokers.get(leader)!.epoch;
    const oldFollowerEpoch = start.brokers.get(follower)!.epoch;
    let image = run(start, fenceBrokers(start, [follower])).image;
    let q = image.partition(id, 0)!;
    expect(q.isr).not.toContain(follower);
    // The follower comes back (say, with a wiped disk) and is unfenced; the partition epoch did
    // not move. The leader's expansion still names the epoch of the fetches before the restart.
    image = run(image, registerBroker(image, { brokerId: follower, incarnationId: 'again', endpoints: [{ listener: 'PLAINTEXT', host: 'h', port: 1 }], clusterId: '', previousShutdownClean: false }, () => false)).image;
    image = run(image, brokerHeartbeat(image, follower, image.brokers.get(follower)!.epoch, image.offset, false)).image;
    q = image.partition(id, 0)!;
    const expand = (epochOfFollower: number) => alterPartition(image, leader, leaderEpoch, id, [{ partition: 0, leaderEpoch: q.leaderEpoch, partitionEpoch: q.partitionEpoch, newIsr: [...q.isr, follower].sort(), newIsrWithEpochs: [{ brokerId: follower, brokerEpoch: epochOfFollower }] }]);
    const stale = expand(oldFollowerEpoch);
    expect(stale.finish(image)[0]!.errorCode).toBe(ErrorCode.INELIGIBLE_REPLICA);
    expect(stale.records).toHaveLength(0);
    expect(run(image, expand(image.brokers.get(follower)!.epoch)).result[0]).toMatchObject({ errorCode: 0 });
  });

  it('shrinks and expands the ISR with epoch checks', () => {
    const { image, id, p } = setup();
    const epoch = image.brokers.get(p.leader)!.epoch;
    const follower = p.isr.find((r) => r !== p.leader)!;
    const shrink = run(image, alterPartition(image, p.leader, epoch, id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: p.isr.filter((r) => r !== follower), newIsrWithEpochs: [] }]));
    expect(shrink.result[0]).toMatchObject({ errorCode: 0, isr: p.isr.filter((r) => r !== follower), partitionEpoch: p.partitionEpoch + 1, leaderEpoch: p.leaderEpoch });
    // A stale partition epoch (e.g. a retried request) is refused.
    const stale = alterPartition(shrink.image, p.leader, epoch, id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [...p.isr], newIsrWithEpochs: [] }]);
    expect(stale.finish(shrink.image)[0]!.errorCode).toBe(ErrorCode.INVALID_UPDATE_VERSION);
    expect(stale.records).toHaveLength(0);
  });

  it('rejects stale leaders (zombie), non-leaders, stale broker epochs and ineligible replicas', () => {
    const { image, id, p } = setup();
    const epoch = (b: number): number => image.brokers.get(b)!.epoch;
    const item = { partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [p.leader], newIsrWithEpochs: [] };
    const code = (broker: number, brokerEpoch: number, it = item, topicId = id): number => alterPartition(image, broker, brokerEpoch, topicId, [it]).finish(image)[0]!.errorCode;
    expect(code(p.leader, epoch(p.leader), { ...item, leaderEpoch: p.leaderEpoch - 1 })).toBe(ErrorCode.FENCED_LEADER_EPOCH);
    expect(code(p.leader, epoch(p.leader), { ...item, leaderEpoch: p.leaderEpoch + 1 })).toBe(ErrorCode.UNKNOWN_LEADER_EPOCH);
    const other = p.isr.find((r) => r !== p.leader)!;
    expect(code(other, epoch(other))).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect(code(p.leader, epoch(p.leader) + 100)).toBe(ErrorCode.STALE_BROKER_EPOCH);
    expect(code(p.leader, epoch(p.leader), { ...item, newIsr: [p.leader, 99], newIsrWithEpochs: [] })).toBe(ErrorCode.INELIGIBLE_REPLICA);
    expect(code(p.leader, epoch(p.leader), { ...item, newIsr: [other], newIsrWithEpochs: [] })).toBe(ErrorCode.INVALID_REQUEST);
    expect(code(p.leader, epoch(p.leader), { ...item, partition: 5 })).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(code(p.leader, epoch(p.leader), item, 'ff'.repeat(16))).toBe(ErrorCode.UNKNOWN_TOPIC_ID);
  });

  it('answers a deposed leader\'s stale leader epoch with FENCED_LEADER_EPOCH, as Kafka checks the epoch before the leader', () => {
    const { image: start, id, p } = setup();
    const old = p.leader;
    // Leadership moves away from `old` (it is fenced, then back and unfenced): a new leader epoch.
    let image = run(start, fenceBrokers(start, [old])).image;
    image = run(image, brokerHeartbeat(image, old, image.brokers.get(old)!.epoch, image.offset, false)).image;
    const q = image.partition(id, 0)!;
    expect(q.leader).not.toBe(old);
    expect(q.leaderEpoch).toBeGreaterThan(p.leaderEpoch);
    const zombie = alterPartition(image, old, image.brokers.get(old)!.epoch, id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [old], newIsrWithEpochs: [] }]);
    expect(zombie.finish(image)[0]!.errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH);
    expect(zombie.records).toHaveLength(0);
  });

  it('refuses to add a fenced broker back to the ISR', () => {
    let { image, id, p } = setup();
    const follower = p.isr.find((r) => r !== p.leader)!;
    image = run(image, fenceBrokers(image, [follower])).image;
    p = image.partition(id, 0)!;
    const res = alterPartition(image, p.leader, image.brokers.get(p.leader)!.epoch, id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [...p.isr, follower], newIsrWithEpochs: [] }]);
    expect(res.finish(image)[0]!.errorCode).toBe(ErrorCode.INELIGIBLE_REPLICA);
  });
});

describe('topics', () => {
  it('refuses a request adding over 10000 partitions at once with POLICY_VIOLATION, before building any record (KAFKA-17870, KAFKA-19673)', () => {
    const image = withTopic(clusterWith([1, 2, 3]), topic('grow', 1, 1));
    // 20 topics of 100000 partitions each: built in full, this held the controller's event loop for ~30 s.
    const huge = createTopics(image, Array.from({ length: 20 }, (_, i) => topic(`big${i}`, 100_000, 3)), false, config, nextTopicId);
    expect(huge.records).toEqual([]);
    expect(huge.finish(image).map((r) => r.errorCode)).toEqual(Array(20).fill(ErrorCode.POLICY_VIOLATION));
    const over = createTopics(image, [topic('a', 5_000, 1), topic('b', 5_001, 1)], true, config, nextTopicId);
    expect(over.finish(image).map((r) => r.errorCode)).toEqual([ErrorCode.POLICY_VIOLATION, ErrorCode.POLICY_VIOLATION]);
    const at = createTopics(image, [topic('a', 5_000, 1), topic('b', 5_000, 1)], true, config, nextTopicId);
    expect(at.finish(image).map((r) => r.errorCode)).toEqual([0, 0]);
    const grow = createPartitions(image, [{ name: 'grow', count: 10_002, assignments: [] }], false);
    expect(grow.records).toEqual([]);
    expect(grow.finish(image)[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    expect(createPartitions(image, [{ name: 'grow', count: 10_001, assignments: [] }], true).finish(image)[0]!.errorCode).toBe(0);
  });

  it('validates names, counts, assignments and configs with typed errors', () => {
    const image = withTopic(clusterWith([1, 2, 3]), topic('exists'));
    const results = createTopics(
      image,
      [
        topic('ok.topic', 2, 2),
        topic('bad name!'),
        topic('x'.repeat(250)),
        topic('..'),
        topic('exists'),
        topic('zero', 0, 1),
        topic('rf4', 1, 4),
        topic('badcfg', 1, 1, { 'retention.ms': 'soon' }),
        topic('unknowncfg', 1, 1, { 'retention.mss': '1' }),
        topic('minisr', 1, 2, { 'min.insync.replicas': '3' }),
        { name: 'assigned', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [3, 1] }, { partition: 1, brokerIds: [1, 2] }], configs: [] },
        { name: 'badassign', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 1] }], configs: [] },
        { name: 'gap', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 1, brokerIds: [1] }], configs: [] },
        { name: 'nobroker', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [42] }], configs: [] },
        topic('ok_topic'),
      ],
      false,
      config,
      nextTopicId,
    );
    const codes = Object.fromEntries(results.finish(image).map((r) => [r.name.slice(0, 12), r.errorCode]));
    expect(codes).toEqual({
      'ok.topic': 0,
      'bad name!': ErrorCode.INVALID_TOPIC_EXCEPTION,
      xxxxxxxxxxxx: ErrorCode.INVALID_TOPIC_EXCEPTION,
      '..': ErrorCode.INVALID_TOPIC_EXCEPTION,
      exists: ErrorCode.TOPIC_ALREADY_EXISTS,
      zero: ErrorCode.INVALID_PARTITIONS,
      rf4: ErrorCode.INVALID_REPLICATION_FACTOR,
      badcfg: ErrorCode.INVALID_CONFIG,
      unknowncfg: ErrorCode.INVALID_CONFIG,
      minisr: ErrorCode.INVALID_CONFIG,
      assigned: 0,
      badassign: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      gap: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      nobroker: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      ok_topic: ErrorCode.INVALID_TOPIC_EXCEPTION, // collides with ok.topic created in the same batch
    });
    const after = run(image, results).image;
    expect(after.topicByName('assigned')!.partitions.get(0)!.replicas).toEqual([3, 1]);
    expect(after.topicByName('ok.topic')!.partitions.size).toBe(2);
    expect(after.topicByName('bad name!')).toBeUndefined();
  });

  it('refuses a manual assignment whose partition has no active broker, on create and on adding partitions (Kafka: INVALID_REPLICA_ASSIGNMENT)', () => {
    let image = withTopic(clusterWith([1, 2, 3]), topic('t', 1, 1));
    image = run(image, fenceBrokers(image, [2, 3])).image;
    const assigned = (brokerIds: number[][]) => ({ name: 'm', numPartitions: -1, replicationFactor: -1, assignments: brokerIds.map((ids, partition) => ({ partition, brokerIds: ids })), configs: [] });
    const offline = createTopics(image, [assigned([[1, 2], [2, 3]])], false, config, nextTopicId);
    expect(offline.records).toEqual([]);
    expect(offline.finish(image)[0]).toMatchObject({ errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: expect.stringContaining('partition 1 are fenced or in controlled shutdown') });
    // One active replica is enough: it leads, alone in the ISR, as in Kafka.
    const created = run(image, createTopics(image, [assigned([[2, 1], [1, 3]])], false, config, nextTopicId));
    expect(created.result[0]!.errorCode).toBe(0);
    expect(created.image.topicByName('m')!.partitions.get(0)).toMatchObject({ replicas: [2, 1], isr: [1], leader: 1 });
    const grow = createPartitions(image, [{ name: 't', count: 2, assignments: [{ partition: 1, brokerIds: [3] }] }], false);
    expect(grow.records).toEqual([]);
    expect(grow.finish(image)[0]!.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT);
  });

  it('refuses every entry of a topic named twice in one request with INVALID_REQUEST, creating or deleting nothing of it (Kafka ControllerApis: "Duplicate topic name.")', () => {
    const image = withTopic(clusterWith([1]), topic('old'));
    const created = run(image, createTopics(image, [topic('dup'), topic('other'), topic('dup', 2)], false, config, nextTopicId));
    expect(created.result.map((r) => [r.name, r.errorCode, r.errorMessage])).toEqual([
      ['dup', ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
      ['other', 0, ''],
      ['dup', ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
    ]);
    expect(created.image.topicByName('dup')).toBeUndefined();
    expect(created.image.topicByName('other')).toBeDefined();
    const deleted = run(created.image, deleteTopics(created.image, ['old', 'other', 'old'], config));
    expect(deleted.result.map((r) => [r.name, r.errorCode, r.errorMessage])).toEqual([
      ['old', ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
      ['other', 0, ''],
      ['old', ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
    ]);
    expect(deleted.image.topicByName('old')).toBeDefined();
    expect(deleted.image.topicByName('other')).toBeUndefined();
  });

  it('validate_only creates nothing', () => {
    const image = clusterWith([1]);
    const op = createTopics(image, [topic('t')], true, config, nextTopicId);
    expect(op.records).toHaveLength(0);
    expect(op.finish(image)[0]!.errorCode).toBe(0);
  });

  it('spreads replicas and preferred leaders evenly, across racks', () => {
    const image = clusterWith([1, 2, 3, 4, 5, 6], ['a', 'a', 'b', 'b', 'c', 'c']);
    const placed = placeReplicas(image, 12, 3);
    const leaders = new Map<number, number>();
    const replicas = new Map<number, number>();
    for (const rs of placed) {
      leaders.set(rs[0]!, (leaders.get(rs[0]!) ?? 0) + 1);
      for (const r of rs) replicas.set(r, (replicas.get(r) ?? 0) + 1);
      const racks = rs.map((r) => image.brokers.get(r)!.rack);
      expect(new Set(racks).size).toBe(3);
    }
    expect([...leaders.values()]).toEqual([2, 2, 2, 2, 2, 2]);
    expect([...replicas.values()]).toEqual([6, 6, 6, 6, 6, 6]);
  });

  it('deletes topics and their configs; unknown names are typed errors', () => {
    let image = withTopic(clusterWith([1]), topic('t', 1, 1, { 'retention.ms': '5' }));
    const op = deleteTopics(image, ['t', 'nope'], config);
    expect(op.finish(image).map((r) => r.errorCode)).toEqual([0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]);
    image = run(image, op).image;
    expect(image.topicByName('t')).toBeUndefined();
    expect(image.configsOf(TOPIC, 't').size).toBe(0);
    expect(deleteTopics(image, ['t'], { ...config, 'delete.topic.enable': false }).finish(image)[0]!.errorCode).toBe(ErrorCode.TOPIC_DELETION_DISABLED);
  });

  it('adds partitions, never removes them', () => {
    let image = withTopic(clusterWith([1, 2]), topic('t', 2, 2));
    const grow = run(image, createPartitions(image, [{ name: 't', count: 5, assignments: [] }], false));
    expect(grow.result[0]!.errorCode).toBe(0);
    image = grow.image;
    expect(image.topicByName('t')!.partitions.size).toBe(5);
    expect(createPartitions(image, [{ name: 't', count: 5, assignments: [] }], false).finish(image)[0]!.errorCode).toBe(ErrorCode.INVALID_PARTITIONS);
    expect(createPartitions(image, [{ name: 'zz', count: 5, assignments: [] }], false).finish(image)[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    // A topic named twice would place the same new partitions twice: both entries refused.
    const twice = run(image, createPartitions(image, [{ name: 't', count: 7, assignments: [] }, { name: 't', count: 6, assignments: [] }], false));
    expect(twice.result.map((r) => r.errorCode)).toEqual([ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST]);
    expect(twice.image.topicByName('t')!.partitions.size).toBe(5);
  });

  it('refuses min.compaction.lag.ms above max.compaction.lag.ms (Kafka LogConfig.validateValues), on create and alter', () => {
    const image = withTopic(clusterWith([1]), topic('t', 1, 1, { 'max.compaction.lag.ms': '60000' }));
    const created = createTopics(image, [topic('z', 1, 1, { 'min.compaction.lag.ms': '2000', 'max.compaction.lag.ms': '1000' })], false, config, nextTopicId).finish(image);
    expect(created[0]).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG, errorMessage: expect.stringContaining('min.compaction.lag.ms (2000) > max.compaction.lag.ms (1000)') });
    // Against the topic's other value as set, or its default.
    expect(alterTopicConfigs(image, 't', [{ name: 'min.compaction.lag.ms', value: '60001' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(alterTopicConfigs(image, 't', [{ name: 'min.compaction.lag.ms', value: '60000' }], false).finish(image).errorCode).toBe(0);
    expect(alterTopicConfigs(image, 't', [{ name: 'max.compaction.lag.ms', value: undefined }, { name: 'min.compaction.lag.ms', value: '600000' }], false).finish(image).errorCode).toBe(0);
  });

  it('refuses a compression.type whose codec the brokers lack, when it is set (create or alter)', () => {
    const image = withTopic(clusterWith([1, 2]), topic('t', 1, 2));
    const created = createTopics(image, [topic('z', 1, 2, { 'compression.type': 'zstd' })], false, config, nextTopicId).finish(image);
    expect(created[0]!.errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(alterTopicConfigs(image, 't', [{ name: 'compression.type', value: 'lz4' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(alterTopicConfigs(image, 't', [{ name: 'compression.type', value: 'gzip' }], false).finish(image).errorCode).toBe(0);
  });

  it('appends to and subtracts from a list config, starting from its default when unset (Kafka APPEND / SUBTRACT, KIP-339)', () => {
    let image = withTopic(clusterWith([1]), topic('t'));
    const policy = (img: MetadataImage) => img.configsOf(TOPIC, 't').get('cleanup.policy');
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'cleanup.policy', op: 'append', value: 'compact' }], false)).image;
    expect(policy(image)).toBe('delete,compact');
    // Items already there are not added twice.
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'cleanup.policy', op: 'append', value: 'compact, delete' }], false)).image;
    expect(policy(image)).toBe('delete,compact');
    const validateOnly = alterTopicConfigs(image, 't', [{ name: 'cleanup.policy', op: 'subtract', value: 'delete' }], true);
    expect(validateOnly.records).toEqual([]);
    expect(validateOnly.finish(image).errorCode).toBe(0);
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'cleanup.policy', op: 'subtract', value: 'delete' }, { name: 'retention.ms', value: '1000' }], false)).image;
    expect(policy(image)).toBe('compact');
    expect(image.configsOf(TOPIC, 't').get('retention.ms')).toBe('1000');
    // Only list keys; the result must still be valid.
    expect(alterTopicConfigs(image, 't', [{ name: 'retention.ms', op: 'append', value: '5' }], false).finish(image)).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG, errorMessage: "Can't APPEND to key retention.ms because its type is not LIST." });
    expect(alterTopicConfigs(image, 't', [{ name: 'cleanup.policy', op: 'append', value: 'shred' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(alterTopicConfigs(image, 't', [{ name: 'no.such.key', op: 'subtract', value: 'x' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
    // Dynamic broker configs: the same, on log.cleanup.policy.
    const broker = run(image, alterBrokerConfigs(image, '', [{ name: 'log.cleanup.policy', op: 'append', value: 'compact' }], false)).image;
    expect(broker.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, '').get('log.cleanup.policy')).toBe('delete,compact');
    expect(alterBrokerConfigs(image, '', [{ name: 'log.retention.ms', op: 'subtract', value: '1' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
  });

  it('reads IncrementalAlterConfigs operations off the wire, refusing an unknown operation and a key named twice with INVALID_REQUEST (as Kafka)', () => {
    expect(
      configChangesFromRequest([
        { name: 'a', op: AlterConfigOp.ALTER_CONFIG_SET, value: '1' },
        { name: 'b', op: AlterConfigOp.ALTER_CONFIG_DELETE, value: 'ignored' },
        { name: 'c', op: AlterConfigOp.ALTER_CONFIG_APPEND, value: 'x' },
        { name: 'd', op: AlterConfigOp.ALTER_CONFIG_SUBTRACT, value: 'y' },
      ]),
    ).toEqual([
      { name: 'a', value: '1' },
      { name: 'b', value: undefined },
      { name: 'c', op: 'append', value: 'x' },
      { name: 'd', op: 'subtract', value: 'y' },
    ]);
    expect(() => configChangesFromRequest([{ name: 'a', op: 9 as AlterConfigOp, value: '' }])).toThrow(expect.objectContaining({ errorName: 'INVALID_REQUEST', message: 'Unknown operations type 9' }));
    expect(() => configChangesFromRequest([{ name: 'a', op: AlterConfigOp.ALTER_CONFIG_SET, value: '1' }, { name: 'a', op: AlterConfigOp.ALTER_CONFIG_DELETE, value: '' }])).toThrow(
      expect.objectContaining({ errorName: 'INVALID_REQUEST', message: 'Error due to duplicate config keys : a' }),
    );
  });

  it('describes the keys asked for that exist, leaving out unknown names without an error (Kafka filters by the names given)', () => {
    const image = withTopic(clusterWith([1]), topic('t', 1, 1, { 'retention.ms': '1000' }));
    expect(describeTopicConfigs(image, 't', ['retention.ms', 'no.such.key', 'cleanup.policy']).map((c) => [c.name, c.value, c.isDefault])).toEqual([
      ['retention.ms', '1000', false],
      ['cleanup.policy', 'delete', true],
    ]);
    expect(describeTopicConfigs(image, 't', ['no.such.key'])).toEqual([]);
    expect(describeTopicConfigs(image, 't', [])).toHaveLength(Object.keys(TOPIC_CONFIG.spec).length);
    expect(() => describeTopicConfigs(image, 'zz', [])).toThrow(expect.objectContaining({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' }));
  });

  it('alters configs atomically: a bad value changes nothing', () => {
    let image = withTopic(clusterWith([1, 2]), topic('t', 1, 2));
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'retention.ms', value: '100' }], false)).image;
    const bad = alterTopicConfigs(image, 't', [{ name: 'segment.bytes', value: '2000' }, { name: 'retention.ms', value: 'x' }], false);
    expect(bad.finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(bad.records).toHaveLength(0);
    expect(alterTopicConfigs(image, 't', [{ name: 'min.insync.replicas', value: '3' }], false).finish(image).errorCode).toBe(ErrorCode.INVALID_CONFIG);
    image = run(image, alterTopicConfigs(image, 't', [{ name: 'retention.ms', value: undefined }], false)).image;
    expect(image.configsOf(TOPIC, 't').has('retention.ms')).toBe(false);
  });
});

describe('dynamic broker configs', () => {
  it('stores valid keys for the cluster default or one broker, normalized, and refuses the rest whole', () => {
    let image = clusterWith([1, 2, 3]);
    const alter = (name: string, changes: { name: string; value: string | undefined }[]): { image: MetadataImage; result: { errorCode: number; errorMessage: string } } => run(image, alterBrokerConfigs(image, name, changes, false));
    let r = alter('', [{ name: 'log.retention.ms', value: ' 3600000 ' }, { name: 'min.insync.replicas', value: '2' }]);
    expect(r.result).toEqual({ errorCode: 0, errorMessage: '' });
    image = r.image;
    r = alter('2', [{ name: 'log.cleanup.policy', value: 'compact, delete' }]);
    expect(r.result.errorCode).toBe(0);
    image = r.image;
    expect(Object.fromEntries(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, ''))).toEqual({ 'log.retention.ms': '3600000', 'min.insync.replicas': '2' });
    expect(Object.fromEntries(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, '2'))).toEqual({ 'log.cleanup.policy': 'compact,delete' });
    // Refused as a whole, nothing stored: a key that is not dynamic, a bad value, a bad name.
    for (const [name, changes, code] of [
      ['', [{ name: 'log.retention.hours', value: '1' }, { name: 'num.io.threads', value: '8' }], ErrorCode.INVALID_CONFIG],
      ['', [{ name: 'log.retention.ms', value: 'soon' }], ErrorCode.INVALID_CONFIG],
      ['', [{ name: 'log.cleanup.policy', value: 'archive' }], ErrorCode.INVALID_CONFIG],
      ['1', [{ name: 'min.insync.replicas', value: '0' }], ErrorCode.INVALID_CONFIG],
      ['1', [{ name: 'process.roles', value: undefined }], ErrorCode.INVALID_CONFIG],
      ['broker-1', [{ name: 'min.insync.replicas', value: '2' }], ErrorCode.INVALID_REQUEST],
    ] as const) {
      const bad = alter(name, changes.map((c) => ({ ...c })));
      expect([name, bad.result.errorCode]).toEqual([name, code]);
      expect(bad.image.toRecords()).toEqual(image.toRecords());
    }
    // Deleting a key returns the resource to what is left; the snapshot keeps both resources.
    image = alter('', [{ name: 'min.insync.replicas', value: undefined }]).image;
    expect(Object.fromEntries(image.configsOf(ConfigResourceType.CONFIG_RESOURCE_BROKER, ''))).toEqual({ 'log.retention.ms': '3600000' });
    expect(MetadataImage.fromRecords(image.offset, image.toRecords()).toRecords()).toEqual(image.toRecords());
  });
});

describe('leader elections on request', () => {
  it('preferred election returns leadership to the first replica when it is in sync', () => {
    let image = withTopic(clusterWith([1, 2]), topic('t', 1, 2));
    const preferred = part(image, 't').replicas[0]!;
    image = run(image, fenceBrokers(image, [preferred])).image;
    expect(part(image, 't').leader).not.toBe(preferred);
    expect(electLeaders(image, 'preferred', [{ topic: 't', partition: 0 }]).finish(image)[0]!.errorCode).toBe(ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE);
    image = run(image, brokerHeartbeat(image, preferred, image.brokers.get(preferred)!.epoch, image.offset, false)).image;
    // Back, but not in the ISR until the leader adds it.
    const p = part(image, 't');
    image = run(image, alterPartition(image, p.leader, image.brokers.get(p.leader)!.epoch, image.topicByName('t')!.id, [{ partition: 0, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [p.leader, preferred], newIsrWithEpochs: [] }])).image;
    expect(autoRebalance(image, 10)).toHaveLength(1);
    image = run(image, electLeaders(image, 'preferred', 'all')).image;
    expect(part(image, 't').leader).toBe(preferred);
    expect(electLeaders(image, 'preferred', [{ topic: 't', partition: 0 }]).finish(image)[0]!.errorCode).toBe(ErrorCode.ELECTION_NOT_NEEDED);
  });

  it('unclean election on request picks a live out-of-sync replica', () => {
    let image = withTopic(clusterWith([1, 2]), topic('t', 1, 2));
    const p0 = part(image, 't');
    const other = p0.isr.find((r) => r !== p0.leader)!;
    image = run(image, fenceBrokers(image, [other])).image;
    image = run(image, fenceBrokers(image, [p0.leader])).image;
    expect(electLeaders(image, 'unclean', [{ topic: 't', partition: 0 }]).finish(image)[0]!.errorCode).toBe(ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE);
    image = run(image, brokerHeartbeat(image, other, image.brokers.get(other)!.epoch, image.offset, false)).image;
    image = run(image, electLeaders(image, 'unclean', [{ topic: 't', partition: 0 }])).image;
    expect(part(image, 't')).toMatchObject({ leader: other, isr: [other] });
  });
});

describe('producer ids', () => {
  it('hands out disjoint blocks to the registered epoch only', () => {
    let image = clusterWith([1, 2]);
    const a = run(image, allocateProducerIds(image, 1, image.brokers.get(1)!.epoch, 1000));
    image = a.image;
    const b = run(image, allocateProducerIds(image, 2, image.brokers.get(2)!.epoch, 1000));
    expect([a.result.producerIdStart, b.result.producerIdStart]).toEqual([0, 1000]);
    expect(allocateProducerIds(image, 2, 1, 1000).finish(image).errorCode).toBe(ErrorCode.STALE_BROKER_EPOCH);
  });
});

describe('non-atomic operations (committed in several Raft entries when large)', () => {
  type Trigger = (image: MetadataImage) => { records: MetadataRecord[]; atomic?: boolean };
  const state = (image: MetadataImage): unknown => ({
    brokers: [...image.brokers.values()].map((b) => [b.id, b.fenced, b.inControlledShutdown, b.logDirId, b.logDirReplaced]),
    partitions: [...image.allPartitions()].map(([t, p]) => [t.name, p.partition, p.leader, p.isr]),
  });

  /**
   * Commits every prefix of the trigger's records, then runs the trigger again on that image (as
   * the controller does after a failover or a retried request) and commits all it builds: the
   * outcome is always the one the whole batch gives.
   */
  function checkPrefixes(image: MetadataImage, trigger: Trigger): void {
    const op = trigger(image);
    expect(op.atomic).toBe(false);
    expect(op.records.length).toBeGreaterThan(2);
    const whole = state(image.apply(image.offset + 1, op.records));
    for (let k = 0; k < op.records.length; k++) {
      const partial = k === 0 ? image : image.apply(image.offset + 1, op.records.slice(0, k));
      const rest = trigger(partial).records;
      expect(state(rest.length === 0 ? partial : partial.apply(partial.offset + 1, rest))).toEqual(whole);
    }
  }

  function cluster(): MetadataImage {
    let image = clusterWith([1, 2, 3, 4]);
    image = withTopic(image, topic('rf3', 12, 3));
    image = withTopic(image, topic('rf1', 8, 1));
    return image;
  }

  it('fencing a broker: every committed prefix leads to the same outcome (the fence record comes last)', () => {
    const image = cluster();
    const op = fenceBrokers(image, [1]);
    expect(op.records[op.records.length - 1]).toEqual({ fenceBroker: { brokerId: 1, brokerEpoch: image.brokers.get(1)!.epoch } });
    checkPrefixes(image, (img) => fenceBrokers(img, [1]));
  });

  it('controlled shutdown and unfencing: the same, with the broker\'s record last', () => {
    const image = cluster();
    const epoch = image.brokers.get(2)!.epoch;
    checkPrefixes(image, (img) => brokerHeartbeat(img, 2, epoch, img.offset, true));
    const fenced = run(image, fenceBrokers(image, [2])).image;
    checkPrefixes(fenced, (img) => brokerHeartbeat(img, 2, epoch, img.offset, false));
  });

  it('a registration from a replaced log directory: the same (a retried registration rebuilds what is left)', () => {
    let image = cluster();
    const req = { brokerId: 3, incarnationId: 'inc-3', endpoints: [{ listener: 'PLAINTEXT', host: '127.0.0.1', port: 9003 }], clusterId: '', previousShutdownClean: true, logDirId: 'dir-a' };
    image = run(image, registerBroker(image, req, () => false)).image;
    image = run(image, brokerHeartbeat(image, 3, image.brokers.get(3)!.epoch, image.offset, false)).image;
    checkPrefixes(image, (img) => registerBroker(img, { ...req, incarnationId: 'inc-3b', logDirId: 'dir-b' }, () => false));
  });

  it('preferred elections: the same', () => {
    let image = cluster();
    // Every rf3 partition led by its second replica.
    const moves: MetadataRecord[] = [...image.topicByName('rf3')!.partitions.values()].map((p) => ({ partitionChange: { topicId: topicIdToBytes(p.topicId), partition: p.partition, leader: p.replicas[1]!, isr: null, replicas: null, addingReplicas: null, removingReplicas: null } }));
    image = image.apply(image.offset + 1, moves);
    checkPrefixes(image, (img) => electLeaders(img, 'preferred', 'all'));
  });
});
