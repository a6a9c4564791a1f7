// Encoding of a ConfChange in an entry's data. It travels inside replicated entries, so it must
// be stable across versions:
//   without a context: one type byte, then the node id in UTF-8 (the original format);
//   with a context:    the type byte with bit 0x80 set, u16 BE length of the node id, the node
//                      id in UTF-8, then the context in UTF-8.

import { ConfChange, ConfChangeType } from './types';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const HAS_CONTEXT = 0x80;
const MAX_ID_BYTES = 0xffff;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = encoder.encode(cc.nodeId);
  if (cc.context === undefined || cc.context === '') {
    const out = new Uint8Array(1 + id.byteLength);
    out[0] = cc.type;
    out.set(id, 1);
    return out;
  }
  if (id.byteLength > MAX_ID_BYTES) throw new Error(`conf change: node id longer than ${MAX_ID_BYTES} bytes`);
  const ctx = encoder.encode(cc.context);
  const out = new Uint8Array(3 + id.byteLength + ctx.byteLength);
  out[0] = cc.type | HAS_CONTEXT;
  out[1] = id.byteLength >>> 8;
  out[2] = id.byteLength & 0xff;
  out.set(id, 3);
  out.set(ctx, 3 + id.byteLength);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const first = data[0] ?? -1;
  const withContext = first >= 0 && (first & HAS_CONTEXT) !== 0;
  const type = withContext ? first & ~HAS_CONTEXT : first;
  if (type !== ConfChangeType.AddLearner && type !== ConfChangeType.AddVoter && type !== ConfChangeType.RemoveNode) {
    throw new Error(`conf change: unknown type ${String(type)}`);
  }
  if (!withContext) {
    const nodeId = decoder.decode(data.subarray(1));
    if (nodeId.length === 0) throw new Error('conf change: empty node id');
    return { type, nodeId };
  }
  if (data.byteLength < 3) throw new Error('conf change: truncated');
  const idLen = ((data[1] ?? 0) << 8) | (data[2] ?? 0);
  if (3 + idLen > data.byteLength) throw new Error('conf change: node id truncated');
  const nodeId = decoder.decode(data.subarray(3, 3 + idLen));
  if (nodeId.length === 0) throw new Error('conf change: empty node id');
  const context = decoder.decode(data.subarray(3 + idLen));
  return context === '' ? { type, nodeId } : { type, nodeId, context };
}
