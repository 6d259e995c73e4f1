import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgument } from '../../errors.js';
import { verifyEventLog } from '../../evidence/tpm/eventlog-verify.js';
import {
  createTrustStore,
  isSelfSigned,
  type PcrBank,
  type TpmQuoteClaims,
  verifyQuote,
} from '../../evidence/tpm/index.js';
import { decodePem, looksLikePem, pemText } from '../../formats/pem.js';
import { parseAttest } from '../../formats/tpm/attest.js';
import { algLabel, HASH_ALGS, hashByName, TPM_ST } from '../../formats/tpm/constants.js';
import { parseEventLog } from '../../formats/tpm/eventlog/parse.js';
import { GCE_INSTANCE_IDENTITY_OID } from '../../formats/x509/instance-identity.js';
import { assertTpmBootPolicy } from '../../policy/tpm/appraise.js';
import { describeTpmBootPolicy } from '../../policy/tpm/describe.js';
import { parseTpmBootPolicy } from '../../policy/tpm/parse.js';
import { fromHex, toHex } from '../../util/bytes.js';
import { Exit, parseTime, readInput, reportError } from '../io.js';

/**
 * `vouchsafe verify tpm`: verifies a TPM 2.0 quote (TPMS_ATTEST + TPMT_SIGNATURE, as `tpm2_quote -m/-s`
 * write them) against PCR values, an AK certificate and a directory of trusted certificates.
 * Exit 0 accepted, 1 rejected (code and reason printed), 2 unusable input (unreadable or malformed files,
 * bad arguments).
 */

interface Options {
  quote: string;
  sig: string;
  pcrs: string;
  akCert: string;
  roots: string;
  akPub?: string;
  nonce?: string;
  at?: string;
  identityOid?: string;
  eventLog?: string;
  bootPolicy?: string;
  json?: boolean;
}

/** Certificates from a file: every CERTIFICATE block of a PEM file, or the file itself as DER. */
function certificatesIn(path: string, what: string): Uint8Array[] {
  const bytes = readInput(path, what);
  if (!looksLikePem(bytes)) return [bytes];
  return decodePem(pemText(bytes), 'cli.certificate')
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

/** Splits a directory of certificates: self-signed ones are the trust anchors, the rest intermediates. */
function loadTrustDir(dir: string): { roots: Uint8Array[]; intermediates: Uint8Array[] } {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    names = readdirSync(dir).sort();
  } catch {
    throw new InvalidArgument('cli.roots', `--roots: ${dir} is not a readable directory`);
  }
  const roots: Uint8Array[] = [];
  const intermediates: Uint8Array[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (!/\.(pem|crt|cer|der)$/i.test(name)) continue;
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      throw new InvalidArgument('cli.roots', `--roots: cannot read ${path}`);
    }
    if (!isFile) continue;
    for (const der of certificatesIn(path, '--roots')) (isSelfSigned(der) ? roots : intermediates).push(der);
  }
  if (roots.length === 0)
    throw new InvalidArgument('cli.roots', `--roots: no self-signed certificate in ${dir}`);
  return { roots, intermediates };
}

function hexValue(v: unknown, where: string, size: number): Uint8Array {
  const b = typeof v === 'string' ? fromHex(v) : undefined;
  if (b === undefined || b.length !== size) {
    throw new InvalidArgument('cli.pcrs', `--pcrs: ${where} must be ${size} bytes of hex`);
  }
  return b;
}

function bankOf(hashAlg: number, obj: unknown, where: string): PcrBank {
  const h = HASH_ALGS[hashAlg]!;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new InvalidArgument('cli.pcrs', `--pcrs: ${where} must map PCR indexes to hex`);
  }
  const values = new Map<number, Uint8Array>();
  for (const [k, v] of Object.entries(obj)) {
    if (!/^(0|[1-9]\d{0,2})$/.test(k) || Number(k) > 255) {
      throw new InvalidArgument('cli.pcrs', `--pcrs: ${where}: "${k}" is not a PCR index`);
    }
    values.set(Number(k), hexValue(v, `${where}.${k}`, h.size));
  }
  return { hashAlg, values };
}

/**
 * PCR JSON, either `{"0": "hex", …}` (go-tpm-tools / the vectors' `quote_*.pcrs.json`; the bank is the
 * quote's only selected bank) or `{"sha256": {"0": "hex", …}, …}` for several banks.
 */
