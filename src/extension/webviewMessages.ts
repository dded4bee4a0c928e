/**
 * The messages between the chat view (chatView.ts, extension host) and its webview script
 * (media/chat.js), typed in one place. The webview is less trusted than the host (it renders
 * model output), so what it sends is parsed, not cast: parseFromWebview returns null for
 * anything that is not exactly one of these shapes.
 */

/** A source link as the webview shows it (the host keeps the paths; the webview sends back an index). */
export interface SourceItem {
  label: string;
  weight: number;
}

export type ToWebview =
  /** The coverage or situation line, and the titles of the actions that fix a situation (situation.ts). */
  | { type: 'header'; text: string; phase: string; actions: string[] }
  /** `quote`: the code a question is about (a selection), as HTML rendered and escaped by the host. */
  | { type: 'start'; askId: string; question: string; quote: string | null }
  /** A streamed answer so far, as HTML rendered and escaped by the host (render.ts). */
  | { type: 'answer'; askId: string; html: string }
  | { type: 'sources'; askId: string; sources: SourceItem[] }
  /** An entry's full state: after it finished, or when the view reloads. */
  /** `note`: how much memory covered when it answered, when not everything. */
  | { type: 'entry'; askId: string; question: string; quote: string | null; html: string; done: boolean; cancelled: boolean; error: string | null; note: string | null; sources: SourceItem[] };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'ask'; question: string }
  | { type: 'stop' }
  | { type: 'open'; askId: string; index: number }
  | { type: 'command'; command: string }
  /** A click on the header's action button `index` (the host runs that action of the current situation). */
  | { type: 'action'; index: number };

export function parseFromWebview(m: unknown): FromWebview | null {
  if (!m || typeof m !== 'object') return null;
  const x = m as Record<string, unknown>;
  switch (x.type) {
    case 'ready':
    case 'stop':
      return { type: x.type };
    case 'ask':
      return typeof x.question === 'string' && x.question.trim() ? { type: 'ask', question: x.question } : null;
    case 'open':
      return typeof x.askId === 'string' && Number.isInteger(x.index) && (x.index as number) >= 0 ? { type: 'open', askId: x.askId, index: x.index as number } : null;
    case 'command':
      return typeof x.command === 'string' ? { type: 'command', command: x.command } : null;
    case 'action':
      return Number.isInteger(x.index) && (x.index as number) >= 0 ? { type: 'action', index: x.index as number } : null;
    default:
      return null;
  }
}
