/**
 * Consent before reading a large workspace: above `mplus.feeding.askAboveFiles` files or
 * `mplus.feeding.askAboveTokens` estimated tokens, feeding waits for one click per workspace
 * (remembered in workspaceState). Also remembers the feeding rate measured on this machine, so
 * the next estimate has a time before any reading starts.
 */
import * as vscode from 'vscode';
import type { FeedEstimate } from '../sidecar/protocol';
import { feedSeconds, gb, roughDuration } from './requirements';

const GIVEN = 'mplus.feedingConsent';
const RATE = 'mplus.measuredTokensPerSecond';

export class FeedingConsent {
  constructor(private readonly context: vscode.ExtensionContext) {}

  get given(): boolean {
    return this.context.workspaceState.get<boolean>(GIVEN, false);
  }

  async give(): Promise<void> {
    await this.context.workspaceState.update(GIVEN, true);
  }

  /** Whether this workspace is large enough to ask first (and has not been agreed to). */
  needed(e: FeedEstimate): boolean {
    if (this.given) return false;
    const cfg = vscode.workspace.getConfiguration('mplus');
    const files = cfg.get<number>('feeding.askAboveFiles', 2000);
    const tokens = cfg.get<number>('feeding.askAboveTokens', 2_000_000);
    return (files > 0 && e.files > files) || (tokens > 0 && e.tokens > tokens);
  }

  /** "about 1.2 GB of memory on disk and 3 hours of reading" */
  describe(e: FeedEstimate): string {
    const secs = feedSeconds(e, this.rememberedRate);
    return `${e.tokens.toLocaleString('en-US')} tokens: about ${gb(e.storeBytes)} of memory on disk` + (secs === null ? '' : ` and ${roughDuration(secs)} of reading`);
  }

  get rememberedRate(): number | null {
    return this.context.globalState.get<number>(RATE) ?? null;
  }

  rememberRate(tokensPerSecond: number): void {
    if (tokensPerSecond > 0 && Math.abs((this.rememberedRate ?? 0) - tokensPerSecond) / tokensPerSecond > 0.1) void this.context.globalState.update(RATE, tokensPerSecond);
  }
}
