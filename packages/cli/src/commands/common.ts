/**
 * What every client command of the `strand` CLI shares: the --bootstrap and --json options,
 * `key=value` parsing, output helpers, and the exit codes scripts rely on.
 *
 * Exit codes (documented in packages/client/README.md):
 *   0  success
 *   1  the cluster refused the operation (a Kafka error such as TOPIC_ALREADY_EXISTS), or, for
 *      per-partition commands (topics delete-records, groups delete-offsets, reassign --execute,
 *      leader-election, get-offsets --partitions), some partition of it, or, for log-dirs, some
 *      broker or directory of it
 *   2  usage error: bad arguments, options or config values (nothing was sent)
 *   3  the cluster could not be reached (no broker answered within the timeout)
 *   4  partial failure: some records were not acknowledged (produce, bench)
 *   5  not finished yet: a partition reassignment is still in progress (reassign --verify)
 */
import { Command, CommanderError, Option } from 'commander';
import { StrandError } from '@strand/protocol';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;
export const EXIT_PARTIAL = 4;
export const EXIT_IN_PROGRESS = 5;

/** The `strand dev` broker address (DESIGN.md: broker gRPC 9093). */
export const DEFAULT_BOOTSTRAP = '127.0.0.1:9093';

export interface CommonOptions {
  bootstrap: string;
  json?: boolean;
  timeoutMs: string;
}

/** A usage problem found after parsing (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Adds --bootstrap, the request timeout and (for data output) --json. The request timeout is
 * --timeout-ms, except for `consume`, where --timeout-ms is kafka-console-consumer's idle exit and
 * the request timeout is --request-timeout-ms (the command maps it to `timeoutMs`).
 */
export function withCommon(cmd: Command, json = true, requestTimeoutFlag: '--timeout-ms' | '--request-timeout-ms' = '--timeout-ms'): Command {
  cmd.addOption(new Option('-b, --bootstrap <host:port[,host:port]>', 'brokers to bootstrap from').default(process.env['STRAND_BOOTSTRAP'] ?? DEFAULT_BOOTSTRAP).env('STRAND_BOOTSTRAP'));
  cmd.option(`${requestTimeoutFlag} <ms>`, 'request timeout (ms)', '10000');
  if (json) cmd.option('--json', 'print data as JSON', false);
  return cmd;
}

/** Client config for `opts` (bootstrap, timeouts), merged with `extra`. */
export function clientConfig(opts: CommonOptions, extra: Record<string, string | number | boolean> = {}): Record<string, string | number | boolean> {
  return { 'bootstrap.servers': opts.bootstrap, 'request.timeout.ms': parseIntArg(opts.timeoutMs, '--timeout-ms', 1), ...extra };
}

export function parseIntArg(value: string, name: string, min = 0): number {
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${name} must be an integer, got '${value}'`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

/** Parses repeated `key=value` arguments. */
export function parseKeyValues(items: readonly string[], name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`${name} expects key=value, got '${item}'`);
    out[item.slice(0, i).trim()] = item.slice(i + 1);
  }
  return out;
}

/** How topics describe --configs and cluster configs mark where a value comes from ('' for a default). */
export function configSourceTag(source: string): string {
  switch (source) {
    case 'dynamic':
      return ' (dynamic)';
    case 'dynamic-broker':
      return ' (dynamic broker)';
    case 'dynamic-default':
      return ' (dynamic cluster default)';
    case 'static':
      return ' (static)';
    default:
      return '';
  }
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Prints rows as aligned columns. */
export function printTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => String(r[c] ?? '').length)));
  for (const r of cells) process.stdout.write(`${r.map((v, c) => String(v).padEnd(widths[c] as number)).join('  ').trimEnd()}\n`);
}

/** Whether `e` says the cluster could not be reached (exit 3) rather than refused something. */
export function isUnreachable(e: StrandError): boolean {
  return e.errorName === 'NETWORK_EXCEPTION' || e.errorName === 'REQUEST_TIMED_OUT' || e.errorName === 'BROKER_NOT_AVAILABLE';
}

/** The exit code for an error, and a message a person can act on. */
export function describeError(e: unknown): { code: number; message: string } {
  if (e instanceof UsageError) return { code: EXIT_USAGE, message: e.message };
  if (e instanceof CommanderError) return { code: EXIT_USAGE, message: e.message };
  if (e instanceof StrandError) {
    if (e.errorName === 'INVALID_CONFIG') return { code: EXIT_USAGE, message: `${e.errorName}: ${e.message}` };
    if (isUnreachable(e)) {
      return { code: EXIT_UNREACHABLE, message: `cannot reach the cluster (${e.errorName}): ${e.message}\nIs a broker running at the --bootstrap address?` };
    }
    return { code: EXIT_FAILED, message: `${e.errorName}: ${e.message}` };
  }
  return { code: EXIT_FAILED, message: e instanceof Error ? e.message : String(e) };
}

/**
 * Wraps a command action: errors print `strand <cmd>: ...` on stderr and exit with their code;
 * a returned number is the exit code.
 */
export function action<A extends unknown[]>(name: string, fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code: number = EXIT_OK;
    try {
      code = (await fn(...args)) ?? EXIT_OK;
    } catch (e: unknown) {
      const d = describeError(e);
      process.stderr.write(`strand ${name}: ${d.message}\n`);
      code = d.code;
    }
    process.exitCode = code;
    // Exit explicitly: a half-open gRPC channel must not keep a finished command alive.
    setImmediate(() => process.exit(code));
  };
}

/** Makes commander's own usage errors exit with EXIT_USAGE (help and version stay 0). */
export function usageExit(cmd: Command): Command {
  return cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_USAGE);
  });
}
