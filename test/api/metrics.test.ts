/**
 * GET /metrics over a real broker: after one release and one policy refusal, the exposition text parses
 * strictly (every sample belongs to a family declared by HELP and TYPE before it; histogram buckets are
 * cumulative, ascending, and end with +Inf equal to _count) and holds the expected values. Also the
 * Metrics registry on its own (bucket placement, label escaping).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/api/metrics.js';
import { toHex } from '../../src/util/bytes.js';
import { HISTOGRAMS } from '../../src/util/metrics.js';
import { GOOD_POLICY, startTestBroker, type TestBroker } from './helpers.js';

interface Family {
  type: 'counter' | 'histogram';
  help: string;
  /** Sample name + '{' + labels + '}' -> value. */
  samples: Map<string, number>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/y;

/** A strict parser for the subset of text format 0.0.4 the broker writes; throws on anything else. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const families = new Map<string, Family>();
  let help: { name: string; text: string } | undefined;
  let current: { name: string; family: Family } | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    const h = /^# HELP (\S+) (.+)$/.exec(line);
    if (h) {
      const [, name = '', t = ''] = h;
      assert.match(name, NAME);
      assert.ok(!families.has(name), `family ${name} declared twice`);
      help = { name, text: t };
      continue;
    }
    const ty = /^# TYPE (\S+) (counter|histogram)$/.exec(line);
    if (ty) {
      const [, name = '', type] = ty;
      assert.equal(help?.name, name, `TYPE ${name} right after its HELP`);
      const family: Family = { type: type as Family['type'], help: help.text, samples: new Map() };
      families.set(name, family);
      current = { name, family };
      help = undefined;
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed sample: ${line}`);
    const [, sampleName = '', labels = '', value = ''] = m;
    assert.ok(current, `sample before any family: ${line}`);
    const suffix = sampleName.slice(current.name.length);
    assert.ok(sampleName.startsWith(current.name), `${sampleName} outside family ${current.name}`);
    assert.ok(
      current.family.type === 'counter' ? suffix === '' : ['_bucket', '_sum', '_count'].includes(suffix),
      `${sampleName} is not a sample of ${current.family.type} ${current.name}`,
    );
    // Labels: well-formed, comma-separated, consuming the whole brace content.
    let at = 0;
    while (at < labels.length) {
      LABEL.lastIndex = at;
      assert.ok(LABEL.exec(labels), `bad labels: ${labels}`);
      at = LABEL.lastIndex;
      if (at < labels.length) {
        assert.equal(labels[at], ',', `bad labels: ${labels}`);
        at += 1;
      }
    }
    const v = Number(value);
    assert.ok(Number.isFinite(v) && v >= 0, `bad value: ${line}`);
    const key = `${sampleName}{${labels}}`;
    assert.ok(!current.family.samples.has(key), `duplicate sample ${key}`);
    current.family.samples.set(key, v);
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Per label set: bounds ascending, counts cumulative (non-decreasing), +Inf last and equal to _count. */
function checkHistogram(f: Family): void {
  const series = new Map<string, { le: string; v: number }[]>();
  for (const [key, v] of f.samples) {
    const b = /^\w+_bucket\{(.*?),?le="([^"]+)"\}$/.exec(key);
    if (!b) continue;
    const [, rest = '', le = ''] = b;
    series.set(rest, [...(series.get(rest) ?? []), { le, v }]);
  }
  assert.ok(series.size > 0 || f.samples.size === 0);
  for (const [rest, buckets] of series) {
    const name = [...f.samples.keys()][0]?.replace(/_bucket\{.*$/, '');
    const last = buckets.at(-1);
    assert.equal(last?.le, '+Inf', 'last bucket is +Inf');
    for (let i = 1; i < buckets.length; i++) {
      const prev = buckets[i - 1];
      const cur = buckets[i];
      assert.ok(prev && cur && cur.v >= prev.v, `buckets cumulative (${rest})`);
      if (cur?.le !== '+Inf') assert.ok(Number(cur?.le) > Number(prev?.le), 'bounds ascending');
    }
    assert.equal(f.samples.get(`${name}_count{${rest}}`), last?.v, '+Inf == _count');
    assert.ok(f.samples.has(`${name}_sum{${rest}}`), '_sum present');
  }
}

