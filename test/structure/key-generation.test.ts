/**
 * Key pairs are never made with node's generateKeyPairSync outside src/util/key-pair.ts: in Node 20 a key it
 * returns can deadlock its thread when its details are read or it is exported as a JWK (the comment on
 * newKeyPairSync says how; it hung CI twice). Every .ts file of src/ and test/ is parsed and every use of the
 * name is a failure naming the file and line, in code and in source text a test runs as a script (a string or
 * template); a mention in a comment is not a use. bench/ is out of scope: its floors time node's own keygen
 * and never read the keys' details.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/paths.js';
import { sourceFiles } from '../helpers/source-files.js';

const NAME = 'generateKeyPairSync';
const ALLOWED = 'src/util/key-pair.ts';
/** This file names it in its own strings. */
const SELF = 'test/structure/key-generation.test.ts';

/** `file:line` of every use of NAME in `text`: an identifier, or inside a string or template's text. */
function usesOfSyncKeygen(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    const used =
      (ts.isIdentifier(n) && n.text === NAME) ||
      ((ts.isStringLiteralLike(n) || ts.isTemplateLiteralToken(n)) && n.text.includes(NAME));
    if (used) out.push(`${file}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

describe('key generation', () => {
  it(`finds ${NAME} in code and in script text, not in comments`, () => {
    const text = [
      `import { ${NAME} } from 'node:crypto';`,
      `// ${NAME} in a comment is no use`,
      `const k = ${NAME}('ec', { namedCurve: 'P-256' });`,
      `const script = \`import { ${NAME} } from 'node:crypto'; \${k}\`;`,
    ].join('\n');
    assert.deepEqual(usesOfSyncKeygen('x.ts', text), ['x.ts:1', 'x.ts:3', 'x.ts:4']);
  });

  it(`src/ and test/ use ${NAME} nowhere but ${ALLOWED}`, () => {
    const uses = ['src', 'test'].flatMap((d) =>
      sourceFiles(join(ROOT, d))
        .map((f) => relative(ROOT, f))
        .filter((f) => f !== ALLOWED && f !== SELF)
        .flatMap((f) => usesOfSyncKeygen(f, readFileSync(join(ROOT, f), 'utf8'))),
    );
    assert.deepEqual(uses, [], `use newKeyPairSync (${ALLOWED}) instead of ${NAME} at:\n${uses.join('\n')}`);
  });
});
