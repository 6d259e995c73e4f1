import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { InvalidArgument } from '../errors.js';

/**
 * Creates (mode 0700, whatever the umask allows less of) or opens the broker's data directory and refuses one
 * that group or others can enter or read, or that another user owns, as the KEK file itself is refused
 * (secret-file.ts). The directory is what keeps the database and the collateral cache private even where a
 * file inside was created with a looser mode by an older version.
 *
 * Throws InvalidArgument `<reason>.not_dir`, `<reason>.permissions`, `<reason>.owner`.
 */
export function openPrivateDir(dir: string, reason: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new InvalidArgument(`${reason}.not_dir`, `${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) {
    throw new InvalidArgument(
      `${reason}.permissions`,
      `${dir} has mode ${(st.mode & 0o777).toString(8)}; it must not be accessible to group or others (chmod 700)`,
    );
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new InvalidArgument(`${reason}.owner`, `${dir} is not owned by this user`);
  }
}

/**
 * Makes sure `path` exists with mode 0600 before a library (SQLite) opens it: created empty with 0600 when
 * absent, and narrowed to 0600 when it is this user's own regular file with a looser mode. SQLite gives its
 * `-wal` and `-shm` files the database file's mode, so a 0600 database means 0600 companions.
 * With `create: false` an absent file stays absent. A symbolic link is not followed.
 */
export function ensurePrivateFile(path: string, create = true): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW | (create ? constants.O_CREAT : 0), 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !create) return;
    // A link or something we cannot open for writing is left for the library to report.
    if (code === 'ELOOP' || code === 'EACCES' || code === 'EISDIR') return;
    throw e;
  }
  try {
    const st = fstatSync(fd);
    const mine = typeof process.getuid !== 'function' || st.uid === process.getuid();
    if (st.isFile() && mine && (st.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}
