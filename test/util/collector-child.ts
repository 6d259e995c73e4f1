/**
 * Child of collector.test.ts, run with `--trace-pretenuring-statistics`: with `young`, calls
 * preferYoungAllocation first; then allocates objects from one site that all stay alive, which V8 by
 * default answers by pretenuring the site (allocating its objects in the old generation).
 */
import { preferYoungAllocation } from '../../src/util/collector.js';

if (process.argv[2] === 'young') preferYoungAllocation();
const make = (i: number) => ({ a: i, b: { c: i } });
const kept: object[] = [];
for (let i = 0; i < 1_000_000; i++) kept.push(make(i));
process.stdout.write(`kept ${kept.length}\n`);
