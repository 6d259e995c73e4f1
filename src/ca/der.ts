import {
  type Der,
  ecdsaP1363ToDer as derEcdsa,
  oid as derOid,
  printableString as derPrintable,
  time as derTime,
  explicit,
} from '../formats/der/writer.js';

/**
 * The CA's DER writer: src/formats/der/writer.ts, with the CA's InvalidArgument reasons (`ca.der.oid`,
 * `ca.der.printable`, `ca.der.time`, `ca.der.ecdsa`). Output is checked in tests by the project's strict
 * DER reader (src/formats/der), @peculiar/x509 and OpenSSL.
 */

export {
  bitString,
  boolean,
  concatBytes,
  type Der,
  explicit,
  ia5String,
  implicitPrimitive,
  integer,
  NULL,
  namedBits,
  octetString,
  sequence,
  setOf,
  tlv,
  unsignedInteger,
  utf8String,
  wholeSeconds,
} from '../formats/der/writer.js';

/** [n] IMPLICIT on a constructed value: the content octets of a SEQUENCE under a context tag. */
export const implicitConstructed = explicit;

/** OBJECT IDENTIFIER from dotted text. Throws InvalidArgument `ca.der.oid`. */
export const oid = (dotted: string): Der => derOid(dotted, 'ca.der.oid');

/** PrintableString; throws InvalidArgument `ca.der.printable` for characters outside its alphabet. */
export const printableString = (s: string): Der => derPrintable(s, 'ca.der.printable');

/** RFC 5280 §4.1.2.5 time (UTCTime 1950-2049, else GeneralizedTime). Throws InvalidArgument `ca.der.time`. */
export const time = (d: Date): Der => derTime(d, 'ca.der.time');

/** IEEE P1363 r ‖ s to Ecdsa-Sig-Value DER (RFC 5758 §3.2). Throws InvalidArgument `ca.der.ecdsa`. */
export const ecdsaP1363ToDer = (sig: Uint8Array): Der => derEcdsa(sig, 'ca.der.ecdsa');
