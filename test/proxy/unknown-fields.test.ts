/**
 * Unknown fields in guest messages (docs/protocol.md §4): aproxy reads guest messages with serde's default,
 * which ignores fields it does not know, so a field a newer SVSM adds must not break only Vouchsafe. The
 * proxy ignores them too and logs their names; every field it uses is still validated.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { AttestationError } from '../../src/errors.js';
import { parseAttestationRequest } from '../../src/formats/aproxy/attestation.js';
import { parseNegotiationRequest } from '../../src/formats/aproxy/negotiation.js';
import { parseAttestationRequest1122 } from '../../src/formats/aproxy/pr1122.js';
import { startProxy } from '../../src/proxy/server.js';
import { RawClient } from './raw-client.js';
import { TestBroker } from './test-backend.js';

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const X = 'AQEB'.repeat(22);
const Y = 'AgIC'.repeat(22);
const req = (extra: { top?: string; snp?: string; key?: string; x?: string } = {}) =>
  `{"tee":"snp","evidence":{"Snp":{"report":"AAAA"${extra.snp ?? ''}}},"challenge":"AAAA",` +
  `"key":{"x":"${extra.x ?? X}","y":"${Y}"${extra.key ?? ''}}${extra.top ?? ''}}`;
const isReason = (reason: string) => (e: unknown) => e instanceof AttestationError && e.reason === reason;

describe('codecs: unknown fields in guest messages are ignored and listed', () => {
  it('NegotiationRequest and AttestationRequest (main and PR #1122) parse as without them', () => {
    const unknown: string[] = [];
    assert.deepEqual(
      parseNegotiationRequest(utf8('{"version":[0,1,0],"future":{"a":[1]},"tee":"snp"}'), unknown),
      parseNegotiationRequest(utf8('{"version":[0,1,0],"tee":"snp"}')),
    );
    assert.deepEqual(unknown, ['NegotiationRequest.future']);

    const more: string[] = [];
    const withExtras = req({ top: ',"later":null', snp: ',"vmpl":0', key: ',"crv":"P-521"' });
    assert.deepEqual(
      parseAttestationRequest(utf8(withExtras), '0.1.0', more),
      parseAttestationRequest(utf8(req()), '0.1.0'),
    );
    assert.deepEqual(more, ['AttestationRequest.later', 'evidence.Snp.vmpl', 'key.crv']);
    // 0.2.0 too (its own fields present).
    const v2 = req({ top: ',"stateCounter":null,"stateDigest":null,"later":1' });
    const more2: string[] = [];
    assert.equal(parseAttestationRequest(utf8(v2), '0.2.0', more2).stateCounter, null);
    assert.deepEqual(more2, ['AttestationRequest.later']);

    const pr: string[] = [];
    const t1122 = `{"tee":"snp","evidence":{"Snp":{"attestation_report":"AAAA","x":1}},"challenge":"AAAA","key":{"x":"${X}","y":"${Y}"},"z":2}`;
    parseAttestationRequest1122(utf8(t1122), pr);
    assert.deepEqual(pr, ['AttestationRequest.z', 'evidence.Snp.x']);
  });

  it('still validates every field it uses, and refuses what would change the meaning', () => {
    // A used field that is wrong, beside an unknown one.
    assert.throws(
      () => parseAttestationRequest(utf8(req({ x: 'AQID', top: ',"later":1' })), '0.1.0'),
      isReason('aproxy.field.length'),
    );
    assert.throws(
      () => parseNegotiationRequest(utf8('{"version":[0,1],"tee":"snp","later":1}')),
      isReason('aproxy.field.value'),
    );
    // Missing fields, another enum variant, and a 0.2.0 state field stated at 0.1.0 (the guest would think
    // its counter was checked) are refused.
    assert.throws(
      () => parseNegotiationRequest(utf8('{"version":[0,1,0],"TEE":"snp"}')),
      isReason('aproxy.field.missing'),
    );
    assert.throws(
      () =>
        parseAttestationRequest(
          utf8(req().replace('{"Snp":{"report":"AAAA"}}', '{"Snp":{"report":"AAAA"},"Tdx":{}}')),
          '0.1.0',
        ),
      isReason('aproxy.field.unknown'),
    );
    for (const f of ['"stateCounter":"1"', '"stateDigest":null', '"stateKeyVersion":1']) {
      assert.throws(
        () => parseAttestationRequest(utf8(req({ top: `,${f}` })), '0.1.0'),
        isReason('aproxy.field.unknown'),
        f,
      );
    }
  });
});

describe('proxy: a guest message with unknown fields is served and the fields are logged', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vs-unknown-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('NegotiationRequest and AttestationRequest reach the backend; the log names the fields, not their values', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
    const broker = new TestBroker();
    const proxy = await startProxy({ listen: `unix:${join(dir, 'p.sock')}`, backend: broker, logger });
    try {
      const c = await RawClient.connect(proxy.address);
      c.sendFrame('{"version":[0,1,0],"tee":"snp","future":"secret-looking-value"}');
      const neg = JSON.parse(await c.next()) as { challenge: string };
      assert.equal(typeof neg.challenge, 'string');
      c.sendFrame(
        req({ top: ',"later":1', snp: ',"vmpl":0' }).replace(
          '"challenge":"AAAA"',
          `"challenge":"${neg.challenge}"`,
        ),
      );
      await c.next();
      assert.equal(broker.calls.attest, 1, 'the request was parsed and handed to the backend');
      c.end();
      await c.closed();

      const logged = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'unknown_fields');
      assert.deepEqual(
        logged.map((l) => [l.message, l.fields, l.count]),
        [
          ['NegotiationRequest', ['NegotiationRequest.future'], 1],
          ['AttestationRequest', ['AttestationRequest.later', 'evidence.Snp.vmpl'], 2],
        ],
      );
      assert.ok(!lines.join('\n').includes('secret-looking-value'), 'values are never logged');

      // A used field that is wrong is still refused before the backend, unknown fields or not.
      const d = await RawClient.connect(proxy.address);
      d.sendFrame('{"version":[0,1,0],"tee":"snp","future":1}');
      await d.next();
      d.sendFrame(req({ x: 'AQID', top: ',"later":1' }));
      await d.next().catch(() => 'EOF');
      d.end();
      await d.closed();
      assert.equal(broker.calls.attest, 1, 'the malformed request never reached the backend');
      assert.ok(lines.some((l) => l.includes('aproxy.field.length')));
    } finally {
      await proxy.close();
    }
  });
});
