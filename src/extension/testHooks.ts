/**
 * Hooks for the end-to-end tests only, active when the extension host runs with
 * MPLUS_TEST_HOOKS=1 and never contributed in package.json: the product's palette does not list
 * them. The e2e suite drives the render test by writing the (uncontributed) user setting
 * `mplus.test.render` into its settings.json; a new value renders the fixed input once.
 */
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
  const read = () => vscode.workspace.getConfiguration('mplus').get<unknown>('test.render');
  let last = read();
  return [
    vscode.commands.registerCommand('mplus._renderForTest', render),
    vscode.workspace.onDidChangeConfiguration(() => {
      const now = read();
      if (now === last) return;
      last = now;
      if (typeof now === 'string' && now) void render();
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
