#!/usr/bin/env node
/**
 * Facts and chunks from real code for training, with the product's own chunker and grammars.
 *
 *   node training/extract.js --corpus /work/scratch/corpus --out /work/scratch/corpus-data
 *
 * Reads the pinned packages (training/data/packages.txt) installed under CORPUS/node_modules,
 * chunks every JS/TS source file exactly as the sidecar does (header line + code, ≤ 512 tokens
 * of the byte-level tokenizer = 512 UTF-8 bytes, small declarations merged up to 128), and finds
 * with tree-sitter:
 *   - value facts: `const NAME = <number | string | boolean literal>`;
 *   - definition facts: function, class, and const-arrow/function names.
 * Each fact records the chunk it lies in and byte offsets of the name (and value) inside that
 * chunk's text, so the trainer can rename and re-value it (names and values are randomized at
 * training time; the model must read its memory, not recall the corpus).
 *
 * Output: OUT/files.jsonl (one file a line: {file, chunks: [text], facts: [...]}) and
 * OUT/manifest.json (counts and the sha256 of files.jsonl; the trainer refuses a folder whose
 * manifest is missing or disagrees). Requires `npm run build` (it loads out/src/workspace).
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');

const ROOT = path.resolve(__dirname, '..');
const { Chunker, LANGUAGES } = require(path.join(ROOT, 'out', 'src', 'workspace'));
const { Language, Parser } = require('web-tree-sitter');

const MAX_TOKENS = 512; // UTF-8 bytes: training's windows are cut from these chunks (the product feeds longer ones: export.py chunking)
const MIN_TOKENS = 128;
const MAX_FILE_BYTES = 200_000; // bundles duplicate the sources they were built from
const MAX_VALUE_BYTES = 40;
const EXTS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

function packages() {
  return fs.readFileSync(path.join(__dirname, 'data', 'packages.txt'), 'utf8').split('\n')
    .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    .map((l) => { const i = l.lastIndexOf('@'); return { name: l.slice(0, i), version: l.slice(i + 1) }; });
}

function* walk(dir, rel = '') {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const abs = path.join(dir, e.name);
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) yield* walk(abs, r);
    else if (e.isFile() && EXTS.has(path.extname(e.name)) && !/\.min\.|\.d\.[mc]?ts$/.test(e.name)) yield { abs, rel: r };
  }
}

const LITERAL = new Set(['number', 'string', 'true', 'false']);

/**
 * Facts in one parsed file: [{kind, name, nameByte, value?, valueByte?}] (file byte offsets).
 * src is the string the tree was parsed from: web-tree-sitter's startIndex/endIndex count its
 * UTF-16 code units, not bytes, so text is sliced from the string and offsets converted (slicing
 * the file's bytes with them shifted every fact after a non-ASCII character: 914 of 10,517 facts
 * in the pinned corpus, 225 of 338 in this repository's src/ named garbage like `t PARENT_POLL_`).
 */
