// The most recent transactions, bounded by count and bytes, so that recent cursors resume from memory.
import type { RelayTx } from './relay-tx.js';

export class RingBuffer {
  #items: RelayTx[] = [];
  #start = 0;
  #bytes = 0;
  /** Every committed transaction with seq > floor is in the ring (up to the newest). */
  #floor: number;
  readonly #maxTx: number;
  readonly #maxBytes: number;

  /** `floor`: the position the ring starts complete after. */
  constructor(maxTx: number, maxBytes: number, floor: number) {
    this.#maxTx = maxTx;
    this.#maxBytes = maxBytes;
    this.#floor = floor;
  }

  get size(): number {
    return this.#items.length - this.#start;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The ring holds every transaction after this seq. */
  get floor(): number {
    return this.#floor;
  }

  /** Empties the ring; it is complete after `floor` from now on. */
  reset(floor: number): void {
    this.#items = [];
    this.#start = 0;
    this.#bytes = 0;
    this.#floor = floor;
  }

  /** Appends the next transaction (seq must grow), evicting the oldest beyond the bounds. */
  push(tx: RelayTx): void {
    this.#items.push(tx);
    this.#bytes += tx.bytes;
    while (this.size > 0 && (this.size > this.#maxTx || this.#bytes > this.#maxBytes)) {
      const old = this.#items[this.#start]!;
      this.#items[this.#start] = undefined as unknown as RelayTx;
      this.#start++;
      this.#bytes -= old.bytes;
      this.#floor = old.seq;
    }
    // compact the array once its dead prefix is large, keeping pushes O(1) amortized
    if (this.#start > 1024 && this.#start * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#start);
      this.#start = 0;
    }
  }

  /** True when every transaction after `seq` can be served from memory. */
  covers(seq: number): boolean {
    return seq >= this.#floor;
  }

  /** The transactions with seq > `after`, oldest first (call only when covers(after)). */
  *after(after: number): Generator<RelayTx> {
    let lo = this.#start;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#items[mid]!.seq <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#items.length; i++) yield this.#items[i]!;
  }
}
