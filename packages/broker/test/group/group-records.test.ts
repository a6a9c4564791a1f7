/**
 * The __consumer_offsets record codecs: fixture bytes of Kafka's layouts (key versions 1 and 2,
 * value version 3), round trips, and CORRUPT_MESSAGE for truncated, trailing or unknown input.
 */
import { StrandError } from '@strand/protocol';
import {
  decodeGroupMetadataValue,
  decodeGroupRecordKey,
  decodeOffsetCommitValue,
  encodeGroupMetadataValue,
  encodeGroupRecordKey,
  encodeOffsetCommitValue,
  type GroupMetadataValue,
} from '../../src/group/group-records';

test('offset commit key: int16 version 1, group, topic, int32 partition', () => {
  const bytes = encodeGroupRecordKey({ kind: 'offset', group: 'g', topic: 'ab', partition: 7 });
  expect(bytes.toString('hex')).toBe('0001' + '0001' + '67' + '0002' + '6162' + '00000007');
  expect(decodeGroupRecordKey(bytes)).toEqual({ kind: 'offset', group: 'g', topic: 'ab', partition: 7 });
});

test('group metadata key: int16 version 2, group', () => {
  const bytes = encodeGroupRecordKey({ kind: 'group', group: 'g1' });
  expect(bytes.toString('hex')).toBe('0002' + '0002' + '6731');
  expect(decodeGroupRecordKey(bytes)).toEqual({ kind: 'group', group: 'g1' });
});

test('offset commit value v3: offset, leader epoch, metadata, commit timestamp', () => {
  const v = { offset: 42, leaderEpoch: 3, metadata: 'm', commitTimestampMs: 1000 };
  const bytes = encodeOffsetCommitValue(v);
  expect(bytes.toString('hex')).toBe('0003' + '000000000000002a' + '00000003' + '0001' + '6d' + '00000000000003e8');
  expect(decodeOffsetCommitValue(bytes)).toEqual(v);
});

test('group metadata value v3 round-trips, nullable strings included', () => {
  const v: GroupMetadataValue = {
    protocolType: 'consumer',
    generationId: 5,
    protocolName: 'range',
    leaderId: 'm1',
    currentStateTimestampMs: 123,
    members: [
      { memberId: 'm1', groupInstanceId: 'pod-1', clientId: 'c', clientHost: '/127.0.0.1', rebalanceTimeoutMs: 300, sessionTimeoutMs: 100, subscription: Buffer.from([1, 2]), assignment: Buffer.from([3]) },
      { memberId: 'm2', groupInstanceId: null, clientId: '', clientHost: '', rebalanceTimeoutMs: 1, sessionTimeoutMs: 2, subscription: Buffer.alloc(0), assignment: Buffer.alloc(0) },
    ],
  };
  expect(decodeGroupMetadataValue(encodeGroupMetadataValue(v))).toEqual(v);
  const empty: GroupMetadataValue = { protocolType: '', generationId: 1, protocolName: null, leaderId: null, currentStateTimestampMs: 0, members: [] };
  const bytes = encodeGroupMetadataValue(empty);
  expect(bytes.toString('hex')).toBe('0003' + '0000' + '00000001' + 'ffff' + 'ffff' + '0000000000000000' + '00000000');
  expect(decodeGroupMetadataValue(bytes)).toEqual(empty);
});

test('malformed input is CORRUPT_MESSAGE, never a partial result', () => {
  const key = encodeGroupRecordKey({ kind: 'offset', group: 'g', topic: 't', partition: 0 });
  const bad = [key.subarray(0, key.length - 1), Buffer.concat([key, Buffer.from([0])]), Buffer.from('0009', 'hex')];
  for (const b of bad) {
    expect(() => decodeGroupRecordKey(b)).toThrow(StrandError);
  }
  expect(() => decodeOffsetCommitValue(Buffer.from('0001', 'hex'))).toThrow(/version/);
  expect(() => decodeGroupMetadataValue(Buffer.from('0003000000000001ffffffff0000000000000000ffffffff', 'hex'))).toThrow(/member count/);
});
