/**
 * The written result of `mplus bench retention --out BASE`: BASE.md (the table), BASE.svg (exact
 * hits vs N, one line per memory mode) and BASE.json (the rows, also the resume point). Over
 * several seeds, each seed's run is written as BASE-sSEED and BASE is their pool (`pooled`).
 */
import * as fs from 'fs';

export type RetentionMode = 'theta' | 'mplus';
export const MODE_NAMES: Record<RetentionMode, string> = { theta: 'θ only (MemoryLLM)', mplus: 'M+' };

export interface RetentionRow {
  mode: RetentionMode;
  /** Tokens of unrelated code fed after the facts (asked). */
  tokens: number;
  /** Tokens actually injected: facts and code (chunks are whole). */
  tokensFed: number;
  facts: number;
  hits: number;
  exact: number;
  /**
   * Over facts and layers where the fact's file has rows among the retrieval candidates (Θ and,
   * when retrieval scores, the cache): the share of those rows retrieved — the trainer's and the
   * paper's "fact rows retrieved". Null when no fact had a candidate row (θ only, or fact expired).
   */
  factRowsRetrieved: number | null;
  /**
   * factRowsRetrieved per layer (null where no fact had a candidate row there). A layer's query
   * reads that layer's input, which holds what the layers below retrieved: the lowest layer ranks
   * from the question's embeddings alone, the rest inherit its misses.
   */
  factRowsRetrievedByLayer: Array<number | null>;
  /** Over facts and layers: the fact's rows among the rows retrieved (precision). */
  factShareOfRetrieved: number | null;
  /** Over facts and layers: the fact's rows still in θ, as a share of θ. */
  factShareOfStm: number;
  /**
   * Rows per layer retrieval chose from when the facts were asked (layer 0): Θ and, when it
   * scores, the dropped-token cache — merged or about to be.
   */
  candidateRows: number;
  seconds: number;
  /** Injection throughput while feeding (facts and code), tokens/s. */
  feedTokensPerS: number;
  /** Mean time per question (prefill and up to maxTokens of decoding). */
  askMs: number;
  /** Peak resident memory of the sidecar process (Linux VmHWM), MiB; null elsewhere. */
  sidecarPeakMiB: number | null;
  /** In a pool of seeds' runs (`pooled`): how many seeds' rows this one sums. */
  seeds?: number;
  /** Every question: the fact's name, value and file (fed in path order), and the model's answer (JSON only: to read the misses). */
  answers?: RetentionAnswer[];
  /** The questions missed, by kind (missKinds); absent in rows written before it that lack answers. */
  misses?: MissKinds;
}

export interface RetentionAnswer { name: string; value: string; file: string; answer: string }

/**
 * Why the misses missed, each question once, in this order: `otherFact`, the answer holds another
 * fact's value (binding: the read took the wrong fact's rows); `stoppedEarly`, the answer is a
 * proper beginning of the value (`4629` for `462929`: the read ended with EOS after the digits it
 * held); `wrong`, anything else. Hits are what the bench counts: the value appears in the answer.
 */
export interface MissKinds { otherFact: number; stoppedEarly: number; wrong: number }

export function missKinds(answers: RetentionAnswer[]): MissKinds {
  const kinds: MissKinds = { otherFact: 0, stoppedEarly: 0, wrong: 0 };
  for (const a of answers) {
    const said = a.answer.trim();
    if (said.includes(a.value)) continue;
    if (answers.some((o) => o.value !== a.value && said.includes(o.value))) kinds.otherFact++;
    else if (said && a.value.startsWith(said)) kinds.stoppedEarly++;
    else kinds.wrong++;
  }
  return kinds;
}

/** A row's misses by kind: its own, else from its answers (rows written before the field); null with neither. */
export const rowMisses = (r: RetentionRow): MissKinds | null => r.misses ?? (r.answers ? missKinds(r.answers) : null);

/** `other fact 5, stopped early 8, wrong 7` (or – when unknown). */
export const missText = (m: MissKinds | null | undefined) => (m ? `other fact ${m.otherFact}, stopped early ${m.stoppedEarly}, wrong ${m.wrong}` : '–');

export interface RetentionRun {
  /** What the rows were measured with; a resumed run must match it. */
  config: { model: string; facts: number; seed: number; maxTokens: number; maxCodeLine?: number; precision?: string; seeds?: number[] };
  rows: RetentionRow[];
}

/** The mean of the numbers among xs; null when there are none. */
export const meanOf = (xs: Array<number | null>): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

