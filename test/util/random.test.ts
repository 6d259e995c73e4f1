import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pooledRandomBytes, pooledRandomFill } from '../../src/util/random.js';

describe('pooledRandomBytes', () => {
  it('never hands out the same bytes twice, across many refills of its block', () => {
    // 60-byte draws do not divide the 4 KiB block: every refill starts with a draw that did not fit.
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const b = pooledRandomBytes(i % 2 === 0 ? 60 : 12);
      assert.equal(b.length, i % 2 === 0 ? 60 : 12);
      const hex = b.toString('hex');
      assert.ok(!seen.has(hex), `draw ${i} repeated an earlier one`);
      seen.add(hex);
    }
  });

  it('gives each draw memory of its own, and serves large and empty requests', () => {
    const a = pooledRandomBytes(32);
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 32); // not a view into a shared slab or the block
    const big = pooledRandomFill(new Uint8Array(1000));
    assert.ok(big.some((x) => x !== 0));
    assert.equal(pooledRandomBytes(0).length, 0);
  });
});
