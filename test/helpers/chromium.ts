import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium (scripts/deps.sh installs it as root). */
export const CHROMIUM = '/usr/bin/chromium';

/** Fails, naming the Debian package, when Chromium is not installed: never a silent skip. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install the Debian package (apt-get install chromium; npm test as root does it via scripts/deps.sh)`,
    );
  }
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Headless Chromium driven by playwright-core, in a fresh profile directory, with nothing that talks to
 * the network on its own (no sync, no component updates, no QUIC): the dashboard must work with no network
 * beyond the broker.
 */
export async function launchChromium(): Promise<Browser> {
  requireChromium();
  const profile = mkdtempSync(join(tmpdir(), 'vouchsafe-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
