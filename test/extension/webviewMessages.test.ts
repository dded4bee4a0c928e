/** What the chat view accepts from its webview (src/extension/webviewMessages.ts). */
import * as assert from 'assert';
import { parseFromWebview } from '../../src/extension/webviewMessages';

describe('chat view messages from the webview', () => {
  it('accepts exactly the known shapes', () => {
    assert.deepStrictEqual(parseFromWebview({ type: 'ready' }), { type: 'ready' });
    assert.deepStrictEqual(parseFromWebview({ type: 'ask', question: 'where?' }), { type: 'ask', question: 'where?' });
    assert.deepStrictEqual(parseFromWebview({ type: 'open', askId: 'a', index: 2, extra: 1 }), { type: 'open', askId: 'a', index: 2 });
    assert.deepStrictEqual(parseFromWebview({ type: 'command', command: 'mplus.openLog' }), { type: 'command', command: 'mplus.openLog' });
  });

  it('refuses anything else', () => {
    for (const bad of [null, 'ask', 3, {}, { type: 'ask' }, { type: 'ask', question: '   ' }, { type: 'open', askId: 'a', index: -1 },
      { type: 'open', askId: 'a', index: 1.5 }, { type: 'open', index: 0 }, { type: 'command', command: 7 }, { type: 'eval', code: 'x' }]) {
      assert.strictEqual(parseFromWebview(bad), null, JSON.stringify(bad));
    }
  });
});
