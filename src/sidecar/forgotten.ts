/**
 * What the user told memory to forget (Forget File/Folder), so that it stays forgotten: feeding,
 * the watcher, a restart or a resume skip these files until the user re-adds them. Entries are
 * workspace keys of files or folders (a forgotten folder also covers files created in it later).
 * Committed with the store (the manifest's `extra.forgotten`), so it lasts as long as memory does.
 */
import { WorkspacePaths } from './paths';

export class ForgottenPaths {
  private entries: string[];

  constructor(committed: unknown = []) {
    this.entries = Array.isArray(committed) ? committed.filter((x): x is string => typeof x === 'string') : [];
    this.normalize();
  }

  /** True when `key` is a forgotten file or lies in a forgotten folder. */
  has(key: string): boolean {
    return this.entries.some((e) => WorkspacePaths.within(key, e));
  }

  /** Records user-forgotten keys (an entry inside a forgotten folder adds nothing new). */
  add(keys: string[]): void {
    this.entries.push(...keys);
    this.normalize();
  }

  /**
   * The user re-adds `keys` (files or folders): entries inside them go. Re-adding a file inside a
   * forgotten folder replaces the folder's entry by its other files as discovery lists them now
   * (`known`), so only what was asked for comes back. Returns whether any entry changed.
   */
  readd(keys: string[], known: Iterable<string>): boolean {
    const before = this.entries.join('\n');
    const knownKeys = [...known];
    for (const k of keys) {
      const next: string[] = [];
      for (const e of this.entries) {
        if (WorkspacePaths.within(e, k)) continue; // the entry itself, or inside the re-added folder
        if (WorkspacePaths.within(k, e)) {
          next.push(...knownKeys.filter((f) => WorkspacePaths.within(f, e) && !WorkspacePaths.within(f, k)));
          continue;
        }
        next.push(e);
      }
      this.entries = next;
    }
    this.normalize();
    return this.entries.join('\n') !== before;
  }

  list(): string[] {
    return [...this.entries];
  }

  get size(): number {
    return this.entries.length;
  }

  /** Sorted, each once, none inside another entry. */
  private normalize(): void {
    const sorted = [...new Set(this.entries)].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    const kept: string[] = [];
    for (const e of sorted) if (!kept.some((k) => WorkspacePaths.within(e, k))) kept.push(e);
    this.entries = kept.sort();
  }
}
