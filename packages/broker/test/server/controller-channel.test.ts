/**
 * The broker's side of the controller API: the metadata stream carries whole images (a
 * snapshot delta, one message), which outgrow grpc-js's default 4 MiB receive limit in a large
 * cluster (~1.5 MB per 40,000 partitions).
 */
import * as grpc from '@grpc/grpc-js';
import { ConfigResourceType, ControllerService, type MetadataDelta } from '@strand/protocol';
import { ControllerChannel } from '../../src/server/controller-channel';

const servers: grpc.Server[] = [];
const channels: ControllerChannel[] = [];

afterEach(async () => {
  for (const c of channels.splice(0)) c.close();
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.tryShutdown(() => resolve()));
});

/** A controller whose metadata stream sends `delta` and stays open. */
async function fakeController(delta: MetadataDelta): Promise<number> {
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  const unimplemented = (_call: unknown, callback: (e: grpc.ServiceError) => void): void => callback(Object.assign(new Error('not in this fake'), { code: grpc.status.UNIMPLEMENTED, details: 'not in this fake', metadata: new grpc.Metadata() }));
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(ControllerService)) impl[name] = unimplemented;
  impl['fetchMetadata'] = (call: grpc.ServerWritableStream<unknown, MetadataDelta>) => void call.write(delta);
  server.addService(ControllerService, impl);
  servers.push(server);
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))));
}

it('receives a metadata image larger than 4 MiB (one snapshot message)', async () => {
  const value = 'v'.repeat(100_000);
  const records = Array.from({ length: 60 }, (_, i) => ({ config: { resourceType: ConfigResourceType.CONFIG_RESOURCE_TOPIC, resourceName: `t${i}`, name: 'x', value } }));
  const port = await fakeController({ snapshot: true, offset: 42, records });
  const channel = new ControllerChannel([{ id: 1, host: '127.0.0.1', port }]);
  channels.push(channel);
  const got = await new Promise<MetadataDelta>((resolve, reject) => {
    const stop = channel.followMetadata(
      () => -1,
      7,
      (d) => {
        stop();
        resolve(d);
      },
      (e) => {
        stop();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
  expect(got.offset).toBe(42);
  expect(got.records).toHaveLength(60);
});
