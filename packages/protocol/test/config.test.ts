/** Kafka-style config definitions: defaults, typed parsing from strings, ranges, enumerations and Kafka-worded errors. */
import { StrandError, TOPIC_CONFIG, defineConfig } from '../src';

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
