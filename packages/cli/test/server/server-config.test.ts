/**
 * `strand server` configuration: properties and YAML files, --override, STRAND_* environment
 * variables (later forms win), and validation errors that name the key.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StrandError } from '@strand/protocol';
import { KAFKA_IGNORED_KEYS, configFromEnv, parseListeners, parseProperties, parseVoters, resolveServerConfig } from '../../src';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-cfg-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(StrandError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

const base = ['node.id=1', 'controller.quorum.voters=1@127.0.0.1:9193', 'process.roles=controller', 'listeners=CONTROLLER://127.0.0.1:9193'];

describe('server configuration', () => {
  it('reads properties, then overrides, then environment (later wins)', () => {
    const file = write('a.properties', '# comment\nnode.id = 1\ncontroller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.1:9194\nprocess.roles: controller\nlisteners=CONTROLLER://0.0.0.0:9193\nbroker.session.timeout.ms=5000\n');
    const cfg = resolveServerConfig({ file, overrides: ['broker.session.timeout.ms=6000'], env: { STRAND_BROKER_SESSION_TIMEOUT_MS: '7000', OTHER: 'x' } });
    expect(cfg.nodeId).toBe(1);
    expect(cfg.values['broker.session.timeout.ms']).toBe(7000);
    expect(cfg.voters).toEqual([{ id: 1, host: '127.0.0.1', port: 9193 }, { id: 2, host: '127.0.0.1', port: 9194 }]);
    expect(cfg.roles).toEqual({ broker: false, controller: true });
    expect(cfg.advertised.get('CONTROLLER')).toEqual({ name: 'CONTROLLER', host: '127.0.0.1', port: 9193 });
  });

  it('reads nested YAML', () => {
    const file = write('a.yaml', 'node:\n  id: 1\ncontroller:\n  quorum:\n    voters: "1@127.0.0.1:9193"\nprocess.roles: [controller]\nlisteners: CONTROLLER://127.0.0.1:9193\nlog:\n  dirs: [/tmp/a]\n');
    const cfg = resolveServerConfig({ file });
    expect(cfg.values['log.dirs']).toEqual(['/tmp/a']);
    expect(cfg.metadataLogDir).toBe('/tmp/a');
  });

  it('reads properties as java.util.Properties does: continuations, escapes, blank or colon separators', () => {
    expect(parseProperties('# c\n! c\na.b = 1\nc.d:2\ne.f 3\n  g.h\t=\t4  \nvoters=1@h:1,\\\n   2@h:2\nrack=rack\\=a\\u0041\nempty=\n')).toEqual([
      { key: 'a.b', value: '1' },
      { key: 'c.d', value: '2' },
      { key: 'e.f', value: '3' },
      { key: 'g.h', value: '4' },
      { key: 'voters', value: '1@h:1,2@h:2' },
      { key: 'rack', value: 'rack=aA' },
      { key: 'empty', value: '' },
    ]);
    const file = write('java.properties', 'node.id 1\ncontroller.quorum.voters=1@127.0.0.1:9193,\\\n    2@127.0.0.1:9194\nprocess.roles=controller\nlisteners=CONTROLLER://127.0.0.1:9193\n');
    expect(resolveServerConfig({ file }).voters.map((v) => v.id)).toEqual([1, 2]);
  });

  it('refuses combinations that could never work', () => {
    // Several log directories (JBOD) are not supported: refused, not silently reduced to one.
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'log.dirs=/tmp/a,/tmp/b'] }))).toMatch(/log\.dirs.*only one directory/);
    // The controller listener must be where the other voters look for this node.
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'listeners=CONTROLLER://127.0.0.1:9999'] }))).toMatch(/listeners.*9999.*voter entry/);
    // A voter id on a broker-only node.
    expect(errorOf(() => resolveServerConfig({ overrides: ['node.id=1', 'controller.quorum.voters=1@127.0.0.1:9193', 'process.roles=broker', 'listeners=BROKER://127.0.0.1:9092'] }))).toMatch(/node\.id.*voter/);
    // Kafka's rule: a replica fetch held replica.fetch.wait.max.ms must not count as timed out.
    expect(resolveServerConfig({ overrides: base }).values['replica.socket.timeout.ms']).toBe(30_000);
    expect(resolveServerConfig({ overrides: [...base, 'replica.socket.timeout.ms=500'] }).values['replica.socket.timeout.ms']).toBe(500);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'replica.socket.timeout.ms=499'] }))).toBe('Invalid value 499 for configuration replica.socket.timeout.ms: it must be at least replica.fetch.wait.max.ms (500)');
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'replica.fetch.wait.max.ms=40000'] }))).toMatch(/replica\.socket\.timeout\.ms: it must be at least replica\.fetch\.wait\.max\.ms \(40000\)/);
  });

  it('rejects bad input with errors naming the key', () => {
    expect(errorOf(() => resolveServerConfig({ overrides: base.filter((o) => !o.startsWith('node.id')) }))).toMatch(/node\.id/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'node.id=abc'] }))).toBe('Invalid value abc for configuration node.id: Not a number of type INT');
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'controller.quorum.voters=1@host'] }))).toMatch(/controller\.quorum\.voters.*id@host:port/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'node.id=5'] }))).toMatch(/not a voter/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'listeners=BROKER://127.0.0.1:1'] }))).toMatch(/CONTROLLER:\/\/ listener/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'no.such.key=1'] }))).toBe('Unknown configuration no.such.key');
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'process.roles=worker'] }))).toMatch(/process\.roles/);
    expect(errorOf(() => resolveServerConfig({ overrides: ['novalue'] }))).toMatch(/key=value/);
    expect(errorOf(() => configFromEnv({ STRAND_NOPE: '1' }))).toMatch(/STRAND_NOPE/);
    expect(configFromEnv({ STRAND_BOOTSTRAP: '127.0.0.1:9093' })).toEqual({}); // the client commands' variable
    expect(errorOf(() => resolveServerConfig({ file: write('bad.properties', 'just text\n') }))).toBe('Unknown configuration just'); // Java: key 'just', value 'text'
    expect(errorOf(() => resolveServerConfig({ file: path.join(dir, 'missing.properties') }))).toMatch(/cannot read config file/);
  });

  describe('several listeners (Kafka: listeners, advertised.listeners, inter.broker.listener.name, listener.security.protocol.map)', () => {
    const broker = ['node.id=101', 'controller.quorum.voters=1@127.0.0.1:9193', 'process.roles=broker'];
    const two = [...broker, 'listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092', 'advertised.listeners=INTERNAL://broker-1:9092,EXTERNAL://localhost:19092'];

    it('resolves every broker listener with its advertised address; the inter-broker listener defaults to the first', () => {
      const cfg = resolveServerConfig({ overrides: two });
      expect(cfg.brokerListeners.map((l) => l.name)).toEqual(['INTERNAL', 'EXTERNAL']);
      expect([...cfg.advertised.values()]).toEqual([{ name: 'INTERNAL', host: 'broker-1', port: 9092 }, { name: 'EXTERNAL', host: 'localhost', port: 19092 }]);
      expect(cfg.interBrokerListener).toBe('INTERNAL');
      expect(resolveServerConfig({ overrides: [...two, 'inter.broker.listener.name=external'] }).interBrokerListener).toBe('EXTERNAL');
      // Combined mode: the controller listener is not a broker listener.
      const combined = resolveServerConfig({ overrides: ['node.id=1', 'controller.quorum.voters=1@127.0.0.1:9193', 'listeners=CONTROLLER://0.0.0.0:9193,INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092'] });
      expect(combined.brokerListeners.map((l) => l.name)).toEqual(['INTERNAL', 'EXTERNAL']);
      expect(combined.interBrokerListener).toBe('INTERNAL');
      // An advertised listener left out falls back to its listeners entry.
      expect(resolveServerConfig({ overrides: [...broker, 'listeners=A://0.0.0.0:1,B://10.0.0.5:2', 'advertised.listeners=A://a:1'] }).advertised.get('B')).toEqual({ name: 'B', host: '10.0.0.5', port: 2 });
      expect(resolveServerConfig({ overrides: [...two, 'listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:plaintext'] }).brokerListeners).toHaveLength(2);
    });

    it('a single listener resolves as before', () => {
      const cfg = resolveServerConfig({ overrides: [...broker, 'listeners=BROKER://0.0.0.0:9093'] });
      expect(cfg.brokerListeners).toEqual([{ name: 'BROKER', host: '0.0.0.0', port: 9093 }]);
      expect(cfg.advertised.get('BROKER')).toEqual({ name: 'BROKER', host: '127.0.0.1', port: 9093 });
      expect(cfg.interBrokerListener).toBe('BROKER');
    });

    it('rejects bad combinations with errors naming the key', () => {
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'inter.broker.listener.name=REPLICATION'] }))).toBe('Invalid value REPLICATION for configuration inter.broker.listener.name: listener REPLICATION is not one of listeners (INTERNAL, EXTERNAL)');
      expect(errorOf(() => resolveServerConfig({ overrides: ['node.id=1', 'controller.quorum.voters=1@127.0.0.1:9193', 'listeners=CONTROLLER://:9193,BROKER://:9093', 'inter.broker.listener.name=CONTROLLER'] }))).toMatch(/inter\.broker\.listener\.name: CONTROLLER is the controller listener/);
      expect(errorOf(() => resolveServerConfig({ overrides: [...broker, 'listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://127.0.0.1:9092'] }))).toBe('Invalid value INTERNAL://0.0.0.0:9092,EXTERNAL://127.0.0.1:9092 for configuration listeners: listeners INTERNAL and EXTERNAL use the same port 9092; each listener needs its own port');
      expect(resolveServerConfig({ overrides: [...broker, 'listeners=INTERNAL://:0,EXTERNAL://:0'] }).brokerListeners).toHaveLength(2); // port 0: any free port, twice is fine
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'advertised.listeners=INTERNAL://broker-1:9092,PUBLIC://example.com:443'] }))).toBe('Invalid value INTERNAL://broker-1:9092,PUBLIC://example.com:443 for configuration advertised.listeners: listener PUBLIC is not one of listeners (INTERNAL, EXTERNAL)');
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'advertised.listeners=INTERNAL://0.0.0.0:9092'] }))).toMatch(/advertised\.listeners: listener INTERNAL advertises 0\.0\.0\.0/);
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SSL'] }))).toBe('Invalid value INTERNAL:PLAINTEXT,EXTERNAL:SSL for configuration listener.security.protocol.map: listener EXTERNAL: security protocol SSL is not supported yet (Strand listeners are PLAINTEXT only)');
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:HTTP'] }))).toMatch(/unknown security protocol HTTP for listener EXTERNAL/);
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'listener.security.protocol.map=INTERNAL:PLAINTEXT'] }))).toMatch(/listener\.security\.protocol\.map: no security protocol for listener EXTERNAL/);
      expect(errorOf(() => resolveServerConfig({ overrides: [...two, 'listener.security.protocol.map=INTERNAL=PLAINTEXT'] }))).toMatch(/is not NAME:PROTOCOL/);
    });
  });

  it("starts from the server.properties Kafka ships for KRaft: keys with no effect here are accepted (and listed), SSL entries of unused listeners allowed", () => {
    const file = write(
      'kafka.properties',
      [
        'process.roles=broker,controller',
        'node.id=1',
        'controller.quorum.voters=1@localhost:9093',
        'listeners=PLAINTEXT://:9092,CONTROLLER://:9093',
        'inter.broker.listener.name=PLAINTEXT',
        'advertised.listeners=PLAINTEXT://localhost:9092',
        'controller.listener.names=CONTROLLER',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL',
        'num.network.threads=3',
        'num.io.threads=8',
        'socket.send.buffer.bytes=102400',
        'socket.receive.buffer.bytes=102400',
        'socket.request.max.bytes=104857600',
        'log.dirs=/tmp/kraft-combined-logs',
        'num.partitions=1',
        'num.recovery.threads.per.data.dir=1',
        'offsets.topic.replication.factor=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'log.retention.hours=168',
        'log.segment.bytes=1073741824',
        'log.retention.check.interval.ms=300000',
        '',
      ].join('\n'),
    );
    const cfg = resolveServerConfig({ file });
    expect(cfg.brokerListeners.map((l) => l.name)).toEqual(['PLAINTEXT']);
    expect(Object.keys(KAFKA_IGNORED_KEYS).filter((k) => cfg.explicitKeys.has(k)).sort()).toEqual(['num.io.threads', 'num.network.threads', 'num.recovery.threads.per.data.dir', 'socket.receive.buffer.bytes', 'socket.request.max.bytes', 'socket.send.buffer.bytes', 'transaction.state.log.min.isr', 'transaction.state.log.replication.factor']);
    expect(cfg.topicDefaults.get('retention.ms')?.value).toBe(String(168 * 3_600_000));
    // A listener in use must still be PLAINTEXT; ZooKeeper mode is refused with what to set instead.
    expect(errorOf(() => resolveServerConfig({ file, overrides: ['listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:SSL'] }))).toMatch(/listener PLAINTEXT: security protocol SSL is not supported yet/);
    // A broker-only node binds no controller listener, but reaches the controllers through it.
    const brokerOnly = ['process.roles=broker', 'node.id=4', 'listeners=PLAINTEXT://:9092'];
    expect(resolveServerConfig({ file, overrides: [...brokerOnly, 'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL'] }).roles).toEqual({ broker: true, controller: false });
    expect(errorOf(() => resolveServerConfig({ file, overrides: [...brokerOnly, 'listener.security.protocol.map=CONTROLLER:SSL,PLAINTEXT:PLAINTEXT'] }))).toMatch(/listener CONTROLLER: security protocol SSL is not supported yet/);
    expect(errorOf(() => resolveServerConfig({ file, overrides: ['zookeeper.connect=localhost:2181'] }))).toMatch(/KRaft mode only .*controller\.quorum\.voters/);
  });

  it("reads Kafka's broker-level topic defaults (log.retention.hours, min.insync.replicas...): the most specific key set wins", () => {
    const file = write('defaults.properties', 'log.retention.hours=24\nlog.retention.minutes=90\nlog.roll.hours=2\nlog.cleanup.policy=compact,delete\nmin.insync.replicas=2\nunclean.leader.election.enable=false\n');
    const cfg = resolveServerConfig({ file, overrides: base });
    expect(Object.fromEntries([...cfg.topicDefaults].map(([k, d]) => [k, d]))).toEqual({
      'retention.ms': { value: String(90 * 60_000), synonym: 'log.retention.minutes' },
      'segment.ms': { value: String(2 * 3_600_000), synonym: 'log.roll.hours' },
      'cleanup.policy': { value: 'compact,delete', synonym: 'log.cleanup.policy' },
      'min.insync.replicas': { value: '2', synonym: 'min.insync.replicas' },
      // Stated in the file (only false is accepted there), it is the topics' static default too.
      'unclean.leader.election.enable': { value: 'false', synonym: 'unclean.leader.election.enable' },
    });
    // log.retention.ms wins over both; a negative retention is forever (-1), as Kafka reads it.
    expect(resolveServerConfig({ file, overrides: [...base, 'log.retention.ms=1000'] }).topicDefaults.get('retention.ms')).toEqual({ value: '1000', synonym: 'log.retention.ms' });
    expect(resolveServerConfig({ overrides: [...base, 'log.retention.hours=-1'] }).topicDefaults.get('retention.ms')?.value).toBe('-1');
    // Keys left unset give no default: the topic defaults apply.
    expect(resolveServerConfig({ overrides: base }).topicDefaults.size).toBe(0);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'min.insync.replicas=0'] }))).toMatch(/min.insync.replicas/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'log.cleanup.policy=keep'] }))).toMatch(/log.cleanup.policy/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'unclean.leader.election.enable=true'] }))).toMatch(/unclean leader election per topic .* or cluster-wide as a dynamic config/);
  });

  it('parses voters and listeners', () => {
    expect(parseVoters('1@[::1]:9193')).toEqual([{ id: 1, host: '::1', port: 9193 }]);
    expect(() => parseVoters('1@a:1,1@b:2')).toThrow(/twice/);
    expect([...parseListeners('listeners', 'broker://:9093').values()]).toEqual([{ name: 'BROKER', host: '0.0.0.0', port: 9093 }]);
  });
});
