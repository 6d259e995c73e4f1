import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { AttestationError, InvalidArgument } from '../errors.js';
import type { WrappingKey } from '../keys/types.js';
import { openSecretFile } from '../util/secret-file.js';
import { parseResourcePolicy, type ResourcePolicy } from './resource-policy.js';
import { isSealed, sealSecret, unsealSecret } from './sealed-secret.js';
import type { OperatorSecret, SecretSource } from './secrets.js';

/**
 * Operator secrets from the file system, so that publishing a secret needs no code:
 *
 *   <dir>/<repository>/<type>/<tag>     the secret's bytes (1..64 KiB; mode 0600, owned by the broker's user)
 *   <dir>/resource-policy.json          who may read each one (or another file: `policyFile`)
 *
 * The directory and every directory below it on the way to a secret must be real directories (no symbolic
 * link anywhere under the directory: O_NOFOLLOW guards only the last component, and a linked `<repository>`
 * or `<type>` would serve any file the broker can read, its KEK included), owned by the broker's user and
 * not writable by group or others (whoever can write there can plant such a link). The directory itself
 * may be reached through a link: it is resolved once, at start, and every secret must resolve to a path
 * under that resolved directory, checked against the file actually opened.
 *
 * The policy file maps resource paths to resource policies (src/kbs/resource-policy.ts):
 *
 *   {"apps/db/password": {"instances": "any", "projects": ["proj-a"], "measurements": "any"}}
 *
 * A secret is served only when the policy file names it (a file without a policy is never served) and
 * read from disk at each request; the policy file is validated at start and read again whenever it
 * changes (size, mtime, inode), so an operator publishes a secret by writing its file, then its policy. If
 * an edited policy file does not parse, operator secrets are refused (`kbs.secrets.policy_file`, answered
 * as an internal error) until it is fixed: it fails closed. Files are read in place, not cached.
 *
 * With a KEK (the broker always gives its own), secrets are encrypted at rest (src/kbs/sealed-secret.ts:
 * AEAD under the KEK with the resource path as AAD). A plaintext file — one the operator just wrote, or one
 * from before sealing — is sealed in place the first time it is read and at every broker start
 * ({@link FileSecretSource.sealAll}): written aside (0600), flushed, renamed over the plaintext unless the
 * file changed meanwhile.
 */
export interface FileSecretSourceOptions {
  /** The secrets directory. */
  readonly dir: string;
  /** The resource-policy file (default `<dir>/resource-policy.json`). */
  readonly policyFile?: string;
  /** Paths the policy file must not name (the sealing-key paths, which the broker serves itself). */
  readonly reservedPaths?: readonly string[];
  /** Encrypts secrets at rest (and seals plaintext files in place); without it files are served as they are. */
  readonly kek?: WrappingKey;
}

/** Largest policy file read (it holds JSON policies only). */
const MAX_POLICY_FILE = 1024 * 1024;
/** Largest secret served. */
const MAX_SECRET = 64 * 1024;
/** Largest secret file read: the secret sealed (header, KEK id, IV, tag) fits well within this. */
const MAX_SECRET_FILE = MAX_SECRET + 4096;

const PATH =
  /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

const policyError = (message: string) => new InvalidArgument('kbs.secrets.policy_file', message);

export class FileSecretSource implements SecretSource {
  readonly dir: string;
  readonly policyFile: string;
  private readonly reserved: ReadonlySet<string>;
  private policies: ReadonlyMap<string, ResourcePolicy>;
  private stamp: string;
  private readonly kek: WrappingKey | undefined;

  /**
   * Opens the directory and validates the policy file now. Throws InvalidArgument `kbs.secrets.dir` (missing,
   * not a directory), `kbs.secrets.dir.permissions` (writable by group or others), `kbs.secrets.dir.owner`
   * (owned by another user than the broker's), `kbs.secrets.policy_file` (missing, not a regular file,
   * writable by group or others, owned by another user than this one or root, too large, not JSON, an
   * invalid path or policy, a reserved path).
   */
  constructor(o: FileSecretSourceOptions) {
    let dir: string;
    try {
      dir = realpathSync.native(resolve(o.dir));
    } catch {
      throw new InvalidArgument('kbs.secrets.dir', `${resolve(o.dir)} does not exist`);
    }
    this.dir = dir;
    checkDirectory(lstatSync(dir), dir);
    this.policyFile = resolve(o.policyFile ?? join(this.dir, 'resource-policy.json'));
    this.reserved = new Set(o.reservedPaths ?? []);
    this.kek = o.kek;
    const { policies, stamp } = this.loadPolicies();
    this.policies = policies;
    this.stamp = stamp;
  }

