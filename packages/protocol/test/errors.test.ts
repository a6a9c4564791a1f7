/** The Kafka error table: unique codes and names, Kafka's well-known values, typed errors and the gRPC mapping. */
import { ERRORS, ErrorCode, GrpcStatus, StrandError, errorByCode, grpcStatusFor, isStrandError } from '../src';

describe('error table', () => {
  it('has unique codes and names in code order', () => {
    const codes = ERRORS.map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(new Set(ERRORS.map((e) => e.name)).size).toBe(ERRORS.length);
    expect([...codes].sort((a, b) => a - b)).toEqual(codes);
  });
  it("keeps Kafka's numbers and retriable flags", () => {
    expect(ErrorCode.NOT_LEADER_OR_FOLLOWER).toBe(6);
    expect(ErrorCode.NOT_ENOUGH_REPLICAS).toBe(19);
    expect(ErrorCode.FENCED_LEADER_EPOCH).toBe(74);
    expect(errorByCode(6).retriable).toBe(true);
    expect(errorByCode(22).name).toBe('ILLEGAL_GENERATION');
    expect(errorByCode(22).retriable).toBe(false);
    expect(errorByCode(12345).name).toBe('UNKNOWN_SERVER_ERROR');
  });
});

describe('StrandError', () => {
  it('carries code, name, retriable, cause and client flags', () => {
    const cause = new Error('disk');
    const e = new StrandError('NOT_LEADER_OR_FOLLOWER', 'leader is 2', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe(6);
    expect(e.errorName).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(e.retriable).toBe(true);
    expect(e.cause).toBe(cause);
    expect(e.hasStaleMetadata).toBe(true);
    expect(e.needsRejoin).toBe(false);
    expect(new StrandError('ILLEGAL_GENERATION').needsRejoin).toBe(true);
    expect(StrandError.fromCode(19).errorName).toBe('NOT_ENOUGH_REPLICAS');
    expect(isStrandError(e, 'NOT_LEADER_OR_FOLLOWER')).toBe(true);
    expect(isStrandError(e, 'NONE')).toBe(false);
    expect(isStrandError(cause)).toBe(false);
  });
  it('maps to gRPC status codes', () => {
    expect(grpcStatusFor('UNKNOWN_TOPIC_OR_PARTITION')).toBe(GrpcStatus.NOT_FOUND);
    expect(grpcStatusFor('NOT_LEADER_OR_FOLLOWER')).toBe(GrpcStatus.UNAVAILABLE);
    expect(grpcStatusFor('INVALID_CONFIG')).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(grpcStatusFor('CORRUPT_MESSAGE')).toBe(GrpcStatus.DATA_LOSS);
  });
});
