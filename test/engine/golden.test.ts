/**
 * The engine against the official implementation: `mplus trace` — the real CLI, in its own
 * process, exactly as other checks call it — on every case in ../shared/golden/, checked with the
 * golden README's tolerances (test/reference/compare.ts; CI also runs the official compare.py).
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { compareResult, loadExpected } from '../reference/compare';
import { REPO_ROOT, goldenCases, goldenDir, rmDir, tmpDir } from '../helpers/tmp';

describe('golden cases from the official implementation', function () {
  const cases = goldenCases();
  let out: string;
  before(() => { out = tmpDir('golden'); });
  after(() => rmDir(out));

  it('finds golden cases to check', function () {
    if (!cases.length && process.env.MPLUS_ALLOW_NO_GOLDEN) this.skip();
    assert.ok(cases.length > 0, `no golden case under ${goldenDir()} (set MPLUS_GOLDEN_DIR, or MPLUS_ALLOW_NO_GOLDEN=1 to skip)`);
  });

  for (const dir of cases) {
    it(`mplus trace matches ${path.basename(dir)}`, () => {
      const result = path.join(out, `${path.basename(dir)}.json`);
      execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'mplus.js'), 'trace', '--model', dir, '--ops', path.join(dir, 'ops.json'), '--out', result], { stdio: 'pipe' });
      const got = JSON.parse(fs.readFileSync(result, 'utf8'));
      const bad = compareResult(dir, got);
      assert.deepStrictEqual(bad, [], `mismatches against ${dir}:\n${bad.slice(0, 20).join('\n')}`);

      // The check itself can fail: one logit nudged past the tolerance, one age off, one retrieved row swapped.
      const exp = loadExpected(dir);
      const gen = got.results.findIndex((r: { logits?: unknown }) => r.logits);
      const nudged = JSON.parse(JSON.stringify(got));
      nudged.results[gen].logits[0][0] += 1e-3 * Math.max(1, ...exp.results[gen].logits!.flat().map(Math.abs));
      assert.ok(compareResult(dir, nudged).some((m) => m.includes('logits')));
      const aged = JSON.parse(JSON.stringify(got));
      aged.state.layers[0].stm_ages[0] += 1;
      assert.ok(compareResult(dir, aged).some((m) => m.includes('stm_ages')));
      const swapped = JSON.parse(JSON.stringify(got));
      const r0 = swapped.results[gen].retrieved[0];
      [r0[0], r0[r0.length - 1]] = [r0[r0.length - 1], r0[0]];
      assert.ok(compareResult(dir, swapped).some((m) => m.includes('retrieved')));
    });
  }
});
