/**
 * The HTTP headers of the dashboard. The Content-Security-Policy allows scripts, styles and connections
 * from the broker itself only: no inline script, no eval, no third-party origin, no framing (CSP Level 3
 * §6; the bundle is built so that it needs neither, docs/dashboard.md). Styles set from script through the
 * CSSOM (uPlot, Preact's style props) are not inline style in CSP's sense.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export const SESSION_COOKIE = 'vouchsafe_session';

/**
 * The session cookie (RFC 6265bis): HttpOnly (no script reads it), SameSite=Strict (no cross-site request
 * carries it), Secure when the broker speaks TLS, scoped to the dashboard's prefix. `maxAgeS` 0 clears it.
 */
export function sessionCookie(
  value: string,
  opts: { prefix: string; secure: boolean; maxAgeS?: number },
): string {
  const parts = [`${SESSION_COOKIE}=${value}`, `Path=${opts.prefix}`, 'HttpOnly', 'SameSite=Strict'];
  if (opts.secure) parts.push('Secure');
  if (opts.maxAgeS !== undefined) parts.push(`Max-Age=${opts.maxAgeS}`);
  return parts.join('; ');
}

/** The session cookie's value from a Cookie header, or undefined. */
export function readSessionCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === SESSION_COOKIE) {
      const v = part.slice(i + 1).trim();
      return /^[A-Za-z0-9_-]{1,64}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}
