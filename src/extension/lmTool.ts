/**
 * `mplus_askRepository`: a language-model tool so agents can ask the repository's memory.
 * Registered only when the host has `vscode.lm.registerTool`.
 */
import * as vscode from 'vscode';
import type { Source } from '../sidecar/protocol';
import { SidecarManager } from './sidecarManager';
import { sourceLabel } from './sources';

export const TOOL_NAME = 'mplus_askRepository';

interface Input {
  question: string;
}

export function registerLmTool(sidecar: SidecarManager, log: vscode.LogOutputChannel): vscode.Disposable | undefined {
  const lm = (vscode as { lm?: typeof vscode.lm }).lm;
  if (!lm || typeof lm.registerTool !== 'function') return undefined;
  try {
    return lm.registerTool<Input>(TOOL_NAME, {
      prepareInvocation(options) {
        return { invocationMessage: `Asking M+ memory: ${String(options.input?.question ?? '').slice(0, 80)}` };
      },
      async invoke(options, token) {
        const q = String(options.input?.question ?? '').trim();
        if (!q) throw new Error('question must be a non-empty string');
        const askId = sidecar.newAskId();
        const sub = token.onCancellationRequested(() => void sidecar.cancelAsk(askId));
        let sources: Source[] = [];
        try {
          const r = await sidecar.ask(q, askId, { onToken: () => undefined, onSources: (s) => (sources = s) });
          if (r.sources.length) sources = r.sources;
          const text = `${r.answer}\n\nSources: ${sources.map(sourceLabel).join(', ') || 'none'}\n(memory covers ${r.coverage.filesFed}/${r.coverage.filesKnown} files)`;
          return new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(text)]);
        } finally {
          sub.dispose();
        }
      },
    });
  } catch (e) {
    log.warn(`language model tool not registered: ${(e as Error).message}`);
    return undefined;
  }
}
