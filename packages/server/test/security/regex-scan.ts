import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

/** Every regular expression written in the source of packages/<pkg>/src: literals and `new RegExp('…')` / `RegExp('…')`. */
export interface FoundRegex {
  file: string;
  line: number;
  source: string;
  flags: string;
  /** `new RegExp(x)` whose pattern is not a string literal: cannot be judged statically. */
  dynamic?: boolean;
}

function collect(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && name !== 'dist') collect(p, out);
    } else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

export function scanRegexes(root: string): FoundRegex[] {
  const found: FoundRegex[] = [];
  const pkgs = join(root, 'packages');
  for (const pkg of readdirSync(pkgs).sort()) {
    let src: string;
    try {
      src = join(pkgs, pkg, 'src');
      if (!statSync(src).isDirectory()) continue;
    } catch {
      continue;
    }
    for (const file of collect(src, [])) {
      const text = readFileSync(file, 'utf8');
      const sf = ts.createSourceFile(
        file,
        text,
        ts.ScriptTarget.Latest,
        true,
        file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS,
      );
      const rel = relative(root, file);
      const visit = (node: ts.Node): void => {
        if (ts.isRegularExpressionLiteral(node)) {
          const lit = node.text;
          const end = lit.lastIndexOf('/');
          found.push({
            file: rel,
            line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
            source: lit.slice(1, end),
            flags: lit.slice(end + 1),
          });
        } else if (
          (ts.isNewExpression(node) || ts.isCallExpression(node)) &&
          ts.isIdentifier(node.expression) &&
          node.expression.text === 'RegExp'
        ) {
          const [pattern, flags] = node.arguments ?? [];
          const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          if (pattern && (ts.isStringLiteral(pattern) || ts.isNoSubstitutionTemplateLiteral(pattern))) {
            const f =
              flags && (ts.isStringLiteral(flags) || ts.isNoSubstitutionTemplateLiteral(flags)) ? flags.text : '';
            found.push({ file: rel, line, source: pattern.text, flags: f });
          } else {
            found.push({ file: rel, line, source: pattern ? pattern.getText(sf) : '', flags: '', dynamic: true });
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
  }
  return found;
}
