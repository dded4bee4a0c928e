/**
 * The one rule for where a workspace's memory store lives, shared by the CLI and the extension
 * (which only choose the parent folder): `<parent>/<first folder's name>-<16 hex of sha256 of
 * the folder paths, one per line>`. One store per workspace (stores are locked by one sidecar);
 * never inside the repository. No imports beyond Node, so any client may use it.
 */
import * as crypto from 'crypto';
import * as os from 'os';
import * as path from 'path';

export function storeDirUnder(parent: string, folders: readonly string[]): string {
  if (!folders.length) throw new Error('a memory store belongs to a workspace: no folder given');
  const abs = folders.map((f) => path.resolve(f));
  const id = crypto.createHash('sha256').update(abs.join('\n')).digest('hex').slice(0, 16);
  return path.join(parent, `${path.basename(abs[0]).replace(/[^\w.-]/g, '_')}-${id}`);
}

/** The CLI's parent for stores: the user's cache ($XDG_CACHE_HOME or ~/.cache) /mplus/stores. */
export function defaultStoreParent(): string {
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'mplus', 'stores');
}
