/**
 * A client-supplied value for an error message: a short quoted string, a number, or else only its type.
 * Never `String(v)` on untrusted JSON: `{"toString":0}` or an object without a prototype makes it throw a
 * TypeError (an untyped error where a typed refusal is due), and the whole value would be echoed back.
 */
export function shown(v: unknown, max = 40): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, max));
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return v === null ? 'null' : typeof v;
}