function parsePcrJson(text: string, quote: Uint8Array): PcrBank[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidArgument('cli.pcrs', '--pcrs: not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidArgument('cli.pcrs', '--pcrs: expected a JSON object');
  }
  const entries = Object.entries(json);
  if (entries.length > 0 && entries.every(([, v]) => typeof v === 'object' && v !== null)) {
    return entries.map(([bank, values]) => {
      const h = hashByName(bank);
      if (h === undefined) throw new InvalidArgument('cli.pcrs', `--pcrs: unknown bank "${bank}"`);
      return bankOf(h.id, values, bank);
    });
  }
  const attest = parseAttest(quote);
  const banks = attest.type === TPM_ST.ATTEST_QUOTE ? attest.attested.pcrSelect : [];
  if (banks.length !== 1) {
    throw new InvalidArgument(
      'cli.pcrs',
      '--pcrs: the quote selects several banks; use {"<bank>": {"<index>": "<hex>"}}',
    );
  }
  return [bankOf(banks[0]!.hashAlg, json, HASH_ALGS[banks[0]!.hashAlg]?.name ?? 'bank')];
}

/** The AK public area as a bare TPMT_PUBLIC, from either a TPMT_PUBLIC or a TPM2B_PUBLIC file. */
function bareAkPublic(bytes: Uint8Array): Uint8Array {
  const size = bytes.length >= 2 ? (bytes[0]! << 8) | bytes[1]! : -1;
  return size === bytes.length - 2 ? bytes.subarray(2) : bytes;
}

function claimsJson(c: TpmQuoteClaims): Record<string, unknown> {
  const id = c.identity;
  return {
    nonce: toHex(c.nonce),
    pcrs: Object.fromEntries(
      c.pcrs.map((b) => [
        HASH_ALGS[b.hashAlg]?.name ?? algLabel(b.hashAlg),
        Object.fromEntries([...b.values].map(([i, v]) => [String(i), toHex(v)])),
      ]),
    ),
    pcrDigest: toHex(c.pcrDigest),
    signature: { sigAlg: algLabel(c.signature.sigAlg), hashAlg: algLabel(c.signature.hashAlg) },
    akName: c.akName === null ? null : toHex(c.akName),
    akCertificateSha256: toHex(c.akCertificateSha256),
    qualifiedSigner: toHex(c.qualifiedSigner),
    identity:
      id === null
        ? null
        : {
            zone: id.zone,
            projectNumber: id.projectNumber.toString(),
            projectId: id.projectId,
            instanceId: id.instanceId.toString(),
            instanceName: id.instanceName,
            securityProperties: id.securityProperties
              ? Object.fromEntries(
                  Object.entries(id.securityProperties).map(([k, v]) => [
                    k,
                    typeof v === 'bigint' ? v.toString() : v,
                  ]),
                )
              : null,
          },
    clock: { clock: c.clock.clock.toString(), safe: c.clock.safe },
    obfuscatedNotTrustworthy: {
      resetCount: c.obfuscated.resetCount,
      restartCount: c.obfuscated.restartCount,
      firmwareVersion: c.obfuscated.firmwareVersion.toString(16),
    },
  };
}

