/**
 * Every decoder in src, fuzzed: one row per decoder (name, the function it calls, its seed corpus). Each row
 * runs a fast-check property over inputs grown from its seeds (byte flips, truncations, extensions, splices,
 * length fields at extremes; for JSON decoders members replaced, deleted, retyped or added) and random
 * input; the decoder must return a value or throw a typed AttestationError (known code, dotted reason),
 * never a TypeError, RangeError or anything else.
 *
 * The first test is the inventory: it scans src for exported `parse*` / `decode*` / `read*` functions and
 * fails naming any that has no row here and no written reason for its absence, so a new decoder is visible.
 * Failing inputs found by these properties are kept in REGRESSIONS below and replayed on every run.
 */
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as apiCodec from '../../src/api/codec.js';
import { parseHostPort } from '../../src/api/listen-address.js';
import { parseRateLimitConfig } from '../../src/api/rate-limits.js';
import {
  defaultCaConfig,
  parseCaConfig,
  parseCertificationRequest,
  readPublicKeyInput,
  serializeCaConfig,
} from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import {
  decodeAscii,
  parseCertChain,
  parseCertificateDer,
  parseKdsCrl,
  readVcekIdentity,
} from '../../src/collateral/kds-bodies.js';
import { parseRetryAfter } from '../../src/collateral/kds-client.js';
import {
  joinSignedResponse,
  parseIntelCrl,
  readIssuerChain,
  splitSignedResponse,
} from '../../src/collateral/pcs-bodies.js';
import { parseAzSnpVtpm } from '../../src/evidence/az-snp-vtpm/parse.js';
import { parseAmdCa, parseAmdLeaf } from '../../src/evidence/snp/amd-cert.js';
import { parseCrl } from '../../src/evidence/snp/crl.js';
import { parseX509 } from '../../src/evidence/snp/x509.js';
import { readPemChain } from '../../src/evidence/tdx/chain.js';
import {
  encodeAttestationRequest,
  encodeAttestationResponse,
  parseAttestationRequest,
  parseAttestationResponse,
} from '../../src/formats/aproxy/attestation.js';
import {
  encodeCommitRequest,
  encodeCommitResponse,
  parseCommitRequest,
  parseCommitResponse,
} from '../../src/formats/aproxy/commit.js';
import {
  JWS_SHA384,
  parseHashAlgo,
  parsePayloadFormat,
  RAW_SHA512,
} from '../../src/formats/aproxy/dialect-binding.js';
import { encodeErrorReply, parseErrorReply } from '../../src/formats/aproxy/error-reply.js';
import {
  parseCounter,
  parseEcKey,
  parseKeyVersion,
  parseTimestamp,
  parseVersionTuple,
} from '../../src/formats/aproxy/fields.js';
import { decodeFrameHeader, encodeFrame, FrameDecoder } from '../../src/formats/aproxy/frame.js';
import { parseIdentity } from '../../src/formats/aproxy/identity.js';
import { parseJson, parseJsonText } from '../../src/formats/aproxy/json.js';
import {
  encodeLeaseRequest,
  encodeLeaseResponse,
  parseLeaseRequest,
  parseLeaseResponse,
  parseOpeningMessage,
} from '../../src/formats/aproxy/lease.js';
import {
  encodeNegotiationRequest,
  encodeNegotiationResponse,
  parseNegotiationRequest,
  parseNegotiationResponse,
  parseTee,
} from '../../src/formats/aproxy/negotiation.js';
import {
  encodeAttestationRequest1122,
  encodeNegotiationResponse1122,
  parseAttestationRequest1122,
  parseNegotiationResponse1122,
} from '../../src/formats/aproxy/pr1122.js';
import {
  encodeConfigResponse,
  encodeProxyRequest,
  encodeProxyResponse,
  parseConfigResponse,
  parseProxyRequest,
  parseProxyResponse,
  stringifyJsonValue,
} from '../../src/formats/aproxy/pr1203.js';
import { encodeSecretPayload, parseSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import {
  decodeAzSnpVtpmEvidence,
  parseAzSnpVtpmEvidenceJson,
} from '../../src/formats/azure/evidence-json.js';
import { parseHclReport } from '../../src/formats/azure/hcl-report.js';
import { parseHclRuntimeData } from '../../src/formats/azure/runtime-data.js';
import { parseDer as parseC509Der } from '../../src/formats/c509/der-input.js';
import { parseX509Extensions } from '../../src/formats/c509/extensions.js';
import {
  decodeCbor,
  parseC509Certificate,
  parseC509Csr,
  parseC509CsrTemplate,
  x509CsrToC509,
  x509ToC509,
} from '../../src/formats/c509/index.js';
import { decodeUtf8, parseOne, readTlv } from '../../src/formats/der/reader.js';
import { decodePem, decodePemBlock, encodePem } from '../../src/formats/pem.js';
import {
  CertFormat,
  CertifyOp,
  decodeCertifyAnswer,
  decodeCertifyRequest,
  encodeCertifyAkRequest,
  encodeCertifyAnswer,
  encodeCertifyEkRequest,
  encodeNonceAnswer,
  encodeNonceRequest,
} from '../../src/formats/pvchannel/certify.js';
import {
  decodeKeyReleaseAnswer,
  decodeKeyReleaseRequest,
  encodeKeyReleaseAnswer,
  encodeKeyReleaseRequest,
} from '../../src/formats/pvchannel/key-release.js';
import {
  decodePage,
  decodeRecord,
  encodePage,
  encodeRecord,
  requestMessage,
} from '../../src/formats/pvchannel/message.js';
import {
  decodeNegotiateAnswer,
  decodeNegotiateRequest,
  encodeNegotiateAnswer,
  encodeNegotiateRequest,
} from '../../src/formats/pvchannel/negotiate.js';
import {
  decodePortAccess,
  decodeSocketHeader,
  encodePortAccess,
  encodeSocketFrame,
} from '../../src/formats/pvchannel/socket-frame.js';
import * as uefiWire from '../../src/formats/pvchannel/uefi.js';
import { decodeHostStoreFile, encodeHostStoreFile } from '../../src/formats/pvchannel/uefi-host-file.js';
import { Reader } from '../../src/formats/reader.js';
import {
  buildCertTable,
  CertGuid,
  decodeGuestPolicy,
  decodePlatformInfo,
  decodeSignerInfo,
  decodeTcb,
  encodeReport,
  parseCertTable,
  parseReport,
  readAmdExtensions,
} from '../../src/formats/snp/index.js';
import { decodeSevSnpEvidence, parseSevSnpEvidenceJson } from '../../src/formats/snp/sev-json.js';
import {
  encodeServicesManifest,
  encodeVtpmManifestV0,
  encodeVtpmManifestV1,
  parseServicesManifest,
  parseVtpmManifest,
  VTPM_SERVICE_GUID,
} from '../../src/formats/svsm/index.js';
import { parseTdQeIdentity, parseTdxTcbInfo } from '../../src/formats/tdx/collateral-json.js';
import { parsePckSgxExtension } from '../../src/formats/tdx/pck-extension.js';
import { parseSgxReportBody, parseTdxQuote } from '../../src/formats/tdx/quote.js';
import { decodeEvent } from '../../src/formats/tpm/eventlog/decode-event.js';
import { decodeDevicePath } from '../../src/formats/tpm/eventlog/device-path.js';
import { decodeGptEvent } from '../../src/formats/tpm/eventlog/gpt.js';
import { decodeImageLoadEvent } from '../../src/formats/tpm/eventlog/image-load.js';
import { parseEventLog, parseSpecIdEvent } from '../../src/formats/tpm/eventlog/parse.js';
import { decodeSp800155Event } from '../../src/formats/tpm/eventlog/sp800-155.js';
import {
  decodeLoadOption,
  decodeSignatureLists,
  decodeUefiVariableData,
} from '../../src/formats/tpm/eventlog/uefi-variable.js';
import {
  encodeCredentialFile,
  encodePublic,
  encodeTpm2bPublic,
  makeCredential,
  parseAttest,
  parseCredentialFile,
  parsePublic,
  parseSignature,
  parseTpm2bPublic,
  readHashAlg,
  readPcrSelection,
  readPublic,
  readSignature,
  readTpm2b,
  TPM_ALG,
} from '../../src/formats/tpm/index.js';
import { readAlgorithm, readRsaPssParams } from '../../src/formats/x509/algorithm.js';
import { parseCertificate, readSpki } from '../../src/formats/x509/certificate.js';
import { parseCertificateList } from '../../src/formats/x509/crl.js';
import {
  readBasicConstraints,
  readExtensions,
  readExtKeyUsage,
  readKeyUsage,
} from '../../src/formats/x509/extensions.js';
import {
  encodeInstanceIdentity,
  parseInstanceIdentity,
  readInstanceIdentity,
} from '../../src/formats/x509/instance-identity.js';
import { parseName } from '../../src/formats/x509/name.js';
import { readSigned } from '../../src/formats/x509/signed.js';
import { parseStateHeader, sealState } from '../../src/guest/state-file.js';
import * as uefiSeal from '../../src/guest/uefi-seal.js';
import { readCookie } from '../../src/kbs/cookie.js';
import { parseSnpPrimaryEvidence } from '../../src/kbs/evidence.js';
import { parseAzurePrimaryEvidence } from '../../src/kbs/evidence-azure.js';
import { parseTdxPrimaryEvidence } from '../../src/kbs/evidence-tdx.js';
import { parseAttestationBody, parseAuthRequest, parseResourcePath } from '../../src/kbs/messages.js';
import { parseResourcePolicy } from '../../src/kbs/resource-policy.js';
import { parseTeePubkey } from '../../src/kbs/tee-pubkey.js';
import { decodeTokenKeys, encodeTokenKeys, openTokenKeyFile } from '../../src/kbs/token-keys.js';
import { parsePkcs11Uri } from '../../src/keys/pkcs11-uri.js';
import { fromCompactJwe, toCompactJwe, wrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { parseAzSnpVtpmPolicy } from '../../src/policy/az-snp-vtpm/policy.js';
import { parseSnpPolicy } from '../../src/policy/snp/parse.js';
import { parseTdxPolicy } from '../../src/policy/tdx/policy.js';
import { parseTpmBootPolicy } from '../../src/policy/tpm/parse.js';
import { parseChannelAddress } from '../../src/proxy/listen-address.js';
import { SimAzureVm } from '../../src/sim/azure/index.js';
import { createCrl, defaultReportFields, sharedSimChain } from '../../src/sim/snp/index.js';
import { SIM_FMSPC, SimTdxPlatform, sgxExtension } from '../../src/sim/tdx/index.js';
import { decodeBase64, decodeBase64Url, encodeBase64 } from '../../src/util/base64.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { softEk } from '../ca/fixtures.js';
import * as evb from '../evidence/tpm/eventlog/build.js';
import { makeQuote, randomPcrs } from '../evidence/tpm/quote-fixtures.js';
import { ROOT, sourceOf } from '../helpers/paths.js';
import { sevEvidenceOf } from '../kbs/sev-struct.js';
import { bytesFrom, type FuzzBudget, fcOptions, jsonFrom, textFrom, valueOrTyped } from './kit.js';

// biome-ignore lint/suspicious/noExplicitAny: seeds of JSON decoders are arbitrary JSON
type Json = any;

/** One decoder under fuzz. `fn` is `src-relative-path#exportName` (the inventory matches on it). */
type Row =
  | {
      readonly fn: string;
      readonly kind: 'bytes';
      readonly seeds: () => Promise<Uint8Array[]> | Uint8Array[];
      readonly run: (b: Uint8Array) => unknown;
    }
  | {
      readonly fn: string;
      readonly kind: 'text';
      readonly seeds: () => Promise<string[]> | string[];
      readonly run: (s: string) => unknown;
    }
  | {
      readonly fn: string;
      readonly kind: 'json';
      readonly seeds: () => Promise<Json[]> | Json[];
      readonly run: (v: Json) => unknown;
    };

/**
 * Decoders with no row, each with the reason. Anything else the inventory finds without a row fails it.
 */
const NOT_FUZZED: Readonly<Record<string, string>> = {
  'src/web/headers.ts#readSessionCookie':
    'the dashboard session cookie out of a Cookie header; fuzzed with the dashboard routes in test/fuzz/dashboard-http.test.ts',
  'src/kbs/evidence.ts#decodeBounded':
    'the bounded base64 step of the KBS evidence parsers; fuzzed through the parseSnpPrimaryEvidence and parseTdxPrimaryEvidence rows',
  'src/api/admin-client.ts#readTokenFile':
    'reads a file by path; the token is an opaque string compared in constant time',
  'src/guest/state-file.ts#readStateFile':
    'reads a file by path; its bytes go to parseStateHeader (row below)',
  'src/kbs/tokens/ear-tokens.ts#readSnpEarSubject':
    "reads the claims of an EAR whose signature already verified under the broker's own token key (input is the broker's own output)",
  'src/collateral/pcs-directory.ts#readTdxCollateralDirectory':
    'reads a directory by path; its files go to parseTdxTcbInfo, parseTdQeIdentity, readIssuerChain and parseIntelCrl (rows below)',
  'src/cli/io.ts#readInput': 'reads a CLI argument file or stdin; the bytes go to the decoders below',
  'src/cli/commands/snp-input.ts#readSnpInput':
    'reads a CLI argument file; its bytes go to parseReport or parseSevSnpEvidenceJson (rows below)',
};

const budget: FuzzBudget = { numRuns: 200, timeMs: 300 };

/** Rows of the UEFI variable payloads, the host file and the guest's sealed record and index (§7.3). */
function uefiRows(): Row[] {
  const guid = new Uint8Array(16).fill(0x8b);
  const name = uefiWire.nameFromString('BootOrder');
  const v = { guid, name };
  const entry = { guid, name, attributes: 7, generation: 3n, digest: new Uint8Array(32).fill(1) };
  const bytes = (fn: string, seeds: () => Uint8Array[], run: (b: Uint8Array) => unknown): Row => ({
    fn,
    kind: 'bytes',
    seeds,
    run,
  });
  const w = 'src/formats/pvchannel/uefi.ts#';
  return [
    bytes(`${w}decodeGetRequest`, () => [uefiWire.encodeGetRequest(v)], uefiWire.decodeGetRequest),
    bytes(
      `${w}decodeGetNextRequest`,
      () => [
        uefiWire.encodeGetNextRequest(v),
        uefiWire.encodeGetNextRequest({ guid: new Uint8Array(16), name: new Uint8Array(0) }),
      ],
      uefiWire.decodeGetNextRequest,
    ),
    bytes(
      `${w}decodeSetRequest`,
      () => [uefiWire.encodeSetRequest({ ...v, attributes: 7, data: Uint8Array.of(1, 0, 2, 0) })],
      uefiWire.decodeSetRequest,
    ),
    bytes(
      `${w}decodeGetAnswer`,
      () => [
        uefiWire.encodeGetAnswer({ status: 0, attributes: 7, data: Uint8Array.of(1, 2) }),
        uefiWire.encodeGetAnswer({ status: 14, attributes: 0, data: new Uint8Array(0) }),
      ],
      uefiWire.decodeGetAnswer,
    ),
    bytes(`${w}decodeSetAnswer`, () => [uefiWire.encodeSetAnswer(9)], uefiWire.decodeSetAnswer),
    bytes(
      `${w}decodeGetNextAnswer`,
      () => [
        uefiWire.encodeGetNextAnswer({ status: 0, next: v }),
        uefiWire.encodeGetNextAnswer({
          status: 14,
          next: { guid: new Uint8Array(16), name: new Uint8Array(0) },
        }),
      ],
      uefiWire.decodeGetNextAnswer,
    ),
    bytes(
      `${w}decodeQueryInfoRequest`,
      () => [uefiWire.encodeQueryInfoRequest(3)],
      uefiWire.decodeQueryInfoRequest,
    ),
    bytes(
      `${w}decodeQueryInfoAnswer`,
      () => [
        uefiWire.encodeQueryInfoAnswer({
          status: 0,
          maximumVariableStorageSize: 262144n,
          remainingVariableStorageSize: 1000n,
          maximumVariableSize: 65536n,
        }),
      ],
      uefiWire.decodeQueryInfoAnswer,
    ),
    bytes(
      'src/formats/pvchannel/uefi-host-file.ts#decodeHostStoreFile',
      () => [
        encodeHostStoreFile([{ ...v, attributes: 7, data: Uint8Array.of(5, 6) }]),
        encodeHostStoreFile([]),
      ],
      decodeHostStoreFile,
    ),
    bytes(
      'src/guest/uefi-seal.ts#parseRecordHeader',
      () => [
        uefiSeal.sealRecord(
          new Uint8Array(32).fill(4),
          1,
          2n,
          { instanceBinding: new Uint8Array(32), ...v, attributes: 7 },
          Uint8Array.of(1),
        ),
      ],
      uefiSeal.parseRecordHeader,
    ),
    bytes(
      'src/guest/uefi-seal.ts#decodeIndexBody',
      () => [uefiSeal.encodeIndexBody({ dataKey: new Uint8Array(32).fill(6), entries: [entry, entry] })],
      uefiSeal.decodeIndexBody,
    ),
  ];
}

// ---- seeds built once, from the simulator and the encoders (no vectors needed: CI may lack them) ----

type AproxySeed =
  | 'negReq'
  | 'negResp010'
  | 'negResp020'
  | 'attReq'
  | 'attResp'
  | 'commitReq'
  | 'commitResp'
  | 'leaseReq'
  | 'leaseResp'
  | 'error'
  | 'secret';

interface Corpus {
  report: Uint8Array;
  certTable: Uint8Array;
  ark: Uint8Array;
  ask: Uint8Array;
  vcek: Uint8Array;
  vlek: Uint8Array;
  crl: Uint8Array;
  c509: Uint8Array;
  csrDer: Uint8Array;
  csrC509: Uint8Array;
  tpmtRsa: Uint8Array;
  tpmtEcc: Uint8Array;
  attest: Uint8Array;
  sigEcc: Uint8Array;
  sigRsa: Uint8Array;
  credential: Uint8Array;
  manifest: Uint8Array;
  vtpmV0: Uint8Array;
  vtpmV1: Uint8Array;
  identity: Uint8Array;
  state: Uint8Array;
  aproxy: Record<AproxySeed, Uint8Array>;
  jwe: string;
  tokenKeys: Uint8Array;
  tpm2b: Uint8Array;
}

let corpus: Corpus;
const seedErrors: string[] = [];

/** One seed, built by an encoder that may be changing under us: on failure, recorded and left empty. */
async function guard<T>(name: string, f: () => T | Promise<T>, fallback: T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    seedErrors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    return fallback;
  }
}
const EMPTY = new Uint8Array(0);
const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-fuzz-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function buildCorpus(): Promise<Corpus> {
  const chain = await sharedSimChain('Milan');
  const report = encodeReport(defaultReportFields(chain));
  const certTable = buildCertTable([
    { guid: CertGuid.VCEK, data: chain.vcek.der },
    { guid: CertGuid.ASK, data: chain.ask.der },
    { guid: CertGuid.ARK, data: chain.ark.der },
  ]);
  const crl = await guard('crl', () => createCrl(chain, { revokedSerials: [5n, 77n] }), EMPTY);
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=fuzz',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'fuzz.example' }])],
  });
  const csrDer = new Uint8Array(csr.rawData);
  const tpm = await guard('tpm', tpmSeeds, {
    tpmtRsa: EMPTY,
    tpmtEcc: EMPTY,
    attest: EMPTY,
    sigEcc: EMPTY,
    sigRsa: EMPTY,
    credential: EMPTY,
    vtpmV0: EMPTY,
    vtpmV1: EMPTY,
    tpm2b: EMPTY,
  });
  const coord = (s: string | undefined) => {
    const b = Buffer.from(s ?? '', 'base64url');
    const out = new Uint8Array(66);
    out.set(b, 66 - b.length);
    return out;
  };
  const p521 = newKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey.export({ format: 'jwk' });
  const guestKey = { x: coord(p521.x), y: coord(p521.y) };
  const sealed = await wrapSecret(guestKey, new Uint8Array(32).fill(7));
  const identity = { project: 'p', zone: 'z', instanceId: '42', instanceName: 'vm1' };
  const makers: Record<AproxySeed, () => Uint8Array> = {
    negReq: () => encodeNegotiationRequest({ version: '0.2.0', tee: 'snp' } as never),
    negResp010: () =>
      encodeNegotiationResponse(
        { challenge: new Uint8Array(32).fill(1), params: ['EcPublicKeyBytes', 'Challenge'] } as never,
        '0.1.0',
      ),
    negResp020: () =>
      encodeNegotiationResponse(
        {
          challenge: new Uint8Array(32).fill(1),
          params: ['EcPublicKeyBytes', 'Challenge', 'StateCounter'],
        } as never,
        '0.2.0',
      ),
    attReq: () =>
      encodeAttestationRequest(
        {
          evidence: { report, certs: certTable },
          challenge: new Uint8Array(32).fill(2),
          key: guestKey,
          tee: 'snp',
          stateCounter: 3n,
          stateDigest: new Uint8Array(32).fill(3),
          stateKeyVersion: 1,
        } as never,
        '0.2.0',
      ),
    attResp: () =>
      encodeAttestationResponse(
        {
          success: true,
          secret: sealed.ciphertext,
          decryption: sealed.decryption,
          token: null,
          identity,
          signature: new Uint8Array(96).fill(3),
        } as never,
        '0.2.0',
      ),
    commitReq: () =>
      encodeCommitRequest({
        bootId: 'boot-1',
        commitToken: new Uint8Array(32).fill(4),
        counter: 4n,
        stateDigest: new Uint8Array(32).fill(3),
        challenge: new Uint8Array(32).fill(2),
      } as never),
    commitResp: () => encodeCommitResponse({ success: true, signature: new Uint8Array(96).fill(5) } as never),
    leaseReq: () =>
      encodeLeaseRequest({
        op: 'heartbeat',
        bootId: 'boot-1',
        commitToken: new Uint8Array(32).fill(4),
        nonce: new Uint8Array(32).fill(6),
      } as never),
    leaseResp: () =>
      encodeLeaseResponse({
        op: 'heartbeat',
        leaseExpiresAt: 1_700_000_000_000,
        signature: new Uint8Array(96).fill(5),
      } as never),
    error: () => encodeErrorReply({ code: 'ERR_REFUSED', reason: 'broker.rollback', message: 'no' }),
    secret: () =>
      encodeSecretPayload({
        secret: new Uint8Array(32).fill(9),
        bootId: 'boot-1',
        commitToken: new Uint8Array(32).fill(4),
        keyVersion: 2,
        stateKey: { key: new Uint8Array(32).fill(8), keyVersion: 1 },
      }),
  };
  const aproxy = {} as Record<AproxySeed, Uint8Array>;
  for (const [k, make] of Object.entries(makers) as [AproxySeed, () => Uint8Array][]) {
    try {
      aproxy[k] = make();
    } catch (e) {
      // An encoder changed under us: the rows that use this seed still run (on their other seeds and
      // random input); the seed test below reports it.
      seedErrors.push(`aproxy.${k}: ${e instanceof Error ? e.message : String(e)}`);
      aproxy[k] = new Uint8Array(0);
    }
  }

  const ring = await openTokenKeyFile(join(tmp, 'token-keys.json'), { maxTokenLifetimeMs: 300_000 });
  return {
    report,
    certTable,
    ark: chain.ark.der,
    ask: chain.ask.der,
    vcek: chain.vcek.der,
    vlek: chain.vlek.der,
    crl,
    c509: await guard('c509', () => x509ToC509(chain.vcek.der), EMPTY),
    csrDer,
    csrC509: await guard('csrC509', () => x509CsrToC509(csrDer), EMPTY),
    ...tpm,
    identity: await guard(
      'identity',
      () =>
        encodeInstanceIdentity({
          zone: 'us-central1-a',
          projectNumber: 123n,
          projectId: 'p',
          instanceId: 42n,
          instanceName: 'vm1',
        }),
      EMPTY,
    ),
    state: await guard(
      'state',
      () =>
        sealState({
          key: new Uint8Array(32).fill(1),
          counter: 3n,
          keyVersion: 1,
          instanceBinding: new Uint8Array(32),
          body: new Uint8Array(40).fill(2),
        } as never),
      EMPTY,
    ),
    aproxy,
    jwe: await guard('jwe', () => toCompactJwe(sealed), ''),
    tokenKeys: await guard('tokenKeys', () => encodeTokenKeys(ring), EMPTY),
    manifest: await guard(
      'manifest',
      () => encodeServicesManifest([{ guid: VTPM_SERVICE_GUID, payload: tpm.vtpmV1 }]),
      EMPTY,
    ),
  };
}

