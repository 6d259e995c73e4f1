/**
 * A minimal per-session cookie jar for one KBS origin (what reqwest's cookie store does for aproxy): it
 * keeps the name=value pairs the KBS sets, drops cookies it expires (Max-Age <= 0 or an Expires in the
 * past), and sends them all back. Domain and Path attributes are not applied: the jar only ever talks to
 * the one KBS base URL it was made for, under /kbs/v0.
 */
export class CookieJar {
  private readonly cookies = new Map<string, { value: string; expiresAt: number | null }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes the Set-Cookie header values of one response. */
  store(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) continue;
      let expiresAt: number | null = null;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=', 2).map((s) => s.trim());
        if (k?.toLowerCase() === 'max-age' && /^-?\d+$/.test(v)) {
          expiresAt = this.now() + Number(v) * 1000;
          break; // Max-Age wins over Expires (RFC 6265 §5.3 step 3)
        }
        if (k?.toLowerCase() === 'expires') {
          const t = Date.parse(v);
          if (!Number.isNaN(t)) expiresAt = t;
        }
      }
      if (expiresAt !== null && expiresAt <= this.now()) this.cookies.delete(name);
      else this.cookies.set(name, { value, expiresAt });
    }
  }

  /** The Cookie header value, or undefined when the jar holds no live cookie. */
  header(): string | undefined {
    const t = this.now();
    const parts: string[] = [];
    for (const [name, c] of this.cookies) {
      if (c.expiresAt !== null && c.expiresAt <= t) this.cookies.delete(name);
      else parts.push(`${name}=${c.value}`);
    }
    return parts.length > 0 ? parts.join('; ') : undefined;
  }
}
