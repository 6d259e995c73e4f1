import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/errors.js';
import { decodePem } from '../../../src/formats/pem.js';
import { findExtension, parseCertificate } from '../../../src/formats/x509/certificate.js';
import {
  encodeInstanceIdentity,
  GCE_INSTANCE_IDENTITY_OID,
  type GceInstanceIdentity,
  instanceIdentityExtension,
  parseInstanceIdentity,
  readInstanceIdentity,
} from '../../../src/formats/x509/instance-identity.js';
import { fromHex, toHex } from '../../../src/util/bytes.js';
import { needsVectors, readVector, readVectorText } from '../../helpers/vectors.js';

/**
 * Expected values were read with `openssl asn1parse -strparse <offset>` on each certificate's
 * 1.3.6.1.4.1.11129.2.1.21 extension (integers as openssl prints them, in hex), not with this code.
 */
const PCA = {
  zone: 'us-central1-a',
  projectNumberHex: '1B5A475C69',
  projectId: 'google.com:wuale-gcp-testing',
  instanceIdHex: '030878C5BDD3D99D',
  instanceName: 'cs-debug-pca',
  props: [0n, true, true, false, false, false],
} as const;
const UCA = { ...PCA, instanceIdHex: '50373D81BDED33F0', instanceName: 'cs-debug' } as const;
const AK = {
  ...PCA,
  instanceIdHex: '5E53E3FBBF8306C5',
  instanceName: 'cos-test',
  props: [0n, true, false, false, false, false],
} as const;

const CASES: [string, typeof PCA | typeof UCA | typeof AK][] = [
  ['certificates/pca_tpm_ecc_enc_cert.pem', PCA],
  ['certificates/pca_tpm_ecc_sign_cert.pem', PCA],
  ['certificates/pca_tpm_rsa_enc_cert.pem', PCA],
  ['certificates/pca_tpm_rsa_sign_cert.pem', PCA],
  ['certificates/uca_tpm_ecc_enc_cert.pem', UCA],
  ['certificates/uca_tpm_ecc_sign_cert.pem', UCA],
  ['certificates/uca_tpm_rsa_enc_cert.pem', UCA],
  ['certificates/uca_tpm_rsa_sign_cert.pem', UCA],
  ['extracted-cos85-nonce9009/ak_cert.der', AK],
];

function certDer(path: string): Uint8Array {
  if (path.endsWith('.der')) return readVector('tpm', 'gce-go-tpm-tools', path);
  return decodePem(readVectorText('tpm', 'gce-go-tpm-tools', path), 'test')[0]!.der;
}

