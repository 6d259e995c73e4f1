import { MalformedEvidence } from '../../errors.js';
import { cursor, octetString, oid, parseOne, smallUint, Tag, type Tlv } from '../der/reader.js';

/**
 * The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1; Intel "SGX PCK Certificate and
 * CRL Profile" §1.5): a SEQUENCE of {OID, value} pairs. What TCB matching needs: the 16 TCB component SVNs
 * (.2.1-.2.16), PCESVN (.2.17), CPUSVN (.2.18), PCE-ID (.3, 2 bytes) and FMSPC (.4, 6 bytes). Other
 * members (PPID, SGX type, platform instance, configuration) are skipped. Throws MalformedEvidence
 * `tdx.pck.sgx_extension`.
 */
export interface PckSgxExtension {
  /** CPUSVN components .2.1..2.16, each 0..255. */
  readonly componentSvns: readonly number[];
  readonly pceSvn: number;
  readonly cpuSvn: Uint8Array;
  /** 2 bytes. */
  readonly pceId: Uint8Array;
  /** 6 bytes: the platform family the TCB info is published for. */
  readonly fmspc: Uint8Array;
}

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
const R = 'tdx.pck.sgx_extension';

function fail(message: string): never {
  throw new MalformedEvidence(R, `${R}: ${message}`);
}

/** Decodes the extension's value (the OCTET STRING contents: the outer SEQUENCE). */
export function parsePckSgxExtension(value: Uint8Array): PckSgxExtension {
  const top = cursor(parseOne(value, R, Tag.Sequence), R);
  let tcb: Tlv | undefined;
  let pceId: Uint8Array | undefined;
  let fmspc: Uint8Array | undefined;
  while (!top.done) {
    const item = cursor(top.next(Tag.Sequence, 'member'), R);
    const id = oid(item.next(Tag.Oid, 'member id'), R);
    const v = item.any('member value');
    item.end();
    if (id === `${SGX_EXTENSION_OID}.2`) {
      if (tcb) fail('TCB member repeated');
      tcb = v;
    } else if (id === `${SGX_EXTENSION_OID}.3`) {
      if (pceId) fail('PCE-ID repeated');
      pceId = Uint8Array.from(octetString(v, R));
    } else if (id === `${SGX_EXTENSION_OID}.4`) {
      if (fmspc) fail('FMSPC repeated');
      fmspc = Uint8Array.from(octetString(v, R));
    }
  }
  if (!tcb || !pceId || !fmspc) fail('TCB, PCE-ID and FMSPC are required');
  if (pceId.length !== 2) fail('PCE-ID is not 2 bytes');
  if (fmspc.length !== 6) fail('FMSPC is not 6 bytes');

  const svns: (number | undefined)[] = new Array(16).fill(undefined);
  let pceSvn: number | undefined;
  let cpuSvn: Uint8Array | undefined;
  const t = cursor(tcb, R, Tag.Sequence);
  while (!t.done) {
    const c = cursor(t.next(Tag.Sequence, 'TCB component'), R);
    const id = oid(c.next(Tag.Oid, 'component id'), R);
    const v = c.any('component value');
    c.end();
    const prefix = `${SGX_EXTENSION_OID}.2.`;
    const n = id.startsWith(prefix) ? Number(id.slice(prefix.length)) : Number.NaN;
    if (n >= 1 && n <= 16) {
      if (svns[n - 1] !== undefined) fail(`component ${n} repeated`);
      svns[n - 1] = smallUint(v, R, 255);
    } else if (n === 17) {
      if (pceSvn !== undefined) fail('PCESVN repeated');
      pceSvn = smallUint(v, R, 0xffff);
    } else if (n === 18) {
      if (cpuSvn) fail('CPUSVN repeated');
      cpuSvn = Uint8Array.from(octetString(v, R));
    }
  }
  if (svns.some((s) => s === undefined) || pceSvn === undefined || !cpuSvn || cpuSvn.length !== 16) {
    fail('TCB needs components 1-16, PCESVN and a 16-byte CPUSVN');
  }
  return { componentSvns: svns as number[], pceSvn, cpuSvn, pceId, fmspc };
}
