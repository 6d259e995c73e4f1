/**
 * Serializes a message the way serde_json's compact writer does. Callers build plain objects with keys in
 * the order the Rust structs declare their fields; JSON.stringify keeps insertion order, writes no spaces,
 * and escapes strings exactly as serde_json does (`\"`, `\\`, the short forms `\b \f \n \r \t`, other
 * control characters as lower-case `\u00xx`, everything else literal UTF-8). Numbers here are only small
 * integers (version triples), which both print identically.
 */
export function encodeJson(value: unknown): Uint8Array {
  const b = Buffer.from(JSON.stringify(value), 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
