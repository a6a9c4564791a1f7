/**
 * What the broker reports for metrics, as a sink interface: the broker package stays free of a
 * metrics library (the server process plugs in Prometheus), and tests can count calls.
 */
export interface BrokerMetricsSink {
  /** A produce to one partition finished (`errorCode` 0 on success). */
  produced(topic: string, bytes: number, records: number, errorCode: number): void;
  /** Bytes sent to a consumer (`replica` false) or a follower (`replica` true). */
  fetched(topic: string, bytes: number, replica: boolean): void;
  /** One gRPC call of `api` took `seconds`. */
  request(api: string, seconds: number, failed: boolean): void;
  /** This broker proposed an ISR change. */
  isrChange(kind: 'shrink' | 'expand'): void;
}

export const NO_METRICS: BrokerMetricsSink = {
  produced: () => undefined,
  fetched: () => undefined,
  request: () => undefined,
  isrChange: () => undefined,
};

/** A hosted replica, as metrics and readiness see it. */
export interface ReplicaSummary {
  topic: string;
  partition: number;
  isLeader: boolean;
  replicas: number;
  isr: number;
  /** The partition has no leader in this broker's metadata. */
  offline: boolean;
  logSizeBytes: number;
  logEndOffset: number;
  highWatermark: number;
}