function expectThrowsTyped(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AttestationError, `expected a typed error, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a throw');
}

describe('GCE instance identity extension (1.3.6.1.4.1.11129.2.1.21)', needsVectors, () => {
  for (const [path, want] of CASES) {
    it(`${path}: reads the values openssl shows, and re-encodes to the same DER`, () => {
      const cert = parseCertificate(certDer(path));
      const id = readInstanceIdentity(cert);
      assert.ok(id, 'extension present');
      assert.equal(id.zone, want.zone);
      assert.equal(id.projectNumber, BigInt(`0x${want.projectNumberHex}`));
      assert.equal(id.projectNumber, 117478743145n); // SOURCE.txt states the project number
      assert.equal(id.projectId, want.projectId);
      assert.equal(id.instanceId, BigInt(`0x${want.instanceIdHex}`));
      assert.equal(id.instanceName, want.instanceName);
      const sp = id.securityProperties!;
      assert.deepEqual(
        [
          sp.securityVersion,
          sp.isProduction,
          sp.tpmDataAlwaysEncrypted,
          sp.suspendResumeAlwaysDisabled,
          sp.vmtdAlwaysDisabled,
          sp.alwaysInYarn,
        ],
        want.props,
      );
      const ext = findExtension(cert, GCE_INSTANCE_IDENTITY_OID)!;
      assert.equal(ext.critical, false);
      assert.equal(toHex(encodeInstanceIdentity(id)), toHex(ext.value));
    });
  }

  it('the AK instance id equals the decimal go-tpm-tools reports (6797026933021542085)', () => {
    const id = readInstanceIdentity(parseCertificate(certDer('extracted-cos85-nonce9009/ak_cert.der')))!;
    assert.equal(id.instanceId.toString(), '6797026933021542085');
  });

  it('a certificate without the extension yields undefined; another OID is looked up when configured', () => {
    const root = parseCertificate(readVector('tpm', 'gce-go-tpm-tools', 'ca-certs', 'tpm_ek_root_1.cer'));
    assert.equal(readInstanceIdentity(root), undefined);
    const ak = parseCertificate(certDer('extracted-cos85-nonce9009/ak_cert.der'));
    assert.equal(readInstanceIdentity(ak, '1.3.6.1.4.1.99999.1'), undefined);
  });
});

const SAMPLE: GceInstanceIdentity = {
  zone: 'europe-west4-b',
  projectNumber: 603434606775n,
  projectId: 'a-project-name',
  instanceId: 1744722211572649027n,
  instanceName: 'an-instance-name',
  securityProperties: {
    securityVersion: 17n,
    isProduction: true,
    tpmDataAlwaysEncrypted: true,
    alwaysInYarn: false,
  },
};

describe('instance identity writing', () => {
  it('round-trips, keeping absent and FALSE apart', () => {
    const der = encodeInstanceIdentity(SAMPLE);
    assert.deepEqual(parseInstanceIdentity(der), SAMPLE);
    const bare = { ...SAMPLE, securityProperties: undefined };
    const { securityProperties: _, ...noProps } = bare;
    assert.deepEqual(parseInstanceIdentity(encodeInstanceIdentity(noProps)), noProps);
  });

  it('round-trips arbitrary identities (property test), including 64-bit ids and Unicode', () => {
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const props = fc.record(
      {
        securityVersion: u64,
        isProduction: fc.boolean(),
        tpmDataAlwaysEncrypted: fc.boolean(),
        suspendResumeAlwaysDisabled: fc.boolean(),
        vmtdAlwaysDisabled: fc.boolean(),
        alwaysInYarn: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(text, u64, text, u64, text, opt(props), (zone, pn, pid, iid, name, sp) => {
        const id: GceInstanceIdentity = {
          zone,
          projectNumber: pn,
          projectId: pid,
          instanceId: iid,
          instanceName: name,
          ...(sp ? { securityProperties: { ...sp } } : {}),
        };
        assert.deepEqual(parseInstanceIdentity(encodeInstanceIdentity(id)), id);
      }),
      { numRuns: 300 },
    );
  });

  it('the extension helper names the OID it was given (operator-configured OIDs)', () => {
    const ext = instanceIdentityExtension(SAMPLE, '1.3.6.1.4.1.99999.7');
    assert.equal(ext.oid, '1.3.6.1.4.1.99999.7');
    assert.equal(ext.critical, false);
    assert.deepEqual(parseInstanceIdentity(ext.value), SAMPLE);
    assert.equal(instanceIdentityExtension(SAMPLE).oid, GCE_INSTANCE_IDENTITY_OID);
  });

  it('refuses values the schema cannot carry', () => {
    for (const bad of [
      { ...SAMPLE, projectNumber: -1n },
      { ...SAMPLE, instanceId: 1n << 64n },
      { ...SAMPLE, zone: 'z'.repeat(256) },
      { ...SAMPLE, instanceId: 5 as unknown as bigint },
    ]) {
      const e = expectThrowsTyped(() => encodeInstanceIdentity(bad));
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
      assert.match(e.reason, /^x509\.instance_identity\./);
    }
  });
});

describe('instance identity: hostile DER', () => {
  const good = encodeInstanceIdentity(SAMPLE);
  const cases: [string, string, string][] = [
    ['empty input', '', 'x509.instance_identity'],
    ['not a SEQUENCE', '0c0161', 'x509.instance_identity'],
    ['too few fields', '30050c03616263', 'x509.instance_identity'],
    ['truncated', toHex(good.subarray(0, good.length - 3)), 'x509.instance_identity'],
    ['trailing byte', `${toHex(good)}00`, 'x509.instance_identity'],
    ['indefinite length', `3080${toHex(good.subarray(2))}0000`, 'x509.instance_identity'],
    // zone as PrintableString instead of UTF8String
    [
      'wrong string type',
      '300f' + '1301' + '61' + '020101' + '0c0162' + '020102' + '0c0163',
      'x509.instance_identity.zone',
    ],
    [
      'invalid UTF-8',
      '3010' + '0c02c328' + '020101' + '0c0162' + '020102' + '0c0163',
      'x509.instance_identity.zone',
    ],
    [
      'negative project number',
      '300f0c0161' + '0201ff' + '0c0162' + '020102' + '0c0163',
      'x509.instance_identity.project_number',
    ],
    [
      'non-minimal integer',
      '30100c0161' + '02020001' + '0c0162' + '020102' + '0c0163',
      'x509.instance_identity.project_number',
    ],
    [
      'instance id over 64 bits',
      '30180c0161' + '020101' + '0c0162' + '020a01000000000000000000' + '0c0163',
      'x509.instance_identity.instance_id',
    ],
    [
      'non-DER boolean',
      '30180c0161020101' + '0c0162020102' + '0c0163' + 'a0073005' + 'a1030101' + '01',
      'x509.instance_identity',
    ],
    ['long-form short length', '30810f0c0161020101' + '0c0162020102' + '0c0163', 'x509.instance_identity'],
    [
      'out-of-order property',
      '301d0c0161020101' + '0c0162020102' + '0c0163' + 'a00c300a' + 'a2030101ff' + 'a1030101ff',
      'x509.instance_identity.security_properties',
    ],
  ];
  for (const [name, hex, reason] of cases) {
    it(`${name} -> MalformedEvidence ${reason}`, () => {
      const e = expectThrowsTyped(() => parseInstanceIdentity(fromHex(hex)!));
      assert.equal(e.code, 'ERR_MALFORMED');
      assert.equal(e.reason, reason);
    });
  }

  it('positive controls: the hostile cases above, fixed, do parse', () => {
    const ok = [
      '30180c0161020101' + '0c0162020102' + '0c0163' + 'a0073005' + 'a1030101' + 'ff',
      '301d0c0161020101' + '0c0162020102' + '0c0163' + 'a00c300a' + 'a1030101ff' + 'a2030101ff',
      '300f0c0161' + '020101' + '0c0162' + '020102' + '0c0163',
    ];
    const ids = ok.map((h) => parseInstanceIdentity(fromHex(h)!));
    assert.deepEqual(ids[0]!.securityProperties, { isProduction: true });
    assert.deepEqual(ids[1]!.securityProperties, { isProduction: true, tpmDataAlwaysEncrypted: true });
    assert.equal(ids[2]!.securityProperties, undefined);
    assert.equal(ids[2]!.projectNumber, 1n);
  });

  it('unknown later properties ([6] and up) are skipped, as Go does', () => {
    const id = parseInstanceIdentity(
      fromHex('301d0c0161020101' + '0c0162020102' + '0c0163' + 'a00c300a' + 'a1030101ff' + 'a6030101ff')!,
    );
    assert.deepEqual(id.securityProperties, { isProduction: true });
  });

  it('deeply nested input is refused without a stack overflow', () => {
    let der = Uint8Array.of(0x05, 0x00);
    for (let i = 0; i < 500; i++) {
      const len = der.length;
      const head =
        len < 128 ? [0x30, len] : len < 256 ? [0x30, 0x81, len] : [0x30, 0x82, len >> 8, len & 0xff];
      der = Uint8Array.from([...head, ...der]);
    }
    const e = expectThrowsTyped(() => parseInstanceIdentity(der.subarray(0, Math.min(der.length, 2000))));
    assert.equal(e.code, 'ERR_MALFORMED');
  });

  it('random bytes and mutations of a valid value only ever throw typed errors (property test)', () => {
    const check = (b: Uint8Array) => {
      try {
        parseInstanceIdentity(b);
      } catch (e) {
        if (!(e instanceof AttestationError)) throw e;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b)),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const m = Uint8Array.from(good);
        m[i] = v;
        check(m);
      }),
      { numRuns: 2000 },
    );
  });
});
