#!/usr/bin/env node
/**
 * The training corpus chunked as the product feeds a repository: for the retriever's pool of
 * distractor code (training/mplus/pool.py, `fit_retriever --pool … --feed`).
 *
 *   node training/feedchunks.js --corpus /work/scratch/corpus --data /work/scratch/corpus-data --model EXPORTED
 *   node training/feedchunks.js --dir SOURCE_DIR --data DATA --model EXPORTED   (a data folder extract.js made with --dir)
 *
 * extract.js cuts the corpus into training's small windows (512 bytes). The product feeds a file
 * in the chunks its checkpoint asks for (chunking.json: 512 tokens, neighbours merged up to 512),
 * each with a header line naming every declaration it holds. A replay of a bench feed log
 * through the trainer (training/mplus/replay.py) finds the fact's rows as the product does, and
 * far less often among this code than among training's windows: the pool must be this code.
 *
 * Reads DATA/files.jsonl's file list (each file again from CORPUS/node_modules, or from beside
 * SOURCE_DIR, whose name extract.js --dir put first in every path), chunks every file
 * with the product's Chunker and the model's tokenizer and chunking, and writes DATA/feed.jsonl:
 * one file a line, {file, chunks: [text]} in feed order. Requires `npm run build`.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { parseArgs } = require('util');

const ROOT = path.resolve(__dirname, '..');
const { Chunker } = require(path.join(ROOT, 'out', 'src', 'workspace'));
const { TextTokenizer } = require(path.join(ROOT, 'out', 'src', 'model', 'tokenizer'));
const { loadChunking, chunkMeasure } = require(path.join(ROOT, 'out', 'src', 'model', 'chunking'));

async function main() {
  const { values } = parseArgs({ options: { corpus: { type: 'string' }, dir: { type: 'string' }, data: { type: 'string' }, model: { type: 'string' } } });
  if (!(values.corpus || values.dir) || !values.data || !values.model) {
    throw new Error('usage: node training/feedchunks.js (--corpus DIR | --dir SOURCE_DIR) --data DATA --model EXPORTED_CHECKPOINT');
  }
  const root = values.dir ? path.dirname(path.resolve(values.dir)) : path.join(values.corpus, 'node_modules');
  const fix = values.dir ? `the source folder changed since extract.js: run it again` : `the corpus changed since extract.js: reinstall with training/install-corpus.sh ${values.corpus}`;
  const files = path.join(values.data, 'files.jsonl');
  if (!fs.existsSync(files)) throw new Error(`${files}: missing (run training/extract.js first)`);
  const tok = await TextTokenizer.fromDir(values.model);
  const chunking = loadChunking(values.model);
  const budget = { countTokens: chunkMeasure(chunking, (s) => tok.countTokens(s)), maxTokens: chunking.max, minTokens: chunking.min };
  const chunker = await Chunker.create({ languages: ['javascript', 'typescript'] });
  const out = path.join(values.data, 'feed.jsonl');
  const tmp = out + '.partial';
  const fd = fs.openSync(tmp, 'w');
  let n = 0;
  let chunks = 0;
  for await (const line of readline.createInterface({ input: fs.createReadStream(files) })) {
    if (!line) continue;
    const rel = JSON.parse(line).file;
    const abs = path.join(root, rel);
    if (!fs.existsSync(abs)) throw new Error(`${abs}: missing (${fix})`);
    const got = chunker.chunk({ rel, text: fs.readFileSync(abs, 'utf8') }, budget).map((c) => c.text);
    fs.writeSync(fd, JSON.stringify({ file: rel, chunks: got }) + '\n');
    n++;
    chunks += got.length;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, out);
  console.log(`feedchunks: ${n} files, ${chunks} chunks (${chunking.unit} ${chunking.max}, merged up to ${chunking.min}) → ${out}`);
}

main().catch((e) => {
  console.error(`feedchunks: ${e.message}`);
  process.exit(1);
});
