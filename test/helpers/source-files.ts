import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every TypeScript source file under `dir` (not declaration files), recursively: what the structure tests read. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}
