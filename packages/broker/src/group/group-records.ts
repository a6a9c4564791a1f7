/**
 * The records of `__consumer_offsets`: Kafka's own key and value layouts (the classic group
 * coordinator's `GroupMetadataManager` formats), so the partition's bytes read the same as a
 * Kafka cluster's. Every record has a key (the topic is compacted: the latest value per key
 * survives); a null value is a tombstone. All integers are big-endian; a `string` is an int16
 * byte length then UTF-8 bytes, a `nullable string` uses length -1 for null, `bytes` is an int32
 * length then the bytes.
 *
 *   OffsetCommitKey (key version 1)     int16 version=1 | string group | string topic | int32 partition
 *   GroupMetadataKey (key version 2)    int16 version=2 | string group
 *
 *   OffsetCommitValue (version 3)       int16 version=3 | int64 offset | int32 leader_epoch
 *                                       | string metadata | int64 commit_timestamp_ms
 *   GroupMetadataValue (version 3)      int16 version=3 | string protocol_type | int32 generation
 *                                       | nullable string protocol | nullable string leader
 *                                       | int64 current_state_timestamp_ms
 *                                       | int32 member_count | member_count × Member
 *     Member                            string member_id | nullable string group_instance_id
 *                                       | string client_id | string client_host
 *                                       | int32 rebalance_timeout_ms | int32 session_timeout_ms
 *                                       | bytes subscription | bytes assignment
 *
 * Decoders throw CORRUPT_MESSAGE (StrandError) on anything malformed or of an unknown version;
 * encoders never mutate their input.
 */
import { KafkaReader, KafkaWriter, StrandError } from '@strand/protocol';

export const OFFSET_COMMIT_KEY_VERSION = 1;
export const GROUP_METADATA_KEY_VERSION = 2;
export const OFFSET_COMMIT_VALUE_VERSION = 3;
export const GROUP_METADATA_VALUE_VERSION = 3;

export interface OffsetCommitKey {
  kind: 'offset';
  group: string;
  topic: string;
  partition: number;
}

export interface GroupMetadataKey {
  kind: 'group';
  group: string;
}

export type GroupRecordKey = OffsetCommitKey | GroupMetadataKey;

export interface OffsetCommitValue {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  commitTimestampMs: number;
}

export interface GroupMemberValue {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  subscription: Buffer;
  assignment: Buffer;
}

export interface GroupMetadataValue {
  protocolType: string;
  generationId: number;
  protocolName: string | null;
  leaderId: string | null;
  currentStateTimestampMs: number;
  members: GroupMemberValue[];
}

/** One record to append: a key and a value (null: tombstone). */
export interface GroupRecord {
  key: Buffer;
  value: Buffer | null;
}

export function encodeGroupRecordKey(key: GroupRecordKey): Buffer {
  if (key.kind === 'offset') return new KafkaWriter().int16(OFFSET_COMMIT_KEY_VERSION).string(key.group).string(key.topic).int32(key.partition).done();
  return new KafkaWriter().int16(GROUP_METADATA_KEY_VERSION).string(key.group).done();
}

export function decodeGroupRecordKey(bytes: Buffer): GroupRecordKey {
  const r = new KafkaReader(bytes, 'CORRUPT_MESSAGE', 'group record');
  const version = r.int16();
  let key: GroupRecordKey;
  // Kafka's key versions 0 and 1 share the offset-commit layout.
  if (version === 0 || version === OFFSET_COMMIT_KEY_VERSION) key = { kind: 'offset', group: r.string(), topic: r.string(), partition: r.int32() };
  else if (version === GROUP_METADATA_KEY_VERSION) key = { kind: 'group', group: r.string() };
  else throw new StrandError('CORRUPT_MESSAGE', `unknown __consumer_offsets key version ${version}`);
  r.end();
  return key;
}

export function encodeOffsetCommitValue(v: OffsetCommitValue): Buffer {
  return new KafkaWriter().int16(OFFSET_COMMIT_VALUE_VERSION).int64(v.offset).int32(v.leaderEpoch).string(v.metadata).int64(v.commitTimestampMs).done();
}

export function decodeOffsetCommitValue(bytes: Buffer): OffsetCommitValue {
  const r = new KafkaReader(bytes, 'CORRUPT_MESSAGE', 'group record');
  const version = r.int16();
  if (version !== OFFSET_COMMIT_VALUE_VERSION) throw new StrandError('CORRUPT_MESSAGE', `unsupported offset commit value version ${version}`);
  const v = { offset: r.int64(), leaderEpoch: r.int32(), metadata: r.string(), commitTimestampMs: r.int64() };
  r.end();
  return v;
}

export function encodeGroupMetadataValue(v: GroupMetadataValue): Buffer {
  const w = new KafkaWriter()
    .int16(GROUP_METADATA_VALUE_VERSION)
    .string(v.protocolType)
    .int32(v.generationId)
    .string(v.protocolName)
    .string(v.leaderId)
    .int64(v.currentStateTimestampMs)
    .int32(v.members.length);
  for (const m of v.members) {
    w.string(m.memberId).string(m.groupInstanceId).string(m.clientId).string(m.clientHost).int32(m.rebalanceTimeoutMs).int32(m.sessionTimeoutMs).bytes(m.subscription).bytes(m.assignment);
  }
  return w.done();
}

/** Bound on members decoded from one record (a corrupt count must not allocate without limit). */
const MAX_DECODED_MEMBERS = 1_000_000;

export function decodeGroupMetadataValue(bytes: Buffer): GroupMetadataValue {
  const r = new KafkaReader(bytes, 'CORRUPT_MESSAGE', 'group record');
  const version = r.int16();
  if (version !== GROUP_METADATA_VALUE_VERSION) throw new StrandError('CORRUPT_MESSAGE', `unsupported group metadata value version ${version}`);
  const head = { protocolType: r.string(), generationId: r.int32(), protocolName: r.nullableString(), leaderId: r.nullableString(), currentStateTimestampMs: r.int64() };
  const count = r.int32();
  if (count < 0 || count > MAX_DECODED_MEMBERS) throw new StrandError('CORRUPT_MESSAGE', `bad member count ${count}`);
  const members: GroupMemberValue[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      memberId: r.string(),
      groupInstanceId: r.nullableString(),
      clientId: r.string(),
      clientHost: r.string(),
      rebalanceTimeoutMs: r.int32(),
      sessionTimeoutMs: r.int32(),
      subscription: r.bytes(),
      assignment: r.bytes(),
    });
  }
  r.end();
  return { ...head, members };
}