/**
 * Several seeds' runs as one (same model, facts and N): per (N, mode) the questions and hits
 * summed, so exact is the share of every question asked; the retrieval figures, sizes and rates
 * the mean of the seeds' (each seed asks as many questions); seconds summed; peak memory the
 * highest. A (N, mode) some seed lacks (not measured yet) is pooled over the seeds that have it,
 * and `seeds` says how many. The answers stay in the seeds' own files.
 */
export function pooled(runs: RetentionRun[]): RetentionRun {
  if (!runs.length) throw new Error('pooled: no runs');
  const groups = new Map<string, RetentionRow[]>();
  for (const run of runs) for (const r of run.rows) {
    const k = `${r.tokens} ${r.mode}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const rows = [...groups.values()].map((rs): RetentionRow => {
    const facts = rs.reduce((a, r) => a + r.facts, 0);
    const hits = rs.reduce((a, r) => a + r.hits, 0);
    const layers = Math.max(...rs.map((r) => r.factRowsRetrievedByLayer.length));
    const avg = (f: (r: RetentionRow) => number) => meanOf(rs.map(f)) ?? 0;
    const peaks = rs.map((r) => r.sidecarPeakMiB).filter((x): x is number => x !== null);
    const kinds = rs.map(rowMisses);
    // Summed only when every seed's row has them: a partial sum would read as fewer misses.
    const misses = kinds.every((k): k is MissKinds => k !== null)
      ? { otherFact: kinds.reduce((a, k) => a + k.otherFact, 0), stoppedEarly: kinds.reduce((a, k) => a + k.stoppedEarly, 0), wrong: kinds.reduce((a, k) => a + k.wrong, 0) }
      : undefined;
    return {
      mode: rs[0].mode, tokens: rs[0].tokens, tokensFed: Math.round(avg((r) => r.tokensFed)), facts, hits, exact: hits / facts,
      factRowsRetrieved: meanOf(rs.map((r) => r.factRowsRetrieved)),
      factRowsRetrievedByLayer: Array.from({ length: layers }, (_, l) => meanOf(rs.map((r) => r.factRowsRetrievedByLayer[l] ?? null))),
      factShareOfRetrieved: meanOf(rs.map((r) => r.factShareOfRetrieved)), factShareOfStm: avg((r) => r.factShareOfStm),
      candidateRows: Math.round(avg((r) => r.candidateRows)), seconds: rs.reduce((a, r) => a + r.seconds, 0),
      feedTokensPerS: avg((r) => r.feedTokensPerS), askMs: avg((r) => r.askMs),
      sidecarPeakMiB: peaks.length ? Math.max(...peaks) : null,
      seeds: rs.length, ...(misses ? { misses } : {}),
    };
  });
  return { config: { ...runs[0].config, seeds: runs.map((r) => r.config.seed) }, rows };
}

/**
 * A pooled exact-hit rate's standard error, in percentage points (binomial: √(p(1−p)/n)). Two
 * states' rates on the same questions differ by chance by about √2 of it: on 72 questions at
 * 60%, ±5.8 points each.
 */
export const standardError = (r: RetentionRow) => 100 * Math.sqrt(r.exact * (1 - r.exact) / r.facts);

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
/** A token count as the bench's N are asked, in binary units: 8192 → 8k, 163840 → 160k, 1048576 → 1M. */
export const kTokens = (n: number) => (n >= 1_048_576 ? `${+(n / 1_048_576).toFixed(2)}M` : n >= 1000 ? `${Math.round(n / 1024)}k` : String(n));

/** The table's row order: by N, θ only before M+. */
export const tableOrder = (a: RetentionRow, b: RetentionRow) => a.tokens - b.tokens || b.mode.localeCompare(a.mode);

const missCell = (m: MissKinds | null) => (m ? `${m.otherFact} / ${m.stoppedEarly} / ${m.wrong}` : '–');

export function markdownTable(run: RetentionRun): string {
  const head = '| N | memory | exact hit | misses: other fact / stopped early / wrong | fact rows retrieved | fact share of retrieved | fact share of θ | candidates/layer (Θ + cache) | tokens fed | feed tok/s | ask ms | sidecar peak MiB | s |';
  const sep = '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = [...run.rows].sort(tableOrder).map((r) =>
    `| ${kTokens(r.tokens)} | ${MODE_NAMES[r.mode]} | ${r.hits}/${r.facts} (${pct(r.exact)}${r.seeds ? ` ± ${standardError(r).toFixed(1)}` : ''}) | ${missCell(rowMisses(r))} | ${pct(r.factRowsRetrieved)} | ${pct(r.factShareOfRetrieved)} | ` +
    `${pct(r.factShareOfStm)} | ${r.candidateRows} | ${r.tokensFed} | ${r.feedTokensPerS.toFixed(0)} | ${r.askMs.toFixed(0)} | ${r.sidecarPeakMiB?.toFixed(0) ?? '–'} | ${r.seconds.toFixed(0)} |`);
  return [head, sep, ...lines].join('\n');
}

/** Exact hit vs N: N on evenly spaced ticks (the N asked are roughly geometric), one line per mode; a pool of seeds with ± one standard error. */
export function svgPlot(run: RetentionRun, title: string): string {
  const W = 640, H = 360, L = 60, R = 170, T = 40, B = 50;
  const ns = [...new Set(run.rows.map((r) => r.tokens))].sort((a, b) => a - b);
  const x = (n: number) => L + (ns.length > 1 ? (ns.indexOf(n) / (ns.length - 1)) * (W - L - R) : (W - L - R) / 2);
  const y = (v: number) => T + (1 - v) * (H - T - B);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="${T - 18}" font-size="14">${esc(title)}</text>`,
  ];
  for (let v = 0; v <= 1.0001; v += 0.2) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`, `<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${Math.round(v * 100)}%</text>`);
  }
  for (const n of ns) out.push(`<text x="${x(n)}" y="${H - B + 18}" text-anchor="middle">${kTokens(n)}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">N: tokens of unrelated code fed after the facts</text>`);
  out.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">exact hit</text>`);
  out.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="black"/>`, `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="black"/>`);
  const colours: Record<RetentionMode, string> = { theta: '#d95f02', mplus: '#1b9e77' };
  (['theta', 'mplus'] as const).forEach((mode, i) => {
    const pts = run.rows.filter((r) => r.mode === mode).sort((a, b) => a.tokens - b.tokens);
    if (!pts.length) return;
    out.push(`<polyline fill="none" stroke="${colours[mode]}" stroke-width="2" points="${pts.map((r) => `${x(r.tokens)},${y(r.exact)}`).join(' ')}"/>`);
    for (const r of pts) {
      out.push(`<circle cx="${x(r.tokens)}" cy="${y(r.exact)}" r="3.5" fill="${colours[mode]}"/>`);
      // A pool of seeds: ± one standard error.
      const se = r.seeds ? standardError(r) / 100 : 0;
      if (se > 0) out.push(`<line class="se" x1="${x(r.tokens)}" x2="${x(r.tokens)}" y1="${y(Math.min(1, r.exact + se))}" y2="${y(Math.max(0, r.exact - se))}" stroke="${colours[mode]}"/>`);
    }
    const ly = T + 10 + i * 20;
    out.push(`<line x1="${W - R + 15}" x2="${W - R + 35}" y1="${ly}" y2="${ly}" stroke="${colours[mode]}" stroke-width="2"/>`, `<text x="${W - R + 40}" y="${ly + 4}">${esc(MODE_NAMES[mode])}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * The rows of an earlier run with the same config (to resume), or none. `measuredWith` hears the
 * config keys that differ when BASE.json holds a run measured otherwise (another model path
 * included): that run is measured afresh and its files overwritten, so the caller says so.
 */
export function readResumable(base: string, config: RetentionRun['config'], measuredWith?: (differs: string[]) => void): RetentionRow[] {
  let prev: RetentionRun;
  try {
    prev = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8'));
  } catch {
    return []; // nothing to resume (or unreadable: measured afresh and overwritten)
  }
  if (JSON.stringify(prev.config) === JSON.stringify(config) && Array.isArray(prev.rows)) return prev.rows;
  const had: Record<string, unknown> = prev.config ?? {};
  const now: Record<string, unknown> = config;
  const keys = [...new Set([...Object.keys(had), ...Object.keys(now)])];
  measuredWith?.(keys.filter((k) => JSON.stringify(had[k]) !== JSON.stringify(now[k])).map((k) => `${k} ${JSON.stringify(had[k])} → ${JSON.stringify(now[k])}`));
  return [];
}

export function writeRun(base: string, run: RetentionRun, title: string): void {
  const put = (file: string, text: string) => {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file); // a kill leaves the previous complete file
  };
  put(`${base}.json`, JSON.stringify(run, null, 1) + '\n');
  put(`${base}.svg`, svgPlot(run, title));
  put(`${base}.md`, `${title}\n\n${markdownTable(run)}\n\n![exact hit vs N](${base.split('/').pop()}.svg)\n`);
}
