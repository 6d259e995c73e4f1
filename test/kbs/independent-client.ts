/**
 * An INDEPENDENT KBS client, written from the protocol reference (shared/reference/kbs-and-peers.md §1,
 * Trustee kbs_attestation_protocol.md, guest-components kbs_protocol rcar_client.rs) and sharing no code
 * with src/: its own HTTP and cookie handling, its own canonical JSON and REPORT_DATA computation, and jose
 * (not our JWE code) to open resource responses. The only thing it is handed is an evidence provider
 * (REPORT_DATA in, SNP report out), which the tests back with the simulator.
 *
 * It can also misbehave on purpose (wrong nonce, wrong binding, odd keys) for the refusal tests.
 */
import { createHash, generateKeyPair, type KeyObject } from 'node:crypto';
import { flattenedDecrypt } from 'jose';
import { sevCertChainOf, sevStructOf } from './sev-struct.js';

export type KeyKind = 'P-256' | 'P-384' | 'P-521' | 'RSA';

export interface Evidence {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
}
export type EvidenceProvider = (reportData: Uint8Array) => Evidence | Promise<Evidence>;

export interface TeeKey {
  readonly privateKey: KeyObject;
  /** The tee-pubkey JWK as sent (kbs_types TeePubKey members only). */
  readonly jwk: Record<string, string>;
}

export interface HttpResult {
  readonly status: number;
  readonly contentType: string;
  readonly json: unknown;
  readonly setCookie: string[];
}

/** Canonical JSON: object keys sorted at every level, no whitespace (RFC 8785 for this data). */
export function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Trustee: SHA-384 of the canonical primary runtime data, zero-padded to 64 bytes. */
export function trusteeReportData(nonce: string, jwk: Record<string, string>, additional = ''): Uint8Array {
  const json = canon({ 'tee-pubkey': jwk, nonce, 'additional-evidence': additional });
  const out = new Uint8Array(64);
  out.set(createHash('sha384').update(json).digest());
  return out;
}

/** COCONUT aproxy: SHA-512(x || y || nonce bytes). */
export function aproxyReportData(nonce: string, jwk: Record<string, string>): Uint8Array {
  return new Uint8Array(
    createHash('sha512')
      .update(Buffer.from(jwk.x!, 'base64url'))
      .update(Buffer.from(jwk.y!, 'base64url'))
      .update(Buffer.from(nonce, 'base64'))
      .digest(),
  );
}

export async function makeTeeKey(kind: KeyKind): Promise<TeeKey> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: KeyObject; privateKey: KeyObject }>(
    (resolve, reject) => {
      const cb = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) =>
        err ? reject(err) : resolve({ publicKey, privateKey });
      if (kind === 'RSA') generateKeyPair('rsa', { modulusLength: 2048 }, cb);
      else generateKeyPair('ec', { namedCurve: kind }, cb);
    },
  );
  const j = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const jwk: Record<string, string> =
    kind === 'RSA'
      ? { kty: 'RSA', alg: 'RSA-OAEP-256', n: j.n!, e: j.e! }
      : { kty: 'EC', crv: kind, alg: 'ECDH-ES+A256KW', x: j.x!, y: j.y! };
  return { privateKey, jwk };
}

export class IndependentKbsClient {
  /** The kbs-session-id cookie value, once /auth set it. */
  session: string | undefined;
  nonce: string | undefined;

  constructor(readonly base: string) {}

