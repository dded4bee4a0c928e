/**
 * Commands for the end-to-end tests only, registered when the extension host runs with
 * MPLUS_TEST_HOOKS=1 and never contributed in package.json: the product's palette does not list
 * them. The e2e suite binds a key to one in its own user keybindings.json and presses it.
 */
import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';

export const TEST_HOOKS = process.env.MPLUS_TEST_HOOKS === '1';

export function registerTestHooks(chatView: ChatViewProvider): vscode.Disposable[] {
  if (!TEST_HOOKS) return [];
  return [
    // Renders a fixed string through the chat view's real answer path (the escaping test).
    vscode.commands.registerCommand('mplus._renderForTest', async (markdown?: string) => {
      await chatView.reveal();
      chatView.showAnswer('render test', typeof markdown === 'string' ? markdown : RENDER_TEST_INPUT);
    }),
  ];
}

export const RENDER_TEST_INPUT = [
  'Render test: <script>alert(1)</script>',
  '',
  'and <img src=x onerror="document.body.dataset.pwned=1"> and **bold** and `code`',
  '',
  '[click](javascript:alert(2)) <b onmouseover=alert(3)>b</b>',
].join('\n');
