/**
 * The dashboard's collateral listing on a broker with an on-disk AMD KDS cache (offline: nothing is
 * fetched), and the audit page's filters.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePem } from '../../src/formats/pem.js';
import { createCrl } from '../../src/sim/snp/crl.js';
import { type DashboardStack, startDashboardStack } from './harness.js';

describe('dashboard: collateral and audit filters', () => {
  let s: DashboardStack;
  before(async () => {
    s = await startDashboardStack({ kdsOffline: true });
  });
  after(async () => s.close());

  it('lists the KDS cache: each file, its kind and age, a CRL with its dates and whether it is stale', async () => {
    const u = await s.signIn();
    const empty = await s.api(u, 'GET', 'collateral');
    assert.equal(empty.status, 200);
    assert.equal(empty.body.dir, join(s.b.dataDir, 'kds-cache'));
    const dir = join(s.b.dataDir, 'kds-cache', 'vcek', 'Milan');
    mkdirSync(dir, { recursive: true });
    const next = new Date(Date.now() - 60_000);
    writeFileSync(
      join(dir, 'crl.der'),
      await createCrl(s.chain, {
        revokedSerials: [],
        thisUpdate: new Date(Date.now() - 3_600_000),
        nextUpdate: next,
      }),
    );
    writeFileSync(
      join(dir, 'cert_chain.pem'),
      encodePem('CERTIFICATE', s.chain.ask.der) + encodePem('CERTIFICATE', s.chain.ark.der),
    );
    const r = await s.api(u, 'GET', 'collateral');
    const byPath = new Map(
      (r.body.files as { path: string }[]).map((f) => [f.path, f as Record<string, unknown>]),
    );
    assert.equal(byPath.get('vcek/Milan/cert_chain.pem')?.kind, 'cert_chain');
    const crl = byPath.get('vcek/Milan/crl.der') as {
      kind: string;
      crl: { nextUpdate: string; stale: boolean };
    };
    assert.equal(crl.kind, 'crl');
    assert.equal(crl.crl.stale, true, 'past its nextUpdate');
    assert.equal(Date.parse(crl.crl.nextUpdate), Math.floor(next.getTime() / 1000) * 1000);
  });

  it('filters the audit log by decision, kind, instance and reason; pages with next', async () => {
    const u = await s.signIn();
    const a = await s.register({ project: 'p1' });
    const b = await s.register({ project: 'p1' });
    await s.api(u, 'POST', `instances/${a.id}/rotate-key`, {});
    const bad = await s.api(u, 'POST', `instances/${b.id}/reset-boot`, { note: 'x'.repeat(201) });
    assert.equal(bad.status, 400);
    const rotates = await s.api(u, 'GET', 'audit?kind=rotate');
    assert.deepEqual(
      rotates.body.entries.map((e: { instance: string }) => e.instance),
      [a.id],
    );
    const forB = await s.api(u, 'GET', `audit?instance=${b.id}`);
    assert.ok(forB.body.entries.every((e: { instance: string }) => e.instance === b.id));
    assert.ok(forB.body.entries.length >= 1);
    const accepted = await s.api(u, 'GET', 'audit?decision=accept&reason=broker');
    assert.ok(accepted.body.entries.every((e: { decision: string }) => e.decision === 'accept'));
    const page = await s.api(u, 'GET', 'audit?limit=1');
    assert.equal(page.body.entries.length, 1);
    assert.equal(page.body.next, page.body.entries[0].seq);
    const rest = await s.api(u, 'GET', `audit?limit=1&after=${page.body.next}`);
    assert.equal(rest.body.entries[0].seq, page.body.next + 1);
    const wrong = await s.api(u, 'GET', 'audit?decision=maybe');
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.reason, 'api.schema');
  });
});
