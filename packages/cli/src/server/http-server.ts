/**
 * The node's HTTP endpoint (`http.listener`, default 0.0.0.0:9300): `/metrics` in Prometheus
 * format (prom-client), `/healthz` (the process answers) and `/readyz` (a broker is registered,
 * unfenced and caught up with the metadata; a controller is part of a quorum with a leader).
 * Metric names follow Kafka's where they carry over (bytes/messages in and out per topic,
 * under-replicated and offline partitions, ISR shrinks/expands, active controller count).
 */
import * as http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BrokerMetricsSink, BrokerServer, ConsumerGroupLag } from '@strand/broker';
import type { QuorumController } from '@strand/controller';
import type { Listener } from './server-config';

export interface NodeHttp {
  readonly metricsSink: BrokerMetricsSink;
  /** Set once the roles exist (the sink is needed before the broker is built). */
  attach(roles: { broker: BrokerServer | null; controller: QuorumController | null }): void;
  listen(l: Listener): Promise<number>;
  close(): Promise<void>;
}

/** Resolution of the strand_nodejs_eventloop_lag_* histogram (ms): one timer wake-up per period. */
const EVENT_LOOP_LAG_RESOLUTION_MS = 100;

export function createNodeHttp(nodeId: number): NodeHttp {
  const register = new Registry();
  register.setDefaultLabels({ node_id: String(nodeId) });
  // The event-loop lag histogram samples with a timer; prom-client's default resolution (10 ms)
  // woke every idle node 100 times a second, most of its wake-ups, each a chance to take a
  // core from a busy neighbour on a small machine. Any stall longer than the resolution is
  // still seen, and 100 ms is below every timeout that matters here.
  collectDefaultMetrics({ register, prefix: 'strand_', eventLoopMonitoringPrecision: EVENT_LOOP_LAG_RESOLUTION_MS });
  let broker: BrokerServer | null = null;
  let controller: QuorumController | null = null;

  const bytesIn = new Counter({ name: 'strand_broker_topic_bytes_in_total', help: 'Bytes appended by producers, per topic.', labelNames: ['topic'], registers: [register] });
  const messagesIn = new Counter({ name: 'strand_broker_topic_messages_in_total', help: 'Records appended by producers, per topic.', labelNames: ['topic'], registers: [register] });
  const failedProduce = new Counter({ name: 'strand_broker_topic_failed_produce_requests_total', help: 'Produce requests answered with an error, per topic.', labelNames: ['topic'], registers: [register] });
  const bytesOut = new Counter({ name: 'strand_broker_topic_bytes_out_total', help: 'Bytes sent to consumers (kind=consumer) and followers (kind=replica), per topic.', labelNames: ['topic', 'kind'], registers: [register] });
  const isrShrinks = new Counter({ name: 'strand_broker_isr_shrinks_total', help: 'ISR shrinks this broker proposed as leader.', registers: [register] });
  const isrExpands = new Counter({ name: 'strand_broker_isr_expands_total', help: 'ISR expansions this broker proposed as leader.', registers: [register] });
  const requests = new Histogram({
    name: 'strand_request_duration_seconds',
    help: 'Broker gRPC calls by API and outcome (long-polling fetches included).',
    labelNames: ['api', 'outcome'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [register],
  });

  new Gauge({
    name: 'strand_broker_partitions',
    help: 'Replicas hosted by this broker, by role.',
    labelNames: ['role'],
    registers: [register],
    collect() {
      this.reset();
      if (!broker) return;
      const all = broker.replicaSummaries();
      this.set({ role: 'leader' }, all.filter((p) => p.isLeader).length);
      this.set({ role: 'follower' }, all.filter((p) => !p.isLeader).length);
    },
  });
  new Gauge({
    name: 'strand_broker_under_replicated_partitions',
    help: 'Partitions led here whose ISR is smaller than their replica set.',
    registers: [register],
    collect() {
      this.set(broker ? broker.replicaSummaries().filter((p) => p.isLeader && p.isr < p.replicas).length : 0);
    },
  });
  new Gauge({
    name: 'strand_broker_offline_partitions',
    help: 'Partitions of the cluster without a leader, in this broker\'s metadata.',
    registers: [register],
    collect() {
      this.set(broker ? broker.offlinePartitionCount() : 0);
    },
  });
  new Gauge({
    name: 'strand_broker_log_size_bytes',
    help: 'Bytes of hosted logs, per topic.',
    labelNames: ['topic'],
    registers: [register],
    collect() {
      this.reset();
      if (!broker) return;
      const byTopic = new Map<string, number>();
      for (const p of broker.replicaSummaries()) byTopic.set(p.topic, (byTopic.get(p.topic) ?? 0) + p.logSizeBytes);
      for (const [topic, size] of byTopic) this.set({ topic }, size);
    },
  });
  new Gauge({
    name: 'strand_broker_ready',
    help: '1 when the broker is registered, unfenced and caught up with the metadata.',
    registers: [register],
    collect() {
      this.set(broker?.readiness().ready ? 1 : 0);
    },
  });
  // Consumer-group lag, computed when scraped (no timers): the coordinator's committed offsets
  // against the partitions' high watermarks. Both gauges of one scrape share one computation.
  let lagPending: Promise<ConsumerGroupLag[]> | null = null;
  const groupLag = (): Promise<ConsumerGroupLag[]> => {
    if (!broker) return Promise.resolve([]);
    const b = broker;
    // A failure leaves the group series out of this scrape rather than failing /metrics.
    lagPending ??= b
      .consumerGroupLag()
      .catch(() => [])
      .finally(() => {
        lagPending = null;
      });
    return lagPending;
  };
  new Gauge({
    name: 'strand_consumergroup_lag',
    help: 'Per consumer group and partition: high watermark minus the committed offset; exported by the group\'s coordinator.',
    labelNames: ['group', 'topic', 'partition'],
    registers: [register],
    async collect() {
      const lag = await groupLag();
      this.reset();
      for (const l of lag) this.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.lag);
    },
  });
  new Gauge({
    name: 'strand_consumergroup_current_offset',
    help: 'Per consumer group and partition: the committed offset; exported by the group\'s coordinator.',
    labelNames: ['group', 'topic', 'partition'],
    registers: [register],
    async collect() {
      const lag = await groupLag();
      this.reset();
      for (const l of lag) this.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.committedOffset);
    },
  });
  new Gauge({
    name: 'strand_controller_active_count',
    help: '1 on the active controller, 0 elsewhere (sum over the quorum must be 1).',
    registers: [register],
    collect() {
      this.set(controller?.isActive ? 1 : 0);
    },
  });
  const raftGauge = (name: string, help: string, pick: (s: ReturnType<QuorumController['raftStatus']>) => number): void => {
    new Gauge({
      name,
      help,
      registers: [register],
      collect() {
        if (controller) this.set(pick(controller.raftStatus()));
      },
    });
  };
  raftGauge('strand_controller_raft_term', 'Current Raft term of the controller quorum.', (s) => s.term);
  raftGauge('strand_controller_raft_commit_index', 'Raft commit index.', (s) => s.commit);
  raftGauge('strand_controller_raft_applied_index', 'Raft index applied to the metadata image.', (s) => s.applied);
  raftGauge('strand_controller_raft_snapshot_index', 'Raft index of the latest snapshot of the metadata image (the log before it is compacted; controller.snapshot.interval.entries).', (s) => s.snapshotIndex);
  new Gauge({
    name: 'strand_controller_raft_follower_lag',
    help: 'On the Raft leader: entries each voter is behind the leader\'s last index.',
    labelNames: ['peer'],
    registers: [register],
    collect() {
      this.reset();
      if (!controller) return;
      const s = controller.raftStatus();
      for (const [peer, p] of Object.entries(s.progress)) this.set({ peer }, Math.max(0, s.lastIndex - p.match));
    },
  });
  new Gauge({
    name: 'strand_controller_metadata_offset',
    help: 'Offset of the metadata image this controller has applied.',
    registers: [register],
    collect() {
      if (controller) this.set(controller.metadata.offset);
    },
  });
  new Gauge({
    name: 'strand_controller_brokers',
    help: 'Registered brokers by state, as this controller\'s metadata says.',
    labelNames: ['state'],
    registers: [register],
    collect() {
      this.reset();
      if (!controller) return;
      const bs = [...controller.metadata.brokers.values()];
      this.set({ state: 'fenced' }, bs.filter((b) => b.fenced).length);
      this.set({ state: 'unfenced' }, bs.filter((b) => !b.fenced).length);
    },
  });

  const metricsSink: BrokerMetricsSink = {
    produced: (topic, bytes, records, errorCode) => {
      if (errorCode !== 0) {
        failedProduce.inc({ topic });
        return;
      }
      bytesIn.inc({ topic }, bytes);
      messagesIn.inc({ topic }, records);
    },
    fetched: (topic, bytes, replica) => bytesOut.inc({ topic, kind: replica ? 'replica' : 'consumer' }, bytes),
    request: (api, seconds, failed) => requests.observe({ api, outcome: failed ? 'error' : 'ok' }, seconds),
    isrChange: (kind) => (kind === 'shrink' ? isrShrinks.inc() : isrExpands.inc()),
  };

  const readiness = (): { ready: boolean; checks: Record<string, string> } => {
    const checks: Record<string, string> = {};
    let ready = true;
    if (broker) {
      const r = broker.readiness();
      checks['broker'] = r.reason;
      ready &&= r.ready;
    }
    if (controller) {
      const s = controller.raftStatus();
      const ok = s.leader !== '';
      checks['controller'] = ok ? `in a quorum with leader ${s.leader} (term ${s.term})` : 'no quorum leader known';
      ready &&= ok;
    }
    if (!broker && !controller) {
      ready = false;
      checks['node'] = 'starting';
    }
    return { ready, checks };
  };

  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.method !== 'GET') return json(405, { error: 'method not allowed' });
    if (url === '/healthz') return json(200, { status: 'ok' });
    if (url === '/readyz') {
      const r = readiness();
      return json(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r.checks });
    }
    if (url === '/metrics') {
      register.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': register.contentType });
          res.end(text);
        },
        (e: unknown) => json(500, { error: e instanceof Error ? e.message : String(e) }),
      );
      return;
    }
    json(404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
  });

  return {
    metricsSink,
    attach: (roles) => {
      broker = roles.broker;
      controller = roles.controller;
    },
    listen: (l) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          const addr = server.address();
          resolve(typeof addr === 'object' && addr !== null ? addr.port : l.port);
        });
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
