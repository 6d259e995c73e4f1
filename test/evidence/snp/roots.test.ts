import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../../src/errors.js';
import { normalizeTrustedRoots, PINNED_ARK_SHA256, rootTrust } from '../../../src/evidence/snp/roots.js';
import { SnpProducts } from '../../../src/formats/snp/index.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, vectorCases } from '../../helpers/vectors.js';
import { amdCert, realCase } from './verify-helpers.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('pinned AMD roots', needsVectors, () => {
  for (const product of SnpProducts) {
    const p = product.toLowerCase();
    it(`${product}: the pin is SHA-256 of the KDS ARK, and the VLEK chain ends in the same ARK`, () => {
      assert.equal(sha256(amdCert(`${p}_ark.pem`)), PINNED_ARK_SHA256[product]);
      assert.deepEqual(amdCert(`${p}_ark_from_vlek_chain.pem`), amdCert(`${p}_ark.pem`));
    });
  }

  it('every real case ends in the pinned ARK of its product', () => {
    for (const name of vectorCases('snp')) {
      const c = realCase(name);
      const product = c.expected.leaf_cert_fields.productName.split('-')[0];
      assert.equal(sha256(c.certs.root), PINNED_ARK_SHA256[product as keyof typeof PINNED_ARK_SHA256], name);
    }
  });
});

describe('root trust decisions', () => {
  it('a pinned ARK is trusted only for its own product', () => {
    assert.equal(rootTrust(PINNED_ARK_SHA256.Milan, 'Milan', []), 'pinned');
    assert.equal(rootTrust(PINNED_ARK_SHA256.Milan, 'Genoa', []), undefined);
    assert.equal(rootTrust(PINNED_ARK_SHA256.Turin, 'Milan', []), undefined);
  });

  it('an extra root is trusted only when configured, and only for the configured product', () => {
    const extra = 'ab'.repeat(32);
    assert.equal(rootTrust(extra, 'Milan', []), undefined);
    const roots = normalizeTrustedRoots([{ product: 'Milan', sha256: extra.toUpperCase() }]);
    assert.equal(rootTrust(extra, 'Milan', roots), 'configured');
    assert.equal(rootTrust(extra, 'Genoa', roots), undefined);
  });

  it('malformed trustedRoots entries are InvalidArgument', () => {
    for (const bad of [
      [{ product: 'Venice', sha256: 'ab'.repeat(32) }],
      [{ product: 'Milan', sha256: 'ab'.repeat(31) }],
      [{ product: 'Milan', sha256: 'zz'.repeat(32) }],
      [{ product: 'Milan' }],
      [null],
      'Milan',
    ]) {
      throwsCode(() => normalizeTrustedRoots(bad as never), ErrorCode.InvalidArgument, 'snp.trusted_roots');
    }
    assert.deepEqual(normalizeTrustedRoots(undefined), []);
  });
});