  /** Paths the policy file names (what may be served). */
  paths(): string[] {
    this.refresh();
    return [...this.policies.keys()];
  }

  async get(path: string): Promise<OperatorSecret | undefined> {
    this.refresh();
    const policy = this.policies.get(path);
    if (!policy || !PATH.test(path)) return undefined;
    const file = this.confinedPath(path);
    if (file === undefined) return undefined;
    let value: Buffer;
    let st: Stats | undefined;
    try {
      value = openSecretFile(file, 'kbs.secrets.file', undefined, MAX_SECRET_FILE, (opened) => {
        checkResolvesTo(file, opened);
        st = opened;
      });
    } catch (e) {
      if (e instanceof AttestationError && e.reason === 'kbs.secrets.file.missing') return undefined;
      throw e;
    }
    try {
      if (this.kek && isSealed(value)) return { value: await unsealSecret(this.kek, path, value), policy };
      if (value.length > MAX_SECRET) {
        throw new InvalidArgument('kbs.secrets.file.size', `${file} must hold 1..${MAX_SECRET} bytes`);
      }
      if (this.kek && st) await this.sealInPlace(file, path, value, st);
      return { value: new Uint8Array(value), policy };
    } finally {
      value.fill(0);
    }
  }

  /**
   * Seals every plaintext secret the policy file names (the broker runs it at start, so a plaintext file
   * does not wait for its first request). Returns the paths sealed now. Throws what {@link get} throws.
   */
  async sealAll(): Promise<string[]> {
    const sealed: string[] = [];
    if (!this.kek) return sealed;
    for (const path of this.paths()) {
      const file = PATH.test(path) ? this.confinedPath(path) : undefined;
      if (file === undefined) continue;
      let head: Buffer;
      try {
        head = openSecretFile(file, 'kbs.secrets.file', undefined, MAX_SECRET_FILE, (o) =>
          checkResolvesTo(file, o),
        );
      } catch (e) {
        if (e instanceof AttestationError && e.reason === 'kbs.secrets.file.missing') continue;
        throw e;
      }
      const plain = !isSealed(head);
      head.fill(0);
      if (!plain) continue;
      const got = await this.get(path);
      got?.value.fill(0);
      sealed.push(path);
    }
    return sealed;
  }

