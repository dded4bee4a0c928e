/**
 * The read gate: the one place a workspace file's text is read for memory — the initial feed, a
 * watcher refresh and the CLI all go through `ReadGate.read`. Discovery decides which files are
 * known; the gate re-applies its rules at read time to the file actually opened, so nothing that
 * changed since (a file swapped for a symlink to /etc/passwd, a file that became binary or grew
 * past the size limit, a key pasted into a known file) can slip through a race.
 *
 * On the open file descriptor (not the path, which can change under us):
 *  1. the path is under a workspace root and its path rules (ignore.ts) still exclude nothing;
 *  2. the opened file's real path (/proc/self/fd on Linux) is inside a workspace root, and is not
 *     a secret by name unless `.mplusignore` names it;
 *  3. it is a regular file (never a FIFO, device or directory; opened non-blocking);
 *  4. it is at most `maxFileBytes` (the read stops one byte past the limit);
 *  5. no NUL byte anywhere, and the first 8 KiB sniff as text (not binary, minified, generated);
 *  6. no secret by content (secrets.ts) unless `.mplusignore` names the file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_MAX_FILE_BYTES, SNIFF_BYTES } from './defaults';
import { sniffContent } from './discovery';
import { IgnoreMatcher } from './ignore';
import { findSecret } from './secrets';

export type GateReason =
  | 'gone' | 'unreadable' | 'outside-roots' | 'ignored' | 'secret' | 'secret-content' | 'not-a-regular-file'
  | 'too-large' | 'binary' | 'minified' | 'generated';

export type GateResult =
  | { ok: true; text: string; size: number; mtimeMs: number }
  | { ok: false; reason: GateReason; detail: string };

export interface ReadGateOptions {
  userIgnore?: string[];
  /** Per file, default 1 MiB (as discovery). */
  maxFileBytes?: number;
}

const O_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

function inside(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

export class ReadGate {
  private readonly roots: Array<{ abs: string; real: string; matcher: IgnoreMatcher }> = [];
  private readonly maxFileBytes: number;

  constructor(roots: string[], private readonly opts: ReadGateOptions = {}) {
    this.maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    for (const r of roots) {
      const abs = path.resolve(r);
      let real: string;
      try {
        real = fs.realpathSync(abs);
      } catch {
        continue; // an unreadable root: nothing under it passes
      }
      this.roots.push({ abs, real, matcher: new IgnoreMatcher(abs, { userIgnore: opts.userIgnore }) });
    }
  }

  /** Forgets cached ignore files (call when a .gitignore/.mplusignore changed). */
  reload(): void {
    for (const r of this.roots) r.matcher.reload();
  }

  /** The root `abs` lies under (deepest first), with its posix relative path. */
  private rootOf(abs: string, which: 'abs' | 'real'): { root: ReadGate['roots'][number]; rel: string } | null {
    let best: { root: ReadGate['roots'][number]; rel: string } | null = null;
    for (const r of this.roots) {
      const base = r[which];
      if (!inside(abs, base)) continue;
      if (!best || base.length > best.root[which].length) best = { root: r, rel: path.relative(base, abs).split(path.sep).join('/') };
    }
    return best;
  }

  read(absPath: string): GateResult {
    const abs = path.resolve(absPath);
    const at = this.rootOf(abs, 'abs');
    if (!at || at.rel === '') return { ok: false, reason: 'outside-roots', detail: 'not under a workspace folder' };
    if (at.root.matcher.isIgnored(abs, false)) {
      const v = at.root.matcher.decide(at.rel, false);
      return { ok: false, reason: v.reason === 'secret' ? 'secret' : 'ignored', detail: v.reason ?? 'an ignored folder' };
    }
    let fd: number;
    try {
      fd = fs.openSync(abs, O_FLAGS);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? { ok: false, reason: 'gone', detail: 'deleted' } : { ok: false, reason: 'unreadable', detail: (e as Error).message };
    }
    try {
      // What was opened, wherever the path pointed at that instant.
      let real: string;
      try {
        real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        real = fs.realpathSync(abs); // no /proc: the path's target now (a narrow race remains)
      }
      const realAt = this.rootOf(real, 'real');
      if (!realAt) return { ok: false, reason: 'outside-roots', detail: `-> ${real}` };
      if (realAt.rel !== at.rel || realAt.root !== at.root) {
        const v = realAt.root.matcher.decide(realAt.rel, false);
        if (v.excluded && v.reason === 'secret') return { ok: false, reason: 'secret', detail: `-> ${realAt.rel}` };
      }
      const st = fs.fstatSync(fd);
      if (!st.isFile()) return { ok: false, reason: 'not-a-regular-file', detail: 'not a regular file' };
      if (st.size > this.maxFileBytes) return { ok: false, reason: 'too-large', detail: `${st.size} bytes (limit ${this.maxFileBytes})` };
      // Read to EOF, at most one byte past the limit (the file may grow after fstat).
      const cap = this.maxFileBytes + 1;
      let buf = Buffer.allocUnsafe(Math.min(cap, Math.max(st.size + 1, 4096)));
      let n = 0;
      for (;;) {
        if (n === buf.length) {
          if (buf.length >= cap) break;
          const bigger = Buffer.allocUnsafe(Math.min(cap, buf.length * 2));
          buf.copy(bigger, 0, 0, n);
          buf = bigger;
        }
        const got = fs.readSync(fd, buf, n, buf.length - n, n);
        if (got === 0) break;
        n += got;
      }
      if (n > this.maxFileBytes) return { ok: false, reason: 'too-large', detail: `over ${this.maxFileBytes} bytes` };
      const data = buf.subarray(0, n);
      const nul = data.indexOf(0);
      if (nul >= 0) return { ok: false, reason: 'binary', detail: `NUL byte at offset ${nul}` };
      const kind = sniffContent(data.subarray(0, SNIFF_BYTES), n <= SNIFF_BYTES);
      if (kind !== 'text') return { ok: false, reason: kind, detail: `${kind} content` };
      const text = data.toString('utf8');
      const secret = findSecret(text);
      if (secret && !at.root.matcher.explicitlyIncluded(at.rel)) {
        return { ok: false, reason: 'secret-content', detail: `contains ${secret.kind} (line ${secret.line}); add "!${at.rel}" to .mplusignore to feed it anyway` };
      }
      return { ok: true, text, size: n, mtimeMs: st.mtimeMs };
    } catch (e) {
      return { ok: false, reason: 'unreadable', detail: (e as Error).message };
    } finally {
      fs.closeSync(fd);
    }
  }
}
