// Checks the controller model's rules the simulator relies on: elections only from the ISR of
// unfenced brokers with both epochs bumped, the last ISR member kept when fenced, KIP-966's
// preference for replicas that did not restart uncleanly (and their exclusion under
// flush.policy=page-cache), and AlterPartition's epoch and eligibility checks.

import { SimController, chooseLeader } from '../../src/sim/sim-controller';

describe('chooseLeader (KIP-966)', () => {
  const none = (): boolean => false;
  test('prefers unfenced ISR members that did not restart uncleanly', () => {
    expect(chooseLeader([1, 2, 3], (r) => r === 1, (r) => r === 2, 'fsync')).toBe(3);
    expect(chooseLeader([1, 2], none, none, 'fsync')).toBe(1);
  });
  test('an uncleanly restarted last replica is electable only when only durable bytes counted', () => {
    expect(chooseLeader([2], none, (r) => r === 2, 'fsync')).toBe(2);
    expect(chooseLeader([2], none, (r) => r === 2, 'page-cache')).toBeNull();
    expect(chooseLeader([2], (r) => r === 2, none, 'fsync')).toBeNull();
  });
});

describe('SimController', () => {
  test('fencing the leader elects from the rest of the ISR and bumps both epochs', () => {
    const c = new SimController({ replicas: [1, 2, 3], sessionTimeoutSteps: 5, flushPolicy: 'fsync' });
    for (const b of [2, 3]) c.onHeartbeat(b, 0, false, 10);
    c.tick(10); // broker 1 silent since step 0
    expect(c.state).toMatchObject({ leader: 2, leaderEpoch: 1, partitionEpoch: 1, isr: [2, 3] });
    c.onHeartbeat(3, 0, false, 18);
    c.tick(20);
    expect(c.state).toMatchObject({ leader: 3, leaderEpoch: 2, isr: [3] });
    c.tick(30);
    expect(c.state).toMatchObject({ leader: null, leaderEpoch: 3, isr: [3] }); // the last member stays
    c.onHeartbeat(2, 0, false, 31);
    expect(c.state).toMatchObject({ leader: null }); // 2 is not in the ISR: no unclean election
    c.onHeartbeat(3, 0, false, 31);
    expect(c.state).toMatchObject({ leader: 3, leaderEpoch: 4, isr: [3] });
  });

  test('AlterPartition is checked against leader epoch, leader, partition epoch and fencing', () => {
    const c = new SimController({ replicas: [1, 2, 3], sessionTimeoutSteps: 100, flushPolicy: 'fsync' });
    expect(c.onAlterPartition({ leaderId: 1, leaderEpoch: 1, partitionEpoch: 0, newIsr: [1, 2] })).toEqual({ error: 'FENCED_LEADER_EPOCH' });
    expect(c.onAlterPartition({ leaderId: 2, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1, 2] })).toEqual({ error: 'NOT_LEADER_OR_FOLLOWER' });
    expect(c.onAlterPartition({ leaderId: 1, leaderEpoch: 0, partitionEpoch: 3, newIsr: [1, 2] })).toEqual({ error: 'INVALID_UPDATE_VERSION' });
    expect(c.onAlterPartition({ leaderId: 1, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1] })).toEqual({ error: null, leaderEpoch: 0, partitionEpoch: 1, isr: [1] });
    c.tick(200); // everyone silent: 2 and 3 fenced (1 too, but it is the last ISR member)
    expect(c.onAlterPartition({ leaderId: 1, leaderEpoch: c.state.leaderEpoch, partitionEpoch: c.state.partitionEpoch, newIsr: [1, 2] })).toMatchObject({ error: expect.any(String) });
  });
});
