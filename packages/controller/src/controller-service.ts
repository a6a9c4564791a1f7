/**
 * The controller's gRPC service (proto/controller.proto): handlers validate the request's shape,
 * hand it to the QuorumController (which owns all state and its transitions) and map the answer.
 * A call that fails as a whole carries the Kafka error code in `strand-error-code`; a
 * NOT_CONTROLLER failure also names the active controller so clients and brokers follow it.
 */
import * as grpc from '@grpc/grpc-js';
import {
  ConfigResourceType,
  ConfigSource,
  ControllerService,
  ElectionType,
  ERROR_CODE_METADATA_KEY,
  StrandError,
  grpcStatusFor,
  type ControllerServer,
  type ControllerDescription,
  type DescribeConfigsResult,
  type AlterConfigsResult,
  type MetadataDelta,
  encodeMetadataDelta,
  toBuffer,
} from '@strand/protocol';
import { configChangesFromRequest, errorInfo, type ConfigChange } from './controller-logic';
import { NotControllerError, type QuorumController } from './quorum-controller';

export const CONTROLLER_ID_METADATA_KEY = 'strand-controller-id';
export const CONTROLLER_ADDRESS_METADATA_KEY = 'strand-controller-address';

/** Limit on metadata deltas buffered for a slow stream before it is ended (it reconnects from its offset). */
const MAX_BUFFERED_DELTAS = 10_000;

/** Each delta's bytes, by object: the controller hands one delta object to every stream. */
const encodedDeltas = new WeakMap<MetadataDelta, Buffer>();

/**
 * The FetchMetadata stream's serializer: a delta is encoded once however many streams it is
 * written to (grpc-js copies the bytes into each stream's frame). A batch goes to every broker,
 * and the snapshot of an image to every broker that reconnects while it stands (QuorumController
 * shares it): N brokers reconnecting after a failover cost one encoding, not N.
 */
export function serializeMetadataDelta(delta: MetadataDelta): Buffer {
  let bytes = encodedDeltas.get(delta);
  if (bytes === undefined) {
    bytes = toBuffer(encodeMetadataDelta(delta));
    encodedDeltas.set(delta, bytes);
  }
  return bytes;
}

/** A grpc ServiceError for `e` (a StrandError keeps its Kafka code; anything else is UNKNOWN_SERVER_ERROR). */
export function toServiceError(e: unknown): grpc.ServiceError {
  const err = e instanceof StrandError ? e : new StrandError('UNKNOWN_SERVER_ERROR', e instanceof Error ? e.message : String(e), { cause: e });
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, String(err.code));
  if (err instanceof NotControllerError && err.activeControllerId >= 0) {
    metadata.set(CONTROLLER_ID_METADATA_KEY, String(err.activeControllerId));
    if (err.activeController) metadata.set(CONTROLLER_ADDRESS_METADATA_KEY, `${err.activeController.host}:${err.activeController.port}`);
  }
  return Object.assign(new Error(`${err.errorName}: ${err.message}`), { code: grpcStatusFor(err.errorName), details: `${err.errorName}: ${err.message}`, metadata });
}

function unary<Req, Res>(f: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    f(call.request).then(
      (res) => callback(null, res),
      (e: unknown) => callback(toServiceError(e)),
    );
  };
}

