/**
 * `@mplus` in VS Code's chat: streams the sidecar's answer with `stream.markdown`, then the
 * sources as anchors and references. VS Code renders chat markdown with its own sanitiser; the
 * model's text is additionally passed through as untrusted (no command links, no HTML).
 */
import * as vscode from 'vscode';
import type { Source } from '../sidecar/protocol';
import { SidecarManager } from './sidecarManager';
import { partialNote } from './answerText';
import { Situation, situationOf } from './situation';
import { sourceLabel, sourceRange, sourceUri } from './sources';
import { ViewStateStore, coverageLine } from './viewState';

export const PARTICIPANT_ID = 'mplus.participant';

/** A situation in the reply: its words, then its actions as buttons. */
function showSituation(stream: vscode.ChatResponseStream, sit: Situation): void {
  stream.markdown(untrusted(sit.message));
  for (const a of [sit.action, sit.secondary]) if (a) stream.button({ command: a.command, title: a.title, arguments: a.args });
}

function untrusted(text: string): vscode.MarkdownString {
  const md = new vscode.MarkdownString(text, false);
  md.isTrusted = false;
  md.supportHtml = false;
  return md;
}

export function registerChatParticipant(sidecar: SidecarManager, state: ViewStateStore, extensionUri: vscode.Uri, log: vscode.LogOutputChannel): vscode.Disposable | undefined {
  const chat = (vscode as { chat?: typeof vscode.chat }).chat;
  if (!chat || typeof chat.createChatParticipant !== 'function') {
    log.info('VS Code chat API not available: @mplus is not registered (the M+ chat view still works)');
    return undefined;
  }
  const handler: vscode.ChatRequestHandler = async (request, _context, stream, token) => {
    let question = request.prompt.trim();
    if (request.command === 'status') {
      await sidecar.refreshStatus();
      const sit = situationOf(state.get());
      if (sit) showSituation(stream, sit);
      else stream.markdown(untrusted(coverageLine(state.get())));
      return {};
    }
    // M+ cannot answer in this state: say why and offer the fix, instead of failing.
    const blocked = situationOf(state.get());
    if (blocked && blocked.severity !== 'info' && state.get().phase !== 'restarting') {
      showSituation(stream, blocked);
      return {};
    }
    if (!question) {
      stream.markdown('Ask me something about this repository, for example: *where is the configuration parsed?*');
      return {};
    }
    for (const ref of request.references ?? []) {
      const v = ref.value;
      if (v instanceof vscode.Location) {
        const doc = await vscode.workspace.openTextDocument(v.uri);
        question += `\n\n${vscode.workspace.asRelativePath(v.uri)}:\n${doc.getText(v.range)}`;
      }
    }
    stream.progress(coverageLine(state.get()));
    const askId = sidecar.newAskId();
    let sources: Source[] = [];
    const sub = token.onCancellationRequested(() => void sidecar.cancelAsk(askId));
    try {
      const r = await sidecar.ask(question, askId, {
        onToken: (t) => { if (t && !token.isCancellationRequested) stream.markdown(untrusted(t)); },
        onSources: (s) => { sources = s; },
      });
      if (r.sources.length) sources = r.sources;
      if (r.cancelled) stream.markdown('\n\n*(stopped)*');
      const note = partialNote(r.coverage);
      if (note) stream.markdown(untrusted(`\n\n*${note}*`));
      if (sources.length) {
        stream.markdown('\n\n**Sources:** ');
        sources.forEach((s, i) => {
          const uri = sourceUri(s);
          if (!uri) return;
          const loc = new vscode.Location(uri, sourceRange(s));
          if (i) stream.markdown(', ');
          stream.anchor(loc, sourceLabel(s));
          stream.reference(loc);
        });
      }
      return { metadata: { askId, sources: sources.length, coverage: r.coverage } };
    } catch (e) {
      // Shown once, in the reply (errorDetails would show it a second time), with the fix.
      const sit = situationOf(state.get());
      if (sit && sit.severity !== 'info') showSituation(stream, sit);
      else {
        stream.markdown(untrusted(`M+ could not answer: ${(e as Error).message}`));
        stream.button({ command: 'mplus.openLog', title: 'Open Log' });
      }
      return {};
    } finally {
      sub.dispose();
    }
  };
  const p = chat.createChatParticipant(PARTICIPANT_ID, handler);
  p.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
  p.followupProvider = {
    provideFollowups(result: vscode.ChatResult) {
      const n = (result.metadata as { sources?: number } | undefined)?.sources ?? 0;
      const f: vscode.ChatFollowup[] = [{ prompt: 'What does this repository do?', label: 'What does this repository do?' }];
      if (n) f.unshift({ prompt: 'Explain the code in the sources above in more detail.', label: 'Explain the sources in more detail' });
      f.push({ prompt: '', command: 'status', label: 'Show memory status' });
      return f;
    },
  };
  return p;
}
