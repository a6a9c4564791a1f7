/**
 * The `--property` keys of Kafka's console tools as pure functions: kafka-console-consumer's
 * DefaultMessageFormatter (which fields, in which order, with which separators and null literal)
 * and kafka-console-producer's LineMessageReader (key and headers parsed out of a line, the
 * null marker, lines missing a delimiter), and the split of --property into those keys and
 * client configs. The commands using them run in commands.test.ts.
 */
import type { ConsumerRecord } from '@strand/client';
import { FORMATTER_DEFAULTS, LINE_READER_DEFAULTS, lineReader, messageFormatter, splitConsoleProperties } from '../../src/commands/console-format';
import { usage } from '../support/usage';

const record = (over: Partial<ConsumerRecord> = {}): ConsumerRecord => ({
  topic: 't',
  partition: 1,
  offset: 7,
  key: Buffer.from('k'),
  value: Buffer.from('v'),
  headers: [
    { key: 'h1', value: Buffer.from('x') },
    { key: 'h2', value: null },
  ],
  timestamp: 1_700_000_000_000,
  timestampType: 'CreateTime',
  leaderEpoch: 0,
  ...over,
});

describe('splitConsoleProperties', () => {
  it("takes the tool's keys over its defaults and leaves the rest as client configs", () => {
    const p = splitConsoleProperties(['print.key=true', 'key.separator=:', 'fetch.min.bytes=1'], FORMATTER_DEFAULTS);
    expect(p.given).toEqual(['print.key', 'key.separator']);
    expect(p.tool).toMatchObject({ 'print.key': 'true', 'key.separator': ':', 'print.value': 'true' });
    expect(p.config).toEqual({ 'fetch.min.bytes': '1' });
    expect(usage(() => splitConsoleProperties(['print.key'], FORMATTER_DEFAULTS))).toMatch(/--property expects key=value, got 'print.key'/);
  });
});

describe("messageFormatter (kafka-console-consumer's DefaultMessageFormatter)", () => {
  const format = (props: string[], r = record()): string => messageFormatter(splitConsoleProperties(props, FORMATTER_DEFAULTS).tool)(r);

  it('prints the value by default; each field Kafka names, in its order, separated by key.separator', () => {
    expect(format([])).toBe('v\n');
    expect(format(['print.key=true'])).toBe('k\tv\n');
    expect(format(['print.timestamp=true', 'print.partition=true', 'print.offset=true', 'print.headers=true', 'print.key=true'])).toBe('CreateTime:1700000000000\tPartition:1\tOffset:7\th1:x,h2:null\tk\tv\n');
    expect(format(['print.key=true', 'print.value=false', 'key.separator= | ', 'line.separator=;'])).toBe('k;');
    expect(format(['print.headers=true', 'headers.separator=|', 'key.separator=,'])).toBe('h1:x|h2:null,v\n');
    expect(format(['print.headers=true'], record({ headers: [] }))).toBe('NO_HEADERS\tv\n');
  });

  it('prints null.literal for a null key or value', () => {
    expect(format(['print.key=true'], record({ key: null, value: null }))).toBe('null\tnull\n');
    expect(format(['print.key=true', 'null.literal=-'], record({ key: null }))).toBe('-\tv\n');
  });

  it('refuses a flag that is not true or false', () => {
    expect(usage(() => format(['print.key=yes']))).toMatch(/--property print.key must be true or false, got 'yes'/);
  });
});

describe("lineReader (kafka-console-producer's LineMessageReader)", () => {
  const read = (props: string[]): ReturnType<typeof lineReader> => lineReader(splitConsoleProperties(props, LINE_READER_DEFAULTS).tool);

  it('splits key and value at key.separator (a tab by default); a line without it is an error', () => {
    expect(read(['parse.key=true'])('a\tb\tc')).toEqual({ key: 'a', value: 'b\tc', headers: [] });
    expect(read(['parse.key=true', 'key.separator=::'])('a::b')).toEqual({ key: 'a', value: 'b', headers: [] });
    expect(read(['parse.key=true', 'key.separator=:'])('nokey')).toEqual({ error: 'no key separator (":") found' });
    expect(read([])('a\tb')).toEqual({ key: null, value: 'a\tb', headers: [] });
  });

  it('reads headers before headers.delimiter, k:v separated by headers.separator; a header without a value is null', () => {
    const r = read(['parse.headers=true', 'parse.key=true', 'key.separator=:', 'headers.delimiter=|']);
    expect(r('h1:x,h2|k:v')).toEqual({ key: 'k', value: 'v', headers: [{ key: 'h1', value: 'x' }, { key: 'h2', value: null }] });
    expect(r('|k:v')).toEqual({ key: 'k', value: 'v', headers: [] });
    expect(r('k:v')).toEqual({ error: 'no headers delimiter ("|") found' });
  });

  it('null.marker makes a key, value or header value null', () => {
    const r = read(['parse.key=true', 'key.separator=:', 'parse.headers=true', 'headers.delimiter=|', 'null.marker=<null>']);
    expect(r('h:<null>|<null>:<null>')).toEqual({ key: null, value: null, headers: [{ key: 'h', value: null }] });
  });

  it('refuses an empty separator it needs and a flag that is not true or false', () => {
    expect(usage(() => read(['parse.key=true', 'key.separator=']))).toMatch(/--property key.separator must not be empty/);
    expect(usage(() => read(['parse.headers=1']))).toMatch(/--property parse.headers must be true or false, got '1'/);
  });
});
