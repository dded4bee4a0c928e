/** Forget's "Also add to .mplusignore": the rule names exactly the forgotten path, once. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import ignore from 'ignore';
import { addIgnoreRule, ignoreRule } from '../../src/extension/ignoreFile';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('extension: adding a rule to .mplusignore', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('ignorefile');
    fs.mkdirSync(path.join(dir, 'src', 'gen'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', 'a.ts'), '');
  });
  afterEach(() => rmDir(dir));

  it('creates the file with an anchored rule for a file, a trailing slash for a folder, and never repeats a rule', () => {
    assert.deepStrictEqual(addIgnoreRule(dir, path.join(dir, 'src', 'a.ts')), { file: path.join(dir, '.mplusignore'), rule: '/src/a.ts', added: true });
    assert.strictEqual(addIgnoreRule(dir, path.join(dir, 'src', 'gen')).rule, '/src/gen/');
    assert.strictEqual(addIgnoreRule(dir, path.join(dir, 'src', 'a.ts')).added, false);
    const text = fs.readFileSync(path.join(dir, '.mplusignore'), 'utf8');
    assert.strictEqual(text, '# Files M+ never reads (.gitignore syntax)\n/src/a.ts\n/src/gen/\n');
    const ig = ignore().add(text);
    assert.ok(ig.ignores('src/a.ts') && ig.ignores('src/gen/x.ts'));
    assert.ok(!ig.ignores('lib/src/a.ts') && !ig.ignores('src/ab.ts'), 'anchored: only the forgotten path');
  });

  it('appends to an existing file without a final newline; refuses a path outside the folder', () => {
    fs.writeFileSync(path.join(dir, '.mplusignore'), '*.log');
    addIgnoreRule(dir, path.join(dir, 'src', 'a.ts'));
    assert.strictEqual(fs.readFileSync(path.join(dir, '.mplusignore'), 'utf8'), '*.log\n/src/a.ts\n');
    assert.throws(() => addIgnoreRule(dir, path.dirname(dir)), /not inside the workspace folder/);
  });

  it('escapes characters .gitignore would read as patterns', () => {
    const rule = ignoreRule('docs/#notes[1]*.md', false);
    assert.strictEqual(rule, '/docs/\\#notes\\[1\\]\\*.md');
    const ig = ignore().add(rule);
    assert.ok(ig.ignores('docs/#notes[1]*.md') && !ig.ignores('docs/#notes1x.md'));
  });
});
