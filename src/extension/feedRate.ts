/**
 * The feeding rate measured on this machine, remembered per model, device and precision: a rate
 * measured with a small model on a GPU would promise a large model on the CPU minutes instead of
 * hours. Pure functions over the table kept in globalState (consent.ts); no `vscode` import.
 */

/** Remembered rates in tokens per second, by rateKey; insertion order is age (oldest first). */
export type RateTable = Record<string, number>;

/** At most this many model/device/precision combinations are remembered (the oldest go). */
export const MAX_RATES = 16;

export function rateKey(modelDir: string, device: string, precision: string): string {
  return `${modelDir}|${device}|${precision}`;
}

/**
 * The table with `tokensPerSecond` remembered under `key`, or null when nothing changes enough to
 * be worth writing (no rate, or within 10% of the remembered one).
 */
export function withRate(table: RateTable, key: string, tokensPerSecond: number): RateTable | null {
  if (!(tokensPerSecond > 0)) return null;
  const old = table[key];
  if (old !== undefined && Math.abs(old - tokensPerSecond) / tokensPerSecond <= 0.1) return null;
  const next: RateTable = {};
  for (const [k, v] of Object.entries(table)) if (k !== key) next[k] = v;
  next[key] = tokensPerSecond;
  const keys = Object.keys(next);
  for (const k of keys.slice(0, Math.max(0, keys.length - MAX_RATES))) delete next[k];
  return next;
}
