// End-to-end: a workspace of 120 files, above the consent threshold (mplus.feeding.askAboveFiles
// = 100 here). Feeding waits for one click, shows one count with the file being read and the time
// left, keeps showing it while a question is answered (the answer says memory was partial), and
// the consent is remembered for the workspace across a restart.
// Run through `bash test/e2e/run.sh`; artefacts go to $E2E_OUT/large.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { env, harness, EXT_ID } from './harness.mjs';

const tools = env('MPLUS_E2E_TOOLS');
const cache = env('CODE_SERVER_E2E_CACHE');
const outDir = path.join(env('E2E_OUT'), 'large');
const vsix = env('MPLUS_E2E_VSIX');
const model = env('MPLUS_E2E_MODEL');
const FILES = 120;
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
const repo = path.join(outDir, 'repo');

const { startSession } = await import(pathToFileURL(path.join(tools, 'smoke.mjs')).href);
let s;
const { shot, step, waitForStatus, chatView } = harness({ outDir, session: () => s });

/** 120 small modules, one function each with a few hundred tokens of notes (feeding takes long enough to watch). */
function writeRepo() {
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(repo, 'src', `area${Math.floor(i / 20)}`);
    fs.mkdirSync(dir, { recursive: true });
    // A few hundred tokens of notes per file: feeding takes long enough (about a minute here) for
    // the steps below to watch it; one-line files were all fed in ~20 s, before a question could ask.
    const notes = Array.from({ length: 24 }, (_, k) => `// note ${k}: unit ${i} keeps its inputs finite and its scale (${i + 2}) constant across calls.`).join('\n');
    fs.writeFileSync(path.join(dir, `unit${i}.ts`), `/** Step ${i} of the pipeline: scales by ${i + 2}. */\n${notes}\nexport function unit${i}(x: number): number {\n  return x * ${i + 2} + ${i};\n}\n`);
  }
}

before(async () => {
  writeRepo();
  s = await startSession({
    cache, folder: repo, vsix: [vsix], outDir, timeout: 60000, log: () => {},
    settings: {
      'mplus.device': 'cpu',
      'mplus.answer.maxTokens': 16,
      'mplus.feeding.askAboveFiles': 100,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
    },
  });
  const machine = path.join(s.userDataDir, 'Machine', 'settings.json');
  fs.mkdirSync(path.dirname(machine), { recursive: true });
  fs.writeFileSync(machine, JSON.stringify({ 'mplus.modelPath': model, 'mplus.storePath': path.join(outDir, 'stores') }, null, 2));
});

after(async () => {
  if (s) {
    await s.screenshot('final.png').catch(() => {});
    await s.close();
  }
  console.log(`# large-workspace e2e artefacts: ${outDir}`);
});

step('a workspace above the threshold waits for one click, saying what reading it costs', async () => {
  await waitForStatus(new RegExp(`M\\+ waiting 0/${FILES}$`), 120000);
  assert.ok(await s.waitForNotification(`This workspace is large (${FILES} files`, { timeout: 30000 }), 'no consent question');
  const toast = s.page.locator('.notification-list-item', { hasText: 'This workspace is large' }).first();
  assert.ok(await toast.getByRole('button', { name: 'Start Reading' }).isVisible());
  const frame = await chatView();
  // the view's line carries the numbers the notification gives: files, tokens, disk (and time, once a rate is known)
  await frame.locator('#coverage', { hasText: new RegExp(`waiting for your go-ahead to read the workspace \\(${FILES} files, about [\\d,]+ tokens: about [\\d.]+ [MG]B of memory on disk`) })
    .waitFor({ timeout: 15000 });
  const start = frame.locator('#actions button', { hasText: 'Start Reading' });
  await start.waitFor({ timeout: 15000 });
  await shot('consent');
  // nothing was read meanwhile
  await s.page.waitForTimeout(2000);
  assert.match(await waitForStatus(/M\+ waiting/, 5000), new RegExp(`0/${FILES}$`));
  await start.click();
  await start.waitFor({ state: 'detached', timeout: 15000 });
}, 240000);

step(`feeding ${FILES} files: one count, the file being read and the time left, also while answering`, async () => {
  const t = await waitForStatus(new RegExp(`M\\+ feeding \\d+/${FILES} \\(\\d+%\\) · \\d+ (s|min)$`), 120000);
  console.log(`# feeding: ${t}`);
  const frame = await chatView();
  await frame.locator('#coverage', { hasText: /memory covers \d+\/120 files · reading src\/area\d\/unit\d+\.ts, about \d+ (s|min) left/ }).waitFor({ timeout: 30000 });
  await shot('feeding-eta');
  // A question over partial memory: the answer says how much memory covered. Feeding is paused
  // first so that memory is still partial when the answer ends, however fast this machine feeds
  // (CI once fed all 120 files before the answer was checked).
  await s.runCommand('M+: Pause Feeding');
  await waitForStatus(new RegExp(`M\\+ paused \\d+/${FILES}`), 60000);
  const n = await frame.locator('.entry').count();
  await frame.locator('#question').fill('Which unit scales by 7?');
  await frame.locator('#question').press('Enter');
  const entry = frame.locator('.entry').nth(n);
  await entry.waitFor({ timeout: 30000 });
  const during = await waitForStatus(/M\+ (answering|paused)/, 30000);
  console.log(`# while answering: ${during}`);
  await entry.locator('.note', { hasText: /Memory covered \d+\/120 files when this was answered/ }).waitFor({ timeout: 120000 });
  await shot('answer-partial-memory');
  await s.runCommand('M+: Resume Feeding');
}, 300000);

step('everything fed; the consent is remembered for this workspace after a restart', async () => {
  await waitForStatus(new RegExp(`M\\+ ready ${FILES}/${FILES}$`), 300000);
  await s.runCommand('M+: Restart M+');
  await waitForStatus(/M\+ (starting|restarting)/, 30000).catch(() => {});
  const t = await waitForStatus(/M\+ (ready|waiting)/, 120000);
  assert.equal(t, `M+ ready ${FILES}/${FILES}`, 'asked again after a restart');
  await shot('consent-remembered');
}, 420000);
