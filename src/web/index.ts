/** The operator dashboard (docs/dashboard.md): served by the broker, wired by the CLI. */
export { type DashboardOptions, DEFAULT_DASHBOARD_PREFIX, registerDashboard } from './dashboard.js';
export {
  type Authenticate,
  adminTokenAuthenticator,
  anyOf,
  canSee,
  credentialAuthenticator,
  type Principal,
} from './principal.js';
