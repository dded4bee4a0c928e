/**
 * The setup most model tests repeat: a temporary folder holding a fixture checkpoint (random
 * weights, tools/fixture.ts) and a small repository to feed it, made before the suite and removed
 * after it. Call it in a `describe` body; the paths are there from the suite's `before` hook on.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FixtureOptions, writeFixture } from '../../tools/fixture';
import { writeFixtureRepo } from './fixtureRepo';
import { rmDir, tmpDir } from './tmp';

export interface FixtureWorkspaceOptions {
  /** The checkpoint written to `model` (dtype f32 unless given); omitted: none. */
  model?: Omit<FixtureOptions, 'out'>;
  /**
   * The repository at `repo`: a number writes fixtureRepo.ts's files with that many generated
   * modules added, a function writes its own files into the (existing) folder; omitted: none.
   */
  repo?: number | ((dir: string) => void);
}

export interface FixtureWorkspace {
  /** The suite's temporary folder; everything below is inside it. */
  readonly root: string;
  /** The fixture checkpoint's folder (root/model). */
  readonly model: string;
  /** The repository's folder (root/repo). */
  readonly repo: string;
  /** A new empty folder under root (a store, a cache, a second repository), unique per call. */
  fresh(name: string): string;
}

export function fixtureWorkspace(prefix: string, opts: FixtureWorkspaceOptions): FixtureWorkspace {
  let root: string | null = null;
  const need = (): string => {
    if (root === null) throw new Error(`fixtureWorkspace(${prefix}): used outside its suite (before its before hook or after its after hook)`);
    return root;
  };
  const inside = (name: string) => path.join(need(), name);
  before(() => {
    root = tmpDir(prefix);
    if (opts.model) writeFixture({ dtype: 'f32', ...opts.model, out: path.join(root, 'model') });
    if (opts.repo !== undefined) {
      const repo = path.join(root, 'repo');
      fs.mkdirSync(repo);
      if (typeof opts.repo === 'number') writeFixtureRepo(repo, opts.repo);
      else opts.repo(repo);
    }
  });
  after(() => {
    if (root !== null) rmDir(root);
    root = null;
  });
  let n = 0;
  return {
    get root() {
      return need();
    },
    get model() {
      return inside('model');
    },
    get repo() {
      return inside('repo');
    },
    fresh(name: string) {
      const dir = inside(`${name}-${++n}`);
      fs.mkdirSync(dir);
      return dir;
    },
  };
}
