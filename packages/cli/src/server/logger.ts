/** pino loggers: JSON by default (one object per line), human-readable with --pretty. */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export function createLogger(options: { level: string; pretty: boolean; name: string; base?: Record<string, unknown> }): Logger {
  const opts = { level: options.level, name: options.name, base: { pid: process.pid, ...(options.base ?? {}) } };
  if (options.pretty) return pino(opts, pretty({ colorize: process.stdout.isTTY === true, sync: true, ignore: 'pid,hostname' }));
  return pino(opts, pino.destination({ sync: true }));
}