/** TPMT_PUBLIC (RSA and ECC EKs), a TPMS_ATTEST quote, signatures, a credential file, vTPM payloads. */
function tpmSeeds() {
  const rsa = softEk('rsa');
  const ecc = softEk('ecc');
  const ak = newKeyPairSync('ec', { namedCurve: 'P-256' });
  const q = makeQuote({
    key: ak.privateKey,
    sigAlg: TPM_ALG.ECDSA,
    hashAlg: TPM_ALG.SHA256,
    banks: [randomPcrs(TPM_ALG.SHA256, [0, 1, 7])],
    nonce: new Uint8Array(16).fill(9),
  });
  const rsaAk = newKeyPairSync('rsa', { modulusLength: 2048 });
  const sigRsa = makeQuote({
    key: rsaAk.privateKey,
    sigAlg: TPM_ALG.RSASSA,
    hashAlg: TPM_ALG.SHA256,
    banks: [randomPcrs(TPM_ALG.SHA256, [0])],
    nonce: new Uint8Array(8),
  }).signature;
  const blob = makeCredential({
    ekPublic: rsa.pub,
    akName: Uint8Array.from([0, 0x0b, ...new Uint8Array(32).fill(1)]),
    credential: new Uint8Array(16).fill(2),
  });
  return {
    tpmtRsa: encodePublic(rsa.pub),
    tpmtEcc: encodePublic(ecc.pub),
    attest: q.quote,
    sigEcc: q.signature,
    sigRsa,
    credential: encodeCredentialFile(blob),
    vtpmV0: encodeVtpmManifestV0(rsa.pub),
    vtpmV1: encodeVtpmManifestV1(ecc.pub, ecc.pub),
    tpm2b: encodeTpm2bPublic(ecc.pub),
  };
}

