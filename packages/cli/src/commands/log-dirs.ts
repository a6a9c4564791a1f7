/**
 * `strand log-dirs`, Kafka's kafka-log-dirs:
 *
 *   --describe [--broker-list 1,2,3] [--topic-list a,b] [--json]
 *
 * asks each broker (all registered ones by default) for its log directory and the partition
 * replicas held there (Admin.describeLogDirs, DescribeLogDirs), and prints what Kafka's tool
 * prints: "Querying brokers for log directories information", "Received log directory
 * information from brokers 1,2,3", then one JSON line
 *
 *   {"version":1,"brokers":[{"broker":1,"logDirs":[{"logDir":"/path","error":null,
 *     "totalBytes":N,"usableBytes":N,"partitions":[{"partition":"t-0","size":123,
 *     "offsetLag":0,"isFuture":false}]}]}]}
 *
 * with the volume's total and usable bytes added per directory (KIP-827). --json prints the JSON
 * line alone. --topic-list keeps the replicas of those topics only. A broker that is not
 * registered, cannot be reached or refuses is reported on stderr and left out of the JSON, the
 * others still printed; so is a directory its broker cannot read (in the JSON with its error).
 * Exit 0 when every broker answered with readable directories, 1 otherwise, 2 for usage errors
 * (nothing sent), 3 when the cluster cannot be reached at all.
 */
import type { Command } from 'commander';
import type { BrokerLogDirs } from '@strand/client';
import { validateTopicName } from '@strand/controller';
import { StrandError } from '@strand/protocol';
import { EXIT_FAILED, EXIT_OK, UsageError, action, printJson, withCommon } from './common';
import type { CommonOptions } from './common';
import { parseBrokerList } from './reassign';
import { withAdmin } from './topics';

interface LogDirsOptions extends CommonOptions {
  describe?: boolean;
  brokerList?: string;
  topicList?: string;
}

/** Parses --topic-list a,b: legal topic names (Kafka's rules), each once, in the order given. */
export function parseTopicList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim());
  for (const name of names) {
    try {
      validateTopicName(name);
    } catch (e: unknown) {
      throw new UsageError(`--topic-list expects comma-separated topic names like a,b: ${e instanceof StrandError ? e.message : String(e)}`);
    }
  }
  return [...new Set(names)];
}

/** Kafka's kafka-log-dirs JSON for the brokers that answered (sorted by id), plus totalBytes/usableBytes per directory. */
export function logDirsJson(brokers: readonly BrokerLogDirs[]): unknown {
  return {
    version: 1,
    brokers: brokers
      .filter((b) => b.error === undefined)
      .map((b) => ({
        broker: b.brokerId,
        logDirs: b.logDirs.map((d) => ({
          logDir: d.path,
          error: d.error === undefined ? null : d.error.errorName,
          totalBytes: d.totalBytes,
          usableBytes: d.usableBytes,
          partitions: d.replicas.map((r) => ({ partition: `${r.topic}-${r.partition}`, size: r.sizeBytes, offsetLag: r.offsetLag, isFuture: r.isFuture })),
        })),
      })),
  };
}

export function registerLogDirs(program: Command): void {
  withCommon(program.command('log-dirs').description("brokers' log directories and the size of each partition replica in them (kafka-log-dirs)"))
    .option('--describe', 'describe the log directories (required: the only action)')
    .option('--broker-list <ids>', 'comma-separated broker ids, e.g. 1,2 (default: every registered broker)')
    .option('--topic-list <names>', 'comma-separated topic names, e.g. a,b: only their replicas (default: all)')
    .action(
      action('log-dirs', async (opts: LogDirsOptions) => {
        if (opts.describe !== true) throw new UsageError('--describe is required');
        const brokerIds = opts.brokerList === undefined ? undefined : parseBrokerList(opts.brokerList);
        const topics = opts.topicList === undefined ? undefined : parseTopicList(opts.topicList);
        if (!opts.json) process.stdout.write('Querying brokers for log directories information\n');
        const brokers = await withAdmin(opts, (admin) => admin.describeLogDirs(brokerIds, topics === undefined ? {} : { topics }));
        let failed = false;
        for (const b of brokers) {
          if (b.error !== undefined) {
            failed = true;
            process.stderr.write(`strand log-dirs: broker ${b.brokerId}: ${b.error.errorName}: ${b.error.message}\n`);
          }
          for (const d of b.logDirs) {
            if (d.error === undefined) continue;
            failed = true;
            process.stderr.write(`strand log-dirs: broker ${b.brokerId}: ${d.path}: ${d.error.errorName}: ${d.error.message}\n`);
          }
        }
        if (!opts.json) process.stdout.write(`Received log directory information from brokers ${brokers.filter((b) => b.error === undefined).map((b) => b.brokerId).join(',')}\n`);
        printJson(logDirsJson(brokers));
        return failed ? EXIT_FAILED : EXIT_OK;
      }),
    );
}
