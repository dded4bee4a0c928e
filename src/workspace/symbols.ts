/**
 * What the chunker knows about languages: which tree-sitter grammar serves which file extension,
 * how a file type writes a line comment (chunk headers), and what a syntax node declares (the
 * symbol paths in chunk headers: "class Foo", "method bar", "impl Display for Foo"). No parsing
 * happens here; chunker.ts parses and splits.
 */
import * as crypto from 'crypto';
import { Node } from 'web-tree-sitter';

interface LangSpec {
  /** grammar file base name: tree-sitter-<wasm>.wasm */
  wasm: string;
  exts: string[];
}

/** Language id → grammar and extensions. */
export const LANGUAGES: Record<string, LangSpec> = {
  typescript: { wasm: 'typescript', exts: ['ts', 'mts', 'cts'] },
  tsx: { wasm: 'tsx', exts: ['tsx'] },
  javascript: { wasm: 'javascript', exts: ['js', 'mjs', 'cjs', 'jsx'] },
  python: { wasm: 'python', exts: ['py', 'pyi', 'pyw'] },
  go: { wasm: 'go', exts: ['go'] },
  rust: { wasm: 'rust', exts: ['rs'] },
  java: { wasm: 'java', exts: ['java'] },
  csharp: { wasm: 'c-sharp', exts: ['cs'] },
  cpp: { wasm: 'cpp', exts: ['c', 'h', 'cc', 'cpp', 'cxx', 'hpp', 'hh', 'hxx', 'ino'] },
  ruby: { wasm: 'ruby', exts: ['rb', 'rake', 'gemspec'] },
  php: { wasm: 'php', exts: ['php'] },
  bash: { wasm: 'bash', exts: ['sh', 'bash', 'zsh'] },
  css: { wasm: 'css', exts: ['css'] },
  powershell: { wasm: 'powershell', exts: ['ps1', 'psm1'] },
};

const LINE_COMMENT: Record<string, [string, string]> = {};
for (const e of ['ts', 'mts', 'cts', 'tsx', 'js', 'mjs', 'cjs', 'jsx', 'go', 'rs', 'java', 'cs', 'c', 'h', 'cc', 'cpp', 'cxx',
  'hpp', 'hh', 'hxx', 'ino', 'php', 'kt', 'kts', 'scala', 'swift', 'dart', 'zig', 'proto', 'groovy', 'gradle', 'scss', 'less',
  'jsonc', 'sol', 'v', 'fs', 'fsx']) LINE_COMMENT[e] = ['// ', ''];
for (const e of ['css']) LINE_COMMENT[e] = ['/* ', ' */'];
for (const e of ['html', 'htm', 'xml', 'svg', 'md', 'markdown', 'vue', 'svelte', 'xaml', 'csproj', 'props', 'targets']) LINE_COMMENT[e] = ['<!-- ', ' -->'];
for (const e of ['sql', 'lua', 'hs', 'elm']) LINE_COMMENT[e] = ['-- ', ''];
for (const e of ['el', 'lisp', 'clj', 'cljs', 'scm']) LINE_COMMENT[e] = ['; ', ''];
for (const e of ['tex', 'erl', 'm']) LINE_COMMENT[e] = ['% ', ''];
for (const e of ['bat', 'cmd']) LINE_COMMENT[e] = ['REM ', ''];

export function extOf(rel: string): string {
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  const i = base.lastIndexOf('.');
  return i <= 0 ? '' : base.slice(i + 1).toLowerCase();
}

/** The header line of a chunk (no line numbers: ids must survive code moving). */
export function chunkHeader(rel: string, symbol: string): string {
  const [open, close] = LINE_COMMENT[extOf(rel)] ?? ['# ', ''];
  const oneLine = (x: string) => x.replace(/[\r\n]+/g, ' ');
  return `${open}file: ${oneLine(rel)}${symbol ? ` — ${oneLine(symbol)}` : ''}${close}`;
}

export function sha256Hex(s: string): string {
  return crypto.createHash('sha256').update(s, 'utf8').digest('hex');
}

/** Node types that attach to the declaration after them. */
export const LEADING = new Set(['comment', 'line_comment', 'block_comment', 'attribute_item', 'inner_attribute_item', 'decorator',
  'annotation', 'marker_annotation', 'attribute_list']);

/** Wrappers whose inner declaration names the symbol. */
const WRAPPER_FIELDS: Record<string, string> = {
  export_statement: 'declaration',
  decorated_definition: 'definition',
  ambient_declaration: 'declaration',
  template_declaration: 'declaration',
};