/**
 * The CLI's modules, loaded on first use: they pull in most of src, so a module another change has broken
 * for a moment fails these rows alone, not the whole file.
 */
let cliModules:
  | Promise<{
      serve: typeof import('../../src/cli/commands/serve.js');
      verify: typeof import('../../src/cli/commands/verify-snp.js');
      io: typeof import('../../src/cli/io.js');
    }>
  | undefined;
const cli = () => (cliModules ??= loadCli());
const loadCli = async () => ({
  serve: await import('../../src/cli/commands/serve.js'),
  verify: await import('../../src/cli/commands/verify-snp.js'),
  io: await import('../../src/cli/io.js'),
});

/** The store's row decoders, loaded on first use (new modules: a broken import fails these rows alone). */
let storeModules: Promise<{ row: Json; verify: Json }> | undefined;
const store = () =>
  (storeModules ??= (async () => ({
    row: await import('../../src/store/audit-row.js' as string),
    verify: await import('../../src/store/audit-verify.js'),
  }))());

const der = (c: Corpus) => [c.ark, c.ask, c.vcek, c.vlek];
/** A small crypto-agile event log with one event of each decoded kind. */
const eventLogSeed = () =>
  evb.buildEventLog([
    {
      pcr: 7,
      type: 0x80000001,
      data: evb.uefiVariable('8be4df61-93ca-11d2-aa0d-00e098032b8c', 'SecureBoot', Uint8Array.of(1)),
    },
    { pcr: 7, type: 4, data: new Uint8Array(4) },
    { pcr: 4, type: 0x80000003, data: evb.imageLoad('\\EFI\\boot.efi'), hashed: Uint8Array.of(1) },
    { pcr: 5, type: 0x80000006, data: evb.gptData(1) },
    { pcr: 8, type: 0xd, data: new Uint8Array(Buffer.from('kernel_cmdline: ro quiet\0')) },
  ]);
const pemOf = (b: Uint8Array) => encodePem('CERTIFICATE', b);
const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const R = 'fuzz.der';
const crlReasons = { der: R, extensions: R, duplicateExtension: R };
const A = (c: Corpus) => c.aproxy;

/** TDX seeds from the simulator (a quote of each version, its collateral), built on first use. */
let tdxSeeds:
  | {
      q4: Uint8Array;
      q5: Uint8Array;
      tcbInfo: Uint8Array;
      qeIdentity: Uint8Array;
      chain: string;
      pckCrl: Uint8Array;
      rootCaCrl: Uint8Array;
    }
  | undefined;
const tdx = () => {
  if (!tdxSeeds) {
    const p = new SimTdxPlatform();
    const c = p.collateral();
    tdxSeeds = {
      q4: p.quote(new Uint8Array(64)),
      q5: p.quote(new Uint8Array(64), { version: 5, kind: 'td1.5' }),
      tcbInfo: c.tcbInfo.body,
      qeIdentity: c.qeIdentity.body,
      chain: p.pckChainPem,
      pckCrl: c.pckCrl!,
      rootCaCrl: c.rootCaCrl!,
    };
  }
  return tdxSeeds;
};

/** az-snp-vtpm seeds: one simulated Azure VM's evidence in Trustee's three forms (built once). */
let azureSeeds: Promise<{ v0: Json; v1: Json; v2: Json; hcl: Uint8Array; runtime: Uint8Array }> | undefined;
function azure() {
  azureSeeds ??= (async () => {
    const { sharedSimChain } = await import('../../src/sim/snp/index.js');
    const vm = new SimAzureVm(await sharedSimChain('Milan'));
    const nonce = new Uint8Array(48).fill(7);
    const runtime = vm.runtimeData(nonce);
    return {
      v0: vm.evidence(nonce, 0) as Json,
      v1: vm.evidence(nonce, 1) as Json,
      v2: vm.evidence(nonce, 2) as Json,
      hcl: vm.hclReport(runtime),
      runtime,
    };
  })();
  return azureSeeds;
}

