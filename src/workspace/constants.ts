/**
 * Constants a lookup question can be checked against: `const NAME = <literal>` in TypeScript and
 * JavaScript, `NAME = <literal>` at a Python module's top level, found with tree-sitter. The
 * literal is a number, a boolean or a plain one-line string (quotes kept), at most 40 characters
 * — the same facts the lookup model is trained on (training/extract.js), so "What is the value of
 * NAME?" has an exact answer that can be checked in the model's output.
 */
import type { Node } from 'web-tree-sitter';
import type { Chunker } from './chunker';

export interface ValueConstant {
  name: string;
  /** The literal's source text (a string keeps its quotes). */
  value: string;
  /** 1-based line of the name. */
  line: number;
}

const MAX_VALUE_CHARS = 40;
const JS_LITERALS = new Set(['number', 'string', 'true', 'false']);
const PY_LITERALS = new Set(['integer', 'float', 'string', 'true', 'false']);

function plain(value: Node): boolean {
  const t = value.text;
  if (t.length > MAX_VALUE_CHARS || t.includes('\n')) return false;
  // strings: no escapes, no interpolation, no nested quotes
  return value.type !== 'string' || /^(['"])[^'"\\{}]*\1$/.test(t);
}

function jsConstants(root: Node): ValueConstant[] {
  const out: ValueConstant[] = [];
  const visit = (n: Node) => {
    if (n.type === 'lexical_declaration' && n.child(0)?.type === 'const') {
      for (const d of n.namedChildren) {
        if (d?.type !== 'variable_declarator') continue;
        const name = d.childForFieldName('name');
        const value = d.childForFieldName('value');
        if (name?.type === 'identifier' && value && JS_LITERALS.has(value.type) && plain(value)) {
          out.push({ name: name.text, value: value.text, line: name.startPosition.row + 1 });
        }
      }
    }
    for (const c of n.namedChildren) if (c) visit(c);
  };
  visit(root);
  return out;
}

function pyConstants(root: Node): ValueConstant[] {
  const out: ValueConstant[] = [];
  for (const st of root.namedChildren) {
    const a = st?.type === 'expression_statement' ? st.namedChild(0) : null;
    if (a?.type !== 'assignment') continue;
    const name = a.childForFieldName('left');
    const value = a.childForFieldName('right');
    if (name?.type === 'identifier' && value && PY_LITERALS.has(value.type) && plain(value)) {
      out.push({ name: name.text, value: value.text, line: name.startPosition.row + 1 });
    }
  }
  return out;
}

/** The file's value constants in source order ([] for other languages or files without a grammar). */
export function valueConstants(chunker: Chunker, file: { rel: string; text: string }): ValueConstant[] {
  return chunker.withTree(file, (root, lang) =>
    lang === 'python' ? pyConstants(root) : lang === 'typescript' || lang === 'tsx' || lang === 'javascript' ? jsConstants(root) : []) ?? [];
}
