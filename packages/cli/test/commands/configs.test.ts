/**
 * kafka-configs options of `strand configs`: the entity (--topic, --broker, --broker-defaults,
 * --entity-type with --entity-name / --entity-default), --add-config's comma-separated form with
 * bracketed list values, and which entries --describe prints without --all. The command against
 * a real cluster is in test/broker-configs.test.ts.
 */
import type { ConfigDescription } from '@strand/client';
import { describedEntries, parseAddConfig, parseEntity } from '../../src/commands/configs';
import { usage } from '../support/usage';

describe('parseEntity', () => {
  it('takes each of kafka-configs\' ways of naming one entity', () => {
    expect(parseEntity({ topic: 't' })).toEqual({ type: 'topic', name: 't' });
    expect(parseEntity({ broker: '2' })).toEqual({ type: 'broker', name: '2' });
    expect(parseEntity({ brokerDefaults: true })).toEqual({ type: 'broker', name: '' });
    expect(parseEntity({ entityType: 'topics', entityName: 't' })).toEqual({ type: 'topic', name: 't' });
    expect(parseEntity({ entityType: 'brokers', entityName: '3' })).toEqual({ type: 'broker', name: '3' });
    expect(parseEntity({ entityType: 'brokers', entityDefault: true })).toEqual({ type: 'broker', name: '' });
  });

  it('refuses none, several, or a malformed one with a usage error', () => {
    expect(usage(() => parseEntity({}))).toMatch(/exactly one entity/);
    expect(usage(() => parseEntity({ topic: 't', broker: '1' }))).toMatch(/exactly one entity/);
    expect(usage(() => parseEntity({ entityType: 'users', entityName: 'x' }))).toMatch(/topics or brokers/);
    expect(usage(() => parseEntity({ entityType: 'topics', entityDefault: true }))).toMatch(/--entity-default applies to brokers only/);
    expect(usage(() => parseEntity({ entityType: 'brokers', entityName: '1', entityDefault: true }))).toMatch(/exactly one of --entity-name and --entity-default/);
    expect(usage(() => parseEntity({ entityName: '1' }))).toMatch(/need --entity-type/);
    expect(usage(() => parseEntity({ broker: 'b1' }))).toMatch(/named by its id/);
  });
});

describe('parseAddConfig', () => {
  it('reads k=v pairs by commas, a bracketed list as one value, over repeated options', () => {
    expect(parseAddConfig(['retention.ms=1000,cleanup.policy=[compact,delete]', ' min.insync.replicas = 2'])).toEqual({ 'retention.ms': '1000', 'cleanup.policy': 'compact,delete', 'min.insync.replicas': '2' });
    expect(parseAddConfig(['message.timestamp.type=LogAppendTime'])).toEqual({ 'message.timestamp.type': 'LogAppendTime' });
  });

  it('refuses what it cannot read', () => {
    expect(usage(() => parseAddConfig(['retention.ms']))).toMatch(/expects key=value/);
    expect(usage(() => parseAddConfig(['cleanup.policy=[compact,delete']))).toMatch(/unclosed/);
    expect(usage(() => parseAddConfig(['a=1]']))).toMatch(/unmatched/);
    expect(usage(() => parseAddConfig(['a=1', 'a=2']))).toMatch(/sets a twice/);
  });
});

describe('describedEntries', () => {
  const c = (name: string, source: ConfigDescription['source']): ConfigDescription => ({ name, value: '1', source, isDefault: source === 'default', documentation: '' });
  const configs = [c('a', 'dynamic'), c('b', 'dynamic-broker'), c('c', 'dynamic-default'), c('d', 'static'), c('e', 'default')];
  it('prints without --all only what was set on the entity itself', () => {
    expect(describedEntries({ type: 'topic', name: 't' }, configs, false).map((e) => e.name)).toEqual(['a']);
    expect(describedEntries({ type: 'broker', name: '1' }, configs, false).map((e) => e.name)).toEqual(['b']);
    expect(describedEntries({ type: 'broker', name: '' }, [c('c', 'dynamic-default')], false).map((e) => e.name)).toEqual(['c']);
    expect(describedEntries({ type: 'broker', name: '1' }, configs, true)).toHaveLength(5);
  });
});
