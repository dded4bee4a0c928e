/**
 * Consent before reading a large workspace: above `mplus.feeding.askAboveFiles` files or
 * `mplus.feeding.askAboveTokens` estimated tokens, feeding waits for one click per workspace
 * (remembered in workspaceState). Also remembers the feeding rate measured on this machine for
 * the model, device and precision in use (feedRate.ts), so the next estimate has a time before
 * any reading starts.
 */
import * as vscode from 'vscode';
import type { FeedEstimate } from '../sidecar/protocol';
import { RateTable, withRate } from './feedRate';
import { feedSeconds, gb, roughDuration } from './requirements';

const GIVEN = 'mplus.feedingConsent';
const RATES = 'mplus.measuredTokensPerSecondByModel';

export class FeedingConsent {
  /** `rateKey`: the model, device and precision M+ runs now (feedRate.ts's rateKey). */
  constructor(private readonly context: vscode.ExtensionContext, private readonly rateKey: () => string) {}

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

  /** The rate measured with the model, device and precision in use now, or null. */
  get rememberedRate(): number | null {
    return this.rates()[this.rateKey()] ?? null;
  }

  rememberRate(tokensPerSecond: number): void {
    const next = withRate(this.rates(), this.rateKey(), tokensPerSecond);
    if (next) void this.context.globalState.update(RATES, next);
  }

  private rates(): RateTable {
    return this.context.globalState.get<RateTable>(RATES) ?? {};
  }
}
