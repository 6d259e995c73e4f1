/**
 * Import rules of src/ (design.md "Parts": dependencies point one way). Every import and re-export of
 * every src/**\/*.ts file is parsed (with the TypeScript parser, so imports in comments do not count) and
 * checked against three rules:
 *
 * 1. Layers import one way: a folder imports only folders of a lower layer (LAYERS below; folders of one
 *    layer do not import each other). Type-only imports count: they are a dependency of the design too.
 * 2. Nothing imports the API (`src/api`) except the CLI; nothing imports the simulator (`src/sim`) except
 *    the CLI (it is test and demo support).
 * 3. No import cycles between files (runtime imports; `import type` is erased and cannot cycle at run time).
 *
 * A failure names the importing file, the imported file and the rule. KNOWN_VIOLATIONS lists the few that
 * other work in progress is removing; each entry says who removes it. Delete an entry when it is fixed (the
 * test fails on an entry that no longer occurs, so the list cannot go stale).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/paths.js';
import { sourceFiles } from '../helpers/source-files.js';

const SRC = join(ROOT, 'src');

/**
 * The layers, lowest first. A folder (or `errors` for src/errors.ts) may import the folders of any row
 * above its own row, and its own folder; nothing else.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors'], //               the error model; imports nothing of ours
  ['util'], //                 bytes, secret files, the one HTTP client, the metrics interface
  ['formats'], //              pure codecs: bytes in, typed values out
  ['collateral', 'sim', 'keys'], // AMD KDS client and cache | the simulated SNP firmware (formats only) | file and PKCS#11 keys
  ['evidence'], //             parse -> verify -> claims, per TEE (uses collateral for missing certificates)
  ['policy'], //               appraisal of claims; the TEE table
  ['store'], //                SQLite and PostgreSQL behind one interface
  ['broker'], //               challenges, instances, sealing keys, audit
  ['ca', 'native', 'wire'], // platform CA | native protocol crypto and service | the /v1 HTTP contract
  ['kbs'], //                  Trustee KBS protocol on the broker
  ['pvchannel'], //            VMM<->SVSM firmware channel: host device + guest client (calls are handlers passed in)
  ['admin', 'api', 'proxy', 'guest'], // HTTP server | admin client | host proxy | guest library
  ['web'], //                  the operator dashboard's server side: routes on the API's server, wired by the CLI
  ['cli'], //                  the vouchsafe command: everything above
];

/** Folders only the CLI may import (besides themselves). */
const ONLY_CLI_IMPORTS: readonly string[] = ['api', 'sim'];

/** Besides the CLI, who may import one of ONLY_CLI_IMPORTS: the dashboard (src/web) plugs into the API's server. */
const ALSO_IMPORTS: Readonly<Record<string, readonly string[]>> = { api: ['web'] };

/**
 * Violations other helpers are removing right now, as `from -> to` (paths under src/). Remove an entry once
 * the import is gone.
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

interface Edge {
  readonly from: string; // path under src/, e.g. api/start.ts
  readonly to: string;
  readonly typeOnly: boolean;
}

/** Every relative import of a file: static imports, re-exports and dynamic import() calls. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (!spec.startsWith('.')) return; // packages and node: builtins
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    out.push({ from: relative(SRC, file), to: relative(SRC, target), typeOnly });
  };
  const visit = (n: ts.Node) => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      add(n.moduleSpecifier.text, n.importClause?.isTypeOnly ?? false);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      add(n.moduleSpecifier.text, n.isTypeOnly);
    } else if (
      ts.isCallExpression(n) &&
      n.expression.kind === ts.SyntaxKind.ImportKeyword &&
      n.arguments[0] &&
      ts.isStringLiteral(n.arguments[0])
    ) {
      add(n.arguments[0].text, false);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The folder (layer unit) of a path under src/: its first segment, or `errors` for errors.ts. */
function folderOf(path: string): string {
  const first = path.split('/')[0]!;
  return first.endsWith('.ts') ? first.slice(0, -3) : first;
}

const RANK = new Map(LAYERS.flatMap((row, i) => row.map((f) => [f, i] as const)));

