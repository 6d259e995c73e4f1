/**
 * The one platform-identity type: which VM an instance is, as the control plane registers it (GCE-style
 * names, all opaque strings). The broker stores it, the native protocol 0.2.0 carries it in `identity`
 * (docs/protocol.md), the guest library binds its state file to it, the /v1 wire schemas describe it and the
 * admin API shows it. It lives in formats/ because formats/aproxy is the lowest layer that reads and writes it.
 *
 * Not to be confused with Google's GCE instance-identity X.509 extension (src/formats/x509/instance-identity.ts
 * `GceInstanceIdentity`: projectId, projectNumber and instanceId as integers, zone, instanceName, security
 * properties). That is Google's wire format, read from GCE vTPM certificates and written by the platform CA
 * as given; no code maps one into the other (a platform identity has no project number, and its instanceId
 * need not be a decimal integer).
 */
export interface PlatformIdentity {
  /** The project (GCE project id), 1..256 UTF-8 bytes. */
  readonly project: string;
  /** The zone, 1..256 UTF-8 bytes. */
  readonly zone: string;
  /** The instance id: opaque text (GCE's decimal id, or any other control plane's), 1..256 UTF-8 bytes. */
  readonly instanceId: string;
  /** The instance name, 1..256 UTF-8 bytes. */
  readonly instanceName: string;
}
