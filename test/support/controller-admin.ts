/**
 * A test client for the controller quorum: tries the known active controller first, follows
 * NOT_CONTROLLER answers (strand-controller-address) and retries retriable failures until a
 * deadline (monotonic). Enough for tests; the real Admin client comes with the client package.
 */
import * as grpc from '@grpc/grpc-js';
import {
  ControllerClient,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type DescribeClusterResponse,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
} from '@strand/protocol';

export class ControllerAdmin {
  private readonly clients = new Map<string, ControllerClient>();
  private preferred: string | undefined;

  constructor(private readonly addresses: string[]) {}

  private client(address: string): ControllerClient {
    let c = this.clients.get(address);
    if (c === undefined) {
      c = new ControllerClient(address, grpc.credentials.createInsecure());
      this.clients.set(address, c);
    }
    return c;
  }

  /**
   * Calls a unary method on the active controller. Returns the response, or throws the last
   * error once `timeoutMs` has passed without a controller answering.
   */
  async call<Req, Res>(method: (c: ControllerClient, req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall, req: Req, timeoutMs = 15_000): Promise<Res> {
    const deadline = performance.now() + timeoutMs;
    let last: unknown = new Error('no controller answered');
    let i = 0;
    while (performance.now() < deadline) {
      const address = this.preferred ?? (this.addresses[i++ % this.addresses.length] as string);
      try {
        return await new Promise<Res>((resolve, reject) =>
          method(this.client(address), req, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err, res) => (err || res === undefined ? reject(err ?? new Error('empty response')) : resolve(res))),
        );
      } catch (e: unknown) {
        last = e;
        const md = (e as grpc.ServiceError).metadata;
        const hint = md?.get('strand-controller-address')[0];
        this.preferred = typeof hint === 'string' && hint !== address ? hint : undefined;
        if (this.preferred === undefined) await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw last;
  }

  describeCluster(timeoutMs?: number): Promise<DescribeClusterResponse> {
    return this.call<object, DescribeClusterResponse>((c, r, m, o, cb) => c.describeCluster(r, m, o, cb), {}, timeoutMs);
  }

  registerBroker(req: RegisterBrokerRequest, timeoutMs?: number): Promise<RegisterBrokerResponse> {
    return this.call<RegisterBrokerRequest, RegisterBrokerResponse>((c, r, m, o, cb) => c.registerBroker(r, m, o, cb), req, timeoutMs);
  }

  brokerHeartbeat(req: BrokerHeartbeatRequest, timeoutMs?: number): Promise<BrokerHeartbeatResponse> {
    return this.call<BrokerHeartbeatRequest, BrokerHeartbeatResponse>((c, r, m, o, cb) => c.brokerHeartbeat(r, m, o, cb), req, timeoutMs);
  }

  createTopics(req: CreateTopicsRequest, timeoutMs?: number): Promise<CreateTopicsResponse> {
    return this.call<CreateTopicsRequest, CreateTopicsResponse>((c, r, m, o, cb) => c.createTopics(r, m, o, cb), req, timeoutMs);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