/** The rule an import breaks, or undefined. */
function brokenRule(e: Edge): string | undefined {
  const from = folderOf(e.from);
  const to = folderOf(e.to);
  if (from === to) return undefined;
  const rf = RANK.get(from);
  const rt = RANK.get(to);
  if (rf === undefined) return `src/${from} is in no layer (add it to LAYERS)`;
  if (rt === undefined) return `src/${to} is in no layer (add it to LAYERS)`;
  if (ONLY_CLI_IMPORTS.includes(to) && from !== 'cli' && !ALSO_IMPORTS[to]?.includes(from))
    return `only the CLI imports src/${to}`;
  if (rt === rf) return `${from} and ${to} are one layer: peers do not import each other`;
  if (rt > rf) return `${from} (layer ${rf}) imports ${to} (layer ${rt}): imports go down only`;
  return undefined;
}

/** Strongly connected components of more than one file (or a file importing itself): the cycles. */
function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) if (!e.typeOnly) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const connect = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) connect(v);
  return found;
}

/** One path around a cycle, for the failure message: a -> b -> ... -> a. */
function cyclePath(scc: readonly string[], edges: readonly Edge[]): string {
  const inScc = new Set(scc);
  const path = [scc[0]!];
  for (;;) {
    const here = path[path.length - 1]!;
    const step = edges.find((e) => !e.typeOnly && e.from === here && inScc.has(e.to));
    if (!step) break;
    if (path.includes(step.to)) {
      path.push(step.to);
      break;
    }
    path.push(step.to);
  }
  return path.join(' -> ');
}

const edges = sourceFiles(SRC).flatMap(importsOf);

describe('import rules of src/', () => {
  it('finds the imports (the parser sees the tree)', () => {
    assert.ok(edges.length > 200, `only ${edges.length} imports found`);
    assert.ok(edges.some((e) => e.from === 'api/start.ts' && e.to === 'store/open.ts'));
  });

  it('every import resolves to a file under src/', () => {
    const files = new Set(sourceFiles(SRC).map((f) => relative(SRC, f)));
    const missing = edges.filter((e) => !files.has(e.to)).map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(missing, []);
  });

  it('layers import one way; only the CLI imports api and sim (KNOWN_VIOLATIONS aside)', () => {
    const broken = edges.flatMap((e) => {
      const why = brokenRule(e);
      return why ? [{ key: `${e.from} -> ${e.to}`, why }] : [];
    });
    const unexpected = broken.filter((b) => !KNOWN_VIOLATIONS.includes(b.key));
    assert.deepEqual(
      unexpected.map((b) => `${b.key}: ${b.why}`),
      [],
      'imports that break the layer rules',
    );
    const gone = KNOWN_VIOLATIONS.filter((k) => !broken.some((b) => b.key === k));
    assert.deepEqual(gone, [], 'fixed: remove these from KNOWN_VIOLATIONS');
  });

  it('no import cycles between files', () => {
    assert.deepEqual(
      cycles(edges).map((scc) => cyclePath(scc, edges)),
      [],
    );
  });

  it('the checks reject what they should (a planted upward import, peer import and cycle)', () => {
    assert.match(brokenRule({ from: 'store/x.ts', to: 'api/y.ts', typeOnly: true })!, /only the CLI/);
    assert.match(brokenRule({ from: 'formats/x.ts', to: 'evidence/y.ts', typeOnly: false })!, /go down/);
    assert.match(brokenRule({ from: 'proxy/x.ts', to: 'guest/y.ts', typeOnly: false })!, /peers/);
    assert.match(brokenRule({ from: 'evidence/x.ts', to: 'sim/y.ts', typeOnly: false })!, /only the CLI/);
    assert.equal(brokenRule({ from: 'cli/x.ts', to: 'api/y.ts', typeOnly: false }), undefined);
    const planted: Edge[] = [
      { from: 'a.ts', to: 'b.ts', typeOnly: false },
      { from: 'b.ts', to: 'c.ts', typeOnly: false },
      { from: 'c.ts', to: 'a.ts', typeOnly: false },
      { from: 'c.ts', to: 'd.ts', typeOnly: false },
      { from: 'd.ts', to: 'c.ts', typeOnly: true },
    ];
    assert.deepEqual(
      cycles(planted).map((s) => cyclePath(s, planted)),
      ['a.ts -> b.ts -> c.ts -> a.ts'],
    );
  });
});
