/**
 * The `kbs-session-id` cookie (RFC 6265). Set as Trustee sets it: name=value and Expires, no Path (user
 * agents default it to the /kbs/v0 directory of the /auth URL, which covers /attest and /resource) and no
 * Secure (the KBS may be served over plain HTTP behind a proxy, where a Secure cookie would never be
 * returned), plus HttpOnly.
 */
export const SESSION_COOKIE = 'kbs-session-id';

/** The first value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

/** The Set-Cookie value for a session id expiring at `expiresAt` (ms). */
export function sessionCookie(id: string, expiresAt: number): string {
  return `${SESSION_COOKIE}=${id}; Expires=${new Date(expiresAt).toUTCString()}; HttpOnly`;
}
