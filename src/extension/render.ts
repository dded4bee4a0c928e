/**
 * Renders model output (untrusted) to HTML for the chat webview. markdown-it with `html: false`
 * escapes every tag in the input, so `<script>` or `<img onerror>` arrive as text; links and
 * images are switched off too (a model must not make the webview fetch or navigate anywhere),
 * and the webview's CSP forbids everything but our own nonce'd script and stylesheet anyway.
 * The test hook `mplus._renderForTest` goes through this exact function.
 */
import MarkdownIt from 'markdown-it';

type Md = ReturnType<typeof MarkdownIt>;
let md: Md | null = null;

function renderer(): Md {
  if (!md) {
    md = MarkdownIt({ html: false, linkify: false, typographer: false, breaks: false });
    md.disable(['image', 'link', 'autolink', 'reference']);
    md.validateLink = () => false;
  }
  return md;
}

/** Markdown → safe HTML (all raw HTML escaped, no links, no images). */
export function renderAnswer(markdown: string): string {
  return renderer().render(markdown);
}

/** Escapes text for use inside HTML. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
