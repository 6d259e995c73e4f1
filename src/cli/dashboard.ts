import { parseHostPort } from '../api/listen-address.js';
import type { StartBrokerOptions } from '../api/start.js';
import { InvalidArgument } from '../errors.js';
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

/** The startBroker hook that serves the dashboard (src/web) on the broker's server. */
export function dashboardExtend(opts: DashboardOptions = {}): NonNullable<StartBrokerOptions['extend']> {
  return async (app, parts) => {
    await registerDashboard(app, parts, opts);
  };
}

/** The dashboard's URL on a broker at `brokerUrl`. */
export function dashboardUrl(brokerUrl: string, prefix = DEFAULT_DASHBOARD_PREFIX): string {
  return `${brokerUrl}${prefix}`;
}
