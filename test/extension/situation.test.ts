/**
 * What the user is told, and offered, in each state (situation.ts): plain words, the one action
 * that fixes it, and the text around answers (answerText.ts).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { partialNote, quoteMarkdown } from '../../src/extension/answerText';
import { ProblemKind, SITUATION_COMMANDS, consentNumbers, situationOf } from '../../src/extension/situation';
import type { ViewState } from '../../src/extension/viewState';
import { REPO_ROOT } from '../helpers/tmp';
import { renderAnswer } from '../../src/extension/render';

const JARGON = /sidecar|SIGKILL|ENOENT|EACCES|memory token|mplus\.modelPath|θ|Θ|stm|ltm|injection/i;

describe('extension: situations a user can act on', () => {
  const cov = { filesFed: 40, filesKnown: 99, feeding: false };
  const states: Array<[string, ViewState, string | undefined]> = [
    ['no folder', { phase: 'off' }, 'workbench.action.files.openFolder'],
    ['no model', { phase: 'needsModel' }, 'mplus.downloadModel'],
    ['untrusted', { phase: 'untrusted' }, 'workbench.trust.manage'],
    ['paused', { phase: 'paused', coverage: cov }, 'mplus.resume'],
    ['crashed, restarting by itself', { phase: 'restarting' }, undefined],
    ['large workspace waiting for consent', { phase: 'ready', coverage: cov, consent: { files: 12000, estimate: '2.1 GB of memory' } }, 'mplus.consentToFeed'],
  ];
  const problems: Array<[ProblemKind, string]> = [
    ['model', 'mplus.selectModelFolder'], ['device', 'workbench.action.openSettings'], ['runtime', 'workbench.action.openSettings'],
    ['storePlace', 'mplus.selectStoreFolder'], ['store', 'mplus.rebuild'], ['busy', 'mplus.restartSidecar'],
    ['failed', 'mplus.restartSidecar'], ['crashLoop', 'mplus.restartSidecar'],
  ];
  for (const [kind, cmd] of problems) states.push([`error: ${kind}`, { phase: 'error', problem: kind, detail: 'the folder /m does not exist.' }, cmd]);

  for (const [name, v, cmd] of states) {
    it(`${name}: plain words and ${cmd ?? 'no action (it fixes itself)'}`, () => {
      const s = situationOf(v)!;
      assert.ok(s, 'no situation');
      assert.ok(!JARGON.test(s.message), `jargon in "${s.message}"`);
      assert.ok(/^[A-Z]/.test(s.message) && /[.]$/.test(s.message), `not a sentence: "${s.message}"`);
      assert.strictEqual(s.action?.command, cmd);
      for (const a of [s.action, s.secondary]) if (a) assert.ok(SITUATION_COMMANDS.includes(a.command));
    });
  }

  it('nothing to act on while ready, feeding, answering or starting', () => {
    for (const phase of ['ready', 'feeding', 'answering', 'starting'] as const) assert.strictEqual(situationOf({ phase, coverage: cov }), null, phase);
  });

  it('the detail of a problem is quoted once, without a doubled full stop', () => {
    const s = situationOf({ phase: 'error', problem: 'model', detail: '/m does not exist or cannot be read.' })!;
    assert.strictEqual(s.message, 'The model could not be loaded: /m does not exist or cannot be read.');
    const e = situationOf({ phase: 'error', problem: 'model', detail: '/m has no tokenizer.json: use Download Model….' })!;
    assert.strictEqual(e.message, 'The model could not be loaded: /m has no tokenizer.json: use Download Model…');
  });

  it('a store folder M+ cannot write offers another folder (not Rebuild, which would fail the same way), naming the folder', () => {
    const s = situationOf({ phase: 'error', problem: 'storePlace', detail: 'M+ cannot keep this workspace\'s memory in /s/ws-1: /s is a file, not a folder' })!;
    assert.strictEqual(s.message, 'M+ cannot keep this workspace\'s memory in /s/ws-1: /s is a file, not a folder. Choose a folder M+ can write to.');
    assert.strictEqual(s.action?.title, 'Select Memory Folder…');
    const d = situationOf({ phase: 'error', problem: 'store', detail: 'manifest is not valid JSON' })!;
    assert.match(d.message, /^This workspace's memory could not be opened \(manifest is not valid JSON\)\. Rebuilding/);
    assert.strictEqual(d.action?.command, 'mplus.rebuild');
  });

  it('the consent question carries the numbers: files, tokens, disk and reading time', () => {
    const c = { files: 120, estimate: '41,000 tokens: about 0.1 GB of memory on disk and 3 min of reading' };
    assert.strictEqual(consentNumbers(c), '120 files, about 41,000 tokens: about 0.1 GB of memory on disk and 3 min of reading');
    assert.ok(situationOf({ phase: 'ready', consent: c })!.message.includes(consentNumbers(c)));
  });

  it('every mplus.* command a situation offers is contributed in package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const declared = new Set(pkg.contributes.commands.map((c: { command: string }) => c.command));
    for (const c of SITUATION_COMMANDS) if (c.startsWith('mplus.')) assert.ok(declared.has(c), c);
  });
});

describe('extension: text around answers', () => {
  it('a selection is a quoted code block under its file and lines, fenced past any backticks in it', () => {
    const md = quoteMarkdown({ where: 'src/a.ts:3-5', code: 'const s = `x`;\nconst f = "```";\n', language: 'typescript' });
    assert.strictEqual(md, 'src/a.ts:3-5\n\n````typescript\nconst s = `x`;\nconst f = "```";\n````\n');
    const html = renderAnswer(md);
    assert.match(html, /<p>src\/a\.ts:3-5<\/p>/);
    assert.match(html, /<pre><code class="language-typescript">const s = `x`;\nconst f = &quot;```&quot;;\n<\/code><\/pre>/);
    assert.ok(!/<strong>/.test(html), 'not a bold heading');
  });

  it('an answer from partial memory says how much memory covered; a full one says nothing', () => {
    assert.strictEqual(partialNote({ filesFed: 99, filesKnown: 99, feeding: false }), null);
    assert.match(partialNote({ filesFed: 40, filesKnown: 99, feeding: true })!, /^Memory covered 40\/99 files when this was answered \(still reading the rest\)/);
  });
});
