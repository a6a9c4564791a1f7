/**
 * `strand configs` (Kafka's kafka-configs): describe and alter the configs of a topic, of one
 * broker (its dynamic broker configs), or the cluster-wide broker defaults.
 */
import type { Command } from 'commander';
import type { ConfigDescription } from '@strand/client';
import { UsageError, action, printJson, withCommon } from './common';
import type { CommonOptions } from './common';
import { withAdmin } from './topics';

/** Kafka's names of the config sources, as kafka-configs prints them. */
const SOURCE_NAMES: Readonly<Record<ConfigDescription['source'], string>> = {
  dynamic: 'DYNAMIC_TOPIC_CONFIG',
  'dynamic-broker': 'DYNAMIC_BROKER_CONFIG',
  'dynamic-default': 'DYNAMIC_DEFAULT_BROKER_CONFIG',
  static: 'STATIC_BROKER_CONFIG',
  default: 'DEFAULT_CONFIG',
  unknown: 'UNKNOWN',
};

/** What a configs command acts on. `name` '' with type broker: the cluster-wide defaults. */
export interface ConfigEntity {
  type: 'topic' | 'broker';
  name: string;
}

interface EntityOptions {
  topic?: string;
  broker?: string;
  brokerDefaults?: boolean;
  entityType?: string;
  entityName?: string;
  entityDefault?: boolean;
}

/**
 * The entity of kafka-configs' options: `--topic T`, `--broker N`, `--broker-defaults`, or
 * `--entity-type topics|brokers` with `--entity-name X` or (brokers) `--entity-default`; exactly one.
 */
export function parseEntity(o: EntityOptions): ConfigEntity {
  const given: ConfigEntity[] = [];
  if (o.topic !== undefined) given.push({ type: 'topic', name: o.topic });
  if (o.broker !== undefined) given.push({ type: 'broker', name: o.broker });
  if (o.brokerDefaults === true) given.push({ type: 'broker', name: '' });
  if (o.entityType !== undefined) {
    if (o.entityType !== 'topics' && o.entityType !== 'brokers') throw new UsageError(`--entity-type must be topics or brokers, not '${o.entityType}'`);
    const type = o.entityType === 'topics' ? 'topic' : 'broker';
    if ((o.entityName === undefined) === (o.entityDefault !== true)) throw new UsageError('--entity-type needs exactly one of --entity-name and --entity-default');
    if (o.entityDefault === true && type === 'topic') throw new UsageError('--entity-default applies to brokers only');
    given.push({ type, name: o.entityName ?? '' });
  } else if (o.entityName !== undefined || o.entityDefault === true) {
    throw new UsageError('--entity-name and --entity-default need --entity-type');
  }
  if (given.length !== 1) throw new UsageError('name exactly one entity: --topic T, --broker N, --broker-defaults, or --entity-type with --entity-name / --entity-default');
  const entity = given[0] as ConfigEntity;
  if (entity.type === 'topic' && entity.name === '') throw new UsageError('the topic name is empty');
  if (entity.type === 'broker' && entity.name !== '' && !/^\d+$/.test(entity.name)) throw new UsageError(`a broker is named by its id, not '${entity.name}'`);
  return entity;
}

/**
 * kafka-configs' `--add-config` value: `k1=v1,k2=v2`, a list value in brackets
 * (`cleanup.policy=[compact,delete]`, passed on as `compact,delete`). Repeated options add up.
 */
export function parseAddConfig(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    let depth = 0;
    let start = 0;
    const parts: string[] = [];
    for (let i = 0; i <= item.length; i++) {
      const ch = item[i];
      if (ch === '[') depth++;
      else if (ch === ']') depth--;
      if (depth < 0) throw new UsageError(`--add-config has an unmatched ']' in '${item}'`);
      if (i === item.length || (ch === ',' && depth === 0)) {
        parts.push(item.slice(start, i));
        start = i + 1;
      }
    }
    if (depth !== 0) throw new UsageError(`--add-config has an unclosed '[' in '${item}'`);
    for (const part of parts) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new UsageError(`--add-config expects key=value, got '${part}'`);
      const key = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
      if (key in out) throw new UsageError(`--add-config sets ${key} twice`);
      out[key] = value;
    }
  }
  return out;
}

