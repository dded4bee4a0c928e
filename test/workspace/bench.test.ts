import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { benchDiscover, generateTree } from '../../tools/bench/discover';
import { discover } from '../../src/workspace/discovery';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('workspace/benchDiscover', function () {
  this.timeout(60000);

  it('generates a tree whose ignored parts are not discovered', async () => {
    const dir = tmpDir('bench-tree');
    try {
      const n = generateTree(dir, 500);
      assert.strictEqual(n, 500);
      const r = await discover([dir], { maxFiles: 1e9 });
      assert.strictEqual(r.files.length, 501); // + the .gitignore
      assert.ok(r.files.every((f) => !f.rel.includes('node_modules') && !f.rel.includes('generated/') && !f.rel.endsWith('.log')));
      assert.ok(fs.existsSync(path.join(dir, 'node_modules', 'pkg', 'x0.js')));
    } finally {
      rmDir(dir);
    }
  });

  for (const backend of ['chokidar', 'dirs'] as const) {
    it(`times discovery and watcher start-up (${backend})`, async () => {
      const r = await benchDiscover({ files: 1000, backend });
      assert.strictEqual(r.files, 1001);
      assert.ok(r.discoverMs > 0 && r.watchSetupMs > 0 && r.rssMiB > 0 && r.watcherRssMiB >= 0, JSON.stringify(r));
    });
  }
});
