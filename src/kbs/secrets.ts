import { InvalidArgument } from '../errors.js';
import { parseResourcePolicy, type ResourcePolicy } from './resource-policy.js';

/** An operator-provided secret served at a KBS resource path, with who may read it. */
export interface OperatorSecret {
  readonly value: Uint8Array;
  readonly policy: ResourcePolicy;
}

/** Where the KBS adapter finds operator secrets by `repository/type/tag`. */
export interface SecretSource {
  /** The secret at `path`, or undefined. The caller zeroes the returned value after use. */
  get(path: string): Promise<OperatorSecret | undefined>;
}

const PATH =
  /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Secrets held in process memory (tests, demos, or a deployment that loads them at start-up). Values are
 * copied in and copied out, so callers may zero their buffers. Not persistent: the persistent source is
 * FileSecretSource, whose files are sealed under the broker's KEK (docs/kbs.md).
 */
export class MemorySecretStore implements SecretSource {
  private readonly secrets = new Map<string, OperatorSecret>();

  /** Stores `value` at `path` (`repository/type/tag`). Throws InvalidArgument `kbs.resource.path`, `kbs.resource_policy`. */
  put(path: string, value: Uint8Array, policy: unknown): void {
    if (!PATH.test(path)) throw new InvalidArgument('kbs.resource.path', 'path must be repository/type/tag');
    const old = this.secrets.get(path);
    this.secrets.set(path, { value: Uint8Array.from(value), policy: parseResourcePolicy(policy) });
    old?.value.fill(0);
  }

  delete(path: string): boolean {
    const old = this.secrets.get(path);
    old?.value.fill(0);
    return this.secrets.delete(path);
  }

  async get(path: string): Promise<OperatorSecret | undefined> {
    const s = this.secrets.get(path);
    return s && { value: Uint8Array.from(s.value), policy: s.policy };
  }
}