/** Adds the Controller service, backed by `controller`, to `server`. */
export function addControllerService(server: grpc.Server, controller: QuorumController, voters: ReadonlyMap<number, { host: string; port: number }>): void {
  const impl: ControllerServer = {
    registerBroker: unary(async (req) => {
      const r = await controller.registerBroker(req);
      return { errorCode: r.errorCode, errorMessage: r.errorMessage, brokerEpoch: r.brokerEpoch, clusterId: r.clusterId };
    }),
    brokerHeartbeat: unary((req) => controller.brokerHeartbeat(req)),
    alterPartition: unary(async (req) => ({ errorCode: 0, errorMessage: '', topics: await controller.alterPartition(req) })),
    allocateProducerIds: unary((req) => controller.allocateProducerIds(req.brokerId, req.brokerEpoch)),
    createTopics: unary(async (req) => ({ topics: await controller.createTopics(req.topics, req.validateOnly) })),
    deleteTopics: unary(async (req) => ({ topics: await controller.deleteTopics(req.names) })),
    createPartitions: unary(async (req) => ({ topics: await controller.createPartitions(req.topics, req.validateOnly) })),
    describeConfigs: unary(async (req) => {
      const results: DescribeConfigsResult[] = await controller.read((image) =>
        req.resources.map((r): DescribeConfigsResult => {
          const base = { type: r.type, name: r.name };
          if (r.type !== ConfigResourceType.CONFIG_RESOURCE_TOPIC) {
            return { ...base, ...errorInfo('INVALID_REQUEST', 'only topic configs can be described by the controller'), configs: [] };
          }
          try {
            const configs = controller.describeTopicConfigs(image, r.name, r.keys).map((c) => ({ name: c.name, value: c.value, source: c.isDefault ? ConfigSource.CONFIG_SOURCE_DEFAULT : ConfigSource.CONFIG_SOURCE_DYNAMIC, isDefault: c.isDefault, documentation: c.doc }));
            return { ...base, errorCode: 0, errorMessage: '', configs };
          } catch (e: unknown) {
            if (!(e instanceof StrandError)) throw e;
            return { ...base, errorCode: e.code, errorMessage: e.message, configs: [] };
          }
        }),
      );
      return { results };
    }),
    incrementalAlterConfigs: unary(async (req) => {
      const results: AlterConfigsResult[] = [];
      for (const r of req.resources) {
        const base = { type: r.type, name: r.name };
        let changes: ConfigChange[];
        try {
          changes = configChangesFromRequest(r.configs);
        } catch (e: unknown) {
          if (!(e instanceof StrandError)) throw e;
          results.push({ ...base, errorCode: e.code, errorMessage: e.message });
          continue;
        }
        if (r.type === ConfigResourceType.CONFIG_RESOURCE_TOPIC) results.push({ ...base, ...(await controller.alterTopicConfigs(r.name, changes, req.validateOnly)) });
        else if (r.type === ConfigResourceType.CONFIG_RESOURCE_BROKER) results.push({ ...base, ...(await controller.alterBrokerConfigs(r.name, changes, req.validateOnly)) });
        else results.push({ ...base, ...errorInfo('INVALID_REQUEST', 'only topic and broker configs can be altered') });
      }
      return { results };
    }),
    electLeaders: unary(async (req) => {
      const type = req.type === ElectionType.ELECTION_UNCLEAN ? 'unclean' : 'preferred';
      const targets = req.topics.length === 0 ? 'all' : req.topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition })));
      return { results: await controller.electLeaders(type, targets) };
    }),
    alterPartitionReassignments: unary(async (req) => ({
      results: await controller.alterReassignments(req.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, replicas: p.replicas === null ? null : p.replicas.values })))),
    })),
    listPartitionReassignments: unary(async (req) =>
      controller.read((image) => {
        const wanted = new Set(req.topics.flatMap((t) => t.partitions.map((p) => `${t.topic}-${p}`)));
        const reassignments = [...image.allPartitions()]
          .filter(([t, p]) => (p.addingReplicas.length > 0 || p.removingReplicas.length > 0) && (wanted.size === 0 || wanted.has(`${t.name}-${p.partition}`)))
          .map(([t, p]) => ({ topic: t.name, partition: p.partition, replicas: [...p.replicas], addingReplicas: [...p.addingReplicas], removingReplicas: [...p.removingReplicas] }));
        return { reassignments };
      }),
    ),
    describeCluster: unary(async () => {
      const image = controller.metadata;
      const status = controller.raftStatus();
      const controllers: ControllerDescription[] = [...voters.entries()].map(([id, ep]) => {
        const self = id === controller.nodeId;
        const progress = status.progress[String(id)];
        const role = self ? String(status.role) : status.leader === String(id) ? 'leader' : progress !== undefined ? 'follower' : 'unknown';
        return { nodeId: id, host: ep.host, port: ep.port, role, lag: progress !== undefined ? Math.max(0, status.lastIndex - progress.match) : self ? 0 : -1 };
      });
      return {
        clusterId: image.clusterId,
        activeControllerId: controller.activeControllerId,
        metadataOffset: image.offset,
        raftTerm: status.term,
        brokers: [...image.brokers.values()]
          .sort((a, b) => a.id - b.id)
          .map((b) => ({ brokerId: b.id, brokerEpoch: b.epoch, endpoints: [...b.endpoints], ...(b.rack === undefined ? {} : { rack: b.rack }), fenced: b.fenced, inControlledShutdown: b.inControlledShutdown, lastHeartbeatAgeMs: controller.lastHeartbeatAgeMs(b.id) })),
        controllers,
      };
    }),
    describeQuorum: unary(async () => controller.describeQuorum()),
    fetchMetadata: (call) => {
      // Brokers are served by the active controller only (Kafka's brokers fetch the metadata log
      // from the quorum leader): a controller cut off from the quorum would otherwise keep a
      // broker on metadata that no longer moves, for as long as the cut lasts. A broker's stream
      // ends when its controller stops being active; the broker reconnects to the one the error
      // names. A tool (broker id -1) may read any controller's own log.
      // emit('error') ends the call with this status (destroy() would end it without one).
      const broker = call.request.brokerId >= 0;
      if (broker && !controller.isActive) {
        call.emit('error', toServiceError(controller.notControllerError()));
        return;
      }
      let closed = false;
      const unwatch = !broker ? () => undefined : controller.onDeactivate(() => {
        if (closed) return;
        stop();
        call.emit('error', toServiceError(controller.notControllerError()));
      });
      const unsubscribe = controller.subscribe(call.request.afterOffset, (delta: MetadataDelta) => {
        if (closed) return;
        if (call.writableLength > MAX_BUFFERED_DELTAS) {
          stop();
          call.emit('error', toServiceError(new StrandError('THROTTLING_QUOTA_EXCEEDED', 'metadata stream fell too far behind; reconnect from your offset')));
          return;
        }
        call.write(delta);
      });
      const stop = (): void => {
        closed = true;
        unsubscribe();
        unwatch();
      };
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
  server.addService({ ...ControllerService, fetchMetadata: { ...ControllerService.fetchMetadata, responseSerialize: serializeMetadataDelta } }, impl);
}
