import {
  AttestationError,
  ErrorCode,
  InvalidArgument,
  MalformedEvidence,
  NotSupported,
  Unavailable,
} from '../../../errors.js';
import { type DialectBinding, RAW_SHA512 } from '../../../formats/aproxy/dialect-binding.js';
import { jweToAesGcm } from '../../../formats/aproxy/kbs-jwe.js';
import { encodeSevSnpEvidence } from '../../../formats/snp/sev-json.js';
import { decodeBase64, encodeBase64, encodeBase64Url } from '../../../util/base64.js';
import { createHttpClient, type HttpClient } from '../../../util/http-client.js';
import { isObject } from '../../../util/json-object.js';
import type {
  AttestationResult,
  AttestInput,
  BackendContext,
  CommitInput,
  CommitResult,
  NegotiateInput,
  NegotiateResult,
  ProxyBackend,
  RefusalError,
} from '../../backend.js';
import { CookieJar } from './cookie-jar.js';

/** Moved to src/formats/aproxy/kbs-jwe.ts (the guest library opens the same JWE); re-exported here. */
export { jweToAesGcm };

/** COCONUT aproxy's KBS protocol version (tools/aproxy/src/backend/kbs.rs `KBS_API_VERSION`). */
export const APROXY_KBS_VERSION = '0.4.0';
/** aproxy's hard-coded resource (tools/aproxy/src/backend/kbs.rs). */
export const APROXY_DEFAULT_RESOURCE = 'default/sample/test';

export interface KbsProxyBackendOptions {
  /** The KBS base URL, e.g. `http://127.0.0.1:8080` (http or https; a trailing slash is ignored). */
  readonly url: string;
  /** `repository/type/tag` of the secret to fetch (default aproxy's `default/sample/test`). */
  readonly resourcePath?: string;
  /**
   * The form of the SNP primary evidence: `snp-report` (`{"snp-report","certs-buf"}`, svsm main),
   * `attestation_report` (`{"attestation_report","cert_chain"}` base64, svsm PR #1122's legacy spelling) or
   * `sev-struct` (Trustee's struct form, the sev crate's serde fields, which a real Trustee reads and svsm
   * PR #1122's aproxy sends in `kbs-trustee` mode). Default: `sev-struct` with a binding other than
   * SHA-512 RawBinary (that is Trustee's), else `snp-report`.
   */
  readonly evidenceSpelling?: 'snp-report' | 'attestation_report' | 'sev-struct';
  /**
   * The REPORT_DATA binding the KBS checks (default SHA-512 RawBinary, svsm main's). Trustee's SHA-384
   * JwsJson (svsm PR #1122 `--protocol kbs-trustee`) can only be told to `pr1122` guests; others are
   * refused at negotiation (NotSupported `proxy_kbs.binding`).
   */
  readonly binding?: DialectBinding;
  /** Replaces the node:http(s) transport (tests, custom transports); not with `ca`. */
  readonly fetch?: typeof globalThis.fetch;
  /** PEM CA certificate(s) an https KBS must chain to (default: the system CAs). */
  readonly ca?: string | Uint8Array;
  /** Deadline of each KBS call, connect to last byte, ms (default 30 000). */
  readonly timeoutMs?: number;
  /** How long per-session KBS state (cookies, nonce) is kept between negotiate and attest, ms (default 120 000). */
  readonly sessionTtlMs?: number;
  /** Largest KBS response body accepted, bytes (default 1 MiB); larger is Unavailable `proxy_kbs.bad_response`. */
  readonly maxResponseBytes?: number;
  /** Clock in ms (default Date.now). */
  readonly now?: () => number;
}

interface KbsSession {
  readonly jar: CookieJar;
  readonly nonce: string;
  readonly challenge: Uint8Array;
  readonly expiresAt: number;
}

/** The Unavailable reasons of this backend: the KBS could not be asked. */
export const KBS_UNAVAILABLE = {
  unreachable: 'proxy_kbs.unreachable',
  timeout: 'proxy_kbs.timeout',
  badResponse: 'proxy_kbs.bad_response',
} as const;

