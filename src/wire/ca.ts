import { type Static, Type } from '@sinclair/typebox';
import type { PlatformIdentity } from '../formats/platform-identity.js';

/**
 * The platform CA service's /v1/ca routes (docs/ca.md "The CA as a service"): written once, validated by
 * the server (src/api/routes-ca.ts) and checked by the client (src/admin/ca-client.ts). Bytes are standard
 * base64 with padding, as in wire/schemas.ts.
 */

const B64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';
const b64 = (minBytes: number, maxBytes: number, description: string) =>
  Type.String({
    pattern: B64,
    minLength: 4 * Math.ceil(minBytes / 3),
    maxLength: 4 * Math.ceil(maxBytes / 3),
    description,
    contentEncoding: 'base64',
  });

const Identity = Type.Object(
  {
    project: Type.String({ minLength: 1, maxLength: 256 }),
    zone: Type.String({ minLength: 1, maxLength: 256 }),
    instanceId: Type.String({ minLength: 1, maxLength: 256 }),
    instanceName: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);
type Agree<A, B> = [A, B] extends [B, A] ? true : never;
true satisfies Agree<Static<typeof Identity>, PlatformIdentity>;

export const CaNonceRequest = Type.Object(
  {
    call: Type.Union([Type.Literal('ek'), Type.Literal('ak')], {
      description: 'Which CERTIFY the nonce is for (informative: one nonce scope per caller)',
    }),
  },
  { additionalProperties: false },
);
export const CaNonceResponse = Type.Object({
  nonce: b64(64, 64, '64 random bytes, single use, bound to the calling credential'),
  expiresAt: Type.Integer({ description: 'Milliseconds since the Unix epoch' }),
});

const evidence = {
  nonce: b64(64, 64, 'The nonce from POST /v1/ca/nonce'),
  report: b64(0x4a0, 0x4a0, 'SEV-SNP ATTESTATION_REPORT, REPORT_DATA = SHA-512(nonce || manifest)'),
  certTable: Type.Optional(b64(0, 16 * 1024, "The extended report's certificate table (may be empty)")),
  manifest: b64(1, 64 * 1024, 'The SVSM services manifest (or vTPM payload) the report covers'),
  format: Type.Union([Type.Literal('x509'), Type.Literal('c509')], {
    description: 'c509: a natively signed C509 certificate (draft-ietf-cose-cbor-encoded-cert-20)',
  }),
  claimedIdentity: Type.Optional(Identity),
};

export const CaCertifyEkRequest = Type.Object(evidence, { additionalProperties: false });
export const CaCertifyAkRequest = Type.Object(
  { ...evidence, csr: b64(1, 16 * 1024, 'PKCS#10 (DER) or C509 request for the AK') },
  { additionalProperties: false },
);

export const CaCertifyResponse = Type.Object({
  serial: Type.String({ pattern: '^[0-9a-f]{1,40}$' }),
  format: Type.Union([Type.Literal('x509'), Type.Literal('c509')]),
  certificate: b64(1, 16 * 1024, 'The certificate in `format`'),
  x509: b64(1, 16 * 1024, 'The X.509 form (DER), always'),
  chain: Type.Array(b64(1, 16 * 1024, 'X.509 DER'), {
    minItems: 1,
    maxItems: 4,
    description: 'The issuing CA, then its issuers',
  }),
  instance: Type.Object({ id: Type.String(), identity: Identity }),
  reused: Type.Boolean({ description: 'EK only: an existing certificate for this EK was returned' }),
});

export type CaCertifyResponseJson = Static<typeof CaCertifyResponse>;
