/**
 * Which runtime runs the sidecar, checked before it is spawned (as rust-analyzer's bootstrap
 * checks its server binary by running it): a bad `mplus.nodePath` becomes one clear error naming
 * the setting and the fix, instead of a sidecar that crash-loops. No `vscode` import, so it is
 * tested headless.
 *
 *   nodePath empty → the editor's own runtime (process.execPath with ELECTRON_RUN_AS_NODE=1),
 *                    trusted as it is (it is running this code);
 *   nodePath set   → must exist, be a file, run `-p process.versions.node` within 15 s and
 *                    report Node ≥ MIN_NODE_MAJOR (what onnxruntime-node and this build need).
 */
import { execFile } from 'child_process';
import * as fs from 'fs';

export const MIN_NODE_MAJOR = 20;

export interface Runtime {
  execPath: string;
  env: NodeJS.ProcessEnv;
  /** For the log: "VS Code's runtime" or "Node 22.3.0 at /usr/bin/node". */
  description: string;
}

export class RuntimeError extends Error {}

const FIX = `set mplus.nodePath to a Node.js ≥ ${MIN_NODE_MAJOR} binary, or clear it to use VS Code's own runtime`;

export async function resolveRuntime(nodePath: string): Promise<Runtime> {
  if (!nodePath) return { execPath: process.execPath, env: { ELECTRON_RUN_AS_NODE: '1' }, description: `VS Code's runtime (${process.execPath})` };
  let st: fs.Stats;
  try {
    st = fs.statSync(nodePath);
  } catch (e) {
    throw new RuntimeError(`mplus.nodePath ${nodePath} does not exist (${(e as NodeJS.ErrnoException).code}): ${FIX}`);
  }
  if (!st.isFile()) throw new RuntimeError(`mplus.nodePath ${nodePath} is not a file: ${FIX}`);
  const version = await new Promise<string>((resolve, reject) => {
    execFile(nodePath, ['-p', 'process.versions.node'], { timeout: 15000, env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined } }, (err, stdout) => {
      if (err) reject(new RuntimeError(`mplus.nodePath ${nodePath} does not run as Node.js (${err.message.split('\n')[0]}): ${FIX}`));
      else resolve(stdout.trim());
    });
  });
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (!Number.isInteger(major)) throw new RuntimeError(`mplus.nodePath ${nodePath} printed ${JSON.stringify(version.slice(0, 80))} instead of a Node.js version: ${FIX}`);
  if (major < MIN_NODE_MAJOR) throw new RuntimeError(`mplus.nodePath ${nodePath} is Node ${version}, M+ needs ${MIN_NODE_MAJOR} or newer: ${FIX}`);
  return { execPath: nodePath, env: {}, description: `Node ${version} at ${nodePath}` };
}
