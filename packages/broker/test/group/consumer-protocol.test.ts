/**
 * The subscription topics the coordinator reads from ConsumerProtocol bytes, against fixture
 * bytes written out by hand (versions 0 and 3, as Kafka's consumers send them), and null for
 * anything that does not parse.
 */
import { subscribedTopicsOf } from '../../src/group/consumer-protocol';

describe('subscribedTopicsOf', () => {
  test('reads the topics of a version-0 subscription', () => {
    // int16 version 0 | int32 2 topics | "orders" | "ab" | int32 user_data -1 (null)
    const v0 = Buffer.from('0000' + '00000002' + '0006' + Buffer.from('orders').toString('hex') + '0002' + '6162' + 'ffffffff', 'hex');
    expect(subscribedTopicsOf(v0)).toEqual(['orders', 'ab']);
  });

  test('reads only the version-0 prefix of a later version (user data, owned partitions, rack follow)', () => {
    // int16 version 3 | 1 topic "t" | user_data 2 bytes | owned: 1 topic "t" [0] | generation 5 | rack "r1"
    const v3 = Buffer.from('0003' + '00000001' + '0001' + '74' + '00000002' + 'beef' + '00000001' + '0001' + '74' + '00000001' + '00000000' + '00000005' + '0002' + '7231', 'hex');
    expect(subscribedTopicsOf(v3)).toEqual(['t']);
    // A subscription without the trailing fields at all still names its topics.
    expect(subscribedTopicsOf(Buffer.from('0000' + '00000001' + '0001' + '74', 'hex'))).toEqual(['t']);
    expect(subscribedTopicsOf(Buffer.from('0000' + '00000000', 'hex'))).toEqual([]);
  });

  test('null for bytes that are not a subscription', () => {
    expect(subscribedTopicsOf(Buffer.from('sub'))).toBeNull();
    expect(subscribedTopicsOf(Buffer.alloc(0))).toBeNull();
    // A topic count larger than the bytes could hold, a truncated name, a null topic name.
    expect(subscribedTopicsOf(Buffer.from('0000' + '7fffffff' + '0001' + '74', 'hex'))).toBeNull();
    expect(subscribedTopicsOf(Buffer.from('0000' + '00000001' + '0005' + '74', 'hex'))).toBeNull();
    expect(subscribedTopicsOf(Buffer.from('0000' + '00000001' + 'ffff', 'hex'))).toBeNull();
  });

  test('reads a view into a larger buffer without copying past it, and leaves the input as it was', () => {
    const whole = Buffer.from('ffff' + '0000' + '00000001' + '0001' + '74' + 'ffff', 'hex');
    const before = Buffer.from(whole);
    expect(subscribedTopicsOf(new Uint8Array(whole.buffer, whole.byteOffset + 2, 9))).toEqual(['t']);
    expect(whole).toEqual(before);
  });
});
