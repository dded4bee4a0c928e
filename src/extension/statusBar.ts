/** The one status bar item: feeding n/m with %, ready, paused, error; its tooltip is a command menu. */
import * as vscode from 'vscode';
import { ViewState, ViewStateStore, coverageLine, percent } from './viewState';

const MENU: Array<[string, string]> = [
  ['mplus.ask', 'Ask about repository'],
  ['mplus.showStatus', 'Show memory status'],
  ['mplus.pause', 'Pause feeding'],
  ['mplus.resume', 'Resume feeding'],
  ['mplus.rebuild', 'Rebuild memory'],
  ['mplus.restartSidecar', 'Restart sidecar'],
  ['mplus.openLog', 'Open log'],
];

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('mplus.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;

  constructor(private readonly state: ViewStateStore) {
    this.item.name = 'M+ Repository Memory';
    this.item.command = 'mplus.showStatus';
    this.sub = state.onDidChange((s) => this.draw(s));
    this.draw(state.get());
    this.item.show();
  }

  static text(s: ViewState): { text: string; error?: boolean; warning?: boolean } {
    const c = s.coverage;
    const cov = c ? ` ${c.filesFed}/${c.filesKnown}` : '';
    switch (s.phase) {
      case 'off': return { text: '$(circle-slash) M+' };
      case 'needsModel': return { text: '$(warning) M+ no model', warning: true };
      case 'untrusted': return { text: '$(shield) M+ untrusted', warning: true };
      case 'starting': return { text: '$(loading~spin) M+ starting' };
      case 'restarting': return { text: '$(loading~spin) M+ restarting', warning: true };
      case 'error': return { text: '$(error) M+ error', error: true };
      case 'paused': return { text: `$(debug-pause) M+ paused${cov}` };
      case 'answering': return { text: `$(comment-discussion) M+ answering${cov}` };
      case 'feeding': {
        const p = s.progress;
        if (s.refresh && !s.refresh.done) return { text: `$(sync~spin) M+ refreshing ${s.refresh.file}` };
        if (p && p.filesTotal) return { text: `$(sync~spin) M+ feeding ${p.filesDone}/${p.filesTotal} (${percent(p.filesDone, p.filesTotal)}%)` };
        return { text: '$(sync~spin) M+ feeding' };
      }
      case 'ready':
      default:
        return { text: `$(check) M+ ready${cov}` };
    }
  }

  private draw(s: ViewState): void {
    const t = StatusBar.text(s);
    this.item.text = t.text;
    this.item.backgroundColor = t.error
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : t.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = { enabledCommands: MENU.map(([c]) => c) };
    md.appendMarkdown('**M+ Repository Memory**\n\n');
    md.appendText(coverageLine(s) + (s.detail && s.phase !== 'error' ? ` (${s.detail})` : '') + '\n');
    if (s.device) md.appendMarkdown(`\n\nDevice: `).appendText(s.device.description);
    const p = s.progress;
    if (s.phase === 'feeding' && p) {
      md.appendMarkdown('\n\n');
      md.appendText(`${p.filesDone}/${p.filesTotal} files, ${p.chunksDone}/${p.chunksTotal} chunks, ${p.tokensPerSecond.toFixed(0)} tokens/s` +
        (p.etaSeconds !== null ? `, about ${Math.ceil(p.etaSeconds)} s left` : ''));
    }
    md.appendMarkdown('\n\n---\n\n');
    md.appendMarkdown(MENU.filter(([c]) => (c === 'mplus.pause' ? s.phase !== 'paused' : c === 'mplus.resume' ? s.phase === 'paused' : true))
      .map(([c, label]) => `[${label}](command:${c})`).join('  \n'));
    this.item.tooltip = md;
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