  async request(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    opts: { cookie?: string | null; bearer?: string } = {},
  ): Promise<HttpResult> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const cookie = opts.cookie === null ? undefined : (opts.cookie ?? this.session);
    if (cookie !== undefined) headers.cookie = `kbs-session-id=${cookie}`;
    if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    const setCookie = res.headers.getSetCookie();
    for (const c of setCookie) {
      const m = /^kbs-session-id=([^;]*)/.exec(c);
      if (m) this.session = m[1];
    }
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', json, setCookie };
  }

  /** Step 1: Request -> Challenge (+ cookie). */
  async auth(o: { tee?: string; version?: string } = {}): Promise<HttpResult> {
    const r = await this.request('POST', '/kbs/v0/auth', {
      version: o.version ?? '0.4.0',
      tee: o.tee ?? 'snp',
      'extra-params': '',
    });
    if (r.status === 200) this.nonce = (r.json as { nonce: string }).nonce;
    return r;
  }

  /** Step 3: the Attestation payload (runtime data + evidence). Every part can be overridden. */
  async attestation(o: {
    key: TeeKey;
    evidence: EvidenceProvider;
    binding?: 'trustee' | 'aproxy';
    nonce?: string;
    boundNonce?: string;
    boundJwk?: Record<string, string>;
    /** `sev-struct`: Trustee's struct form (the sev crate's serde fields; cert_chain left out when none). */
    /** `svsm-pr1203`: `{"Snp":{"report","certs_buf"?}}`, what svsm PR #1203's SVSM posts (certs_buf left out when none). */
    spelling?: 'snp-report' | 'attestation_report' | 'sev-struct' | 'svsm-pr1203';
    withCerts?: boolean;
  }): Promise<Record<string, unknown>> {
    const nonce = o.nonce ?? this.nonce!;
    const boundNonce = o.boundNonce ?? nonce;
    const boundJwk = o.boundJwk ?? o.key.jwk;
    const reportData =
      o.binding === 'aproxy'
        ? aproxyReportData(boundNonce, boundJwk)
        : trusteeReportData(boundNonce, boundJwk);
    const ev = await o.evidence(reportData);
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    const certs = o.withCerts === false || !ev.certTable ? null : b64(ev.certTable);
    const primary =
      o.spelling === 'sev-struct'
        ? {
            attestation_report: sevStructOf(ev.report),
            ...(certs !== null && ev.certTable ? { cert_chain: sevCertChainOf(ev.certTable) } : {}),
          }
        : o.spelling === 'svsm-pr1203'
          ? { Snp: { report: b64(ev.report), ...(certs !== null ? { certs_buf: certs } : {}) } }
          : o.spelling === 'attestation_report'
            ? { attestation_report: b64(ev.report), cert_chain: certs }
            : { 'snp-report': b64(ev.report), 'certs-buf': certs };
    return {
      'runtime-data': { nonce, 'tee-pubkey': o.key.jwk },
      'tee-evidence': { primary_evidence: primary, additional_evidence: '' },
    };
  }

  attest(body: unknown, opts: { cookie?: string | null } = {}): Promise<HttpResult> {
    return this.request('POST', '/kbs/v0/attest', body, opts);
  }

  resource(path: string, opts: { cookie?: string | null; bearer?: string } = {}): Promise<HttpResult> {
    return this.request('GET', `/kbs/v0/resource/${path}`, undefined, opts);
  }

  /** Opens a resource response with jose, checking it has exactly Trustee's members. */
  static async open(jwe: unknown, key: TeeKey): Promise<Uint8Array> {
    const o = jwe as {
      protected: string;
      encrypted_key: string;
      iv: string;
      ciphertext: string;
      tag: string;
    };
    const members = Object.keys(o).sort().join(',');
    if (members !== 'ciphertext,encrypted_key,iv,protected,tag')
      throw new Error(`unexpected JWE members ${members}`);
    const { plaintext } = await flattenedDecrypt(
      {
        protected: o.protected,
        encrypted_key: o.encrypted_key,
        iv: o.iv,
        ciphertext: o.ciphertext,
        tag: o.tag,
      },
      key.privateKey,
    );
    return plaintext;
  }

  /** The whole RCAR exchange: auth, attest, fetch `path`; returns the token and the opened resource. */
  async run(o: {
    kind: KeyKind;
    evidence: EvidenceProvider;
    path: string;
    binding?: 'trustee' | 'aproxy';
  }): Promise<{ token: string; secret: Uint8Array; key: TeeKey }> {
    const a = await this.auth();
    if (a.status !== 200) throw new Error(`auth: ${a.status} ${JSON.stringify(a.json)}`);
    const key = await makeTeeKey(o.kind);
    const body = await this.attestation({
      key,
      evidence: o.evidence,
      ...(o.binding ? { binding: o.binding } : {}),
    });
    const t = await this.attest(body);
    if (t.status !== 200) throw new Error(`attest: ${t.status} ${JSON.stringify(t.json)}`);
    const token = (t.json as { token: string }).token;
    const r = await this.resource(o.path);
    if (r.status !== 200) throw new Error(`resource: ${r.status} ${JSON.stringify(r.json)}`);
    return { token, secret: await IndependentKbsClient.open(r.json, key), key };
  }
}
