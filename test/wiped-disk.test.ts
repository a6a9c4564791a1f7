/**
 * A broker whose log directory was wiped (a replaced disk) while it was the last ISR member of a
 * partition. Its new `directory.id` tells the controller it no longer holds the data: it must
 * not come back as that partition's leader with an empty log (the other replica would then
 * truncate to nothing and offsets would be reused). The partition stays offline until an
 * unclean election, which elects the out-of-sync replica and keeps everything it holds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProcessCluster } from './support/process-cluster';
import { cli } from './support/strand-cli';
import { TestBrokers } from './support/test-producer';
import { until } from './support/until';

jest.setTimeout(120_000);

test('a broker back with a wiped disk is not elected where it was the last replica standing', async () => {
  const cluster = await ProcessCluster.create({ controllers: 3, combined: true, overrides: ['broker.session.timeout.ms=2000', 'broker.heartbeat.interval.ms=200', 'replica.lag.time.max.ms=2000'] });
  const brokers = new TestBrokers(cluster.brokerAddresses());
  const partition = async () => (await brokers.metadata(['w'])).topics[0]?.partitions[0];
  try {
    cluster.startAll();
    await until('three brokers', async () => ((await brokers.metadata([])).brokers.length === 3 ? true : undefined), 60_000);
    const created = await brokers.createTopics({ topics: [{ name: 'w', numPartitions: -1, replicationFactor: -1, assignments: [{ partition: 0, brokerIds: [1, 2] }], configs: [] }], validateOnly: false });
    expect(created.topics[0]?.errorCode).toBe(0);
    const producer = { id: 7, epoch: 0 };
    let seq = 0;
    const send = (v: string) => brokers.sendIdempotent('w', 0, v, producer, seq++, performance.now() + 60_000);
    const early = ['a0', 'a1', 'a2', 'a3', 'a4'];
    for (const v of early) await send(v);
    await until('both replicas in sync', async () => ((await partition())?.isr.length === 2 ? true : undefined), 30_000);

    // Broker 2 goes away; broker 1 alone holds what follows.
    await cluster.kill(2);
    await until('ISR [1]', async () => (JSON.stringify((await partition())?.isr) === '[1]' ? true : undefined), 30_000);
    for (const v of ['b0', 'b1']) await send(v);
    const epochBefore = (await partition())!.leaderEpoch;

    // Broker 1 loses its disk (its controller's Raft log survives) and returns; then broker 2.
    await cluster.kill(1);
    const logs = path.join(cluster.node(1).dataDir, 'logs');
    const oldDirId = /^directory\.id=(\S+)/m.exec(fs.readFileSync(path.join(logs, 'meta.properties'), 'utf8'))?.[1];
    expect(oldDirId).toBeDefined();
    fs.rmSync(logs, { recursive: true, force: true });
    cluster.start(1);
    cluster.start(2);
    // Both new processes registered and unfenced (an old incarnation's session can outlive it
    // for a while, e.g. after the controller on node 1 died with it and sessions restarted).
    for (const id of [1, 2]) await until(`broker ${id} ready`, async () => ((await cluster.httpStatus(id, '/readyz')) === 200 ? true : undefined), 60_000);
    // Broker 1's new registration takes it out of leadership (a new leader epoch); once both
    // brokers are unfenced again the partition has settled.
    const back = await until('brokers 1 and 2 registered and unfenced again', async () => {
      const p = await partition();
      return p !== undefined && p.leaderEpoch > epochBefore && p.offlineReplicas.length === 0 ? p : undefined;
    }, 60_000);
    // Offline: no leader and an empty ISR, rather than broker 1 leading an empty log.
    expect(back).toMatchObject({ leaderId: -1, isr: [] });
    const meta = fs.readFileSync(path.join(logs, 'meta.properties'), 'utf8');
    expect(/^directory\.id=(\S+)/m.exec(meta)?.[1]).not.toBe(oldDirId);

    // The operator accepts losing what only broker 1 held: the out-of-sync replica leads with all
    // it has, and new writes follow it.
    const altered = await cli(['topics', 'alter', 'w', '--config', 'unclean.leader.election.enable=true'], cluster.brokerAddresses()[2]!);
    expect(altered.code).toBe(0);
    await until('broker 2 leads', async () => ((await partition())?.leaderId === 2 ? true : undefined), 30_000);
    // A new producer: broker 2 never saw this one's last sequences.
    await brokers.sendIdempotent('w', 0, 'c0', { id: 8, epoch: 0 }, 0, performance.now() + 60_000);
    await until('the wiped broker catches up', async () => ((await partition())?.isr.length === 2 ? true : undefined), 30_000);
    expect((await brokers.readAll('w', 0)).map((r) => r.value)).toEqual([...early, 'c0']);
  } finally {
    brokers.close();
    await cluster.close();
  }
});