describe('/metrics', () => {
  let t: TestBroker;
  before(async () => {
    t = await startTestBroker();
  });
  after(() => t?.close());

  it('after a release and a refusal: strict exposition text with counters, the latency histogram and lease events', async () => {
    const good = await t.register(GOOD_POLICY);
    const ok = await t.call('POST', '/v1/attest', (await t.attestBody(t.firmware(good.hostData))).body);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const bad = await t.register({ ...GOOD_POLICY, measurements: [toHex(new Uint8Array(48).fill(7))] });
    const no = await t.call('POST', '/v1/attest', (await t.attestBody(t.firmware(bad.hostData))).body);
    assert.equal(no.body.code, 'ERR_POLICY_REJECTED');

    const m = await t.call('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const f = parseExposition(m.body);

    const counter = (name: string, labels: string) => f.get(name)?.samples.get(`${name}{${labels}}`);
    assert.equal(f.get('vouchsafe_releases_total')?.type, 'counter');
    assert.equal(counter('vouchsafe_releases_total', 'version="0.2.0"'), 1);
    assert.equal(
      counter(
        'vouchsafe_refusals_total',
        'operation="attest",code="ERR_POLICY_REJECTED",reason="snp.measurement"',
      ),
      1,
    );
    assert.equal(counter('vouchsafe_lease_events_total', 'event="started"'), 1);
    assert.equal(counter('vouchsafe_challenges_total', 'version="0.2.0"'), 2);
    assert.ok(f.has('vouchsafe_kds_cache_total'));

    const h = f.get('vouchsafe_release_duration_seconds');
    assert.equal(h?.type, 'histogram');
    const hs = (s: string) => h?.samples.get(`vouchsafe_release_duration_seconds${s}`);
    assert.equal(hs('_count{api="native",outcome="released"}'), 1);
    assert.equal(hs('_count{api="native",outcome="refused"}'), 1);
    assert.equal(hs('_bucket{api="native",outcome="released",le="+Inf"}'), 1);
    const sum = hs('_sum{api="native",outcome="released"}');
    assert.ok(sum !== undefined && sum > 0);
    // One bucket per fixed bound plus +Inf, per label set.
    const buckets = [...(h?.samples.keys() ?? [])].filter((k) => k.includes('outcome="released",le='));
    assert.equal(buckets.length, HISTOGRAMS.vouchsafe_release_duration_seconds.buckets.length + 1);
  });
});

describe('Metrics', () => {
  it('places an observation in the first bucket whose bound holds it, cumulatively; ignores a negative one', () => {
    const m = new Metrics();
    m.observe('vouchsafe_release_duration_seconds', 0.005, { api: 'native', outcome: 'released' });
    m.observe('vouchsafe_release_duration_seconds', 0.3, { api: 'native', outcome: 'released' });
    m.observe('vouchsafe_release_duration_seconds', 60, { api: 'native', outcome: 'released' });
    m.observe('vouchsafe_release_duration_seconds', -1, { api: 'native', outcome: 'released' });
    m.observe('vouchsafe_release_duration_seconds', Number.NaN, { api: 'native', outcome: 'released' });
    const f = parseExposition(m.render());
    const s = f.get('vouchsafe_release_duration_seconds')?.samples;
    const b = (le: string) =>
      s?.get(`vouchsafe_release_duration_seconds_bucket{api="native",outcome="released",le="${le}"}`);
    assert.equal(b('0.005'), 1); // le is inclusive
    assert.equal(b('0.25'), 1);
    assert.equal(b('0.5'), 2);
    assert.equal(b('5'), 2);
    assert.equal(b('+Inf'), 3);
    assert.equal(s?.get('vouchsafe_release_duration_seconds_sum{api="native",outcome="released"}'), 60.305);
  });

  it('escapes label values so a hostile reason cannot forge a sample line', () => {
    const m = new Metrics();
    m.inc('vouchsafe_refusals_total', { operation: 'attest', code: 'X', reason: 'a"b\\c\nvouchsafe_fake 1' });
    const f = parseExposition(m.render());
    assert.equal(f.get('vouchsafe_refusals_total')?.samples.size, 1);
    assert.ok(!f.has('vouchsafe_fake'));
  });
});
