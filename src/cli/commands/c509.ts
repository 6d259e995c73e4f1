import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import {
  c509CsrToX509,
  c509ToX509,
  decodeCbor,
  isCertificationRequest,
  x509CsrToC509,
  x509ToC509,
} from '../../formats/c509/index.js';
import { decodePemBlock, encodePem, looksLikePem, pemText } from '../../formats/pem.js';
import { fromHex, toHex } from '../../util/bytes.js';
import { Exit, readInput, reportError } from '../io.js';

/**
 * `vouchsafe c509 encode|decode`: convert between DER/PEM X.509 (certificates and PKCS#10 requests) and C509
 * type 3 (draft-ietf-cose-cbor-encoded-cert-20). Exit 0 on success, 2 with `error: CODE reason: message` on
 * unusable input.
 */

/** DER from a file holding DER or one PEM block (MalformedEvidence `cli.pem`); the PEM label when there was one. */
function derFromInput(raw: Uint8Array): { der: Uint8Array; label?: string } {
  return looksLikePem(raw) ? decodePemBlock(pemText(raw), 'cli') : { der: raw };
}

function emit(out: Uint8Array | string, file: string | undefined): void {
  if (file !== undefined) writeFileSync(file, out);
  else process.stdout.write(out);
}

/** C509 bytes from a file holding binary CBOR or hex text. */
function c509FromInput(raw: Uint8Array): Uint8Array {
  const text = Buffer.from(raw).toString('latin1');
  if (/^[0-9a-fA-F\s]+$/.test(text)) {
    const b = fromHex(text.replace(/\s+/g, ''));
    if (b === undefined || b.length === 0) throw new MalformedEvidence('cli.hex', 'input is not valid hex');
    return b;
  }
  return raw;
}

function run(action: () => void): void {
  try {
    action();
    process.exitCode = Exit.Ok;
  } catch (e) {
    process.exitCode = reportError(e, false);
  }
}

export function register(program: Command): void {
  const c509 = program
    .command('c509')
    .description(
      'Convert X.509 certificates and PKCS#10 requests to and from C509 (CBOR-encoded X.509, type 3)',
    );

  c509
    .command('encode')
    .description('DER or PEM X.509 certificate (or PKCS#10 request) -> C509 type 3')
    .argument('<file>', 'X.509 certificate or certification request, DER or PEM')
    .option('--hex', 'write the C509 as hex text instead of binary')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--compress-points', 'point-compress an uncompressed EC public key (0xfe/0xfd)')
    .addHelpText(
      'after',
      '\nThe conversion is byte-exact: the result converts back to the same DER, and a certificate that C509 cannot\n' +
        'carry exactly is refused (exit 2). Examples:\n  vouchsafe c509 encode cert.pem --hex\n  vouchsafe c509 encode req.der --out req.c509',
    )
    .action((file: string, opts: { hex?: boolean; out?: string; compressPoints?: boolean }) =>
      run(() => {
        const { der, label } = derFromInput(readInput(file, 'certificate'));
        const csr = label !== undefined ? /REQUEST/.test(label) : isCertificationRequest(der);
        const out = csr
          ? x509CsrToC509(der, { compressPoints: opts.compressPoints === true })
          : x509ToC509(der, { compressPoints: opts.compressPoints === true });
        emit(opts.hex ? `${toHex(out)}\n` : out, opts.out);
      }),
    );

  c509
    .command('decode')
    .description('C509 type 3 certificate or request (binary or hex) -> DER or PEM X.509')
    .argument('<file>', 'C509 certificate or request, binary CBOR or hex text')
    .option('--hex', 'write the DER as hex text')
    .option('--pem', 'write PEM (CERTIFICATE or CERTIFICATE REQUEST)')
    .option('--out <file>', 'write to this file instead of stdout')
    .addHelpText(
      'after',
      '\nNatively signed (type 2) C509 has no DER form and is refused (exit 2). Examples:\n' +
        '  vouchsafe c509 decode cert.c509 --pem\n  vouchsafe c509 decode cert.hex --out cert.der',
    )
    .action((file: string, opts: { hex?: boolean; pem?: boolean; out?: string }) =>
      run(() => {
        if (opts.hex && opts.pem) throw new InvalidArgument('cli.options', '--hex and --pem are exclusive');
        const bytes = c509FromInput(readInput(file, 'C509'));
        const v = decodeCbor(bytes);
        const csr = Array.isArray(v) && v.length === 7;
        const der = csr ? c509CsrToX509(bytes) : c509ToX509(bytes);
        const label = csr ? 'CERTIFICATE REQUEST' : 'CERTIFICATE';
        emit(opts.pem ? encodePem(label, der) : opts.hex ? `${toHex(der)}\n` : der, opts.out);
      }),
    );
}