  /**
   * Replaces the plaintext at `file` with its sealed form: written aside (0600, created exclusively),
   * flushed, renamed over it unless the file changed since it was read (the operator wrote it again: the
   * next read seals the new content), and the directory flushed.
   */
  private async sealInPlace(file: string, path: string, plain: Uint8Array, read: Stats): Promise<void> {
    const sealed = await sealSecret(this.kek as WrappingKey, path, plain);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.sealing`;
    const fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    let keep = false;
    try {
      writeSync(fd, sealed);
      fsyncSync(fd);
      const now = lstatSync(file);
      keep = now.ino === read.ino && now.size === read.size && now.mtimeMs === read.mtimeMs;
    } finally {
      closeSync(fd);
      if (keep) renameSync(tmp, file);
      else unlinkSync(tmp);
    }
    const dfd = openSync(dirname(file), constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  /**
   * `<dir>/<path>` after checking the directory and each directory below it on the way (the folder's mode
   * can change after start, so it is checked again); undefined when one of them does not exist. Throws
   * InvalidArgument `kbs.secrets.file.symlink` (a symbolic link on the way), `kbs.secrets.dir`,
   * `kbs.secrets.dir.permissions`, `kbs.secrets.dir.owner`.
   */
  private confinedPath(path: string): string | undefined {
    let at = this.dir;
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) at = join(at, parts[i - 1]!);
      let st: Stats;
      try {
        st = lstatSync(at);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && i > 0) return undefined;
        throw new InvalidArgument('kbs.secrets.dir', `${at} cannot be read`);
      }
      if (st.isSymbolicLink()) {
        throw new InvalidArgument('kbs.secrets.file.symlink', `${at} is a symbolic link`);
      }
      if (!st.isDirectory()) {
        if (i === 0) throw new InvalidArgument('kbs.secrets.dir', `${at} is not a directory`);
        return undefined;
      }
      checkDirectory(st, at);
    }
    return join(at, parts[parts.length - 1]!);
  }

  /** Reloads the policy file when it changed; throws (fails closed) when the new one is invalid. */
  private refresh(): void {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(this.policyFile);
    } catch {
      throw policyError(`${this.policyFile} is gone`);
    }
    if (stampOf(st) === this.stamp) return;
    const { policies, stamp } = this.loadPolicies();
    this.policies = policies;
    this.stamp = stamp;
  }

  private loadPolicies(): { policies: Map<string, ResourcePolicy>; stamp: string } {
    let fd: number;
    try {
      fd = openSync(this.policyFile, constants.O_RDONLY);
    } catch {
      throw policyError(`${this.policyFile} cannot be opened`);
    }
    let text: string;
    let stamp: string;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw policyError(`${this.policyFile} is not a regular file`);
      if ((st.mode & 0o022) !== 0) {
        throw policyError(`${this.policyFile} must not be writable by group or others (chmod 644 or 600)`);
      }
      const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
      if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
        throw policyError(`${this.policyFile} must be owned by this user or root`);
      }
      if (st.size > MAX_POLICY_FILE) throw policyError(`${this.policyFile} is larger than 1 MiB`);
      stamp = stampOf(st);
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw policyError(`${this.policyFile} is not JSON`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw policyError(`${this.policyFile} must map "repository/type/tag" paths to resource policies`);
    }
    const policies = new Map<string, ResourcePolicy>();
    for (const [path, p] of Object.entries(doc)) {
      if (!PATH.test(path)) throw policyError(`${path}: a resource path is repository/type/tag`);
      if (this.reserved.has(path)) throw policyError(`${path} is served by the broker itself (sealing key)`);
      try {
        policies.set(path, parseResourcePolicy(p));
      } catch (e) {
        throw policyError(`${path}: ${e instanceof Error ? e.message : 'invalid policy'}`);
      }
    }
    return { policies, stamp };
  }
}

const stampOf = (st: { size: number; mtimeMs: number; ino: number; ctimeMs: number }) =>
  `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

/**
 * The secrets directory, or one below it: a directory, owned by the broker's user, not writable by group or
 * others. Throws InvalidArgument `kbs.secrets.dir`, `kbs.secrets.dir.permissions`, `kbs.secrets.dir.owner`.
 */
function checkDirectory(st: Stats, path: string): void {
  if (!st.isDirectory()) throw new InvalidArgument('kbs.secrets.dir', `${path} is not a directory`);
  if ((st.mode & 0o022) !== 0) {
    throw new InvalidArgument(
      'kbs.secrets.dir.permissions',
      `${path} has mode ${(st.mode & 0o777).toString(8)}; it must not be writable by group or others (chmod 700)`,
    );
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new InvalidArgument('kbs.secrets.dir.owner', `${path} is not owned by the broker's user`);
  }
}

/**
 * The file opened is the one at `file` and `file` has no symbolic link in it: its resolved path is itself
 * (the directory was resolved at start) and names the same inode. Run after the open, so a link swapped in
 * between the directory walk and the open is caught. Throws InvalidArgument `kbs.secrets.file.outside`.
 */
function checkResolvesTo(file: string, opened: Stats): void {
  let real: string;
  let st: Stats;
  try {
    real = realpathSync.native(file);
    st = statSync(real);
  } catch {
    throw new InvalidArgument('kbs.secrets.file.outside', `${file} moved while it was read`);
  }
  if (real !== file || st.dev !== opened.dev || st.ino !== opened.ino) {
    throw new InvalidArgument('kbs.secrets.file.outside', `${file} resolves outside the secrets directory`);
  }
}
