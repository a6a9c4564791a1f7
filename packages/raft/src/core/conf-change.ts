// Encoding of a ConfChange in an entry's data: one type byte, then the node id in UTF-8.
// It travels inside replicated entries, so it must be stable across versions.

import { ConfChange, ConfChangeType } from './types';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = encoder.encode(cc.nodeId);
  const out = new Uint8Array(1 + id.byteLength);
  out[0] = cc.type;
  out.set(id, 1);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = data[0];
  if (type !== ConfChangeType.AddLearner && type !== ConfChangeType.AddVoter && type !== ConfChangeType.RemoveNode) {
    throw new Error(`conf change: unknown type ${String(type)}`);
  }
  const nodeId = decoder.decode(data.subarray(1));
  if (nodeId.length === 0) throw new Error('conf change: empty node id');
  return { type, nodeId };
}