const ROWS: readonly Row[] = [
  // Intel TDX quote v4/v5, QE report, PCK SGX extension, PCS collateral bodies (src/formats/tdx)
  {
    fn: 'src/formats/tdx/quote.ts#parseTdxQuote',
    kind: 'bytes',
    seeds: () => [tdx().q4, tdx().q5],
    run: parseTdxQuote,
  },
  {
    fn: 'src/formats/tdx/quote.ts#parseSgxReportBody',
    kind: 'bytes',
    seeds: () => [parseTdxQuote(tdx().q4).qeReport.raw],
    run: parseSgxReportBody,
  },
  {
    fn: 'src/formats/tdx/pck-extension.ts#parsePckSgxExtension',
    kind: 'bytes',
    seeds: () => [
      sgxExtension({
        componentSvns: new Array(16).fill(2),
        pceSvn: 13,
        pceId: new Uint8Array(2),
        fmspc: SIM_FMSPC,
      }).value,
    ],
    run: parsePckSgxExtension,
  },
  {
    fn: 'src/formats/tdx/collateral-json.ts#parseTdxTcbInfo',
    kind: 'bytes',
    seeds: () => [tdx().tcbInfo],
    run: parseTdxTcbInfo,
  },
  {
    fn: 'src/formats/tdx/collateral-json.ts#parseTdQeIdentity',
    kind: 'bytes',
    seeds: () => [tdx().qeIdentity],
    run: parseTdQeIdentity,
  },
  {
    fn: 'src/evidence/tdx/chain.ts#readPemChain',
    kind: 'text',
    seeds: () => [tdx().chain],
    run: (s) => readPemChain(s, 'fuzz'),
  },
  {
    fn: 'src/policy/tdx/policy.ts#parseTdxPolicy',
    kind: 'json',
    seeds: () => [
      { mrTd: 'any' },
      {
        mrTd: ['00'.repeat(48)],
        rtmrs: ['any', '11'.repeat(48), 'any', 'any'],
        mrConfigId: '22'.repeat(48),
        allowDebug: false,
        minTeeTcbSvn: '00'.repeat(16),
        minQeSvn: 1,
        tcbStatuses: ['UpToDate', 'SWHardeningNeeded'],
      },
    ],
    run: parseTdxPolicy,
  },
  // Intel PCS v4 responses (src/collateral/pcs-bodies.ts): signed JSON split at the exact bytes, header
  // issuer chains, Intel CRLs
  {
    fn: 'src/collateral/pcs-bodies.ts#splitSignedResponse',
    kind: 'bytes',
    seeds: () => [joinSignedResponse('tcbInfo', { body: tdx().tcbInfo, signature: new Uint8Array(64) })],
    run: (b) => splitSignedResponse(b, 'tcbInfo', 'fuzz'),
  },
  {
    fn: 'src/collateral/pcs-bodies.ts#readIssuerChain',
    kind: 'text',
    seeds: () => [encodeURIComponent(tdx().chain)],
    run: (s) => readIssuerChain(s, 'fuzz', true),
  },
  {
    fn: 'src/collateral/pcs-bodies.ts#parseIntelCrl',
    kind: 'bytes',
    seeds: () => [tdx().pckCrl, tdx().rootCaCrl],
    run: (b) => parseIntelCrl(b, 'fuzz'),
  },
  // SNP report, TCB, bit fields, certificate table (SEV-SNP ABI 1.57 §7.3, GHCB 2.03 §4.1.8.1)
  {
    fn: 'src/formats/snp/report.ts#parseReport',
    kind: 'bytes',
    seeds: () => [corpus.report],
    run: parseReport,
  },
  {
    fn: 'src/formats/snp/cert-table.ts#parseCertTable',
    kind: 'bytes',
    seeds: () => [corpus.certTable],
    run: parseCertTable,
  },
  {
    fn: 'src/formats/snp/tcb.ts#decodeTcb',
    kind: 'bytes',
    seeds: () => [corpus.report.subarray(0x38, 0x40)],
    run: (b) => {
      const v = Buffer.from(Uint8Array.from({ length: 8 }, (_, i) => b[i] ?? 0)).readBigUInt64LE();
      for (const p of ['Milan', 'Genoa', 'Turin'] as const) decodeTcb(v, p);
    },
  },
  {
    fn: 'src/formats/snp/bits.ts#decodeGuestPolicy',
    kind: 'bytes',
    seeds: () => [corpus.report.subarray(0x08, 0x10)],
    run: (b) =>
      decodeGuestPolicy(Buffer.from(Uint8Array.from({ length: 8 }, (_, i) => b[i] ?? 0)).readBigUInt64LE()),
  },
  {
    fn: 'src/formats/snp/bits.ts#decodePlatformInfo',
    kind: 'bytes',
    seeds: () => [corpus.report.subarray(0x40, 0x48)],
    run: (b) =>
      decodePlatformInfo(Buffer.from(Uint8Array.from({ length: 8 }, (_, i) => b[i] ?? 0)).readBigUInt64LE()),
  },
  {
    fn: 'src/formats/snp/bits.ts#decodeSignerInfo',
    kind: 'bytes',
    seeds: () => [corpus.report.subarray(0x48, 0x4c)],
    run: (b) =>
      decodeSignerInfo(Buffer.from(Uint8Array.from({ length: 4 }, (_, i) => b[i] ?? 0)).readUInt32LE()),
  },
  {
    fn: 'src/formats/snp/amd-cert-extensions.ts#readAmdExtensions',
    kind: 'bytes',
    seeds: () => [Uint8Array.of(0x02, 0x01, 0x18), Uint8Array.of(0x16, 0x05, 0x4d, 0x69, 0x6c, 0x61, 0x6e)],
    run: (b) => readAmdExtensions(() => b, 'fuzz.amd'),
  },
  // AMD certificates and CRLs (AMD KDS spec 57230 rev 1.00 §2-§4)
  {
    fn: 'src/evidence/snp/amd-cert.ts#parseAmdLeaf',
    kind: 'bytes',
    seeds: () => [corpus.vcek, corpus.vlek],
    run: parseAmdLeaf,
  },
  {
    fn: 'src/evidence/snp/amd-cert.ts#parseAmdCa',
    kind: 'bytes',
    seeds: () => [corpus.ask, corpus.ark],
    run: (b) => {
      parseAmdCa(b, 'intermediate');
    },
  },
  {
    fn: 'src/evidence/snp/x509.ts#parseX509',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: (b) => parseX509(b),
  },
  { fn: 'src/evidence/snp/crl.ts#parseCrl', kind: 'bytes', seeds: () => [corpus.crl], run: parseCrl },
  {
    fn: 'src/collateral/kds-bodies.ts#parseCertChain',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from(pemOf(corpus.ask) + pemOf(corpus.ark)))],
    run: (b) => parseCertChain(b, 'Milan', 'vcek'),
  },
  {
    fn: 'src/collateral/kds-bodies.ts#parseCertificateDer',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: (b) => parseCertificateDer(b, 'fuzz.kds', 'certificate'),
  },
  {
    fn: 'src/collateral/kds-bodies.ts#readVcekIdentity',
    kind: 'bytes',
    seeds: () => [corpus.vcek],
    run: readVcekIdentity,
  },
  {
    fn: 'src/collateral/kds-bodies.ts#parseKdsCrl',
    kind: 'bytes',
    seeds: () => [corpus.crl],
    run: (b) => parseKdsCrl(b, 'Milan'),
  },
  {
    fn: 'src/collateral/kds-bodies.ts#decodeAscii',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from(pemOf(corpus.ark)))],
    run: (b) => decodeAscii(b, 'fuzz.ascii'),
  },
  {
    fn: 'src/formats/pem.ts#decodePem',
    kind: 'text',
    seeds: () => [pemOf(corpus.ask) + pemOf(corpus.ark)],
    run: (s) => decodePem(s, 'fuzz'),
  },
  {
    fn: 'src/formats/pem.ts#decodePemBlock',
    kind: 'text',
    seeds: () => [pemOf(corpus.ark), pemOf(corpus.ask) + pemOf(corpus.ark)],
    run: (s) => decodePemBlock(s, 'fuzz', ['CERTIFICATE']),
  },
  {
    fn: 'src/collateral/kds-client.ts#parseRetryAfter',
    kind: 'text',
    seeds: () => ['120', 'Wed, 21 Oct 2015 07:28:00 GMT', '0'],
    run: (s) => {
      const v = parseRetryAfter(s, 1_700_000_000_000);
      assert.ok(v === undefined || (Number.isFinite(v) && v >= 0), `retry-after ${v}`);
    },
  },
  // One DER reader, X.509 (RFC 5280), GCE instance identity
  {
    fn: 'src/formats/der/reader.ts#readTlv',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: (b) => readTlv(b, 0, R),
  },
  {
    fn: 'src/formats/der/reader.ts#parseOne',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: (b) => parseOne(b, R),
  },
  {
    fn: 'src/formats/der/reader.ts#decodeUtf8',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from('héllo'))],
    run: (b) => decodeUtf8(b, R),
  },
  {
    fn: 'src/formats/x509/certificate.ts#parseCertificate',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: (b) => parseCertificate(b),
  },
  {
    fn: 'src/formats/x509/certificate.ts#readSpki',
    kind: 'bytes',
    seeds: () => [
      new Uint8Array(
        newKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' }),
      ),
    ],
    run: (b) => readSpki(b, R),
  },
  {
    fn: 'src/formats/x509/crl.ts#parseCertificateList',
    kind: 'bytes',
    seeds: () => [corpus.crl],
    run: (b) => parseCertificateList(b, crlReasons),
  },
  {
    fn: 'src/formats/x509/signed.ts#readSigned',
    kind: 'bytes',
    seeds: () => [...der(corpus), corpus.crl],
    run: (b) => readSigned(b, R),
  },
  {
    fn: 'src/formats/x509/name.ts#parseName',
    kind: 'bytes',
    seeds: () => [
      Uint8Array.from(Buffer.from('3016311430120603550403130b41524b2d4d696c616e00', 'hex').subarray(0, 0x18)),
    ],
    run: (b) => parseName(b, R),
  },
  {
    fn: 'src/formats/x509/algorithm.ts#readAlgorithm',
    kind: 'bytes',
    seeds: () => [
      Uint8Array.from(Buffer.from('300a06082a8648ce3d040303', 'hex')),
      Uint8Array.from(
        Buffer.from(
          '304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130',
          'hex',
        ),
      ),
    ],
    run: (b) => readRsaPssParams(readAlgorithm(parseOne(b, R), R), R),
  },
  {
    fn: 'src/formats/x509/algorithm.ts#readRsaPssParams',
    kind: 'bytes',
    seeds: () => [
      Uint8Array.from(
        Buffer.from(
          '304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130',
          'hex',
        ),
      ),
    ],
    run: (b) => readRsaPssParams(readAlgorithm(parseOne(b, R), R), R),
  },
  {
    fn: 'src/formats/x509/extensions.ts#readExtensions',
    kind: 'bytes',
    seeds: () => [Uint8Array.from(Buffer.from('3012301006035504130101ff040630040101ff', 'hex'))],
    run: (b) => {
      readExtensions(parseOne(b, R), { extensions: R, duplicateExtension: R }, true);
      readExtensions(parseOne(b, R), { extensions: R, duplicateExtension: R }, false);
    },
  },
  {
    fn: 'src/formats/x509/extensions.ts#readBasicConstraints',
    kind: 'bytes',
    seeds: () => [Uint8Array.of(0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x01)],
    run: (b) => readBasicConstraints(b),
  },
  {
    fn: 'src/formats/x509/extensions.ts#readKeyUsage',
    kind: 'bytes',
    seeds: () => [Uint8Array.of(0x03, 0x02, 0x01, 0x86)],
    run: (b) => readKeyUsage(b),
  },
  {
    fn: 'src/formats/x509/extensions.ts#readExtKeyUsage',
    kind: 'bytes',
    seeds: () => [Uint8Array.from(Buffer.from('300a06082b06010505070301', 'hex'))],
    run: (b) => readExtKeyUsage(b),
  },
  {
    fn: 'src/formats/x509/instance-identity.ts#parseInstanceIdentity',
    kind: 'bytes',
    seeds: () => [corpus.identity],
    run: parseInstanceIdentity,
  },
  {
    fn: 'src/formats/x509/instance-identity.ts#readInstanceIdentity',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: (b) => readInstanceIdentity(parseCertificate(b)),
  },
  // C509 (draft-ietf-cose-cbor-encoded-cert-20)
  {
    fn: 'src/formats/c509/cbor.ts#decodeCbor',
    kind: 'bytes',
    seeds: () => [corpus.c509, corpus.csrC509],
    run: (b) => decodeCbor(b),
  },
  {
    fn: 'src/formats/c509/certificate.ts#parseC509Certificate',
    kind: 'bytes',
    seeds: () => [corpus.c509],
    run: parseC509Certificate,
  },
  {
    fn: 'src/formats/c509/csr.ts#parseC509Csr',
    kind: 'bytes',
    seeds: () => [corpus.csrC509],
    run: parseC509Csr,
  },
  {
    fn: 'src/formats/c509/template.ts#parseC509CsrTemplate',
    kind: 'bytes',
    seeds: () => [Uint8Array.from(Buffer.from('84f6f6f6f6', 'hex')), corpus.csrC509],
    run: parseC509CsrTemplate,
  },
  {
    fn: 'src/formats/c509/der-input.ts#parseDer',
    kind: 'bytes',
    seeds: () => der(corpus),
    run: parseC509Der,
  },
  {
    fn: 'src/formats/c509/extensions.ts#parseX509Extensions',
    kind: 'bytes',
    seeds: () => [Uint8Array.from(Buffer.from('3012301006035504130101ff040630040101ff', 'hex'))],
    run: (b) => parseX509Extensions(parseC509Der(b)),
  },
  // TPM 2.0 structures (TPM 2.0 Library Part 2, rev 1.59 §10-§12)
  {
    fn: 'src/formats/tpm/public.ts#parsePublic',
    kind: 'bytes',
    seeds: () => [corpus.tpmtRsa, corpus.tpmtEcc],
    run: parsePublic,
  },
  {
    fn: 'src/formats/tpm/public.ts#parseTpm2bPublic',
    kind: 'bytes',
    seeds: () => [corpus.tpm2b],
    run: parseTpm2bPublic,
  },
  {
    fn: 'src/formats/tpm/public.ts#readPublic',
    kind: 'bytes',
    seeds: () => [corpus.tpmtRsa, corpus.tpmtEcc],
    run: (b) => readPublic(new Reader(b, 'fuzz.tpm')),
  },
  {
    fn: 'src/formats/tpm/attest.ts#parseAttest',
    kind: 'bytes',
    seeds: () => [corpus.attest],
    run: parseAttest,
  },
  {
    fn: 'src/formats/tpm/signature.ts#parseSignature',
    kind: 'bytes',
    seeds: () => [corpus.sigEcc, corpus.sigRsa],
    run: parseSignature,
  },
  {
    fn: 'src/formats/tpm/signature.ts#readSignature',
    kind: 'bytes',
    seeds: () => [corpus.sigEcc, corpus.sigRsa],
    run: (b) => readSignature(new Reader(b, 'fuzz.tpm')),
  },
  {
    fn: 'src/formats/tpm/pcr-selection.ts#readPcrSelection',
    kind: 'bytes',
    seeds: () => [Uint8Array.of(0, 0, 0, 2, 0, 0x0b, 3, 0xff, 0xff, 0xff, 0, 0x0c, 3, 1, 0, 0)],
    run: (b) => readPcrSelection(new Reader(b, 'fuzz.tpm'), 'fuzz'),
  },
  {
    fn: 'src/formats/tpm/marshal.ts#readTpm2b',
    kind: 'bytes',
    seeds: () => [Uint8Array.of(0, 4, 1, 2, 3, 4)],
    run: (b) => readTpm2b(new Reader(b, 'fuzz.tpm'), 64, 'fuzz.tpm'),
  },
  {
    fn: 'src/formats/tpm/marshal.ts#readHashAlg',
    kind: 'bytes',
    seeds: () => [Uint8Array.of(0, 0x0b), Uint8Array.of(0, 0x0c)],
    run: (b) => readHashAlg(new Reader(b, 'fuzz.tpm'), 'fuzz.tpm'),
  },
  {
    fn: 'src/formats/tpm/make-credential.ts#parseCredentialFile',
    kind: 'bytes',
    seeds: () => [corpus.credential],
    run: parseCredentialFile,
  },
  // SVSM manifests (COCONUT-SVSM services manifest; vTPM service payload v0/v1)
  {
    fn: 'src/formats/svsm/manifest.ts#parseServicesManifest',
    kind: 'bytes',
    seeds: () => [corpus.manifest],
    run: parseServicesManifest,
  },
  {
    fn: 'src/formats/svsm/vtpm.ts#parseVtpmManifest',
    kind: 'bytes',
    seeds: () => [corpus.vtpmV0, corpus.vtpmV1],
    run: (b) => {
      parseVtpmManifest(b);
      parseVtpmManifest(b, 1);
    },
  },
  // SVSM attestation proxy protocol 0.1.0 / 0.2.0 (docs/protocol.md)
  {
    fn: 'src/formats/aproxy/frame.ts#decodeFrameHeader',
    kind: 'bytes',
    seeds: () => [encodeFrame(A(corpus).negReq).subarray(0, 8)],
    run: (b) => decodeFrameHeader(b),
  },
  {
    fn: 'src/formats/pvchannel/message.ts#decodePage',
    kind: 'bytes',
    seeds: () => [
      encodePage(requestMessage({ callId: 2, sequence: 1, epoch: 1, payload: Uint8Array.of(1, 2) })),
    ],
    run: (b) => decodePage(b),
  },
  {
    fn: 'src/formats/pvchannel/message.ts#decodeRecord',
    kind: 'bytes',
    seeds: () => [
      encodeRecord(requestMessage({ callId: 2, sequence: 1, epoch: 1, payload: Uint8Array.of(1, 2) })),
    ],
    run: (b) => decodeRecord(b),
  },
  {
    fn: 'src/formats/pvchannel/negotiate.ts#decodeNegotiateRequest',
    kind: 'bytes',
    seeds: () => [encodeNegotiateRequest({ op: 2, version: 1, features: 3n })],
    run: (b) => decodeNegotiateRequest(b),
  },
  {
    fn: 'src/formats/pvchannel/negotiate.ts#decodeNegotiateAnswer',
    kind: 'bytes',
    seeds: () => [
      encodeNegotiateAnswer({
        minVersion: 1,
        maxVersion: 1,
        epoch: 1,
        offered: 7n,
        accepted: 3n,
        version: 1,
      }),
    ],
    run: (b) => decodeNegotiateAnswer(b),
  },
  // CERTIFY_EK / CERTIFY_AK payloads (docs/pvchannel.md §7.2): both directions are hostile input
  {
    fn: 'src/formats/pvchannel/certify.ts#decodeCertifyRequest',
    kind: 'bytes',
    seeds: () => {
      const ev = {
        nonce: new Uint8Array(64).fill(1),
        report: new Uint8Array(0x4a0).fill(2),
        certTable: new Uint8Array(0),
        manifest: Uint8Array.of(3, 4),
      };
      return [
        encodeNonceRequest(),
        encodeCertifyEkRequest(CertFormat.X509, ev),
        encodeCertifyAkRequest(CertFormat.C509, { ...ev, csr: Uint8Array.of(5) }),
      ];
    },
    // fieldCount 5 at 0x4 reads it as CERTIFY_AK, anything else as CERTIFY_EK
    run: (b) => decodeCertifyRequest(b, b[4] === 5),
  },
  {
    fn: 'src/formats/pvchannel/certify.ts#decodeCertifyAnswer',
    kind: 'bytes',
    seeds: () => [
      encodeNonceAnswer(new Uint8Array(64).fill(9)),
      encodeCertifyAnswer(CertFormat.C509, Uint8Array.of(1, 2), [Uint8Array.of(0x30, 0)]),
    ],
    run: (b) => decodeCertifyAnswer(b, b[0] === 1 ? CertifyOp.Nonce : CertifyOp.Certify),
  },
  {
    fn: 'src/formats/pvchannel/socket-frame.ts#decodeSocketHeader',
    kind: 'bytes',
    seeds: () => [encodeSocketFrame({ type: 3, id: 1, body: encodePortAccess({ port: 0x520, size: 4 }) })],
    run: (b) => decodeSocketHeader(b),
  },
  {
    fn: 'src/formats/pvchannel/socket-frame.ts#decodePortAccess',
    kind: 'bytes',
    seeds: () => [
      encodePortAccess({ port: 0x524, size: 1, value: 7 }),
      encodePortAccess({ port: 0x520, size: 4 }),
    ],
    run: (b) => decodePortAccess(b),
  },
  // UEFI variable calls, the host's variable file, the guest's sealed records (docs/pvchannel.md §7.3)
  ...uefiRows(),
  // KEY_RELEASE (docs/pvchannel.md §7.4)
  {
    fn: 'src/formats/pvchannel/key-release.ts#decodeKeyReleaseRequest',
    kind: 'bytes',
    seeds: () => [
      encodeKeyReleaseRequest({ op: 1, stream: 7, message: encodeFrame(A(corpus).negReq).subarray(8) }),
      encodeKeyReleaseRequest({ op: 2, stream: 7, message: new Uint8Array(0) }),
    ],
    run: (b) => decodeKeyReleaseRequest(b),
  },
  {
    fn: 'src/formats/pvchannel/key-release.ts#decodeKeyReleaseAnswer',
    kind: 'bytes',
    seeds: () => [
      encodeKeyReleaseAnswer({ kind: 1, stream: 7, message: Uint8Array.of(0x7b, 0x7d) }),
      encodeKeyReleaseAnswer({ kind: 2, stream: 7, message: new Uint8Array(0) }),
    ],
    run: (b) => decodeKeyReleaseAnswer(b),
  },
  {
    fn: 'src/formats/aproxy/frame.ts#FrameDecoder',
    kind: 'bytes',
    seeds: () => [Uint8Array.from([...encodeFrame(A(corpus).negReq), ...encodeFrame(A(corpus).attReq)])],
    run: (b) => {
      const d = new FrameDecoder(4096, 4096 + 8);
      for (let i = 0; i < b.length; i += 7) {
        d.push(b.subarray(i, i + 7));
        while (d.next()) {
          // drain
        }
      }
    },
  },
  {
    fn: 'src/formats/aproxy/json.ts#parseJson',
    kind: 'bytes',
    seeds: () => Object.values(A(corpus)),
    run: parseJson,
  },
  {
    fn: 'src/formats/aproxy/json.ts#parseJsonText',
    kind: 'text',
    seeds: () => Object.values(A(corpus)).map(utf8),
    run: parseJsonText,
  },
  {
    fn: 'src/formats/aproxy/negotiation.ts#parseNegotiationRequest',
    kind: 'bytes',
    seeds: () => [A(corpus).negReq],
    run: parseNegotiationRequest,
  },
  {
    fn: 'src/formats/aproxy/negotiation.ts#parseNegotiationResponse',
    kind: 'bytes',
    seeds: () => [A(corpus).negResp010, A(corpus).negResp020, A(corpus).error],
    run: (b) => {
      for (const v of ['0.1.0', '0.2.0'] as const) tryBoth(() => parseNegotiationResponse(b, v));
    },
  },
  {
    fn: 'src/formats/aproxy/negotiation.ts#parseTee',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from('"snp"'))],
    run: (b) => parseTee(parseJson(b), 'tee'),
  },
  {
    fn: 'src/formats/aproxy/attestation.ts#parseAttestationRequest',
    kind: 'bytes',
    seeds: () => [A(corpus).attReq],
    run: (b) => {
      for (const v of ['0.1.0', '0.2.0'] as const) tryBoth(() => parseAttestationRequest(b, v));
    },
  },
  {
    fn: 'src/formats/aproxy/attestation.ts#parseAttestationResponse',
    kind: 'bytes',
    seeds: () => [A(corpus).attResp, A(corpus).error],
    run: (b) => {
      for (const v of ['0.1.0', '0.2.0'] as const) tryBoth(() => parseAttestationResponse(b, v));
    },
  },
  {
    fn: 'src/formats/aproxy/commit.ts#parseCommitRequest',
    kind: 'bytes',
    seeds: () => [A(corpus).commitReq],
    run: parseCommitRequest,
  },
  // svsm PR #1122 and PR #1203 messages (docs/protocol.md "Dialects"), seeded from their encoders.
  {
    fn: 'src/formats/aproxy/pr1122.ts#parseNegotiationResponse1122',
    kind: 'bytes',
    seeds: () => [
      encodeNegotiationResponse1122({ challenge: new Uint8Array(32).fill(7), ...JWS_SHA384 }),
      encodeNegotiationResponse1122({ challenge: new Uint8Array(64).fill(1), ...RAW_SHA512 }),
    ],
    run: parseNegotiationResponse1122,
  },
  {
    fn: 'src/formats/aproxy/pr1122.ts#parseAttestationRequest1122',
    kind: 'bytes',
    seeds: () => [
      encodeAttestationRequest1122({
        tee: 'snp',
        evidence: { report: new Uint8Array(1184).fill(3), certsBuf: new Uint8Array(40) },
        challenge: new Uint8Array(32).fill(9),
        key: { x: new Uint8Array(66).fill(1), y: new Uint8Array(66).fill(2) },
      }),
    ],
    run: parseAttestationRequest1122,
  },
  {
    fn: 'src/formats/aproxy/pr1203.ts#parseConfigResponse',
    kind: 'bytes',
    seeds: () => [
      encodeConfigResponse({
        ...JWS_SHA384,
        authEndpoint: '/kbs/v0/auth',
        attestEndpoint: '/kbs/v0/attest',
        resourceEndpoint: '/kbs/v0/resource/default/sample/test',
      }),
    ],
    run: parseConfigResponse,
  },
  {
    fn: 'src/formats/aproxy/pr1203.ts#parseProxyRequest',
    kind: 'bytes',
    seeds: () => [
      encodeProxyRequest({
        endpoint: '/kbs/v0/attest',
        method: 'POST',
        body: { 'init-data': null, 'runtime-data': { nonce: 'AAAA', 'tee-pubkey': { kty: 'EC', x: 'a' } } },
      }),
      encodeProxyRequest({ endpoint: '/kbs/v0/resource/default/sample/test', method: 'GET', body: null }),
    ],
    run: (b) => {
      const r = parseProxyRequest(b);
      stringifyJsonValue(r.body);
    },
  },
  {
    fn: 'src/formats/aproxy/pr1203.ts#parseProxyResponse',
    kind: 'bytes',
    seeds: () => [encodeProxyResponse({ status: 200, body: '{"nonce":"AAAA","extra-params":""}' })],
    run: parseProxyResponse,
  },
  {
    fn: 'src/formats/aproxy/dialect-binding.ts#parseHashAlgo',
    kind: 'text',
    seeds: () => ['Sha512', 'sha384'],
    run: (t) => {
      tryBoth(() => parseHashAlgo(t, 'hash_algo', 'capitalised'));
      tryBoth(() => parseHashAlgo(t, 'hash_algo', 'lower'));
    },
  },
  {
    fn: 'src/formats/aproxy/dialect-binding.ts#parsePayloadFormat',
    kind: 'text',
    seeds: () => ['JwsJson', 'RawBinary'],
    run: (t) => parsePayloadFormat(t, 'payload_format'),
  },
  {
    fn: 'src/formats/aproxy/commit.ts#parseCommitResponse',
    kind: 'bytes',
    seeds: () => [A(corpus).commitResp, A(corpus).error],
    run: parseCommitResponse,
  },
  {
    fn: 'src/formats/aproxy/lease.ts#parseLeaseRequest',
    kind: 'bytes',
    seeds: () => [A(corpus).leaseReq],
    run: parseLeaseRequest,
  },
  {
    fn: 'src/formats/aproxy/lease.ts#parseLeaseResponse',
    kind: 'bytes',
    seeds: () => [A(corpus).leaseResp, A(corpus).error],
    run: (b) => {
      for (const op of ['heartbeat', 'end'] as const) tryBoth(() => parseLeaseResponse(b, op));
    },
  },
  {
    fn: 'src/formats/aproxy/lease.ts#parseOpeningMessage',
    kind: 'bytes',
    seeds: () => [A(corpus).negReq, A(corpus).leaseReq],
    run: parseOpeningMessage,
  },
  {
    fn: 'src/formats/aproxy/error-reply.ts#parseErrorReply',
    kind: 'bytes',
    seeds: () => [A(corpus).error],
    run: parseErrorReply,
  },
  {
    fn: 'src/formats/aproxy/secret-payload.ts#parseSecretPayload',
    kind: 'bytes',
    seeds: () => [A(corpus).secret],
    run: parseSecretPayload,
  },
  {
    fn: 'src/formats/aproxy/identity.ts#parseIdentity',
    kind: 'bytes',
    seeds: () => [
      new Uint8Array(Buffer.from('{"project":"p","zone":"z","instance_id":"42","instance_name":"vm1"}')),
    ],
    run: (b) => parseIdentity(parseJson(b), 'identity'),
  },
  {
    fn: 'src/formats/aproxy/fields.ts#parseVersionTuple',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from('[0,2,0]'))],
    run: (b) => parseVersionTuple(parseJson(b), 'version'),
  },
  {
    fn: 'src/formats/aproxy/fields.ts#parseEcKey',
    kind: 'bytes',
    seeds: () => [
      new Uint8Array(
        Buffer.from(
          JSON.stringify({
            crv: 'P521',
            x_b64: encodeBase64(new Uint8Array(66).fill(1)),
            y_b64: encodeBase64(new Uint8Array(66).fill(2)),
          }),
        ),
      ),
    ],
    run: (b) => parseEcKey(parseJson(b), 'key'),
  },
  {
    fn: 'src/formats/aproxy/fields.ts#parseCounter',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from('18446744073709551614'))],
    run: (b) => parseCounter(parseJson(b), 'counter'),
  },
  {
    fn: 'src/formats/aproxy/fields.ts#parseKeyVersion',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from('3'))],
    run: (b) => parseKeyVersion(parseJson(b), 'key_version'),
  },
  {
    fn: 'src/formats/aproxy/fields.ts#parseTimestamp',
    kind: 'bytes',
    seeds: () => [new Uint8Array(Buffer.from('1700000000000'))],
    run: (b) => parseTimestamp(parseJson(b), 'at'),
  },
  {
    fn: 'src/util/base64.ts#decodeBase64',
    kind: 'text',
    seeds: () => [encodeBase64(corpus.report.subarray(0, 40)), 'AAECAw==', 'QQ'],
    run: (s) => decodeBase64(s, 'fuzz.b64', 'f'),
  },
  {
    fn: 'src/native/jwe-ecdh-es.ts#fromCompactJwe',
    kind: 'text',
    seeds: () => [corpus.jwe],
    run: (s) => fromCompactJwe(s),
  },
  // Guest state file (docs/protocol.md, state file format 2)
  {
    fn: 'src/guest/state-file.ts#parseStateHeader',
    kind: 'bytes',
    seeds: () => [corpus.state],
    run: parseStateHeader,
  },
  // Trustee KBS protocol 0.4.0 bodies (docs/kbs.md)
  {
    fn: 'src/kbs/messages.ts#parseAuthRequest',
    kind: 'json',
    seeds: () => [{ version: '0.4.0', tee: 'snp', 'extra-params': '' }],
    run: parseAuthRequest,
  },
  {
    fn: 'src/kbs/messages.ts#parseAttestationBody',
    kind: 'json',
    seeds: () => [
      {
        'init-data': null,
        'runtime-data': {
          nonce: 'n',
          'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'AA', y: 'AA' },
        },
        'tee-evidence': { primary_evidence: { 'snp-report': 'AA==' }, additional_evidence: '' },
      },
    ],
    run: parseAttestationBody,
  },
  {
    fn: 'src/kbs/messages.ts#parseResourcePath',
    kind: 'json',
    seeds: () => [{ repository: 'default', type: 'sealing-key', tag: 'vm1' }],
    run: (v) => parseResourcePath(v !== null && typeof v === 'object' ? v : { repository: v }),
  },
  {
    fn: 'src/kbs/evidence.ts#parseSnpPrimaryEvidence',
    kind: 'json',
    seeds: () => [
      { 'snp-report': Buffer.from(corpus.report).toString('base64'), 'certs-buf': null },
      {
        attestation_report: Buffer.from(corpus.report).toString('base64'),
        cert_chain: Buffer.from(corpus.certTable).toString('base64'),
      },
      sevEvidenceOf(corpus.report, corpus.certTable),
    ],
    run: parseSnpPrimaryEvidence,
  },
  {
    fn: 'src/kbs/evidence-tdx.ts#parseTdxPrimaryEvidence',
    kind: 'json',
    seeds: () => [
      { quote: Buffer.from(tdx().q4).toString('base64'), cc_eventlog: null },
      { quote: Buffer.from(tdx().q5).toString('base64'), cc_eventlog: 'AAAA', aa_eventlog: null },
    ],
    run: parseTdxPrimaryEvidence,
  },
  {
    fn: 'src/formats/snp/sev-json.ts#decodeSevSnpEvidence',
    kind: 'json',
    seeds: () => [sevEvidenceOf(corpus.report, corpus.certTable), sevEvidenceOf(corpus.report)],
    run: decodeSevSnpEvidence,
  },
  {
    fn: 'src/formats/snp/sev-json.ts#parseSevSnpEvidenceJson',
    kind: 'bytes',
    seeds: () => [
      new Uint8Array(Buffer.from(JSON.stringify(sevEvidenceOf(corpus.report, corpus.certTable)))),
    ],
    run: parseSevSnpEvidenceJson,
  },
  {
    fn: 'src/formats/azure/hcl-report.ts#parseHclReport',
    kind: 'bytes',
    seeds: async () => [(await azure()).hcl],
    run: parseHclReport,
  },
  {
    fn: 'src/formats/azure/runtime-data.ts#parseHclRuntimeData',
    kind: 'bytes',
    seeds: async () => [(await azure()).runtime],
    run: parseHclRuntimeData,
  },
  {
    fn: 'src/formats/azure/evidence-json.ts#decodeAzSnpVtpmEvidence',
    kind: 'json',
    seeds: async () => {
      const a = await azure();
      return [a.v0, a.v1, a.v2];
    },
    run: decodeAzSnpVtpmEvidence,
  },
  {
    fn: 'src/formats/azure/evidence-json.ts#parseAzSnpVtpmEvidenceJson',
    kind: 'bytes',
    seeds: async () => [new Uint8Array(Buffer.from(JSON.stringify((await azure()).v2)))],
    run: parseAzSnpVtpmEvidenceJson,
  },
  {
    fn: 'src/kbs/evidence-azure.ts#parseAzurePrimaryEvidence',
    kind: 'json',
    seeds: async () => {
      const a = await azure();
      return [a.v0, a.v1, a.v2];
    },
    run: parseAzurePrimaryEvidence,
  },
  {
    fn: 'src/policy/az-snp-vtpm/policy.ts#parseAzSnpVtpmPolicy',
    kind: 'json',
    seeds: () => [
      { snp: { measurements: 'any' }, pcrs: 'any' },
      {
        snp: { measurements: ['00'.repeat(48)], allowDebug: false },
        pcrs: { '0': ['11'.repeat(32)], '7': 'any' },
      },
    ],
    run: parseAzSnpVtpmPolicy,
  },
  {
    fn: 'src/evidence/az-snp-vtpm/parse.ts#parseAzSnpVtpm',
    kind: 'json',
    seeds: async () => {
      const a = await azure();
      return [a.v1, a.v2];
    },
    run: (json) => parseAzSnpVtpm({ json }),
  },
  {
    fn: 'src/kbs/tee-pubkey.ts#parseTeePubkey',
    kind: 'json',
    seeds: () => {
      const ec = newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
      const rsa = newKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
      return [
        { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: ec.x, y: ec.y },
        { kty: 'RSA', alg: 'RSA-OAEP-256', n: rsa.n, e: rsa.e },
      ];
    },
    run: parseTeePubkey,
  },
  {
    fn: 'src/kbs/resource-policy.ts#parseResourcePolicy',
    kind: 'json',
    seeds: () => [
      { instances: 'any', projects: ['p'], measurements: ['ab'.repeat(48)], statuses: ['affirming'] },
    ],
    run: parseResourcePolicy,
  },
  {
    fn: 'src/keys/pkcs11-uri.ts#parsePkcs11Uri',
    kind: 'text',
    seeds: () => [
      'pkcs11:token=vouchsafe;object=kek;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/pin',
      'pkcs11:serial=1234;slot-id=3;object=a%20b;type=private',
    ],
    run: parsePkcs11Uri,
  },
  {
    fn: 'src/kbs/cookie.ts#readCookie',
    kind: 'text',
    seeds: () => ['kbs-session-id=abc; other=1'],
    run: (s) => readCookie(s, 'kbs-session-id'),
  },
  {
    fn: 'src/util/base64.ts#decodeBase64Url',
    kind: 'text',
    seeds: () => ['AAECAw', 'a-b_'],
    run: (s) => decodeBase64Url(s, 'fuzz.b64', 'f'),
  },
  {
    fn: 'src/kbs/token-keys.ts#decodeTokenKeys',
    kind: 'bytes',
    seeds: () => [corpus.tokenKeys],
    run: (b) => decodeTokenKeys(b, 'fuzz.json', { maxTokenLifetimeMs: 300_000 }),
  },

  // Policy documents (docs/policy.md) and the CA's inputs (docs/ca.md)
  {
    fn: 'src/policy/tpm/parse.ts#parseTpmBootPolicy',
    kind: 'json',
    seeds: () => [
      {
        requireSecureBoot: true,
        requireSeparators: 'any',
        bootLoaders: ['ab'.repeat(32)],
        kernels: ['cd'.repeat(32)],
        cmdline: { require: ['ro'], forbid: ['init'], exact: ['ro quiet'] },
        requiredDbxDigests: ['ef'.repeat(32)],
      },
    ],
    run: parseTpmBootPolicy,
  },
  {
    fn: 'src/policy/snp/parse.ts#parseSnpPolicy',
    kind: 'json',
    seeds: () => [
      {
        minimumTcb: { Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 }, Genoa: 'any' },
        minimumVersion: { major: 1, minor: 55 },
        measurements: ['ab'.repeat(48)],
        hostData: 'ab'.repeat(32),
        vmpl: 0,
        allowDebug: false,
      },
      { measurements: 'any' },
    ],
    run: parseSnpPolicy,
  },
  {
    fn: 'src/api/rate-limits.ts#parseRateLimitConfig',
    kind: 'json',
    seeds: () => [
      {
        challenge: { perSource: { burst: 100, perMinute: 600 } },
        attest: { perSource: false, perInstance: { burst: 10, perMinute: 30 } },
        kbsAuth: { perSource: { burst: 5, perMinute: 60 } },
        kbsAttest: { perSource: false },
        adminAuthFailures: { perSource: { burst: 20, perMinute: 10 } },
      },
      {},
    ],
    run: parseRateLimitConfig,
  },
  {
    fn: 'src/ca/config.ts#parseCaConfig',
    kind: 'json',
    seeds: () => [JSON.parse(serializeCaConfig(defaultCaConfig()))],
    run: parseCaConfig,
  },
  {
    fn: 'src/ca/key-input.ts#readPublicKeyInput',
    kind: 'bytes',
    seeds: () => [corpus.vtpmV0, corpus.tpmtEcc, new Uint8Array(Buffer.from(pemOf(corpus.vcek)))],
    run: readPublicKeyInput,
  },
  {
    fn: 'src/ca/csr.ts#parseCertificationRequest',
    kind: 'bytes',
    seeds: () => [corpus.csrDer, corpus.csrC509],
    run: parseCertificationRequest,
  },
  // Audit log rows as the store reads them back (SQLite numbers, PostgreSQL strings) and the expected head
  {
    fn: 'src/store/audit-row.ts#decodeAuditRow',
    kind: 'json',
    seeds: () => [
      {
        seq: 2,
        time: 1_700_000_000_000,
        kind: 'attest',
        instance: 'i-1',
        decision: 'released',
        reasons: '[]',
        evidence_digest: 'ab'.repeat(32),
        details: '{"bootId":"b"}',
        prev_hash: '00'.repeat(32),
        hash: 'cd'.repeat(32),
      },
      {
        seq: '3',
        time: '1700000000000',
        kind: 'admin',
        instance: null,
        decision: null,
        reasons: null,
        evidence_digest: null,
        details: '{}',
        prev_hash: 'cd'.repeat(32),
        hash: 'ef'.repeat(32),
      },
    ],
    run: async (v) => (await store()).row.decodeAuditRow(v),
  },
  {
    fn: 'src/store/audit-row.ts#decodeAuditHead',
    kind: 'json',
    seeds: () => [
      { seq: 42, hash: 'ab'.repeat(32) },
      { seq: '0', hash: '00'.repeat(32) },
    ],
    run: async (v) => (await store()).row.decodeAuditHead(v),
  },
  {
    fn: 'src/store/audit-verify.ts#parseAuditHead',
    kind: 'text',
    seeds: () => [`42:${'ab'.repeat(32)}`],
    run: async (s) => (await store()).verify.parseAuditHead(s),
  },
  // Addresses and CLI values (configuration from operators; still never an untyped error)
  {
    fn: 'src/api/listen-address.ts#parseHostPort',
    kind: 'text',
    seeds: () => ['127.0.0.1:8443', '[::1]:0'],
    run: parseHostPort,
  },
  {
    fn: 'src/proxy/listen-address.ts#parseChannelAddress',
    kind: 'text',
    seeds: () => ['unix:/run/a.sock', 'tcp:127.0.0.1:1995', 'vsock:3:1995'],
    run: parseChannelAddress,
  },
  // measured-boot event logs (TCG PC Client PFP): seeds built by test/evidence/tpm/eventlog/build.ts
  {
    fn: 'src/formats/tpm/eventlog/parse.ts#parseEventLog',
    kind: 'bytes',
    seeds: () => [eventLogSeed()],
    run: (b) => parseEventLog(b, { maxEvents: 64, maxEventSize: 4096 }),
  },
  {
    fn: 'src/formats/tpm/eventlog/parse.ts#parseSpecIdEvent',
    kind: 'bytes',
    seeds: () => [eventLogSeed().subarray(32, 32 + 37)],
    run: parseSpecIdEvent,
  },
  {
    fn: 'src/formats/tpm/eventlog/decode-event.ts#decodeEvent',
    kind: 'bytes',
    seeds: () => [
      evb.uefiVariable('8be4df61-93ca-11d2-aa0d-00e098032b8c', 'Boot0001', evb.loadOption('x', '\\a.efi')),
    ],
    run: (b) => {
      for (const eventType of [3, 4, 0xd, 0x80000001, 0x80000002, 0x80000003, 0x80000006]) {
        decodeEvent({ index: 1, offset: 0, pcrIndex: 7, eventType, digests: [], data: b });
      }
    },
  },
  {
    fn: 'src/formats/tpm/eventlog/uefi-variable.ts#decodeUefiVariableData',
    kind: 'bytes',
    seeds: () => [evb.uefiVariable('8be4df61-93ca-11d2-aa0d-00e098032b8c', 'SecureBoot', Uint8Array.of(1))],
    run: decodeUefiVariableData,
  },
  {
    fn: 'src/formats/tpm/eventlog/uefi-variable.ts#decodeSignatureLists',
    kind: 'bytes',
    seeds: () => [evb.sha256List([new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)])],
    run: decodeSignatureLists,
  },
  {
    fn: 'src/formats/tpm/eventlog/uefi-variable.ts#decodeLoadOption',
    kind: 'bytes',
    seeds: () => [evb.loadOption('Linux', '\\EFI\\boot.efi')],
    run: decodeLoadOption,
  },
  {
    fn: 'src/formats/tpm/eventlog/device-path.ts#decodeDevicePath',
    kind: 'bytes',
    seeds: () => [new Uint8Array(evb.filePathDevicePath('\\EFI\\boot.efi'))],
    run: decodeDevicePath,
  },
  {
    fn: 'src/formats/tpm/eventlog/image-load.ts#decodeImageLoadEvent',
    kind: 'bytes',
    seeds: () => [evb.imageLoad('\\EFI\\boot.efi')],
    run: decodeImageLoadEvent,
  },
  {
    fn: 'src/formats/tpm/eventlog/gpt.ts#decodeGptEvent',
    kind: 'bytes',
    seeds: () => [evb.gptData(2)],
    run: decodeGptEvent,
  },
  {
    fn: 'src/formats/tpm/eventlog/sp800-155.ts#decodeSp800155Event',
    kind: 'bytes',
    seeds: () => [evb.sp800155Event3()],
    run: decodeSp800155Event,
  },
  {
    fn: 'src/cli/commands/serve.ts#parsePublicUrl',
    kind: 'text',
    seeds: () => ['https://broker.example:8443'],
    run: async (s) => (await cli()).serve.parsePublicUrl(s),
  },
  {
    fn: 'src/cli/commands/serve.ts#parseTrustedRoots',
    kind: 'text',
    seeds: () => [`Milan:${'ab'.repeat(32)}`],
    run: async (s) => (await cli()).serve.parseTrustedRoots([s]),
  },
  {
    fn: 'src/cli/commands/verify-snp.ts#parseTrustRoot',
    kind: 'text',
    seeds: () => [`Genoa:${'ab'.repeat(32)}`],
    run: async (s) => (await cli()).verify.parseTrustRoot(s),
  },
  {
    fn: 'src/cli/io.ts#parseTime',
    kind: 'text',
    seeds: () => ['1700000000', '2026-01-01T00:00:00Z'],
    run: async (s) => (await cli()).io.parseTime(s),
  },
  // HTTP codec helpers of the native API
  {
    fn: 'src/api/codec.ts#counter',
    kind: 'text',
    seeds: () => ['18446744073709551614', '0'],
    run: (s) => apiCodec.counter(s, 'f'),
  },
];