const RESOURCE_PATH =
  /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * The proxy's KBS backend: talks the Trustee KBS protocol (RCAR) to any KBS, exactly as COCONUT aproxy's
 * `--protocol kbs` backend does (reference svsm-protocol.md §4; tools/aproxy/src/backend/kbs.rs):
 * 1. negotiate: POST `{url}/kbs/v0/auth` `{"version":"0.4.0","tee":"snp","extra-params":""}`; the
 *    base64 nonce becomes the challenge; params `[EcPublicKeyBytes, Challenge]`, so the guest's
 *    REPORT_DATA = SHA-512(x || y || nonce);
 * 2. attest: POST `/kbs/v0/attest` `{"init-data":null, "runtime-data":{"nonce", "tee-pubkey":
 *    {"kty":"EC","crv":"P-521","alg":"ECDH-ES+A256KW","x","y"}}, "tee-evidence":{"primary_evidence":
 *    {"snp-report","certs-buf"}, "additional_evidence":""}}`, then GET `/kbs/v0/resource/<path>` with the
 *    session cookie, and maps the JWE to the aproxy decryption fields (jweToAesGcm).
 * One cookie jar per guest session (BackendContext.sessionId). Differences from aproxy, all on failure
 * paths or additions: the resource path is configurable; https works; non-200 answers become refusals
 * carrying the KBS's problem `code`/`reason` when it sends them (aproxy: `{success:false}`, or for /auth
 * an error that stops aproxy); protocol 0.2.0 guests are refused at negotiation (a generic KBS cannot
 * produce the 0.2.0 secret payload, boot id or commit token).
 */
export class KbsProxyBackend implements ProxyBackend {
  private readonly http: HttpClient;
  private readonly resourcePath: string;
  private readonly spelling: 'snp-report' | 'attestation_report' | 'sev-struct';
  private readonly binding: DialectBinding;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly sessions = new Map<string, KbsSession>();

  /**
   * Throws InvalidArgument `proxy_kbs.config` for a bad URL or resource path, a CA without https or with an
   * injected fetch, a non-positive timeout or size bound.
   */
  constructor(o: KbsProxyBackendOptions) {
    // The one HTTP client (src/util/http-client.ts): pinned CA, deadlines, bounded replies, no redirects.
    this.http = createHttpClient({
      baseUrl: o.url,
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.fetch ? { fetch: o.fetch } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      maxReplyBytes: o.maxResponseBytes ?? 1024 * 1024,
      reasons: KBS_UNAVAILABLE,
      configReason: 'proxy_kbs.config',
    });
    this.resourcePath = o.resourcePath ?? APROXY_DEFAULT_RESOURCE;
    if (!RESOURCE_PATH.test(this.resourcePath)) {
      throw new InvalidArgument('proxy_kbs.config', 'resourcePath must be repository/type/tag');
    }
    this.binding = o.binding ?? RAW_SHA512;
    this.spelling = o.evidenceSpelling ?? (isRawSha512(this.binding) ? 'snp-report' : 'sev-struct');
    this.ttlMs = o.sessionTtlMs ?? 120_000;
    this.now = o.now ?? Date.now;
  }

  /** KBS sessions held (guests between negotiate and attest). */
  get pendingSessions(): number {
    return this.sessions.size;
  }

  async negotiate(req: NegotiateInput, ctx: BackendContext): Promise<NegotiateResult> {
    if (req.version !== '0.1.0') {
      throw new NotSupported('proxy_kbs.version', 'the KBS backend serves aproxy protocol 0.1.0 only');
    }
    const raw = isRawSha512(this.binding);
    if (!raw && req.dialect !== 'pr1122') {
      throw new NotSupported(
        'proxy_kbs.binding',
        'this KBS binding can be told to svsm PR #1122 guests only',
      );
    }
    this.sweep();
    const jar = new CookieJar(this.now);
    const res = await this.post(
      jar,
      '/kbs/v0/auth',
      { version: APROXY_KBS_VERSION, tee: req.tee, 'extra-params': '' },
      ctx,
    );
    if (res.status !== 200) {
      throw new Unavailable('proxy_kbs.auth', `KBS /auth answered ${res.status}`);
    }
    const body = res.json;
    if (!isObject(body) || typeof body.nonce !== 'string') {
      throw new MalformedEvidence('proxy_kbs.auth', 'KBS /auth answer has no nonce');
    }
    const challenge = decodeBase64(body.nonce, 'aproxy.base64', 'nonce');
    this.sessions.set(ctx.sessionId, {
      jar,
      nonce: body.nonce,
      challenge,
      expiresAt: this.now() + this.ttlMs,
    });
    return {
      challenge,
      params: ['EcPublicKeyBytes', 'Challenge'],
      ...(raw ? {} : { binding: this.binding }),
    };
  }