function findFacts(root, src) {
  const out = [];
  const text = (n) => src.slice(n.startIndex, n.endIndex);
  const byteAt = (i) => Buffer.byteLength(src.slice(0, i), 'utf8');
  const visit = (n) => {
    if (n.type === 'lexical_declaration' && n.child(0)?.type === 'const') {
      for (const d of n.namedChildren) {
        if (d.type !== 'variable_declarator') continue;
        const name = d.childForFieldName('name');
        const value = d.childForFieldName('value');
        if (!name || name.type !== 'identifier' || !value) continue;
        if (LITERAL.has(value.type) && Buffer.byteLength(text(value)) <= MAX_VALUE_BYTES && !text(value).includes('\n')) {
          if (value.type === 'string' && !/^(['"])[^'"\\]*\1$/.test(text(value))) continue; // plain strings only
          out.push({ kind: 'value', name: text(name), nameByte: byteAt(name.startIndex), value: text(value), valueByte: byteAt(value.startIndex) });
        } else if (value.type === 'arrow_function' || value.type === 'function_expression' || value.type === 'function') {
          out.push({ kind: 'def', name: text(name), nameByte: byteAt(name.startIndex) });
        }
      }
    } else if (n.type === 'function_declaration' || n.type === 'class_declaration' || n.type === 'generator_function_declaration') {
      const name = n.childForFieldName('name');
      if (name) out.push({ kind: 'def', name: text(name), nameByte: byteAt(name.startIndex) });
    }
    for (const c of n.namedChildren) visit(c);
  };
  visit(root);
  return out;
}

async function main() {
  const { values } = parseArgs({ options: { corpus: { type: 'string' }, dir: { type: 'string' }, out: { type: 'string' }, 'max-files': { type: 'string' } } });
  if (!(values.corpus || values.dir) || !values.out) throw new Error('usage: node training/extract.js (--corpus DIR | --dir SOURCE_DIR) --out DIR');
  const maxFiles = Number(values['max-files'] ?? Infinity);
  const chunker = await Chunker.create({ languages: ['javascript', 'typescript'] });
  const wasmDir = path.join(path.dirname(require.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm');
  const parsers = {};
  for (const id of ['javascript', 'typescript']) {
    const p = new Parser();
    p.setLanguage(await Language.load(path.join(wasmDir, `tree-sitter-${LANGUAGES[id].wasm}.wasm`)));
    parsers[id] = p;
  }
  const budget = { countTokens: (s) => Buffer.byteLength(s, 'utf8'), maxTokens: MAX_TOKENS, minTokens: MIN_TOKENS };
  fs.mkdirSync(values.out, { recursive: true });
  const tmp = path.join(values.out, 'files.jsonl.partial');
  const fd = fs.openSync(tmp, 'w');
  const hash = crypto.createHash('sha256');
  const counts = { files: 0, chunks: 0, valueFacts: 0, defFacts: 0, bytes: 0 };
  // --dir: one source folder (CI's smoke training reads this repository's own src/, offline).
  const pkgs = values.dir ? [{ name: path.basename(path.resolve(values.dir)), version: 'local', dir: path.resolve(values.dir) }] : packages();
  for (const pkg of pkgs) {
    const dir = pkg.dir ?? path.join(values.corpus, 'node_modules', pkg.name);
    const pj = path.join(dir, 'package.json');
    if (!pkg.dir && !fs.existsSync(pj)) throw new Error(`${dir}: package ${pkg.name} is not installed (run: bash training/install-corpus.sh ${values.corpus})`);
    const got = pkg.dir ? 'local' : JSON.parse(fs.readFileSync(pj, 'utf8')).version;
    if (got !== pkg.version) throw new Error(`${pj}: version ${got}, the pinned list says ${pkg.version} (reinstall: bash training/install-corpus.sh ${values.corpus})`);
    for (const f of walk(dir)) {
      if (counts.files >= maxFiles) break;
      const buf = fs.readFileSync(f.abs);
      if (buf.length > MAX_FILE_BYTES || buf.length === 0) continue;
      const rel = `${pkg.name}/${f.rel}`;
      const src = buf.toString('utf8');
      const lang = chunker.languageOf(rel);
      if (!lang) continue;
      const chunks = chunker.chunk({ rel, text: src }, budget);
      const tree = parsers[lang].parse(src);
      const raw = tree ? findFacts(tree.rootNode, src) : [];
      tree?.delete();
      // Place each fact in the chunk whose code holds its name (and value) bytes.
      const facts = [];
      for (const fact of raw) {
        const end = (fact.valueByte ?? fact.nameByte) + Buffer.byteLength(fact.value ?? fact.name);
        const ci = chunks.findIndex((c) => c.startByte <= fact.nameByte && end <= c.endByte);
        if (ci < 0) continue;
        const c = chunks[ci];
        const headerBytes = Buffer.byteLength(c.text, 'utf8') - (c.endByte - c.startByte);
        const at = (b) => headerBytes + (b - c.startByte);
        const rec = { chunk: ci, kind: fact.kind, name: fact.name, nameAt: at(fact.nameByte) };
        if (fact.kind === 'value') Object.assign(rec, { value: fact.value, valueAt: at(fact.valueByte) });
        // The offsets must point at the text (a chunk's code is the file's bytes verbatim).
        const tb = Buffer.from(c.text, 'utf8');
        if (tb.subarray(rec.nameAt, rec.nameAt + Buffer.byteLength(rec.name)).toString() !== rec.name) continue;
        if (rec.value && tb.subarray(rec.valueAt, rec.valueAt + Buffer.byteLength(rec.value)).toString() !== rec.value) continue;
        facts.push(rec);
        counts[fact.kind === 'value' ? 'valueFacts' : 'defFacts']++;
      }
      const line = JSON.stringify({ file: rel, chunks: chunks.map((c) => c.text), facts }) + '\n';
      fs.writeSync(fd, line);
      hash.update(line);
      counts.files++;
      counts.chunks += chunks.length;
      counts.bytes += buf.length;
    }
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(values.out, 'files.jsonl'));
  const manifest = { format: 'mplus-training-corpus/1', packages: pkgs.map((p) => `${p.name}@${p.version}`), ...counts, sha256: hash.digest('hex') };
  fs.writeFileSync(path.join(values.out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  console.log(JSON.stringify(manifest));
}

main().catch((e) => { console.error(`extract: ${e.message}`); process.exit(1); });