/** A decoder that returns an ErrorReply or a value: both pass; a typed throw passes too. */
function tryBoth(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (e instanceof Error && 'code' in e && 'reason' in e) return;
    throw e;
  }
}

/**
 * Inputs that once broke a decoder, replayed on every run ({fn, hex or json}). Add the counterexample
 * fast-check prints here when a property fails, with the fix.
 */
const REGRESSIONS: readonly { fn: string; hex?: string; text?: string; json?: Json }[] = [
  // seed -610202272: a tcbStatuses entry whose toString is not a function (String() threw a TypeError)
  { fn: 'src/policy/tdx/policy.ts#parseTdxPolicy', json: { mrTd: 'any', tcbStatuses: [{ toString: 0 }] } },
];

// ---- inventory ----

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function inventory(): string[] {
  const found: string[] = [];
  const re = /^export (?:async )?function ((?:parse|decode|read)[A-Z]\w*)/gm;
  for (const file of walk(join(ROOT, 'src'))) {
    const rel = relative(ROOT, file).split('\\').join('/');
    for (const m of readFileSync(file, 'utf8').matchAll(re)) found.push(`${rel}#${m[1]}`);
  }
  return found.sort();
}

describe('fuzz: every decoder', () => {
  before(async () => {
    corpus = await buildCorpus();
    // Load the CLI modules now, not inside a time-bounded property (where the import would eat its budget).
    await cli().catch((e) => seedErrors.push(`cli modules: ${e instanceof Error ? e.message : String(e)}`));
    await store().catch((e) =>
      seedErrors.push(`store modules: ${e instanceof Error ? e.message : String(e)}`),
    );
  });

  it('inventory: every exported parse*/decode*/read* in src has a row or a written reason', () => {
    // Matched by export name (unique in src), so a file moved by a refactor does not break the table.
    const name = (fn: string) => fn.slice(fn.indexOf('#') + 1);
    const rows = new Set(ROWS.map((r) => name(r.fn)));
    const skipped = new Set(Object.keys(NOT_FUZZED).map(name));
    const found = inventory();
    const missing = found.filter((fn) => !rows.has(name(fn)) && !skipped.has(name(fn)));
    assert.deepEqual(
      missing,
      [],
      `decoders with no fuzz row: add them to ROWS in ${sourceOf(import.meta.filename)}`,
    );
    const present = new Set(found.map(name));
    const stale = [...rows, ...skipped].filter((n) => !present.has(n) && !EXTRA.has(n));
    assert.deepEqual(stale, [], 'rows naming a function that no longer exists (renamed?)');
  });

  for (const row of ROWS) {
    it(row.fn.replace(/^src\//, ''), async () => {
      if (row.kind === 'bytes') {
        const seeds = await row.seeds();
        for (const s of seeds) await valueOrTyped(row.fn, s, () => row.run(s));
        await fc.assert(
          fc.asyncProperty(bytesFrom(seeds), (b) => valueOrTyped(row.fn, b, () => row.run(b))),
          fcOptions(budget),
        );
      } else if (row.kind === 'text') {
        const seeds = await row.seeds();
        await fc.assert(
          fc.asyncProperty(textFrom(seeds), (s) => valueOrTyped(row.fn, s, () => row.run(s))),
          fcOptions(budget),
        );
      } else {
        const seeds = await row.seeds();
        await fc.assert(
          fc.asyncProperty(jsonFrom(seeds), (v) => valueOrTyped(row.fn, v, () => row.run(v))),
          fcOptions(budget),
        );
      }
    });
  }

  it("every seed encodes (the seeds are the encoders' own output)", () => {
    assert.deepEqual(seedErrors, []);
  });

  it('replays every recorded regression input', async () => {
    for (const r of REGRESSIONS) {
      const row = ROWS.find((x) => x.fn === r.fn);
      assert.ok(row, `regression for unknown row ${r.fn}`);
      const input =
        row.kind === 'bytes'
          ? new Uint8Array(Buffer.from(r.hex ?? '', 'hex'))
          : row.kind === 'text'
            ? r.text
            : r.json;
      await valueOrTyped(row.fn, input, () => (row.run as (x: unknown) => unknown)(input));
    }
  });
});

/** Rows for decoders the name scan does not find (classes, `from*`, codec helpers): kept, not stale. */
const EXTRA = new Set(['FrameDecoder', 'fromCompactJwe', 'b64', 'counter', 'splitSignedResponse']);
