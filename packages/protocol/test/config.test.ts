/** Kafka-style config definitions: defaults, typed parsing from strings, ranges, enumerations and Kafka-worded errors. */
import { StrandError, TOPIC_CONFIG, defineConfig, effectiveTopicDefaults, topicDefaultsFromBroker, validateDynamicBrokerConfigs } from '../src';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(StrandError);
    expect((e as StrandError).errorName).toBe('INVALID_CONFIG');
    return (e as Error).message;
  }
  throw new Error('expected INVALID_CONFIG');
}

describe('TOPIC_CONFIG', () => {
  it("has Kafka's defaults", () => {
    const d = TOPIC_CONFIG.defaults();
    expect(d['segment.bytes']).toBe(1073741824);
    expect(d['retention.ms']).toBe(604800000);
    expect(d['cleanup.policy']).toEqual(['delete']);
    expect(d['min.insync.replicas']).toBe(1);
    expect(d['unclean.leader.election.enable']).toBe(false);
    expect(d['max.message.bytes']).toBe(1048588);
    expect(d['flush.policy']).toBe('fsync');
  });
  it('parses strings into typed values', () => {
    const c = TOPIC_CONFIG.parse({ 'segment.bytes': '1048576', 'cleanup.policy': 'compact,delete', 'unclean.leader.election.enable': 'TRUE', 'min.cleanable.dirty.ratio': '0.25' });
    expect(c['segment.bytes']).toBe(1048576);
    expect(c['cleanup.policy']).toEqual(['compact', 'delete']);
    expect(c['unclean.leader.election.enable']).toBe(true);
    expect(c['min.cleanable.dirty.ratio']).toBe(0.25);
  });
  it('rejects bad values with clear, Kafka-worded errors', () => {
    expect(message(() => TOPIC_CONFIG.parse({ 'segment.bytes': 'abc' }))).toBe('Invalid value abc for configuration segment.bytes: Not a number of type INT');
    expect(message(() => TOPIC_CONFIG.parse({ 'segment.bytes': '10' }))).toBe('Invalid value 10 for configuration segment.bytes: Value must be at least 14');
    expect(message(() => TOPIC_CONFIG.parse({ 'segment.bytes': '99999999999' }))).toMatch(/Not a number of type INT/);
    expect(message(() => TOPIC_CONFIG.parse({ 'cleanup.policy': 'delete,forever' }))).toMatch(/String must be one of: delete, compact/);
    expect(message(() => TOPIC_CONFIG.parse({ 'unclean.leader.election.enable': 'yes' }))).toMatch(/either true or false/);
    expect(message(() => TOPIC_CONFIG.parse({ 'retention.mss': '1' }))).toBe('Unknown configuration retention.mss');
    expect(message(() => TOPIC_CONFIG.parse({ 'min.cleanable.dirty.ratio': '1.5' }))).toMatch(/no more than 1/);
  });
  it('renders a documentation table', () => {
    expect(TOPIC_CONFIG.toMarkdown()).toContain('| `retention.ms` | long | `604800000` |');
  });
});

describe('defineConfig', () => {
  it('refuses an invalid default at definition time', () => {
    expect(() => defineConfig({ 'x.y': { type: 'int', default: 5, min: 10, doc: 'x' } })).toThrow(/default 5 is invalid/);
  });
  it('runs custom validators', () => {
    const def = defineConfig({ 'a.b': { type: 'string', default: 'ok', doc: 'x', validate: (v: string) => (v.length > 3 ? 'too long' : undefined) } });
    expect(message(() => def.parse({ 'a.b': 'long!' }))).toBe('Invalid value long! for configuration a.b: too long');
  });
});

describe('dynamic broker configs', () => {
  const HOUR = 3_600_000;

  it('layer this broker over the cluster default over static settings, the most specific synonym set in whichever layer winning (as Kafka merges them)', () => {
    const staticDefaults = topicDefaultsFromBroker({ 'log.retention.hours': 24, 'log.segment.bytes': 1 << 20, 'min.insync.replicas': 2 }, new Set(['log.retention.hours', 'log.segment.bytes', 'min.insync.replicas']));
    const clusterDefault = new Map([
      ['log.retention.minutes', '90'],
      ['min.insync.replicas', '3'],
      ['unclean.leader.election.enable', 'true'],
    ]);
    const own = new Map([['min.insync.replicas', '1']]);
    const d = effectiveTopicDefaults(staticDefaults, clusterDefault, own);
    expect(d.get('retention.ms')).toEqual({ value: String(90 * 60_000), synonym: 'log.retention.minutes', source: 'dynamic-default' });
    expect(d.get('min.insync.replicas')).toEqual({ value: '1', synonym: 'min.insync.replicas', source: 'dynamic-broker' });
    expect(d.get('segment.bytes')).toEqual({ value: String(1 << 20), synonym: 'log.segment.bytes', source: 'static' });
    expect(d.get('unclean.leader.election.enable')).toEqual({ value: 'true', synonym: 'unclean.leader.election.enable', source: 'dynamic-default' });
    expect(d.has('cleanup.policy')).toBe(false);

    // A static log.retention.ms is more specific than a dynamic log.retention.hours, and stays.
    const staticMs = topicDefaultsFromBroker({ 'log.retention.ms': 5000 }, new Set(['log.retention.ms']));
    expect(effectiveTopicDefaults(staticMs, new Map([['log.retention.hours', '1']]), new Map()).get('retention.ms')).toEqual({ value: '5000', synonym: 'log.retention.ms', source: 'static' });
    expect(effectiveTopicDefaults(staticMs, new Map([['log.retention.ms', '7000']]), new Map()).get('retention.ms')?.source).toBe('dynamic-default');
    // Negative retention is forever (-1) from a dynamic key too.
    expect(effectiveTopicDefaults(new Map(), new Map([['log.retention.hours', '-5']]), new Map()).get('retention.ms')?.value).toBe('-1');
    expect(effectiveTopicDefaults(new Map(), new Map(), new Map([['log.retention.hours', '2']])).get('retention.ms')?.value).toBe(String(2 * HOUR));
  });

  it('skip stored values that do not validate, and unclean election set for one broker, rather than throw', () => {
    const d = effectiveTopicDefaults(new Map(), new Map([['log.retention.ms', 'soon'], ['num.io.threads', '8']]), new Map([['unclean.leader.election.enable', 'true'], ['log.cleanup.policy', 'compact']]));
    expect([...d.keys()]).toEqual(['cleanup.policy']);
  });

  it('validate a resource whole: dynamic keys only, values valid as broker and topic keys, normalized', () => {
    expect(validateDynamicBrokerConfigs(new Map([['log.cleanup.policy', 'compact, delete'], ['log.retention.ms', ' 10 ']]), false)).toEqual(new Map([['log.cleanup.policy', 'compact,delete'], ['log.retention.ms', '10']]));
    expect(() => validateDynamicBrokerConfigs(new Map([['node.id', '3']]), true)).toThrow(/Cannot update configuration node.id dynamically/);
    expect(() => validateDynamicBrokerConfigs(new Map([['log.segment.bytes', '10']]), true)).toThrow(StrandError);
    expect(() => validateDynamicBrokerConfigs(new Map([['unclean.leader.election.enable', 'true']]), false)).toThrow(/cluster-wide only/);
    expect(validateDynamicBrokerConfigs(new Map([['unclean.leader.election.enable', 'true']]), true).get('unclean.leader.election.enable')).toBe('true');
  });
});
