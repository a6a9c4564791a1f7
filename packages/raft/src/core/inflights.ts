// Bounded window of appends in flight to one follower (etcd's Inflights). Each slot holds the
// last index carried by one MsgApp; an AppResp for index i frees every slot <= i. When full,
// the leader stops sending to that follower: this is the pipelining limit that keeps one slow
// follower from growing the leader's send queue without bound.

export class Inflights {
  private readonly buf: number[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new Error(`inflights capacity must be a positive integer, got ${capacity}`);
    this.buf = new Array<number>(capacity).fill(0);
  }

  get size(): number {
    return this.count;
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  /** Record an append whose last index is `index`; indexes must increase. */
  add(index: number): void {
    if (this.full()) throw new Error('inflights: add to a full window');
    if (this.count > 0) {
      const last = this.buf[(this.start + this.count - 1) % this.capacity] ?? 0;
      if (index <= last) throw new Error(`inflights: index ${index} not above last ${last}`);
    }
    this.buf[(this.start + this.count) % this.capacity] = index;
    this.count++;
  }

  /** Free every append whose last index is <= `index` (they are acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && (this.buf[this.start] ?? 0) <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  /** Free the oldest slot: a heartbeat response proves the follower is alive, so allow one more send. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}
