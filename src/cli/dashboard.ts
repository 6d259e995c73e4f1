import { parseHostPort } from '../api/listen-address.js';
import type { StartBrokerOptions } from '../api/start.js';
import { AttestationError, InvalidArgument } from '../errors.js';
import { type DashboardOptions, DEFAULT_DASHBOARD_PREFIX, registerDashboard } from '../web/index.js';

/**
 * `--dashboard on|off` (default: on when the broker listens on a loopback address only, where the browser
 * on the same machine is the operator's; off on other addresses unless asked for, docs/dashboard.md).
 */
export function dashboardWanted(flag: string | undefined, listen: string): boolean {
  if (flag === 'on') return true;
  if (flag === 'off') return false;
  if (flag !== undefined)
    throw new InvalidArgument('cli.options', `--dashboard must be on or off, got ${flag}`);
  const { host } = parseHostPort(listen);
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * The startBroker hook that serves the dashboard (src/web). `required` (`--dashboard on`): a dashboard that
 * was not built (no dist/web-assets) stops the broker from starting; otherwise (the loopback default) the
 * broker starts without it and says so at warn.
 */
export function dashboardExtend(
  opts: DashboardOptions = {},
  required = false,
): NonNullable<StartBrokerOptions['extend']> {
  return async (app, parts) => {
    try {
      await registerDashboard(app, parts, opts);
    } catch (e) {
      if (required || !(e instanceof AttestationError) || e.reason !== 'web.assets') throw e;
      parts.logger.warn({ event: 'dashboard_off', reason: e.reason }, e.message);
    }
  };
}

/** The dashboard's URL on a broker at `brokerUrl`. */
export function dashboardUrl(brokerUrl: string, prefix = DEFAULT_DASHBOARD_PREFIX): string {
  return `${brokerUrl}${prefix}`;
}
