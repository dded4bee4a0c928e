/**
 * The one status bar item: feeding n/m with the time left, ready, paused, error; its tooltip says
 * what is going on in plain words, offers the action that fixes a problem first, then the menu.
 */
import * as vscode from 'vscode';
import { SITUATION_COMMANDS, situationOf } from './situation';
import { ViewState, ViewStateStore, coverageLine, duration, percent } from './viewState';

const MENU: Array<[string, string]> = [
  ['mplus.ask', 'Ask about repository'],
  ['mplus.showStatus', 'Show memory status'],
  ['mplus.pause', 'Pause feeding'],
  ['mplus.resume', 'Resume feeding'],
  ['mplus.rebuild', 'Rebuild memory…'],
  ['mplus.restartSidecar', 'Restart M+'],
  ['mplus.openLog', 'Open log'],
];

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('mplus.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;

  constructor(private readonly state: ViewStateStore, private readonly requirements: () => string | null = () => null) {
    this.item.name = 'M+ Repository Memory';
    this.item.command = 'mplus.showStatus';
    this.sub = state.onDidChange((s) => this.draw(s));
    this.draw(state.get());
    this.item.show();
  }

  static text(s: ViewState): { text: string; error?: boolean; warning?: boolean } {
    const c = s.coverage;
    const cov = c ? ` ${c.filesFed}/${c.filesKnown}` : '';
    // Feeding goes on while a question is answered: say both.
    const feeding = c?.feeding && c.filesFed < c.filesKnown ? ` · feeding${cov}` : '';
    switch (s.phase) {
      case 'off': return { text: '$(circle-slash) M+' };
      case 'needsModel': return { text: '$(warning) M+ no model', warning: true };
      case 'untrusted': return { text: '$(shield) M+ untrusted', warning: true };
      case 'starting': return { text: '$(loading~spin) M+ starting' };
      case 'restarting': return { text: '$(loading~spin) M+ restarting', warning: true };
      case 'error': return { text: '$(error) M+ error', error: true };
      case 'paused': return { text: `$(debug-pause) M+ paused${cov}` };
      case 'answering': return { text: `$(comment-discussion) M+ answering${feeding || cov}` };
      case 'feeding': {
        if (s.refresh && !s.refresh.done) return { text: `$(sync~spin) M+ refreshing ${s.refresh.file}` };
        const p = s.progress;
        const eta = p && p.etaSeconds !== null && p.etaSeconds > 0 && p.filesDone < p.filesTotal ? ` · ${duration(p.etaSeconds)}` : '';
        if (c && c.filesKnown) return { text: `$(sync~spin) M+ feeding${cov} (${percent(c.filesFed, c.filesKnown)}%)${eta}` };
        return { text: '$(sync~spin) M+ feeding' };
      }
      case 'ready':
      default:
        if (s.consent) return { text: `$(question) M+ waiting${cov}`, warning: true };
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
    md.isTrusted = { enabledCommands: [...MENU.map(([c]) => c), ...SITUATION_COMMANDS] };
    md.appendMarkdown('**M+ Repository Memory**\n\n');
    const sit = situationOf(s);
    md.appendText(sit && s.phase !== 'paused' && !s.consent ? sit.message : coverageLine(s));
    for (const a of [sit?.action, sit?.secondary]) {
      if (a) md.appendMarkdown(`\n\n[$(arrow-right) ${a.title}](command:${a.command}${a.args ? `?${encodeURIComponent(JSON.stringify(a.args))}` : ''})`);
    }
    if (s.device) md.appendMarkdown(`\n\nDevice: `).appendText(s.device.description);
    const p = s.progress;
    if (s.coverage?.feeding && p) {
      md.appendMarkdown('\n\n');
      md.appendText(`${p.chunksDone}/${p.chunksTotal} pieces of ${p.filesTotal} files read, ${p.tokensPerSecond.toFixed(0)} tokens/s` +
        (p.etaSeconds !== null && p.etaSeconds > 0 ? `, about ${duration(p.etaSeconds)} left` : ''));
    }
    const req = this.requirements();
    if (req) md.appendMarkdown('\n\n').appendText(req);
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
