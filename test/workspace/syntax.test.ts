import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { REPO_ROOT } from '../helpers/tmp';

interface Rule { match?: string; begin?: string; end?: string; name?: string; patterns?: Rule[]; include?: string }

describe('syntaxes/mplusignore.tmLanguage.json', () => {
  const grammar = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'syntaxes', 'mplusignore.tmLanguage.json'), 'utf8')) as {
    scopeName: string; patterns: Rule[]; repository: Record<string, Rule>;
  };
  const rules: Rule[] = [];
  const visit = (r: Rule) => { rules.push(r); (r.patterns ?? []).forEach(visit); };
  grammar.patterns.forEach(visit);
  Object.values(grammar.repository).forEach(visit);
  // Oniguruma's \G (end of the previous match) has no JS equivalent; ^ is close enough to compile-check.
  const js = (re: string) => new RegExp(re.replace(/\\G/g, '^'));

  it('is a TextMate grammar for source.mplusignore whose regexes compile and includes resolve', () => {
    assert.strictEqual(grammar.scopeName, 'source.mplusignore');
    for (const r of rules) {
      for (const re of [r.match, r.begin, r.end]) if (re !== undefined) assert.doesNotThrow(() => js(re), re);
      if (r.include) assert.ok(grammar.repository[r.include.replace(/^#/, '')], r.include);
      if (r.name) assert.match(r.name, /\.mplusignore$/);
    }
  });

  it('scopes comments, negation, globs, classes, escapes and trailing slashes', () => {
    const byScope = (s: string) => rules.find((r) => r.name?.startsWith(s));
    const test = (scope: string, text: string, expected: string) => {
      const r = byScope(scope);
      assert.ok(r && (r.match ?? r.begin), scope);
      const m = js((r.match ?? r.begin) as string).exec(text);
      assert.ok(m, `${scope} on ${text}`);
      assert.strictEqual(m[0], expected);
    };
    test('comment.line', '# a comment', '# a comment');
    test('keyword.operator.negation', '!keep.ts', '!');
    test('keyword.operator.glob.globstar', '**/x', '**');
    test('keyword.operator.glob.wildcard', 'a*.ts', '*');
    test('keyword.operator.glob.single', 'a?.ts', '?');
    test('meta.character-class', 'a[0-9].ts', '[');
    test('constant.character.escape', 'a\\#b', '\\#');
    test('punctuation.separator.directory.trailing', 'build/', '/');
  });
});
