// The conf-change entry codec (src/core/conf-change.ts): the original format (no context) stays
// readable, a context (a member's address) round-trips, and malformed data is refused.

import { decodeConfChange, encodeConfChange } from '../../src/core/conf-change';
import { ConfChangeType } from '../../src/core/types';

describe('conf change codec', () => {
  test('without a context: the original one-byte-type format', () => {
    const b = encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: 'n2' });
    expect(Array.from(b)).toEqual([1, 0x6e, 0x32]);
    expect(decodeConfChange(b)).toEqual({ type: ConfChangeType.AddVoter, nodeId: 'n2' });
  });

  test('with a context: round-trips', () => {
    for (const cc of [
      { type: ConfChangeType.AddLearner, nodeId: 'controller-4', context: '127.0.0.1:9193' },
      { type: ConfChangeType.AddVoter, nodeId: 'n', context: '[::1]:1' },
    ]) {
      expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    }
    // An empty context encodes as none.
    expect(decodeConfChange(encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 'x', context: '' }))).toEqual({ type: ConfChangeType.RemoveNode, nodeId: 'x' });
  });

  test('malformed data is refused', () => {
    expect(() => decodeConfChange(new Uint8Array([7, 0x61]))).toThrow(/unknown type/);
    expect(() => decodeConfChange(new Uint8Array([0]))).toThrow(/empty node id/);
    expect(() => decodeConfChange(new Uint8Array([0x80, 0]))).toThrow(/truncated/);
    expect(() => decodeConfChange(new Uint8Array([0x80, 0, 5, 0x61]))).toThrow(/truncated/);
    expect(() => decodeConfChange(new Uint8Array([0x80, 0, 0, 0x61]))).toThrow(/empty node id/);
  });
});
