/**
 * The typed facade over the sidecar's protocol for the rest of the extension: ask (with streamed
 * tokens and sources routed to the caller), cancel, forget, pause/resume, feed, rebuild, status,
 * focus. One method per request; each waits for the sidecar when it must, and none touches the
 * memory store's files (Rebuild is the sidecar's `mplus/rebuild`).
 */
import * as vscode from 'vscode';
import type { MessageConnection } from 'vscode-jsonrpc';
import {
  AnswerSources, AnswerToken, Ask, AskResult, Cancel, ErrorCodes, Focus, Forget, ForgetResult, Ingest, IngestResult, Rebuild, RebuildResult,
  SetPaused, Source, Status, StatusResult,
} from '../sidecar/protocol';
import { readSettings } from './settings';
import { SidecarSupervisor } from './supervisor';
import { UiStateAdapter } from './uiState';

export interface AskCallbacks {
  onToken(text: string): void;
  onSources(sources: Source[]): void;
}

export class MemoryClient {
  private readonly asks = new Map<string, AskCallbacks>();
  private askSeq = 0;
  private ingesting: Promise<IngestResult | null> | null = null;
  private lastFocus = '';

  constructor(
    private readonly sup: SidecarSupervisor,
    private readonly ui: UiStateAdapter,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Routes a connection's answer notifications to the asks waiting for them. */
  wire(c: MessageConnection): void {
    c.onNotification(AnswerToken, (p) => this.asks.get(p.askId)?.onToken(p.text));
    c.onNotification(AnswerSources, (p) => this.asks.get(p.askId)?.onSources(p.sources));
  }

  /** The sidecar is gone: nothing more will stream to the open asks. */
  exited(): void {
    for (const cb of this.asks.values()) cb.onToken('');
  }

  async status(): Promise<StatusResult | null> {
    const c = this.sup.connectionIfReady();
    if (!c) return null;
    try {
      return await c.sendRequest(Status);
    } catch (e) {
      // A sidecar going away mid-request: the exit handler reports that; say why at debug.
      this.log.debug(`status: ${(e as Error).message}`);
      return null;
    }
  }

  /** Feeds the whole workspace; one feeding request at a time (null when one is running). */
  ingestAll(): Promise<IngestResult | null> {
    if (this.ingesting) return Promise.resolve(null);
    const c = this.sup.connectionIfReady();
    if (!c) return Promise.resolve(null);
    const job = (async () => {
      try {
        const r = await c.sendRequest(Ingest, { paths: 'all' });
        this.log.info(`feeding done: ${r.filesDone} file(s), ${r.chunksInjected} chunk(s) injected, ${r.chunksSkipped} unchanged${r.cancelled ? ' (cancelled)' : ''}`);
        for (const e of r.errors) this.log.warn(`not fed: ${e.path}: ${e.message}`);
        return r;
      } catch (e) {
        if (this.sup.connectionIfReady() === c) this.log.error(`feeding failed: ${(e as Error).message}`);
        if (this.sup.connectionIfReady() === c && (e as { code?: number }).code === ErrorCodes.StoreDamaged) this.sup.offerRebuild((e as Error).message);
        return null;
      } finally {
        this.ingesting = null;
        // settle the phase even when the job fed nothing (no state change was sent)
        void this.ui.refreshStatus().then((st) => {
          if (st && this.sup.connectionIfReady() === c && this.ui.view.get().phase === 'feeding' && st.state !== 'ingesting') this.ui.applyServerState(st.state);
        });
      }
    })();
    this.ingesting = job;
    return job;
  }

  newAskId(): string {
    return `ask-${Date.now().toString(36)}-${++this.askSeq}`;
  }

  async ask(question: string, askId: string, cb: AskCallbacks, maxTokens = readSettings().maxTokens): Promise<AskResult> {
    await this.sup.whenReady();
    this.asks.set(askId, cb);
    try {
      return await this.sup.connection().sendRequest(Ask, { question, askId, maxTokens });
    } catch (e) {
      // Damage found while answering (a Θ row failing its checksum): offer Rebuild, as at startup.
      if ((e as { code?: number }).code === ErrorCodes.StoreDamaged) this.sup.offerRebuild((e as Error).message);
      throw e;
    } finally {
      this.asks.delete(askId);
    }
  }

  /** Stops an answer; the ask's own request then resolves with `cancelled: true`. */
  async cancelAsk(askId: string): Promise<void> {
    const c = this.sup.connectionIfReady();
    if (!c) return;
    try {
      await c.sendRequest(Cancel, { target: { askId } });
    } catch (e) {
      this.log.debug(`cancel ${askId}: ${(e as Error).message}`);
    }
  }

  async forget(paths: string[]): Promise<ForgetResult> {
    await this.sup.whenReady();
    const r = await this.sup.connection().sendRequest(Forget, { paths });
    await this.ui.refreshStatus();
    return r;
  }

  /** Re-add to Memory: the sidecar feeds the named files again, forgotten or not. */
  async readd(paths: string[]): Promise<IngestResult> {
    await this.sup.whenReady();
    if (this.ui.view.get().feedingBlocked) throw new Error(this.ui.view.get().feedingBlocked === 'untrusted'
      ? 'this workspace is not trusted: M+ does not read its files. Trust it first.'
      : 'feeding is turned off (mplus.feeding.enabled): turn it on to add files to memory');
    const r = await this.sup.connection().sendRequest(Ingest, { paths });
    await this.ui.refreshStatus();
    return r;
  }

  async setPaused(paused: boolean): Promise<StatusResult> {
    await this.sup.whenReady();
    if (!paused && this.ui.view.get().feedingBlocked === 'untrusted') throw new Error('this workspace is not trusted: M+ does not feed it');
    const st = await this.sup.connection().sendRequest(SetPaused, { paused });
    this.ui.view.update({ status: st, coverage: st.coverage, feedingBlocked: undefined });
    this.ui.applyServerState(st.state);
    if (!paused) void this.ingestAll();
    return st;
  }

  /** Rebuild Memory: the sidecar moves the store aside under its lock and starts empty; then feed again. */
  async rebuild(): Promise<RebuildResult> {
    await this.sup.whenReady();
    const r = await this.sup.connection().sendRequest(Rebuild);
    this.log.info(`rebuild: the previous memory store was moved to ${r.movedTo ?? '(none)'} (kept; delete it when no longer needed)`);
    this.ui.view.update({ status: r.status, coverage: r.status.coverage, progress: undefined, refresh: undefined });
    // The feeding request the rebuild cancelled must have returned before a new one is sent.
    await this.ingesting;
    if (this.sup.feeding) void this.ingestAll();
    else this.ui.applyServerState(r.status.state);
    return r;
  }

  /** Tells the sidecar which files the user is looking at (fed first). */
  sendFocus(force = false, first?: string): void {
    const c = this.sup.connectionIfReady();
    if (!c) return;
    const paths: string[] = [];
    const add = (u: vscode.Uri | undefined) => {
      if (u && u.scheme === 'file' && !paths.includes(u.fsPath)) paths.push(u.fsPath);
    };
    if (first) paths.push(first);
    add(vscode.window.activeTextEditor?.document.uri);
    for (const e of vscode.window.visibleTextEditors) add(e.document.uri);
    for (const g of vscode.window.tabGroups.all) {
      for (const t of g.tabs) if (t.input instanceof vscode.TabInputText) add(t.input.uri);
    }
    const key = paths.join('\n');
    if (!force && key === this.lastFocus) return;
    this.lastFocus = key;
    c.sendNotification(Focus, { paths }).catch((e: Error) => this.log.debug(`focus: ${e.message}`));
  }
}
