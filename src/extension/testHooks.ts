/**
 * Hooks for the end-to-end tests only, active when the extension host runs with
 * MPLUS_TEST_HOOKS=1 and never contributed in package.json: the product's palette does not list
 * them. The e2e suite drives the render test by writing the file MPLUS_TEST_RENDER_TRIGGER names
 * (each change renders the fixed input once): a key bound in a user keybindings.json written after
 * start, and a change to an uncontributed setting, were both not seen in code-server.
 */
import * as fs from 'fs';
import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';

export const TEST_HOOKS = process.env.MPLUS_TEST_HOOKS === '1';

export function registerTestHooks(chatView: ChatViewProvider): vscode.Disposable[] {
  if (!TEST_HOOKS) return [];
  // Renders a fixed string through the chat view's real answer path (the escaping test).
  const render = async (markdown?: string) => {
    await chatView.reveal();
    chatView.showAnswer('render test', typeof markdown === 'string' ? markdown : RENDER_TEST_INPUT);
  };
  const hooks: vscode.Disposable[] = [vscode.commands.registerCommand('mplus._renderForTest', render)];
  const trigger = process.env.MPLUS_TEST_RENDER_TRIGGER;
  if (trigger) {
    // Polls the file's stat (it need not exist yet); a new modification time renders.
    const onChange = (now: fs.Stats, before: fs.Stats) => {
      if (now.mtimeMs > 0 && now.mtimeMs !== before.mtimeMs) void render();
    };
    fs.watchFile(trigger, { interval: 250 }, onChange);
    hooks.push({ dispose: () => fs.unwatchFile(trigger, onChange) });
  }
  return hooks;
}

export const RENDER_TEST_INPUT = [
  'Render test: <script>alert(1)</script>',
  '',
  'and <img src=x onerror="document.body.dataset.pwned=1"> and **bold** and `code`',
  '',
  '[click](javascript:alert(2)) <b onmouseover=alert(3)>b</b>',
].join('\n');
