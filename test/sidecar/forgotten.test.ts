/** The user's Forget list: folders cover their files, re-adding undoes exactly what was asked. */
import * as assert from 'assert';
import { ForgottenPaths } from '../../src/sidecar/forgotten';

describe('ForgottenPaths', () => {
  it('a folder covers the files in it (and files created there later); entries inside it fold into it', () => {
    const f = new ForgottenPaths();
    f.add(['src/a/x.ts', 'src/a', 'docs/readme.md']);
    assert.deepStrictEqual(f.list(), ['docs/readme.md', 'src/a']);
    assert.ok(f.has('src/a/x.ts') && f.has('src/a/new/later.ts') && f.has('docs/readme.md'));
    assert.ok(!f.has('src/ab.ts') && !f.has('src/b.ts') && !f.has('docs'));
  });

  it('re-adding a folder drops the entries inside it; re-adding one file of a forgotten folder keeps its siblings forgotten', () => {
    const f = new ForgottenPaths(['src/a', 'src/b/one.ts', 'lib/c.ts']);
    assert.strictEqual(f.readd(['src/b'], []), true);
    assert.deepStrictEqual(f.list(), ['lib/c.ts', 'src/a']);
    assert.strictEqual(f.readd(['src/a/x.ts'], ['src/a/x.ts', 'src/a/y.ts', 'src/a/deep/z.ts', 'src/ab.ts']), true);
    assert.deepStrictEqual(f.list(), ['lib/c.ts', 'src/a/deep/z.ts', 'src/a/y.ts']);
    assert.ok(!f.has('src/a/x.ts') && f.has('src/a/y.ts'));
    assert.strictEqual(f.readd(['nothing/here.ts'], []), false, 'nothing forgotten there: no change');
  });

  it('reads what a store committed, ignoring anything that is not a list of paths', () => {
    assert.deepStrictEqual(new ForgottenPaths(['b', 'a', 'a']).list(), ['a', 'b']);
    assert.deepStrictEqual(new ForgottenPaths({ not: 'a list' }).list(), []);
    assert.deepStrictEqual(new ForgottenPaths(['ok', 3, null]).list(), ['ok']);
    assert.strictEqual(new ForgottenPaths(['']).has('anything'), true, "'' is the whole workspace");
  });
});
