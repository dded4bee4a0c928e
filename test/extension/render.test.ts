/**
 * The chat view renders model output (untrusted text) through renderAnswer. The e2e suite checks
 * the same function inside a real VS Code webview; this pins its rules without a browser.
 */
import * as assert from 'assert';
import { escapeHtml, renderAnswer } from '../../src/extension/render';

describe('extension: rendering answers', () => {
  it('keeps markdown structure: code, emphasis, lists', () => {
    const html = renderAnswer('The `Chunker` splits **files**:\n\n- one\n- two\n\n```ts\nconst a = 1;\n```\n');
    assert.match(html, /<code>Chunker<\/code>/);
    assert.match(html, /<strong>files<\/strong>/);
    assert.match(html, /<li>one<\/li>/);
    assert.match(html, /<pre><code class="language-ts">const a = 1;\n<\/code><\/pre>/);
  });

  it('escapes raw HTML so a model cannot inject script or handlers', () => {
    const html = renderAnswer('<script>alert(1)</script> <img src=x onerror="alert(2)">');
    assert.ok(!/<script/i.test(html), html);
    assert.ok(!/<img/i.test(html), html);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  it('turns off links and images, including autolinks and references', () => {
    const html = renderAnswer(
      '[click](javascript:alert(1)) ![i](http://x/y.png) <http://example.com> [r][1]\n\n[1]: http://evil/',
    );
    assert.ok(!/<a\b/i.test(html), html);
    assert.ok(!/<img\b/i.test(html), html);
    assert.ok(!/href=/i.test(html), html);
  });

  it('escapes text for attributes', () => {
    assert.strictEqual(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});
