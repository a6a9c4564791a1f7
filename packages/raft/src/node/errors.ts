// Typed errors of the RaftNode API, on the shared Kafka error table of @strand/protocol.

import { StrandError } from '@strand/protocol';
import { NodeId } from '../core/types';

/** This node is not the leader; retry on `leaderHint` (empty when unknown). Retriable. */
export class NotLeaderError extends StrandError {
  constructor(readonly leaderHint: NodeId, message?: string) {
    super('NOT_LEADER_OR_FOLLOWER', message ?? (leaderHint === '' ? 'no leader known' : `not the leader; leader is ${leaderHint}`));
    this.name = 'NotLeaderError';
  }
}

/**
 * A proposal's outcome is unknown: leadership changed before it was applied (it may or may not
 * commit later), or it timed out. Retriable; an application that needs exactly-once makes its
 * commands idempotent.
 */
export class ProposalDroppedError extends StrandError {
  /**
   * @param index the proposal's log index when it was appended (a timeout while this node stayed
   *   leader: the entry may still commit at that index); -1 when unknown or overwritten.
   */
  constructor(
    message: string,
    readonly index = -1,
  ) {
    super('REQUEST_TIMED_OUT', message);
    this.name = 'ProposalDroppedError';
  }
}

/** Too many proposals or reads queued; back off and retry. */
export class OverloadedError extends StrandError {
  constructor(message: string) {
    super('THROTTLING_QUOTA_EXCEEDED', message);
    this.name = 'OverloadedError';
  }
}

/** The node is stopped (closed, or its storage failed). */
export class NodeStoppedError extends StrandError {
  constructor(message: string, cause?: unknown) {
    super('KAFKA_STORAGE_ERROR', message, { cause });
    this.name = 'NodeStoppedError';
  }
}

/** A malformed request: an empty proposal, a bad address, an impossible membership change. */
export class InvalidRequestError extends StrandError {
  constructor(message: string) {
    super('INVALID_REQUEST', message);
    this.name = 'InvalidRequestError';
  }
}

/** Another membership change is not applied yet (one at a time, thesis §4.1). Retriable. */
export class MembershipChangePendingError extends StrandError {
  constructor(message: string) {
    super('CONCURRENT_TRANSACTIONS', message);
    this.name = 'MembershipChangePendingError';
  }
}
