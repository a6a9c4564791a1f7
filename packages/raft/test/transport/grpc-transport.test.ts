// GrpcTransport (src/transport/grpc-transport.ts) on loopback: two transports exchange many
// messages in batches; messages for an unknown cluster id are refused; a peer that goes away
// and comes back on the same port is reached again (reconnect). Waits are on received-message
// events with bounded timeouts; every server is shut down at the end.

import { Message, MessageType, msg } from '../../src/core/types';
import { GrpcTransport } from '../../src/transport/grpc-transport';

function waitCount(counter: () => number, n: number, ms: number, what: string, hook: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${counter()}/${n}`)), ms);
    const check = (): void => {
      if (counter() >= n) {
        clearTimeout(t);
        resolve();
      }
    };
    hook(check);
    check();
  });
}

describe('GrpcTransport', () => {
  const open: GrpcTransport[] = [];
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
  });

  test('delivers batches both ways and reconnects to a restarted peer', async () => {
    const b1 = new GrpcTransport({ id: 'b', clusterId: 'c1', listen: '127.0.0.1:0', peers: {} });
    open.push(b1);
    const portB = await b1.start();
    const a = new GrpcTransport({ id: 'a', clusterId: 'c1', listen: '127.0.0.1:0', peers: { b: `127.0.0.1:${portB}` } });
    open.push(a);
    await a.start();
    const got: Message[] = [];
    const listeners: Array<() => void> = [];
    b1.onMessage((m) => {
      got.push(m);
      listeners.forEach((l) => l());
    });
    const n = 5000;
    for (let i = 0; i < n; i++) a.send([msg({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, context: i })]);
    await waitCount(() => got.length, n, 10_000, 'messages', (cb) => listeners.push(cb));
    expect(got.map((m) => m.context)).toEqual(Array.from({ length: n }, (_, i) => i));

    // The peer goes away and comes back on the same port.
    await b1.close();
    open.splice(open.indexOf(b1), 1);
    a.send([msg({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, context: 1 })]);
    const b2 = new GrpcTransport({ id: 'b', clusterId: 'c1', listen: `127.0.0.1:${portB}`, peers: {} });
    open.push(b2);
    await b2.start();
    const got2: Message[] = [];
    const l2: Array<() => void> = [];
    b2.onMessage((m) => {
      got2.push(m);
      l2.forEach((l) => l());
    });
    // Keep sending (as Raft's heartbeats would) until one arrives.
    const timer = setInterval(() => a.send([msg({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, context: 2 })]), 20);
    try {
      await waitCount(() => got2.length, 1, 10_000, 'message after reconnect', (cb) => l2.push(cb));
    } finally {
      clearInterval(timer);
    }
  });

  test('refuses batches from another cluster', async () => {
    const b = new GrpcTransport({ id: 'b', clusterId: 'c1', listen: '127.0.0.1:0', peers: {} });
    open.push(b);
    const port = await b.start();
    const a = new GrpcTransport({ id: 'a', clusterId: 'other', listen: '127.0.0.1:0', peers: { b: `127.0.0.1:${port}` } });
    open.push(a);
    await a.start();
    let received = 0;
    b.onMessage(() => received++);
    // Poll the counter (bounded): the refusal has no other observable event on this side.
    const done = new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => {
        clearInterval(check);
        reject(new Error('refusal not observed within 5 s'));
      }, 5000);
      const check = setInterval(() => {
        if (b.stats.invalid > 0) {
          clearInterval(check);
          clearTimeout(deadline);
          resolve();
        }
      }, 5);
    });
    a.send([msg({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1 })]);
    await done;
    expect(received).toBe(0);
  });
});
