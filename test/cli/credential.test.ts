/**
 * `vouchsafe credential create|list|revoke` as a user runs it: over HTTP with the admin token file, and
 * directly on the data directory; the token it prints works as a --token-file for other admin commands,
 * only for its projects, until it is revoked.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localAdmin } from '../../src/admin/local.js';
import { type BrokerStack, startBrokerStack } from '../helpers/broker.js';
import { runCli } from './run-cli.js';

describe('vouchsafe credential', () => {
  let s: BrokerStack;
  let http: string[];
  let mine: string;
  let theirs: string;
  before(async () => {
    s = await startBrokerStack({ tmpPrefix: 'vouchsafe-cli-cred-', broker: { rateLimits: false } });
    http = ['--broker', s.b.url, '--token-file', s.b.adminTokenPath];
    mine = (await s.register({ project: 'pa' })).id;
    theirs = (await s.register({ project: 'pb' })).id;
  });
  after(() => s?.close());

  const tokenFile = (token: string, name: string) => {
    const f = join(s.dir, name);
    writeFileSync(f, `${token}\n`, { mode: 0o600 });
    return f;
  };

  it('create prints the token once; it reads only its projects; revoke ends it', async () => {
    const c = await runCli([
      'credential',
      'create',
      ...http,
      '--name',
      'viewer',
      '--role',
      'read',
      '--project',
      'pa',
    ]);
    assert.equal(c.code, 0, c.stderr);
    const token = c.stdout.trim();
    assert.match(token, /^vsc_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.match(c.stderr, /shown once/);
    const id = token.slice(4, 20);
    const as = ['--broker', s.b.url, '--token-file', tokenFile(token, 'viewer')];

    const list = await runCli(['instance', 'list', ...as, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const ids = (JSON.parse(list.stdout) as { id: string }[]).map((i) => i.id);
    assert.ok(ids.includes(mine));
    assert.ok(!ids.includes(theirs));
    const other = await runCli(['instance', 'show', ...as, theirs, '--json']);
    const missing = await runCli(['instance', 'show', ...as, 'no-such-instance', '--json']);
    // Exactly as a missing instance: the same exit status and reason.
    assert.equal(other.code, missing.code);
    assert.notEqual(other.code, 0);
    assert.match(other.stdout + other.stderr, /broker\.instance_not_found/);
    const rotate = await runCli(['instance', 'rotate-key', ...as, mine, '--json']);
    assert.equal(rotate.code, 1);
    assert.match(rotate.stdout + rotate.stderr, /api\.auth\.role/);

    const listed = await runCli(['credential', 'list', ...http, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const creds = JSON.parse(listed.stdout) as Record<string, unknown>[];
    const row = creds.find((x) => x.id === id);
    assert.deepEqual(
      { role: row?.role, projects: row?.projects, revokedAt: row?.revokedAt },
      {
        role: 'read',
        projects: ['pa'],
        revokedAt: null,
      },
    );
    assert.ok(!listed.stdout.includes(token.slice(21)), 'the secret is never listed');

    const rev = await runCli(['credential', 'revoke', ...http, id]);
    assert.equal(rev.code, 0, rev.stderr);
    assert.match(rev.stdout, /revoked/);
    const after = await runCli(['instance', 'list', ...as, '--json']);
    assert.equal(after.code, 1);
    assert.match(after.stdout + after.stderr, /api\.admin\.unauthorized/);
  });

  it('works on the data directory too (audited as local); refuses an unknown role and a scoped caller', async () => {
    const c = await runCli([
      'credential',
      'create',
      '--data',
      s.b.dataDir,
      '--name',
      'host 7',
      '--role',
      'host',
      '--project',
      'pa',
      '--json',
    ]);
    assert.equal(c.code, 0, c.stderr);
    const made = JSON.parse(c.stdout) as { token: string; credential: { id: string } };
    const log = (await s.admin('GET', '/v1/admin/audit?limit=1000')).body.entries as {
      kind: string;
      details: Record<string, unknown>;
    }[];
    assert.ok(log.some((e) => e.kind === 'credential_create' && e.details.actor === 'local'));
    // The other admin operations on the data directory name the same actor.
    const admin = await localAdmin({ dataDir: s.b.dataDir });
    try {
      await admin.rotateKey(mine);
    } finally {
      await admin.close();
    }
    const log2 = (await s.admin('GET', '/v1/admin/audit?limit=1000')).body.entries as typeof log;
    assert.ok(log2.some((e) => e.kind === 'rotate' && e.details.actor === 'local'));

    const bad = await runCli([
      'credential',
      'create',
      ...http,
      '--name',
      'x',
      '--role',
      'root',
      '--project',
      'pa',
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cli\.role/);
    // A host credential may not manage credentials.
    const host = ['--broker', s.b.url, '--token-file', tokenFile(made.token, 'host')];
    const denied = await runCli(['credential', 'list', ...host]);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout + denied.stderr, /api\.auth\.role/);
  });
});
