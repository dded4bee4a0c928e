/**
 * Answering a question from memory as it is: one 'ask' lease for the whole answer (ingestion
 * waits between injections), prefill with retrieval, sources from provenance + attention, then
 * tokens streamed as text pieces until a stop token, maxTokens, or cancellation.
 *
 * Sources are computed at prefill, before any token is generated, from the memory the question
 * actually read; stale records (changed or deleted files) are never cited.
 */
import { MPlusEngine } from '../engine/mplus';
import { StoredMemory } from '../memory/store/storedMemory';
import { TextTokenizer } from '../model/tokenizer';
import { loadQuestionTemplate, questionPrompt } from '../model/questionTemplate';
import { attributeSources } from './attribution';
import { retrievalReport } from './retrievalReport';
import { CancelFlag } from './feeder';
import { WorkspacePaths } from './paths';
import { AskParams, ErrorCodes, LayerRetrieval, Source } from './protocol';
import { DeviceScheduler } from './scheduler';

export interface AnswerDeps {
  engine: MPlusEngine;
  tokenizer: TextTokenizer;
  memory: StoredMemory;
  scheduler: DeviceScheduler;
  paths: WorkspacePaths;
}

export interface AnswerSink {
  token(text: string): void;
  sources(s: Source[]): void;
}

export const SYSTEM_PROMPT = 'You answer questions about the code repository held in your memory. Name the files you draw on.';

// Read once per checkpoint folder (the engine's checkpoint never changes under a running sidecar).
const templates = new Map<string, string | null>();
function templateOf(dir: string): string | null {
  if (!templates.has(dir)) templates.set(dir, loadQuestionTemplate(dir));
  return templates.get(dir) as string | null;
}

/** No token of the tokenizer spans more characters than this: a longer question is refused untokenized. */
const MAX_CHARS_PER_TOKEN = 32;

function tooLong(message: string): Error {
  return Object.assign(new Error(message), { rpcCode: ErrorCodes.QuestionTooLong });
}

/** The prompt's token ids, or QuestionTooLong naming the limit and what sets it. */
function boundedPrompt(d: AnswerDeps, p: AskParams): number[] {
  const lim = d.engine.questionLimit(p.maxTokens ?? 256);
  if (p.question.length > lim.tokens * MAX_CHARS_PER_TOKEN) {
    throw tooLong(`the question is ${p.question.length} characters, far over the limit of ${lim.tokens} tokens (${lim.why}); shorten it`);
  }
  const prompt = questionPrompt(d.tokenizer, templateOf(d.engine.checkpoint.dir), p.question, SYSTEM_PROMPT);
  if (prompt.length > lim.tokens) throw tooLong(`the question is ${prompt.length} tokens with its prompt template; at most ${lim.tokens} tokens are accepted (${lim.why}); shorten it`);
  return prompt;
}

export async function answer(d: AnswerDeps, p: AskParams, flag: CancelFlag, sink: AnswerSink): Promise<{ answer: string; tokens: number; sources: Source[]; retrieval?: LayerRetrieval[] }> {
  const prompt = boundedPrompt(d, p);
  return d.scheduler.with('ask', async () => {
    const q = await d.engine.prefill(d.memory, prompt);
    const sources = attributeSources(
      q,
      d.memory,
      (id) => {
        const r = d.memory.sources.get(id);
        return r && !r.stale ? { path: r.file, startLine: r.startLine, endLine: r.endLine } : null;
      },
    ).map((s) => ({ ...s, absPath: d.paths.abs(s.path) }));
    // Counted now: memory may change once the lease is released.
    const retrieval = p.retrieval ? retrievalReport(q, d.memory, (id) => d.memory.sources.get(id)?.file ?? null) : undefined;
    const stop = new Set([...d.tokenizer.eosIds, ...d.engine.config.eosTokenIds]);
    const dec = d.tokenizer.streamDecoder({ skipSpecial: true });
    let text = '';
    let n = 0;
    const gen = d.engine.generate(d.memory, prompt, { maxTokens: p.maxTokens ?? 256, temperature: p.temperature ?? 0, topP: p.topP, stop: [...stop] }, q);
    for await (const step of gen) {
      n++;
      if (stop.has(step.token)) break;
      const piece = dec.push(step.token);
      if (piece) {
        text += piece;
        sink.token(piece);
      }
      if (flag.cancelled) break;
    }
    const rest = dec.flush();
    if (rest) {
      text += rest;
      sink.token(rest);
    }
    sink.sources(sources);
    return { answer: text, tokens: n, sources, retrieval };
  });
}
