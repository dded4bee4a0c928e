/**
 * A store folder that cannot hold a store is said in plain words naming the folder (storeAccess.ts),
 * on real folders: a file where a folder should be. (Permission errors cannot be produced as root,
 * so their wording is checked on the error object Node throws for them.)
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { checkStoreParent, storePlaceProblem } from '../../src/sidecar/storeAccess';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('sidecar: a store folder M+ cannot write', () => {
  let dir: string;
  beforeEach(() => { dir = tmpDir('store-access'); });
  afterEach(() => rmDir(dir));

  it('a file in the way: the real mkdir error becomes "<file> is a file, not a folder"', () => {
    const file = path.join(dir, 'stores');
    fs.writeFileSync(file, 'not a folder\n');
    const storeDir = path.join(file, 'repo-0123456789abcdef');
    let err: unknown;
    try {
      fs.mkdirSync(storeDir, { recursive: true });
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'mkdir under a file did not fail');
    assert.strictEqual(storePlaceProblem(err, storeDir), `M+ cannot keep this workspace's memory in ${storeDir}: ${file} is a file, not a folder`);
  });

  it('permission, read-only and full disks in words; anything else is not a place problem', () => {
    const errno = (code: string) => Object.assign(new Error(`${code}: open '/x'`), { code });
    assert.match(storePlaceProblem(errno('EACCES'), '/s/w')!, /in \/s\/w: permission denied$/);
    assert.match(storePlaceProblem(errno('EROFS'), '/s/w')!, /: the disk is read-only$/);
    assert.match(storePlaceProblem(errno('ENOSPC'), '/s/w')!, /: the disk is full$/);
    assert.strictEqual(storePlaceProblem(errno('EIO'), '/s/w'), null);
    assert.strictEqual(storePlaceProblem(new Error('manifest is not valid JSON'), '/s/w'), null);
    assert.strictEqual(storePlaceProblem(null, '/s/w'), null);
  });

  it('checkStoreParent: a writable folder (created when missing) passes and keeps no probe; a file in the way does not', () => {
    const parent = path.join(dir, 'new', 'stores');
    assert.strictEqual(checkStoreParent(parent), null);
    assert.deepStrictEqual(fs.readdirSync(parent), []);
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    assert.strictEqual(checkStoreParent(path.join(file, 'stores')), `M+ cannot keep this workspace's memory in ${path.join(file, 'stores')}: ${file} is a file, not a folder`);
  });
});