function describeTitle(e: ConfigEntity, all: boolean): string {
  const kind = all ? 'All' : 'Dynamic';
  if (e.type === 'topic') return `${kind} configs for topic ${e.name} are:`;
  return e.name === '' ? 'Default configs for brokers in the cluster are:' : `${kind} configs for broker ${e.name} are:`;
}

/**
 * The entries kafka-configs --describe prints: with `all` every key; otherwise only what was set
 * dynamically on the entity itself (a topic's own keys, a broker's own dynamic keys; the
 * cluster-wide defaults are all dynamic).
 */
export function describedEntries(e: ConfigEntity, configs: readonly ConfigDescription[], all: boolean): ConfigDescription[] {
  if (all || (e.type === 'broker' && e.name === '')) return [...configs];
  return configs.filter((c) => c.source === (e.type === 'topic' ? 'dynamic' : 'dynamic-broker'));
}

export function registerConfigs(program: Command): void {
  withCommon(program.command('configs').description('describe or alter configs of a topic, a broker, or the cluster-wide broker defaults (kafka-configs)'))
    .option('--describe', 'print the entity\'s configs (set ones only, --all for every key)', false)
    .option('--alter', 'change the entity\'s configs: --add-config and/or --delete-config', false)
    .option('--all', 'with --describe, every key with its value and source', false)
    .option('--topic <name>', 'the topic')
    .option('--broker <id>', 'one broker (its dynamic broker configs)')
    .option('--broker-defaults', 'the cluster-wide dynamic broker defaults', false)
    .option('--entity-type <type>', 'topics or brokers (with --entity-name or --entity-default)')
    .option('--entity-name <name>', 'the topic name or broker id')
    .option('--entity-default', 'with --entity-type brokers: the cluster-wide defaults', false)
    .option('--add-config <k=v,...>', 'keys to set, comma separated; a list value in brackets: cleanup.policy=[compact,delete] (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--delete-config <k,...>', 'keys to remove, back to the next source down (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--validate-only', 'with --alter, validate the change without applying it', false)
    .action(
      action('configs', async (opts: CommonOptions & EntityOptions & { describe: boolean; alter: boolean; all: boolean; addConfig: string[]; deleteConfig: string[]; validateOnly: boolean }) => {
        if (opts.describe === opts.alter) throw new UsageError('give exactly one of --describe and --alter');
        const entity = parseEntity(opts);
        if (opts.describe) {
          if (opts.addConfig.length > 0 || opts.deleteConfig.length > 0) throw new UsageError('--add-config and --delete-config go with --alter');
          const configs = describedEntries(entity, await withAdmin(opts, (admin) => admin.describeConfigs(entity.name, { type: entity.type })), opts.all);
          if (opts.json) return printJson(Object.fromEntries(configs.map((c) => [c.name, { value: c.value, source: SOURCE_NAMES[c.source] }])));
          process.stdout.write(`${describeTitle(entity, opts.all)}\n`);
          for (const c of configs) process.stdout.write(`  ${c.name}=${c.value} source=${SOURCE_NAMES[c.source]}\n`);
          return;
        }
        if (opts.all) throw new UsageError('--all goes with --describe');
        const set = parseAddConfig(opts.addConfig);
        const del = opts.deleteConfig.flatMap((d) => d.split(',')).map((k) => k.trim()).filter((k) => k !== '');
        if (Object.keys(set).length === 0 && del.length === 0) throw new UsageError('--alter needs --add-config and/or --delete-config');
        const both = del.find((k) => k in set);
        if (both !== undefined) throw new UsageError(`${both} is both added and deleted`);
        await withAdmin(opts, (admin) => admin.alterConfigs(entity.name, { set, delete: del }, { type: entity.type, validateOnly: opts.validateOnly }));
        const what = entity.type === 'topic' ? `config for topic ${entity.name}` : entity.name === '' ? 'default config for brokers in the cluster' : `config for broker ${entity.name}`;
        if (opts.json) return printJson({ entityType: entity.type, entityName: entity.name, set, deleted: del, validateOnly: opts.validateOnly });
        process.stdout.write(opts.validateOnly ? `Validated updating ${what} (nothing changed).\n` : `Completed updating ${what}.\n`);
      }),
    );
}
