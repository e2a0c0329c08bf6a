// Source instrumentation for the fuzzer's coverage feedback: rewrites compiled modules of
// dist-fuzz/ so that every basic block and every branch arm bumps its own counter. Sites:
//   - every block (function bodies, loop bodies, if/else arms, try/catch/finally);
//   - the missing else of an `if` (so "condition false" is a site of its own) and unbraced arms;
//   - every case / default clause;
//   - both arms of `c ? a : b`, the right side of `&&`, `||`, `??`, and expression-bodied arrows.
// A module gets `const __mslbCov = new Uint32Array(N)` and registers it, with the source line of
// each site and the numeric constants it compares against (the mutator's dictionary), in
// globalThis.__mslbFuzzCoverage. Instrumented code runs unchanged otherwise (a counter bump is a
// statement or the left operand of a comma), so repro.js and the corpus replay see the same code.
import ts from 'typescript';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const MARKER = '/* mslb-fuzz-instrumented */';
const COV = '__mslbCov';

/** What an instrumented module registers (see CoverageMap). */
export interface CoverageFile {
  file: string;
  counters: Uint32Array;
  /** Source line (of the compiled .js) of each site. */
  lines: number[];
  /** Integer literals of the module, 2 .. 2^32-1: candidates for the mutator's dictionary. */
  consts: number[];
}

export function instrumentSource(code: string, file: string): { code: string; sites: number } {
  const sf = ts.createSourceFile(file, code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const lines: number[] = [];
  const consts = new Set<number>();
  const f = ts.factory;

  const site = (at: ts.Node): ts.Expression => {
    const o = ts.getOriginalNode(at);
    lines.push(o.pos >= 0 ? sf.getLineAndCharacterOfPosition(o.getStart(sf)).line + 1 : 0);
    return f.createPostfixIncrement(f.createElementAccessExpression(f.createIdentifier(COV), f.createNumericLiteral(lines.length - 1)));
  };
  const bump = (at: ts.Node): ts.Statement => f.createExpressionStatement(site(at));
  const withBump = (at: ts.Node, e: ts.Expression): ts.Expression => f.createParenthesizedExpression(f.createComma(site(at), e));
  const asBlock = (s: ts.Statement): ts.Block => (ts.isBlock(s) ? s : f.createBlock([bump(s), s], true));

  const prepend = (b: ts.Block, at: ts.Node): ts.Block => {
    // a directive prologue ('use strict') must stay first to stay a directive
    let i = 0;
    while (i < b.statements.length && ts.isExpressionStatement(b.statements[i]) && ts.isStringLiteral((b.statements[i] as ts.ExpressionStatement).expression)) i++;
    return f.updateBlock(b, [...b.statements.slice(0, i), bump(at), ...b.statements.slice(i)]);
  };

  const transformer: ts.TransformerFactory<ts.SourceFile> = (ctx) => {
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isNumericLiteral(node)) {
        const v = Number(node.text);
        if (Number.isInteger(v) && v >= 2 && v <= 0xffffffff && consts.size < 512) consts.add(v);
      }
      const n = ts.visitEachChild(node, visit, ctx);
      if (ts.isBlock(n)) return prepend(n, node);
      if (ts.isIfStatement(n)) {
        const els = n.elseStatement === undefined ? f.createBlock([bump(node)], true) : ts.isIfStatement(n.elseStatement) ? n.elseStatement : asBlock(n.elseStatement);
        return f.updateIfStatement(n, n.expression, asBlock(n.thenStatement), els);
      }
      if (ts.isForStatement(n)) return f.updateForStatement(n, n.initializer, n.condition, n.incrementor, asBlock(n.statement));
      if (ts.isForOfStatement(n)) return f.updateForOfStatement(n, n.awaitModifier, n.initializer, n.expression, asBlock(n.statement));
      if (ts.isForInStatement(n)) return f.updateForInStatement(n, n.initializer, n.expression, asBlock(n.statement));
      if (ts.isWhileStatement(n)) return f.updateWhileStatement(n, n.expression, asBlock(n.statement));
      if (ts.isDoStatement(n)) return f.updateDoStatement(n, asBlock(n.statement), n.expression);
      if (ts.isCaseClause(n)) return f.updateCaseClause(n, n.expression, [bump(node), ...n.statements]);
      if (ts.isDefaultClause(n)) return f.updateDefaultClause(n, [bump(node), ...n.statements]);
      if (ts.isConditionalExpression(n)) {
        return f.updateConditionalExpression(n, n.condition, n.questionToken, withBump(n.whenTrue, n.whenTrue), n.colonToken, withBump(n.whenFalse, n.whenFalse));
      }
      if (ts.isBinaryExpression(n)) {
        const k = n.operatorToken.kind;
        if (k === ts.SyntaxKind.AmpersandAmpersandToken || k === ts.SyntaxKind.BarBarToken || k === ts.SyntaxKind.QuestionQuestionToken) {
          return f.updateBinaryExpression(n, n.left, n.operatorToken, withBump(n.right, n.right));
        }
      }
      if (ts.isArrowFunction(n) && !ts.isBlock(n.body)) {
        return f.updateArrowFunction(n, n.modifiers, n.typeParameters, n.parameters, n.type, n.equalsGreaterThanToken, withBump(n.body, n.body));
      }
      return n;
    };
    return (root) => ts.visitEachChild(root, visit, ctx);
  };

  const out = ts.transform(sf, [transformer]);
  const body = ts.createPrinter().printFile(out.transformed[0]);
  out.dispose();
  const header =
    `${MARKER}\nconst ${COV} = new Uint32Array(${lines.length});\n` +
    `(globalThis.__mslbFuzzCoverage ??= []).push({ file: ${JSON.stringify(file)}, counters: ${COV}, ` +
    `lines: ${JSON.stringify(lines)}, consts: ${JSON.stringify([...consts].sort((a, b) => a - b))} });\n`;
  return { code: header + body, sites: lines.length };
}

/**
 * Instruments, in place, every .js module under `root`/`dirs` but the `skip` prefixes (paths
 * relative to root). A module already instrumented is left as it is, so running it twice after one
 * compile changes nothing. Returns the number of modules and sites instrumented now.
 */
export function instrumentTree(root: string, dirs: readonly string[], skip: readonly string[]): { files: number; sites: number } {
  let files = 0;
  let sites = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(root, p);
      if (skip.some((s) => rel.startsWith(s))) continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.js')) {
        const code = readFileSync(p, 'utf8');
        if (code.startsWith(MARKER)) continue;
        const r = instrumentSource(code, rel);
        writeFileSync(p, r.code);
        files++;
        sites += r.sites;
      }
    }
  };
  for (const d of dirs) walk(join(root, d));
  return { files, sites };
}
