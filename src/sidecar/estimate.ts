/**
 * "Know before you start": what feeding this workspace will cost, before it is fed. Tokens come
 * from the workspace's bytes at a bytes-per-token ratio measured on a sample of its own files
 * (code and prose differ); chunks from the chunker's typical size; the memory store from the
 * Θ rows those chunks write, up to the capacity policy; time from a measured feeding rate.
 */

export interface FeedEstimate {
  files: number;
  bytes: number;
  /** Tokens the workspace holds (estimated from its bytes). */
  tokens: number;
  /** Memory store size when everything is fed, bytes (Θ values, keys and bookkeeping, plus θ). */
  storeBytes: number;
  /** Seconds to feed what is not fed yet at the rate measured on this machine; null before any feeding. */
  feedSeconds: number | null;
  /** The rate that feedSeconds used, tokens per second (this process's last feeding); null when none yet. */
  tokensPerSecond: number | null;
}

export interface EstimateInputs {
  files: number;
  bytes: number;
  /** Bytes of the workspace's own text per token (sampled; see sampleBytesPerToken). */
  bytesPerToken: number;
  /** Share of the workspace already in memory, 0..1 (its bytes). */
  fedShare: number;
  /** Memory tokens one injection writes per layer (K). */
  tokensPerInjection: number;
  /** Tokens of text per injection (the chunker's typical chunk). */
  tokensPerChunk: number;
  /** Bytes of one Θ row over all layers (values, keys, bookkeeping). */
  rowBytes: number;
  /** Θ rows per layer the capacity policy keeps at most. */
  maxRows: number;
  /** θ's bytes (fixed: it is there whatever is fed). */
  thetaBytes: number;
  tokensPerSecond: number | null;
}

/**
 * Typical chunk: this repository fed 195,600 tokens in 1,870 chunks, 105 tokens each
 * (BENCHMARKS.md, "chunks / repository tokens injected"); the chunker merges up to 128.
 */
export const TYPICAL_CHUNK_TOKENS = 105;
/** Θ per layer under the spec's recall-frequency expiry settles near this many rows (DESIGN.md). */
export const SPEC_STEADY_ROWS = 150_000;

export function estimateFeeding(x: EstimateInputs): FeedEstimate {
  const tokens = Math.round(x.bytes / Math.max(1, x.bytesPerToken));
  const chunks = Math.ceil(tokens / x.tokensPerChunk);
  const rows = Math.min(chunks * x.tokensPerInjection, x.maxRows);
  const left = tokens * (1 - Math.min(1, Math.max(0, x.fedShare)));
  return {
    files: x.files, bytes: x.bytes, tokens,
    storeBytes: Math.round(rows * x.rowBytes + x.thetaBytes),
    feedSeconds: x.tokensPerSecond && x.tokensPerSecond > 0 ? left / x.tokensPerSecond : null,
    tokensPerSecond: x.tokensPerSecond,
  };
}

/**
 * The bytes-per-token ratio of a workspace, sampled again only when its files changed. Keyed by
 * the file count, their total bytes and the newest modification time: a file added, removed or
 * edited changes at least one of them (an edit moves the newest mtime even when the count and
 * the bytes stay), while a status request on an unchanged workspace re-tokenizes nothing.
 */
export class BytesPerTokenCache {
  private key: string | null = null;
  private ratio = 4;

  ratioFor(files: Iterable<{ size: number; mtimeMs: number }>, sample: () => number): number {
    let count = 0;
    let bytes = 0;
    let newest = -Infinity;
    for (const f of files) {
      count++;
      bytes += f.size;
      newest = Math.max(newest, f.mtimeMs);
    }
    const key = `${count}:${bytes}:${newest}`;
    if (key !== this.key) {
      this.ratio = sample();
      this.key = key;
    }
    return this.ratio;
  }
}

/**
 * Bytes per token of the workspace's text: `count` tokenizes the first `maxBytes` of up to
 * `maxFiles` files spread over the list. Falls back to 4 (English text) when nothing could be read.
 */
export function sampleBytesPerToken(texts: Iterable<string>, count: (s: string) => number): number {
  let bytes = 0;
  let tokens = 0;
  for (const t of texts) {
    bytes += Buffer.byteLength(t);
    tokens += count(t);
  }
  return tokens > 0 ? bytes / tokens : 4;
}
