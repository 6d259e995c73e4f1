import { type Static, Type } from '@sinclair/typebox';
import type { PlatformIdentity } from '../formats/platform-identity.js';

/**
 * Typebox schemas of every /v1 request and response (docs/api.md): the /v1 wire contract, written once.
 * The server validates requests and serializes replies with them (fastify, ajv: no coercion, no silent
 * removal of unknown properties) and publishes them at /v1/openapi.json; the clients (src/admin, the proxy's
 * native backend) check replies against them (wire/decode.ts). Byte fields are standard base64 with padding,
 * as on the aproxy wire.
 */

const B64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';
/** A base64 byte field holding at most `maxBytes` bytes. */
const b64 = (maxBytes: number, description: string) =>
  Type.String({
    pattern: B64,
    maxLength: 4 * Math.ceil(maxBytes / 3),
    description,
    contentEncoding: 'base64',
  });

const Counter = Type.String({
  pattern: '^(?:0|[1-9][0-9]{0,19})$',
  description: 'A state counter: a decimal unsigned integer (at most 2^53-1 is accepted by the broker)',
});

export const Version = Type.Union([Type.Literal('0.1.0'), Type.Literal('0.2.0')], {
  description: 'The guest protocol version (aproxy 0.1.0, or Vouchsafe 0.2.0 with rollback protection)',
});
const Tee = Type.String({ minLength: 1, maxLength: 32, description: 'TEE type; only "snp" is supported' });
const Param = Type.Union([
  Type.Literal('Challenge'),
  Type.Literal('EcPublicKeyBytes'),
  Type.Literal('StateCounter'),
  Type.Literal('Domain'),
  Type.Literal('StateDigest'),
]);
const EcKey = Type.Object(
  { x: b64(66, 'P-521 x, 66 bytes big-endian'), y: b64(66, 'P-521 y, 66 bytes big-endian') },
  { additionalProperties: false },
);
/** The platform identity (src/formats/platform-identity.ts) as the 0.2.0 answer carries it. */
const Identity = Type.Object(
  { project: Type.String(), zone: Type.String(), instanceId: Type.String(), instanceName: Type.String() },
  { additionalProperties: false },
);
/** `true` when A and B are assignable both ways; a schema that drifts from its type fails to compile. */
type Agree<A, B> = [A, B] extends [B, A] ? true : never;
true satisfies Agree<Static<typeof Identity>, PlatformIdentity>;
const BootId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' });
const Timestamp = Type.Integer({ description: 'Milliseconds since the Unix epoch' });

export const ErrorBody = Type.Object(
  {
    code: Type.String({ description: 'Stable category (ERR_*)' }),
    reason: Type.String({ description: 'Stable dotted reason, e.g. broker.rollback' }),
    message: Type.String({ description: 'Human text; may change' }),
    failures: Type.Optional(
      Type.Array(
        Type.Object({
          code: Type.String(),
          message: Type.String(),
          expected: Type.Optional(Type.String()),
          actual: Type.Optional(Type.String()),
        }),
        { description: 'ERR_POLICY_REJECTED only: every failed policy check' },
      ),
    ),
  },
  { additionalProperties: false },
);

// ---- native guest API ------------------------------------------------------------------------------

export const ChallengeRequest = Type.Object({ tee: Tee, version: Version }, { additionalProperties: false });
export const ChallengeResponse = Type.Object({
  challenge: b64(1024, 'Single-use nonce'),
  params: Type.Array(Param, { description: 'What REPORT_DATA = SHA-512 hashes, in this order' }),
  version: Version,
  expiresAt: Timestamp,
});