  async attest(req: AttestInput, ctx: BackendContext): Promise<AttestationResult> {
    const s = this.sessions.get(ctx.sessionId);
    this.sessions.delete(ctx.sessionId);
    if (!s || s.expiresAt <= this.now()) {
      return refused({
        code: ErrorCode.InvalidArgument,
        reason: 'proxy_kbs.session',
        message: 'no KBS session',
      });
    }
    let primary: unknown;
    try {
      primary = primaryEvidence(this.spelling, req.evidence.report, req.evidence.certsBuf);
    } catch (e) {
      // A report the struct form cannot carry is the guest's evidence at fault, not the KBS's: a refusal.
      if (e instanceof AttestationError)
        return refused({ code: e.code, reason: e.reason, message: e.message });
      throw e;
    }
    const attestation = {
      'init-data': null,
      'runtime-data': {
        // aproxy: BASE64_STANDARD.encode(request.challenge), i.e. the nonce string as the KBS sent it.
        nonce: encodeBase64(req.challenge),
        'tee-pubkey': {
          kty: 'EC',
          crv: 'P-521',
          alg: 'ECDH-ES+A256KW',
          x: encodeBase64Url(req.key.x),
          y: encodeBase64Url(req.key.y),
        },
      },
      'tee-evidence': { primary_evidence: primary, additional_evidence: '' },
    };
    const att = await this.post(s.jar, '/kbs/v0/attest', attestation, ctx);
    if (att.status !== 200) return refused(refusalOf(att, 'proxy_kbs.attest'));
    const tokenBody = att.json;
    if (!isObject(tokenBody) || typeof tokenBody.token !== 'string') {
      throw new MalformedEvidence('proxy_kbs.attest', 'KBS /attest answer has no token');
    }
    const res = await this.request(s.jar, 'GET', `/kbs/v0/resource/${this.resourcePath}`, undefined, ctx);
    if (res.status !== 200) return refused(refusalOf(res, 'proxy_kbs.resource'));
    const { decryption, ciphertext } = jweToAesGcm(res.json);
    return {
      outcome: 'released',
      ciphertext,
      decryption,
      token: { kind: 'Jwt', value: tokenBody.token },
    };
  }

  async commit(_req: CommitInput, _ctx: BackendContext): Promise<CommitResult> {
    return refused({
      code: ErrorCode.NotSupported,
      reason: 'proxy_kbs.version',
      message: 'commit needs protocol 0.2.0, which the KBS backend does not serve',
    });
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= t) this.sessions.delete(id);
  }

  private post(jar: CookieJar, path: string, body: unknown, ctx: BackendContext) {
    return this.request(jar, 'POST', path, JSON.stringify(body), ctx);
  }

  /**
   * One HTTP exchange: cookies in and out, JSON parsed if it is JSON. Redirects are not followed (a 3xx is
   * a refusal), the reply is bounded; transport failures are Unavailable `proxy_kbs.*`.
   */
  private async request(
    jar: CookieJar,
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    ctx: BackendContext,
  ): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    const res = await this.http.request({
      method,
      path,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: ctx.signal,
    });
    jar.store(res.headers.getSetCookie());
    let json: unknown;
    try {
      json = res.body.length > 0 ? JSON.parse(Buffer.from(res.body).toString('utf8')) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  }
}

const isRawSha512 = (b: DialectBinding): boolean =>
  b.payloadFormat === 'RawBinary' && b.hashAlgo === 'sha512';

/**
 * `tee-evidence.primary_evidence` in the configured form. `sev-struct`: the report encoded field by field
 * (src/formats/snp/sev-json.ts encodeSevSnpEvidence, which refuses a report whose bytes the struct cannot
 * carry, so the KBS's rebuilt bytes are the signed ones); unlike PR #1122's aproxy, which always sends
 * `cert_chain: null`, a certificate table the guest supplied is passed on as `cert_chain` entries.
 */
function primaryEvidence(
  spelling: 'snp-report' | 'attestation_report' | 'sev-struct',
  report: Uint8Array,
  certsBuf: Uint8Array | undefined,
): unknown {
  if (spelling === 'sev-struct') return encodeSevSnpEvidence(report, certsBuf);
  const r = encodeBase64(report);
  const certs = certsBuf ? encodeBase64(certsBuf) : null;
  return spelling === 'snp-report'
    ? { 'snp-report': r, 'certs-buf': certs }
    : { attestation_report: r, cert_chain: certs };
}

function refused(error: RefusalError): { readonly outcome: 'refused'; readonly error: RefusalError } {
  return { outcome: 'refused', error };
}

/**
 * A refusal from a non-200 KBS answer: the problem document's code/reason when well-formed (the proxy maps a
 * code it does not know to a policy refusal), else a generic policy refusal.
 */
function refusalOf(res: { status: number; json: unknown }, fallbackReason: string): RefusalError {
  const p = res.json;
  if (
    isObject(p) &&
    typeof p.code === 'string' &&
    /^ERR_[A-Z_]{1,40}$/.test(p.code) &&
    typeof p.reason === 'string' &&
    /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/.test(p.reason)
  ) {
    return { code: p.code, reason: p.reason, message: `KBS refused (${res.status})` };
  }
  return { code: ErrorCode.PolicyRejected, reason: fallbackReason, message: `KBS answered ${res.status}` };
}
