/**
 * Kafka's classic big-endian wire primitives, for the byte formats Strand keeps Kafka-compatible
 * outside RecordBatch: the `__consumer_offsets` records (broker) and the ConsumerProtocol
 * subscription/assignment bytes (client and broker).
 *
 *   int16 / int32 / int64   big-endian two's complement (int64 limited to the safe-integer range)
 *   string                  int16 byte length then UTF-8 bytes; nullable: length -1 is null
 *   bytes                   int32 byte length then the bytes; nullable: length -1 is null
 *   array count             int32 (-1 reads as empty)
 *
 * A KafkaReader throws a StrandError of the code its caller names (CORRUPT_MESSAGE for stored
 * records, INCONSISTENT_GROUP_PROTOCOL for group protocol bytes) on anything malformed, and
 * never returns a partial value. Bytes it returns are copies: a small field must not keep a large
 * received buffer alive.
 */
import { StrandError } from './errors';
import type { ErrorName } from './errors';

export class KafkaWriter {
  private readonly parts: Buffer[] = [];

  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }

  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }

  int64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }

  /** A string (null writes length -1). Throws INVALID_REQUEST if it needs more than 32767 bytes. */
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = Buffer.from(s, 'utf8');
    if (b.length > 0x7fff) throw new StrandError('INVALID_REQUEST', `string of ${b.length} bytes does not fit an int16 length`);
    this.int16(b.length);
    this.parts.push(b);
    return this;
  }

  /** Bytes (null writes length -1). The input is not retained beyond done(). */
  bytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    this.parts.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class KafkaReader {
  private pos = 0;

  /**
   * @param errorName the error thrown for malformed input
   * @param what names the format in error messages, e.g. "group record"
   */
  constructor(
    private readonly buf: Buffer,
    private readonly errorName: ErrorName = 'CORRUPT_MESSAGE',
    private readonly what = 'Kafka-wire bytes',
  ) {}

  /** Bytes not read yet. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private fail(message: string): never {
    throw new StrandError(this.errorName, `${this.what}: ${message}`);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.fail(`truncated at byte ${this.pos} (needs ${n} more)`);
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): number {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail(`int64 ${v} out of the safe range`);
    return Number(v);
  }

  nullableString(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    if (n < 0) this.fail(`negative string length ${n}`);
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  string(): string {
    const s = this.nullableString();
    if (s === null) this.fail('null where a string is required');
    return s;
  }

  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0) this.fail(`negative bytes length ${n}`);
    this.need(n);
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }

  bytes(): Buffer {
    const b = this.nullableBytes();
    if (b === null) this.fail('null where bytes are required');
    return b;
  }

  /** An array count between 0 and `limit` (-1, a null array, reads as 0). */
  count(limit: number): number {
    const n = this.int32();
    if (n < -1 || n > limit) this.fail(`implausible array length ${n}`);
    return Math.max(0, n);
  }

  /** Throws if bytes are left over. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail(`${this.buf.length - this.pos} trailing bytes`);
  }
}
