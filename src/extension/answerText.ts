/**
 * Text that goes around an answer: the selection a question is about (a quoted code block with
 * its file and lines) and the caveat of an answer from partial memory. Shared by the Ask view and
 * `@mplus`. No `vscode` import: tested directly.
 */

/** The code a question is about: a selection, with where it is from. */
export interface Quote {
  /** "src/a.ts:3-7" */
  where: string;
  code: string;
  /** VS Code language id, for the fence's info string. */
  language: string;
}

/** A selection as markdown: its place, then a fenced block longer than any backtick run in it. */
export function quoteMarkdown(q: Quote): string {
  const longest = Math.max(2, ...[...q.code.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${q.where}\n\n${fence}${q.language.replace(/[^\w+-]/g, '')}\n${q.code.replace(/\n$/, '')}\n${fence}\n`;
}

/** "memory covered 40/99 files when this was answered", or null when it covered them all. */
export function partialNote(c: { filesFed: number; filesKnown: number; feeding: boolean }): string | null {
  if (c.filesFed >= c.filesKnown) return null;
  return `Memory covered ${c.filesFed}/${c.filesKnown} files when this was answered${c.feeding ? ' (still reading the rest)' : ''}: the answer may miss what is in the others.`;
}