export const AttestRequest = Type.Object(
  {
    tee: Tee,
    version: Version,
    report: b64(32 * 1024, 'The SNP ATTESTATION_REPORT'),
    certTable: Type.Optional(b64(16 * 1024, 'Extended-report certificate table (VCEK/VLEK, ASK, ARK)')),
    challenge: b64(1024, 'The challenge from /v1/challenge'),
    key: EcKey,
    stateCounter: Type.Optional(
      Type.Union([Counter, Type.Null()], {
        description: '0.2.0 only (required there): the state file counter, or null for no state',
      }),
    ),
    stateDigest: Type.Optional(
      Type.Union([b64(32, 'SHA-256 of the sealed state file'), Type.Null()], {
        description:
          '0.2.0 only (required with a counter): SHA-256 of the sealed state file whose counter is stated; ' +
          'null exactly when stateCounter is. Bound into REPORT_DATA; compared with the committed digest.',
      }),
    ),
    stateKeyVersion: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 4294967295 }), Type.Null()], {
        description:
          '0.2.0 only, optional: the sealing-key version the state file is sealed under (null: none or not ' +
          'known). Present (even null): the ciphertext seals secret payload format 2, with the key version ' +
          'and, when this names an older version, that key too. Absent: format 1.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type AttestRequest = Static<typeof AttestRequest>;

export const AttestResponse = Type.Object({
  version: Version,
  ciphertext: b64(512 * 1024, 'AES-256-GCM ciphertext (aproxy `secret`)'),
  decryption: Type.Object({
    epk: EcKey,
    wrappedCek: b64(40, 'AES-KW wrapped CEK'),
    aad: b64(4096, 'ASCII of base64url(JWE protected header)'),
    iv: b64(12, 'GCM IV'),
    tag: b64(16, 'GCM tag'),
  }),
  identity: Type.Union([Identity, Type.Null()]),
  signature: Type.Union([b64(96, 'ECDSA P-384 over the 0.2.0 signed content'), Type.Null()]),
  instance: Type.String({ description: "The broker's instance id" }),
  keyVersion: Type.Integer(),
  bootId: BootId,
  committedCounter: Type.Union([Type.Integer(), Type.Null()]),
  leaseExpiresAt: Type.Union([Timestamp, Type.Null()], {
    description: 'null: the boot was ended at once (0.1.0)',
  }),
});

export const CommitRequest = Type.Object(
  {
    bootId: BootId,
    commitToken: b64(64, 'From the sealed secret payload'),
    counter: Counter,
    stateDigest: b64(32, 'SHA-256 of the sealed state file written as version `counter`'),
    challenge: b64(1024, "The session's challenge; the acknowledgement signature covers it"),
  },
  { additionalProperties: false },
);
export const CommitResponse = Type.Object({
  committedCounter: Type.Integer(),
  leaseExpiresAt: Timestamp,
  signature: Type.Union([b64(96, 'ECDSA P-384 over the commit signed content'), Type.Null()]),
});

export const BootRequest = Type.Object(
  {
    bootId: BootId,
    commitToken: b64(64, 'From the sealed secret payload'),
    nonce: Type.Optional(
      b64(
        64,
        "16..64 fresh bytes from the guest: with it, the answer carries the broker's signature over it",
      ),
    ),
  },
  { additionalProperties: false },
);
const LeaseSignature = Type.Optional(
  Type.Union([
    b64(96, 'ECDSA P-384 over the lease signed content (only when a nonce was sent)'),
    Type.Null(),
  ]),
);
export const HeartbeatResponse = Type.Object({ leaseExpiresAt: Timestamp, signature: LeaseSignature });
export const EndResponse = Type.Object({ ended: Type.Literal(true), signature: LeaseSignature });

export const BrokerKeyResponse = Type.Object({
  algorithm: Type.Literal('ECDSA-P384-SHA384'),
  spki: b64(1024, 'SubjectPublicKeyInfo DER'),
  pem: Type.String(),
  sha256: Type.String({ description: 'Hex SHA-256 of the SPKI DER' }),
});

// ---- admin API ------------------------------------------------------------------------------------

/**
 * 1..256 UTF-8 bytes (what the 0.2.0 answer carries). JSON Schema counts characters, not bytes: this bounds
 * characters and refuses control characters; the broker checks the byte length (`broker.identity`).
 */
const IdentityField = Type.String({
  minLength: 1,
  maxLength: 256,
  pattern: '^[^\\u0000-\\u001f\\u007f]+$',
  description: 'At most 256 UTF-8 bytes, no control characters',
});
/** What a new launch does while another launch holds a live lease (docs/broker.md "Leases"). */
const NewLaunch = Type.Union([Type.Literal('takeover'), Type.Literal('refuse'), Type.Literal('allow')], {
  description:
    'takeover (default): the new launch becomes the active boot; refuse: broker.clone until the lease ' +
    'runs out or the VMM ends the boot; allow: released without a boot of its own',
});
const RegistryTee = Type.Union([Type.Literal('snp'), Type.Literal('tdx')], {
  description: 'The TEE the instance runs on, whose identity field names it (default snp)',
});
export const RegisterRequest = Type.Object(
  {
    project: IdentityField,
    zone: IdentityField,
    instanceId: IdentityField,
    instanceName: IdentityField,
    policy: Type.Object(
      {},
      {
        additionalProperties: true,
        description: "The appraisal policy for the instance's TEE (docs/policy.md, docs/tdx.md)",
      },
    ),
    newLaunch: Type.Optional(NewLaunch),
    tee: Type.Optional(RegistryTee),
    hostData: Type.Optional(
      Type.String({
        pattern: '^(?:[0-9a-f]{64}|[0-9a-f]{96})$',
        description:
          'The identity value to register (hex) instead of a random one: HOST_DATA, 32 bytes, for snp; ' +
          'MRCONFIGID, 48 bytes, for tdx. Not all zero, not registered already.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type RegisterRequest = Static<typeof RegisterRequest>;
true satisfies Agree<Pick<RegisterRequest, keyof PlatformIdentity>, PlatformIdentity>;

const ActiveBoot = Type.Object({
  bootId: Type.String(),
  startedAt: Timestamp,
  leaseExpiresAt: Timestamp,
  launchId: Type.Union([Type.String({ description: 'SEV-SNP REPORT_ID of its launch (hex)' }), Type.Null()]),
});
export const InstanceView = Type.Object({
  id: Type.String(),
  project: Type.String(),
  zone: Type.String(),
  instanceId: Type.String(),
  instanceName: Type.String(),
  tee: RegistryTee,
  identityField: Type.String({
    description: 'The identity field hostData is: HOST_DATA (snp) or MRCONFIGID (tdx)',
  }),
  hostData: Type.String({
    description:
      'The identity value (hex) to set at launch: SEV-SNP HOST_DATA (32 bytes, SNP_LAUNCH_FINISH) or TDX ' +
      'MRCONFIGID (48 bytes, TD_PARAMS)',
  }),
  policy: Type.Unknown(),
  createdAt: Timestamp,
  newLaunch: NewLaunch,
  committedCounter: Type.Union([Type.Integer(), Type.Null()]),
  activeBoot: Type.Union([ActiveBoot, Type.Null()]),
  keyVersions: Type.Optional(
    Type.Array(Type.Object({ version: Type.Integer(), createdAt: Timestamp, kekId: Type.String() })),
  ),
});
export const InstanceList = Type.Object({ instances: Type.Array(InstanceView) });
export const InstanceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const PolicyRequest = Type.Object(
  { policy: Type.Object({}, { additionalProperties: true }) },
  { additionalProperties: false },
);
export const NewLaunchRequest = Type.Object({ newLaunch: NewLaunch }, { additionalProperties: false });
export const ResetRequest = Type.Object(
  { note: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);
export const ResetResponse = Type.Object({ hadActiveBoot: Type.Boolean() });
export const RotateResponse = Type.Object({ keyVersion: Type.Integer() });
export const OkResponse = Type.Object({ ok: Type.Literal(true) });

export const AuditQuery = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Entries with seq > after' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1..1000 (default 100)' })),
  },
  { additionalProperties: false },
);
const AuditEntry = Type.Object({
  seq: Type.Integer(),
  time: Timestamp,
  kind: Type.String(),
  instance: Type.Union([Type.String(), Type.Null()]),
  decision: Type.Union([Type.Literal('accept'), Type.Literal('refuse')]),
  reasons: Type.Array(Type.String()),
  evidenceDigest: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(
    Type.String(),
    Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]),
  ),
  prevHash: Type.String(),
  hash: Type.String(),
});
export const AuditPage = Type.Object({
  entries: Type.Array(AuditEntry),
  next: Type.Union([Type.Integer(), Type.Null()], { description: 'Pass as `after` for the next page' }),
});
export const AuditVerification = Type.Object({
  ok: Type.Boolean(),
  entries: Type.Integer(),
  headHash: Type.Optional(Type.String({ description: 'ok only: export it to detect a rebuilt chain' })),
  problem: Type.Optional(
    Type.String({ description: 'audit.hash | audit.link | audit.sequence | audit.head' }),
  ),
  seq: Type.Optional(Type.Integer({ description: 'Where the problem is' })),
});

export const TokenKeyRotationResponse = Type.Object({
  kid: Type.String(),
  alg: Type.String(),
  published: Type.Array(Type.String(), { description: 'kids in the JWKS, newest first' }),
});

export const Health = Type.Object({ status: Type.Literal('ok') });
