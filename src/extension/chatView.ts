/**
 * The chat webview view ("M+ Memory" container → "Ask" view): question box, streamed answer,
 * stop button, sources as links, and a header with memory coverage. Model output is rendered to
 * HTML here, in the extension host, by `renderAnswer` (escaped markdown); the webview script only
 * inserts that HTML and builds everything else with textContent.
 */
import * as crypto from 'crypto';
import * as vscode from 'vscode';
import type { Source } from '../sidecar/protocol';
import { Quote, partialNote, quoteMarkdown } from './answerText';
import { renderAnswer } from './render';
import { SidecarManager } from './sidecarManager';
import { openSource, sourceLabel } from './sources';
import { situationOf } from './situation';
import { ViewStateStore, coverageLine } from './viewState';
import { FromWebview, ToWebview, parseFromWebview } from './webviewMessages';

export const VIEW_ID = 'mplus.chatView';

interface Entry {
  askId: string;
  question: string;
  quote: string | null;
  /** Set when memory did not cover the whole workspace when it answered. */
  note?: string;
  text: string;
  sources: Source[];
  done: boolean;
  cancelled?: boolean;
  error?: string;
}

const ALLOWED_COMMANDS = new Set(['mplus.openLog', 'mplus.showStatus', 'mplus.restartSidecar', 'mplus.rebuild', 'mplus.pause', 'mplus.resume']);

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | null = null;
  private readonly entries: Entry[] = [];
  private current: Entry | null = null;
  private renderTimer: NodeJS.Timeout | null = null;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly sidecar: SidecarManager,
    private readonly state: ViewStateStore,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(state.onDidChange(() => this.postHeader()));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = this.html(view.webview, media);
    view.webview.onDidReceiveMessage((raw: unknown) => {
      const m = parseFromWebview(raw);
      if (m) void this.onMessage(m);
      else this.log.warn(`chat view: ignored a malformed message ${JSON.stringify(raw)?.slice(0, 200)}`);
    }, undefined, this.disposables);
    view.onDidDispose(() => { if (this.view === view) this.view = null; }, undefined, this.disposables);
  }

  private html(webview: vscode.Webview, media: vscode.Uri): string {
    const nonce = crypto.randomBytes(16).toString('base64');
    const css = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css'));
    const js = webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js'));
    const csp = `default-src 'none'; script-src 'nonce-${nonce}'; style-src ${webview.cspSource}; font-src ${webview.cspSource}; img-src 'none'; connect-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'`;
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<title>M+ Repository Memory</title>
</head>
<body>
<header id="header" role="status" aria-live="polite"><span id="coverage">M+ is starting…</span><div id="actions"></div></header>
<main id="log" aria-live="polite" aria-label="Answers"></main>
<form id="form" autocomplete="off">
  <label for="question" class="visually-hidden">Ask about this repository</label>
  <textarea id="question" rows="3" placeholder="Ask about this repository (Enter to ask, Shift+Enter for a new line, Escape to stop)"></textarea>
  <div class="buttons">
    <button id="ask" type="submit" title="Ask (Enter)">Ask</button>
    <button id="stop" type="button" class="secondary" title="Stop the answer (Escape)" disabled>Stop</button>
  </div>
</form>
<script nonce="${nonce}" src="${js}"></script>
</body>
</html>`;
  }

  private post(msg: ToWebview): void {
    void this.view?.webview.postMessage(msg);
  }

  private postHeader(): void {
    const v = this.state.get();
    const sit = situationOf(v);
    const actions = [sit?.action, sit?.secondary].filter((a) => !!a).map((a) => a!.title);
    this.post({ type: 'header', text: coverageLine(v), phase: v.phase, actions });
  }

  /** Runs action `index` of the situation shown now (the webview names an index, never a command). */
  private async runAction(index: number): Promise<void> {
    const sit = situationOf(this.state.get());
    const a = [sit?.action, sit?.secondary].filter((x) => !!x)[index];
    if (a) await vscode.commands.executeCommand(a.command, ...(a.args ?? []));
  }

  private async onMessage(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.postHeader();
        for (const e of this.entries) this.postEntry(e);
        break;
      case 'ask':
        await this.ask(m.question.trim());
        break;
      case 'stop':
        await this.stop();
        break;
      case 'open': {
        const e = this.entries.find((x) => x.askId === m.askId);
        const s = e?.sources[m.index];
        if (s) await openSource(s).catch((err) => this.log.error(`cannot open ${s.path}: ${(err as Error).message}`));
        break;
      }
      case 'command':
        if (ALLOWED_COMMANDS.has(m.command)) await vscode.commands.executeCommand(m.command);
        break;
      case 'action':
        await this.runAction(m.index);
        break;
    }
  }

  /** Shows the view (revealing its container). */
  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
    const end = Date.now() + 5000;
    while (!this.view && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }

  /**
   * Asks `question`, streaming the answer into the view. With `quote`, the question is about that
   * code: the view shows it as a quoted code block under the question, and the model gets both.
   */
  async ask(question: string, quote?: Quote): Promise<void> {
    if (this.current && !this.current.done) await this.stop();
    const askId = this.sidecar.newAskId();
    const e: Entry = { askId, question, quote: quote ? renderAnswer(quoteMarkdown(quote)) : null, text: '', sources: [], done: false };
    this.begin(e);
    const full = quote ? `${question}\n\nAbout this code from ${quote.where}:\n\n${quote.code}` : question;
    try {
      const r = await this.sidecar.ask(full, askId, {
        onToken: (t) => this.append(e, t),
        onSources: (s) => this.setSources(e, s),
      });
      // The result is authoritative (a token notification may arrive after the response).
      if (r.answer && r.answer.length >= e.text.length) e.text = r.answer;
      if (r.sources.length) e.sources = r.sources;
      e.note = partialNote(r.coverage) ?? undefined;
      this.finish(e, { cancelled: r.cancelled });
    } catch (err) {
      // When M+ cannot answer because of its state, say that state's words (the header offers its fix).
      const sit = situationOf(this.state.get());
      this.finish(e, { error: sit && sit.severity !== 'info' ? sit.message : (err as Error).message });
    }
  }

  /** Test hook and replay: pushes a fixed answer through the same render path as streamed ones. */
  showAnswer(question: string, markdown: string, sources: Source[] = []): void {
    const e: Entry = { askId: `test-${Date.now().toString(36)}`, question, quote: null, text: '', sources: [], done: false };
    this.begin(e);
    this.append(e, markdown);
    this.setSources(e, sources);
    this.finish(e, {});
  }

  async stop(): Promise<void> {
    const e = this.current;
    if (!e || e.done) return;
    await this.sidecar.cancelAsk(e.askId);
  }

  private begin(e: Entry): void {
    this.entries.push(e);
    if (this.entries.length > 50) this.entries.shift();
    this.current = e;
    this.post({ type: 'start', askId: e.askId, question: e.question, quote: e.quote });
  }

  private append(e: Entry, t: string): void {
    if (!t || e.done) return;
    e.text += t;
    if (!this.renderTimer) {
      this.renderTimer = setTimeout(() => {
        this.renderTimer = null;
        if (!e.done) this.post({ type: 'answer', askId: e.askId, html: renderAnswer(e.text) });
      }, 40);
    }
  }

  private setSources(e: Entry, s: Source[]): void {
    e.sources = s;
    this.post({ type: 'sources', askId: e.askId, sources: s.map((x) => ({ label: sourceLabel(x), weight: x.weight })) });
  }

  private finish(e: Entry, r: { cancelled?: boolean; error?: string }): void {
    e.done = true;
    e.cancelled = r.cancelled;
    e.error = r.error;
    if (this.current === e) this.current = null;
    this.postEntry(e);
  }

  /** Sends an entry's full state (after it finished, or when the view reloads). */
  private postEntry(e: Entry): void {
    this.post({
      type: 'entry', askId: e.askId, question: e.question, quote: e.quote, html: renderAnswer(e.text), done: e.done,
      cancelled: !!e.cancelled, error: e.error ?? null, note: e.note ?? null,
      sources: e.sources.map((x) => ({ label: sourceLabel(x), weight: x.weight })),
    });
  }

  dispose(): void {
    if (this.renderTimer) clearTimeout(this.renderTimer);
    for (const d of this.disposables) d.dispose();
  }
}

