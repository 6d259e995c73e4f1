import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgument } from '../errors.js';

/**
 * A small secret file owned by the broker (the KEK, the admin token, the response-signing key): created on first
 * run with mode 0600 (passed at creation, so it is never readable by others, whatever the umask) in a
 * directory created 0700, written aside and hard-linked into place so that two processes starting at once
 * end up with one file; refused when it is a symlink, not a regular file, not owned by this user, or
 * accessible to group or others.
 *
 * Throws InvalidArgument `<reason>.not_file`, `<reason>.permissions`, `<reason>.owner`, `<reason>.missing`,
 * `<reason>.size`. `checkOpened`, when given, sees the opened file's stat before anything is read (a caller
 * that must confine the file to a directory compares it with the path's resolved target) and may throw.
 */
export function openSecretFile(
  path: string,
  reason: string,
  create: (() => Uint8Array) | undefined,
  maxBytes = 64 * 1024,
  checkOpened?: (opened: Stats) => void,
): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new InvalidArgument(`${reason}.not_file`, `${path} is a symbolic link`);
    if (code !== 'ENOENT') throw e;
    if (!create) throw new InvalidArgument(`${reason}.missing`, `${path} does not exist`);
    createSecretFile(path, create());
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InvalidArgument(`${reason}.not_file`, `${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new InvalidArgument(
        `${reason}.permissions`,
        `${path} has mode ${(st.mode & 0o777).toString(8)}; it must not be accessible to group or others (chmod 600)`,
      );
    }
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new InvalidArgument(`${reason}.owner`, `${path} is not owned by this user`);
    }
    if (st.size === 0 || st.size > maxBytes) {
      throw new InvalidArgument(`${reason}.size`, `${path} must hold 1..${maxBytes} bytes`);
    }
    checkOpened?.(st);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function createSecretFile(path: string, content: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    content.fill(0);
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (e) {
    // Another process created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    unlinkSync(tmp);
  }
  const dfd = openSync(dirname(path), constants.O_RDONLY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
