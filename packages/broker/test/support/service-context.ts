/**
 * A BrokerServiceContext over a ReplicaManager for in-process tests of the broker service: only
 * what Produce, Fetch, ListOffsets, Metadata and ReplicaFetch use (no controller, no groups).
 */
import type { RawConfig } from '@strand/protocol';
import { BROKER_CONFIG } from '../../src/server/broker-config';
import { NO_METRICS } from '../../src/server/broker-metrics';
import type { BrokerServiceContext } from '../../src/server/broker-service';
import type { ReplicaManager } from '../../src/server/replica-manager';

const quiet = { info: () => undefined, warn: () => undefined };

/** Broker 1's service context over `rm`, with broker settings `config` and context fields `over`. */
export function serviceContext(rm: ReplicaManager, config: RawConfig, over: Partial<BrokerServiceContext> = {}): BrokerServiceContext {
  return {
    brokerId: 1,
    config: BROKER_CONFIG.parse(config),
    replicas: rm,
    controllers: {},
    listenerName: 'BROKER',
    interBrokerListenerName: 'BROKER',
    image: () => rm.metadataImage,
    nextProducerId: () => Promise.resolve(0),
    groups: {},
    logger: quiet,
    metrics: NO_METRICS,
    nodeConfigs: () => [],
    topicDefaults: new Map(),
    ...over,
  } as unknown as BrokerServiceContext;
}
