import { readFileSync } from 'node:fs';
import { InvalidArgument } from '../errors.js';

/** Reads an admin token file (first line, trimmed). Throws InvalidArgument `admin.token_file`. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    throw new InvalidArgument('admin.token_file', `cannot read the token file ${path}`);
  }
  const token = text.split('\n')[0]!.trim();
  if (!/^[\x21-\x7e]{32,256}$/.test(token)) {
    throw new InvalidArgument('admin.token_file', `${path} does not hold an admin token`);
  }
  return token;
}
