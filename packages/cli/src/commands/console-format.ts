/**
 * The `--property` keys of Kafka's console tools, so that a Kafka user's command line works:
 * kafka-console-consumer's DefaultMessageFormatter (print.key, print.timestamp, ...) for
 * `strand consume`, kafka-console-producer's LineMessageReader (parse.key, parse.headers, ...)
 * for `strand produce`. `--property` also took client config keys before these existed; any key
 * that is not one of the tool's is still passed to the client (Kafka's tools would ignore it; its
 * place is `--consumer-property` / `--producer-property`).
 */
import type { ConsumerRecord } from '@strand/client';
import { UsageError, parseKeyValues } from './common';

/** kafka-console-consumer's DefaultMessageFormatter keys, with Kafka's defaults. */
export const FORMATTER_DEFAULTS = {
  'print.timestamp': 'false',
  'print.partition': 'false',
  'print.offset': 'false',
  'print.headers': 'false',
  'print.key': 'false',
  'print.value': 'true',
  'key.separator': '\t',
  'line.separator': '\n',
  'headers.separator': ',',
  'null.literal': 'null',
} as const;

/** kafka-console-producer's LineMessageReader keys, with Kafka's defaults. */
export const LINE_READER_DEFAULTS = {
  'parse.key': 'false',
  'key.separator': '\t',
  'parse.headers': 'false',
  'headers.delimiter': '\t',
  'headers.separator': ',',
  'headers.key.separator': ':',
  'null.marker': '',
} as const;

/**
 * Splits repeated `--property key=value` into the tool's own keys (over `defaults`) and the rest,
 * client configs; `given` lists the tool keys that were set.
 */
export function splitConsoleProperties<K extends string>(items: readonly string[], defaults: Readonly<Record<K, string>>): { tool: Record<K, string>; given: K[]; config: Record<string, string> } {
  const tool: Record<K, string> = { ...defaults };
  const given: K[] = [];
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseKeyValues(items, '--property'))) {
    if (Object.hasOwn(defaults, k)) {
      tool[k as K] = v;
      given.push(k as K);
    } else {
      config[k] = v;
    }
  }
  return { tool, given, config };
}

function flag(props: Readonly<Record<string, string>>, key: string): boolean {
  const v = (props[key] ?? '').trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UsageError(`--property ${key} must be true or false, got '${props[key] ?? ''}'`);
}

const text = (b: Uint8Array | null, nullLiteral: string): string => (b === null ? nullLiteral : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));

/**
 * Kafka's DefaultMessageFormatter: the chosen fields in the order timestamp ("CreateTime:ms"),
 * partition ("Partition:p"), offset ("Offset:o"), headers ("k:v,k:v" or "NO_HEADERS"), key,
 * value, separated by key.separator, each record ended by line.separator; a null key, value or
 * header value prints null.literal. Usage errors (a flag not true/false) are thrown here, before
 * anything is consumed.
 */
export function messageFormatter(props: Readonly<Record<keyof typeof FORMATTER_DEFAULTS, string>>): (r: ConsumerRecord) => string {
  const show = {
    timestamp: flag(props, 'print.timestamp'),
    partition: flag(props, 'print.partition'),
    offset: flag(props, 'print.offset'),
    headers: flag(props, 'print.headers'),
    key: flag(props, 'print.key'),
    value: flag(props, 'print.value'),
  };
  const nul = props['null.literal'];
  return (r) => {
    const fields: string[] = [];
    if (show.timestamp) fields.push(`${r.timestampType}:${r.timestamp}`);
    if (show.partition) fields.push(`Partition:${r.partition}`);
    if (show.offset) fields.push(`Offset:${r.offset}`);
    if (show.headers) fields.push(r.headers.length === 0 ? 'NO_HEADERS' : r.headers.map((h) => `${h.key}:${text(h.value, nul)}`).join(props['headers.separator']));
    if (show.key) fields.push(text(r.key, nul));
    if (show.value) fields.push(text(r.value, nul));
    return fields.join(props['key.separator']) + props['line.separator'];
  };
}

/** One input line as a record, or why it cannot be one. */
export type ParsedLine = { key: string | null; value: string | null; headers: { key: string; value: string | null }[] } | { error: string };

/**
 * Kafka's LineMessageReader: with parse.headers, the line starts with headers up to
 * headers.delimiter ("k:v,k:v"; a header without headers.key.separator has a null value); with
 * parse.key, the key is what comes before key.separator. A line missing a delimiter it needs is
 * an error (Kafka's tool stops at it; `strand produce` reports it and goes on). A key, value or
 * header value equal to null.marker (when set) is null.
 */
export function lineReader(props: Readonly<Record<keyof typeof LINE_READER_DEFAULTS, string>>): (line: string) => ParsedLine {
  const parseKey = flag(props, 'parse.key');
  const parseHeaders = flag(props, 'parse.headers');
  for (const k of ['key.separator', 'headers.delimiter', 'headers.separator', 'headers.key.separator'] as const) {
    if ((k === 'key.separator' ? parseKey : parseHeaders) && props[k] === '') throw new UsageError(`--property ${k} must not be empty`);
  }
  const marker = props['null.marker'];
  const orNull = (s: string): string | null => (marker !== '' && s === marker ? null : s);
  return (line) => {
    let rest = line;
    const headers: { key: string; value: string | null }[] = [];
    if (parseHeaders) {
      const i = rest.indexOf(props['headers.delimiter']);
      if (i < 0) return { error: `no headers delimiter (${JSON.stringify(props['headers.delimiter'])}) found` };
      const raw = rest.slice(0, i);
      rest = rest.slice(i + props['headers.delimiter'].length);
      if (raw !== '') {
        for (const h of raw.split(props['headers.separator'])) {
          const j = h.indexOf(props['headers.key.separator']);
          headers.push(j < 0 ? { key: h, value: null } : { key: h.slice(0, j), value: orNull(h.slice(j + props['headers.key.separator'].length)) });
        }
      }
    }
    if (!parseKey) return { key: null, value: orNull(rest), headers };
    const i = rest.indexOf(props['key.separator']);
    if (i < 0) return { error: `no key separator (${JSON.stringify(props['key.separator'])}) found` };
    return { key: orNull(rest.slice(0, i)), value: orNull(rest.slice(i + props['key.separator'].length)), headers };
  };
}