function run(o: Options): number {
  try {
    const quote = readInput(o.quote, '--quote');
    const signature = readInput(o.sig, '--sig');
    const pcrs = parsePcrJson(Buffer.from(readInput(o.pcrs, '--pcrs')).toString('utf8'), quote);
    const certs = certificatesIn(o.akCert, '--ak-cert');
    if (certs.length === 0) throw new InvalidArgument('cli.ak_cert', '--ak-cert: no certificate');
    const { roots, intermediates } = loadTrustDir(o.roots);
    const nonce = o.nonce === undefined ? new Uint8Array() : fromHex(o.nonce);
    if (nonce === undefined) throw new InvalidArgument('cli.nonce', '--nonce: not hex');
    const now = parseTime(o.at);
    const claims = verifyQuote(
      {
        quote,
        signature,
        pcrs,
        akCert: certs[0]!,
        intermediates: certs.slice(1),
        ...(o.akPub ? { akPublic: bareAkPublic(readInput(o.akPub, '--ak-pub')) } : {}),
      },
      {
        now,
        roots: createTrustStore(roots, intermediates),
        nonce,
        identityOid: o.identityOid ?? GCE_INSTANCE_IDENTITY_OID,
      },
    );
    const out = claimsJson(claims);
    if (o.eventLog !== undefined) out.eventLog = appraiseEventLog(o, claims);
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ verdict: 'accepted', claims: out }, null, 2)}\n`);
    } else {
      const id = out.identity as Record<string, unknown> | null;
      process.stdout.write('accepted: TPM quote verified\n');
      process.stdout.write(`  nonce        ${out.nonce || '(empty)'}\n`);
      process.stdout.write(
        `  signature    ${algLabel(claims.signature.sigAlg)} ${algLabel(claims.signature.hashAlg)}\n`,
      );
      for (const b of claims.pcrs) {
        process.stdout.write(
          `  pcrs         ${HASH_ALGS[b.hashAlg]?.name}: ${[...b.values.keys()].join(',')}\n`,
        );
      }
      if (out.akName) process.stdout.write(`  akName       ${out.akName}\n`);
      process.stdout.write(
        id
          ? `  identity     ${id.projectId} (${id.projectNumber}) ${id.zone} ${id.instanceName} (${id.instanceId})\n`
          : '  identity     (none in the AK certificate)\n',
      );
      const ev = out.eventLog as ReturnType<typeof appraiseEventLog> | undefined;
      if (ev) {
        const list = (xs: readonly unknown[]) => xs.join(',') || '-';
        process.stdout.write(`  event log    replays to quoted PCRs ${list(ev.verifiedPcrs)}\n`);
        process.stdout.write(`  flagged      ${list(ev.flaggedEvents)} (digest is not of the event data)\n`);
        for (const r of ev.rules) process.stdout.write(`  boot rule    ${r.rule}: ${r.setting}\n`);
        process.stdout.write(`  checked      ${ev.checked.join(', ') || '-'}\n`);
        process.stdout.write(`  not checked  ${ev.unchecked.join(', ') || '-'}\n`);
      }
    }
    return Exit.Ok;
  } catch (e) {
    return reportError(e, o.json === true);
  }
}

/**
 * `--event-log`: replays the log against the verified quote's PCRs (BindingMismatch on any difference) and
 * appraises it with `--boot-policy` (default: the policy's safe defaults); a rejection throws PolicyRejected.
 */
function appraiseEventLog(o: Options, claims: TpmQuoteClaims) {
  const log = parseEventLog(readInput(o.eventLog!, '--event-log'));
  const verified = verifyEventLog(log, claims.pcrs);
  let policy: unknown = {};
  if (o.bootPolicy !== undefined) {
    try {
      policy = JSON.parse(Buffer.from(readInput(o.bootPolicy, '--boot-policy')).toString('utf8'));
    } catch (e) {
      if (e instanceof SyntaxError) throw new InvalidArgument('cli.boot_policy', '--boot-policy: not JSON');
      throw e;
    }
  }
  const bootPolicy = parseTpmBootPolicy(policy);
  const a = assertTpmBootPolicy(verified, bootPolicy);
  return {
    verifiedPcrs: verified.verifiedPcrs,
    unquotedPcrs: verified.unquotedPcrs,
    flaggedEvents: verified.digestChecks.filter((c) => c.status === 'mismatch').map((c) => c.index),
    checked: a.checked,
    unchecked: a.unchecked,
    rules: describeTpmBootPolicy(bootPolicy),
  };
}

/** Adds `tpm` to an existing `verify` command. */
export function registerVerifyTpm(verify: Command): void {
  verify
    .command('tpm')
    .description('verify a TPM 2.0 quote: AK certificate chain, signature, nonce, PCR selection and digest')
    .requiredOption('--quote <file>', 'TPMS_ATTEST as signed (tpm2_quote -m)')
    .requiredOption('--sig <file>', 'TPMT_SIGNATURE (tpm2_quote -s)')
    .requiredOption(
      '--pcrs <file>',
      'PCR values, JSON {"<index>": "<hex>"} or {"<bank>": {"<index>": "<hex>"}}',
    )
    .requiredOption('--ak-cert <file>', 'AK certificate, DER or PEM (extra PEM blocks are intermediates)')
    .requiredOption(
      '--roots <dir>',
      'trusted certificates: self-signed ones are roots, the others intermediates',
    )
    .option(
      '--ak-pub <file>',
      'AK public area (TPMT_PUBLIC or TPM2B_PUBLIC): checked against the certificate',
    )
    .option('--nonce <hex>', 'the expected extraData (default: empty)')
    .option('--at <time>', 'verify certificates at this time (ISO 8601 or Unix seconds; default now)')
    .option('--identity-oid <oid>', 'OID of the instance-identity extension', GCE_INSTANCE_IDENTITY_OID)
    .option('--event-log <file>', 'measured-boot event log: replayed against the quoted PCRs and appraised')
    .option('--boot-policy <file>', 'measured-boot policy JSON for --event-log (default: safe defaults)')
    .option('--json', 'print the verdict and claims as JSON')
    .action((o: Options) => {
      process.exitCode = run(o);
    });
}