const KIND: Record<string, string> = {
  function_declaration: 'function', generator_function_declaration: 'function', function_signature: 'function',
  function_definition: 'function', function_item: 'fn', function_signature_item: 'fn',
  method_definition: 'method', method_declaration: 'method', method_signature: 'method', abstract_method_signature: 'method',
  constructor_declaration: 'constructor', public_field_definition: 'field', field_definition: 'field',
  class_declaration: 'class', abstract_class_declaration: 'class', class_definition: 'class', class_specifier: 'class',
  class: 'class', module: 'module', singleton_method: 'def', method: 'def',
  struct_specifier: 'struct', union_specifier: 'union', enum_specifier: 'enum',
  interface_declaration: 'interface', type_alias_declaration: 'type', enum_declaration: 'enum',
  internal_module: 'namespace', namespace_declaration: 'namespace', namespace_definition: 'namespace',
  struct_item: 'struct', enum_item: 'enum', union_item: 'union', trait_item: 'trait', impl_item: 'impl', mod_item: 'mod',
  type_item: 'type', const_item: 'const', static_item: 'static', macro_definition: 'macro',
  record_declaration: 'record', struct_declaration: 'struct', property_declaration: 'property',
  annotation_type_declaration: 'interface', trait_declaration: 'trait',
  type_declaration: 'type', const_declaration: 'const', var_declaration: 'var',
};

export function clean(s: string, max = 80): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

export function unwrap(node: Node): Node {
  let n = node;
  for (let i = 0; i < 4; i++) {
    const f = WRAPPER_FIELDS[n.type];
    const inner = f ? n.childForFieldName(f) : null;
    if (!inner) break;
    n = inner;
  }
  return n;
}

function declaratorName(node: Node): string | undefined {
  let d = node.childForFieldName('declarator');
  for (let i = 0; d && i < 8; i++) {
    const inner = d.childForFieldName('declarator');
    if (!inner) break;
    d = inner;
  }
  return d ? d.text : undefined;
}

/** "class Foo", "method bar", "impl Display for Foo", "" when the node declares nothing named. */
export function symbolOf(node: Node, lang: string): string {
  const n = unwrap(node);
  const t = n.type;
  if (t === 'lexical_declaration' || t === 'variable_declaration') {
    const decl = n.namedChildren.find((c) => c?.type === 'variable_declarator');
    const name = decl?.childForFieldName('name');
    const kw = n.child(0)?.text ?? 'var';
    return name ? `${kw} ${clean(name.text)}` : '';
  }
  if (t === 'impl_item') {
    const ty = n.childForFieldName('type')?.text;
    const tr = n.childForFieldName('trait')?.text;
    return ty ? `impl ${clean(tr ? `${tr} for ${ty}` : ty)}` : 'impl';
  }
  if (lang === 'go' && (t === 'type_declaration' || t === 'const_declaration' || t === 'var_declaration')) {
    const spec = n.namedChildren.find((c) => c !== null && /_spec$/.test(c.type));
    const name = spec?.childForFieldName('name');
    return name ? `${KIND[t]} ${clean(name.text)}` : '';
  }
  if (lang === 'go' && t === 'method_declaration') {
    const recv = n.childForFieldName('receiver')?.text.replace(/^\(\s*(\w+\s+)?/, '').replace(/\)$/, '').replace(/^\*/, '');
    const name = n.childForFieldName('name')?.text;
    return name ? `method ${recv ? clean(recv) + '.' : ''}${name}` : '';
  }
  if (lang === 'go' && t === 'function_declaration') {
    const name = n.childForFieldName('name')?.text;
    return name ? `func ${name}` : '';
  }
  if (lang === 'python' && t === 'function_definition') {
    const name = n.childForFieldName('name')?.text;
    return name ? `def ${name}` : '';
  }
  const kind = KIND[t];
  if (!kind) return '';
  let name = n.childForFieldName('name')?.text;
  if (name === undefined && (t === 'function_definition' || t === 'function_declaration')) name = declaratorName(n);
  return name ? `${kind} ${clean(name)}` : '';
}

/** The symbol path of several sibling pieces: their common prefix, then their own parts joined by ", ". */
export function mergePaths(paths: string[][]): string[] {
  const named = paths.filter((p) => p.length > 0);
  if (named.length === 0) return [];
  let lcp = named[0].length;
  for (const p of named) {
    let k = 0;
    while (k < lcp && k < p.length && p[k] === named[0][k]) k++;
    lcp = k;
  }
  const head = named[0].slice(0, lcp);
  const rest: string[] = [];
  for (const p of named) {
    const r = p.slice(lcp).join(' > ');
    if (r && !rest.includes(r)) rest.push(r);
  }
  return rest.length > 0 ? [...head, rest.join(', ')] : head;
}

export function symbolText(p: string[]): string {
  const s = p.join(' > ');
  return s.length > 200 ? s.slice(0, 199) + '…' : s;
}
