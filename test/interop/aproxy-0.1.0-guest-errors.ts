/**
 * Guest errors sent to a host proxy, one per row, with what COCONUT's unmodified aproxy (svsm main f4bc4bcd)
 * was seen to do with each (`aproxyExits`: the whole process ends with status 1, dropping every other
 * guest's connection). test/interop/aproxy-0.1.0.test.ts checks the column against the real binary;
 * test/proxy/aproxy-exits.test.ts sends the same rows to Vouchsafe's proxy, which must survive them all.
 */
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import { encodeBase64 } from '../../src/util/base64.js';
import type { RawClient } from '../proxy/raw-client.js';

export interface GuestErrorCase {
  readonly name: string;
  readonly aproxyExits: boolean;
  /** Sends the bad input; returns once it is on the wire (and, where the row says so, the reply read). */
  drive(c: RawClient, fw: SimSnpFirmware): Promise<void>;
}

const NEGOTIATE = '{"version":[0,1,0],"tee":"snp"}';
const b64 = (n: number, v = 1) => encodeBase64(new Uint8Array(n).fill(v));

/** An AttestationRequest for the challenge in `negotiation` with `snp` as the evidence's inner object. */
function attestation(negotiation: string, snp: string): string {
  const challenge = (JSON.parse(negotiation) as { challenge: string }).challenge;
  return `{"tee":"snp","evidence":{"Snp":${snp}},"challenge":"${challenge}","key":{"x":"${b64(66)}","y":"${b64(66)}"}}`;
}

async function negotiated(c: RawClient): Promise<string> {
  c.sendFrame(NEGOTIATE);
  return c.next(10_000);
}

export const GUEST_ERRORS: readonly GuestErrorCase[] = [
  {
    name: 'a protocol version other than 0.1.0 ([0,3,0])',
    aproxyExits: true,
    async drive(c) {
      c.sendFrame('{"version":[0,3,0],"tee":"snp"}');
    },
  },
  {
    name: 'a NegotiationRequest that is not JSON',
    aproxyExits: true,
    async drive(c) {
      c.sendFrame('{"version":');
    },
  },
  {
    name: 'an unknown TEE in the NegotiationRequest',
    aproxyExits: true,
    async drive(c) {
      c.sendFrame('{"version":[0,1,0],"tee":"martian"}');
    },
  },
  {
    name: 'disconnect before sending anything',
    aproxyExits: true,
    async drive(c) {
      c.end();
    },
  },
  {
    name: 'disconnect after negotiation',
    aproxyExits: true,
    async drive(c) {
      await negotiated(c);
      c.end();
    },
  },
  {
    name: 'certs_buf: null in the AttestationRequest',
    aproxyExits: true,
    async drive(c, fw) {
      const n = await negotiated(c);
      const report = encodeBase64(fw.getReport(new Uint8Array(64)).report);
      c.sendFrame(attestation(n, `{"report":"${report}","certs_buf":null}`));
    },
  },
  {
    name: 'an AttestationRequest that is not JSON',
    aproxyExits: true,
    async drive(c) {
      await negotiated(c);
      c.sendFrame('{"tee":');
    },
  },
  {
    name: 'a report the KBS refuses (REPORT_DATA not bound to the challenge)',
    aproxyExits: false,
    async drive(c, fw) {
      const n = await negotiated(c);
      const report = encodeBase64(fw.getReport(new Uint8Array(64)).report);
      c.sendFrame(attestation(n, `{"report":"${report}"}`));
      // A refusal, not a crash: aproxy answers {"success":false,...} and waits for the guest to hang up.
      const reply = await c.next(10_000);
      if (!reply.includes('"success":false')) throw new Error(`expected a refusal, got ${reply}`);
      c.end();
    },
  },
  {
    name: 'an unknown field in the NegotiationRequest (a future SVSM field)',
    aproxyExits: false,
    async drive(c) {
      c.sendFrame('{"version":[0,1,0],"tee":"snp","future":1}');
      const reply = await c.next(10_000);
      if (!reply.includes('"challenge"')) throw new Error(`no NegotiationResponse: ${reply}`);
      // Finish the exchange (a disconnect here would be the row above): refused on its merits.
      c.sendFrame(attestation(reply, '{"report":"AAAA"}'));
      const refusal = await c.next(10_000);
      if (!refusal.includes('"success":false')) throw new Error(`expected a refusal, got ${refusal}`);
      c.end();
    },
  },
  {
    name: 'an unknown field in the AttestationRequest and in evidence.Snp',
    aproxyExits: false,
    async drive(c, fw) {
      const n = await negotiated(c);
      const report = encodeBase64(fw.getReport(new Uint8Array(64)).report);
      c.sendFrame(attestation(n, `{"report":"${report}","future":"x"}`).replace(/}$/, ',"later":[1]}'));
      // Parsed (the unknown fields ignored) and refused on its merits: REPORT_DATA binds nothing here.
      const reply = await c.next(10_000);
      if (!reply.includes('"success":false')) throw new Error(`expected a refusal, got ${reply}`);
      c.end();
    },
  },
];
