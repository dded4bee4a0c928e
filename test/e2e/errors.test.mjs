// End-to-end: the states in which M+ cannot work until the user acts, each said in plain words with
// the one action that fixes it, in every place the user looks: one notification, the status bar
// tooltip, the Ask view (its header and an answer) and an `@mplus` reply (once, with the action as a
// button). Then the action is taken and fixes it:
//   - a memory folder M+ cannot write (a file where the folder should be) → Select Memory Folder…
//   - a damaged memory store (its manifest is not JSON), left where it is → Rebuild Memory
//   - no model → @mplus offers Download Model… and Select Model Folder…
// Run through `bash test/e2e/run.sh`; artefacts go to $E2E_OUT/errors.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { env, harness, EXT_ID, packVsix } from './harness.mjs';

const tools = env('MPLUS_E2E_TOOLS');
const cache = env('CODE_SERVER_E2E_CACHE');
const outDir = path.join(env('E2E_OUT'), 'errors');
// This suite is about life without a model: the .vsix without the bundled checkpoint (run.sh).
const vsix = env('MPLUS_E2E_VSIX_NO_MODEL');
const model = env('MPLUS_E2E_MODEL');
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
const repo = path.join(outDir, 'repo');
// A file where the memory folder's parent should be: creating the store folder fails (ENOTDIR).
const inTheWay = path.join(outDir, 'in-the-way');
const blockedStores = path.join(inTheWay, 'stores');
const goodStores = path.join(outDir, 'stores');

const { startSession } = await import(pathToFileURL(path.join(tools, 'smoke.mjs')).href);
let s;
const { shot, step, waitForStatus, pickFolder, chatView, askInView, typeMention } = harness({ outDir, session: () => s });
const machineSettings = () => path.join(s.userDataDir, 'Machine', 'settings.json');
const readMachine = () => JSON.parse(fs.readFileSync(machineSettings(), 'utf8'));
function setMachine(patch) {
  const cur = { ...readMachine(), ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete cur[k];
  fs.writeFileSync(machineSettings(), JSON.stringify(cur, null, 2));
}

function writeRepo() {
  fs.mkdirSync(path.join(repo, 'src'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'src', 'add.ts'), '/** Adds two numbers. */\nexport function add(a: number, b: number): number {\n  return a + b;\n}\n');
  fs.writeFileSync(path.join(repo, 'src', 'scale.ts'), '/** Scales a value by a factor. */\nexport const scale = (x: number, k: number) => x * k;\n');
  fs.writeFileSync(path.join(repo, 'README.md'), '# tiny\n\nTwo helpers: add and scale.\n');
}

/** Exactly one notification toast says `text`, and it offers `button`. */
async function oneNotification(text, button) {
  assert.ok(await s.waitForNotification(text, { timeout: 60000 }), `no notification saying "${text}"`);
  await s.page.waitForTimeout(1500); // a second one would have arrived by now
  const toasts = s.page.locator('.notifications-toasts .notification-list-item', { hasText: text });
  assert.equal(await toasts.count(), 1, `"${text}" was notified more than once`);
  assert.ok(await toasts.first().getByRole('button', { name: button }).isVisible(), `the notification offers no "${button}"`);
  assert.doesNotMatch(await toasts.first().textContent(), /ENOTDIR|ENOENT|EACCES|sidecar|SyntaxError/);
}

/** The status bar item's tooltip says `text` and links `action`. */
async function tooltipSays(text, action) {
  await s.page.mouse.move(700, 300);
  const item = s.page.locator('.statusbar-item', { hasText: 'M+ error' }).first();
  const hover = s.page.locator('.workbench-hover, .monaco-hover', { hasText: text }).first();
  for (let i = 0; i < 3 && !(await hover.isVisible().catch(() => false)); i++) {
    await item.hover();
    await hover.waitFor({ timeout: 5000 }).catch(() => {});
  }
  assert.ok(await hover.isVisible(), `the status bar tooltip does not say "${text}"`);
  assert.ok(await hover.locator('a', { hasText: action }).first().isVisible(), `the tooltip has no "${action}" link`);
}

/**
 * Sends `@mplus <question>` in VS Code's chat (Fake Echo as the chat model) and returns the reply
 * that contains `expect`. Typed in one go, "@mplus " can commit another participant's completion
 * while the suggestion list catches up: close the suggestions before typing on, check the input.
 */
async function askMplus(question, expect) {
  // Open the chat and select the model once: sendChat('') sends nothing the first time, but once
  // @mplus is sticky it would send a bare "@mplus", which gets a reply of its own.
  const picked = s.page.locator('.interactive-input-part .model-picker-split', { hasText: 'Fake Echo' }).first();
  if (!(await picked.isVisible().catch(() => false))) {
    await s.sendChat('', { model: 'Fake Echo' });
    await s.page.waitForTimeout(1500);
  }
  const reply = s.page.locator('.interactive-item-container.interactive-response', { hasText: expect });
  const before = await reply.count();
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!(await typeMention(question, question.slice(0, 10)))) continue;
    await s.page.keyboard.press('Enter');
    const end = Date.now() + 60000;
    while (Date.now() < end && (await reply.count()) <= before) await s.page.waitForTimeout(250);
    if ((await reply.count()) > before) {
      await s.page.waitForTimeout(1500); // a duplicate would be in the reply by now
      assert.equal(await reply.count(), before + 1, `more than one reply says "${expect}"`);
      return reply.last();
    }
  }
  throw new Error(`no @mplus reply saying "${expect}"`);
}

/** `text` occurs once in the reply (not repeated as an error detail), and the reply offers each button. */
async function saidOnceWithButtons(reply, text, buttons) {
  const all = (await reply.textContent()) || '';
  assert.equal(all.split(text).length - 1, 1, `"${text}" is in the reply ${all.split(text).length - 1} times: ${all}`);
  assert.doesNotMatch(all, /Language model unavailable|ENOTDIR|sidecar/);
  for (const b of buttons) assert.ok(await reply.getByRole('button', { name: b }).first().isVisible(), `the reply has no "${b}" button`);
}

before(async () => {
  writeRepo();
  fs.writeFileSync(inTheWay, 'a file where M+ was told to keep its memory\n');
  fs.mkdirSync(goodStores); // the simple file dialog picks only folders that exist
  const fakeLm = packVsix(cache, path.join(tools, 'fake-lm'), path.join(outDir, 'fake-lm.vsix'));
  s = await startSession({
    cache, folder: repo, vsix: [vsix, fakeLm], outDir, timeout: 60000, log: () => {},
    settings: {
      'mplus.device': 'cpu',
      'mplus.answer.maxTokens': 16,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
    },
  });
  // Machine-scoped settings of the remote machine (code-server's extension host is remote).
  fs.mkdirSync(path.dirname(machineSettings()), { recursive: true });
  fs.writeFileSync(machineSettings(), JSON.stringify({ 'mplus.modelPath': model, 'mplus.storePath': blockedStores }, null, 2));
});

after(async () => {
  if (s) {
    await s.screenshot('final.png').catch(() => {});
    await s.close();
  }
  console.log(`# error-state e2e artefacts: ${outDir}`);
});

const NOT_A_FOLDER = `${inTheWay} is a file, not a folder`;

step('a memory folder M+ cannot write: plain words and Select Memory Folder… in one notification, the tooltip and the Ask view', async () => {
  assert.ok(s.installedIds.includes(EXT_ID), `installed: ${s.installedIds.join(', ')}`);
  await waitForStatus(/M\+ error/, 120000);
  await oneNotification(NOT_A_FOLDER, 'Select Memory Folder…');
  await shot('store-folder-notification');
  await tooltipSays(NOT_A_FOLDER, 'Select Memory Folder…');
  await shot('store-folder-tooltip');
  await s.page.keyboard.press('Escape');
  const frame = await chatView();
  await frame.locator('#coverage', { hasText: NOT_A_FOLDER }).waitFor({ timeout: 15000 });
  assert.match(await frame.locator('#coverage').textContent(), /Choose a folder M\+ can write to\.$/);
  await frame.locator('#actions button', { hasText: 'Select Memory Folder…' }).waitFor({ timeout: 15000 });
  // a question gets the same words, once, instead of failing
  const entry = await askInView(frame, 'Where is add?');
  await entry.locator('.status', { hasText: NOT_A_FOLDER }).waitFor({ timeout: 30000 });
  await shot('store-folder-view');
}, 240000);

step('@mplus in that state: one reply with the words and the Select Memory Folder… button', async () => {
  const reply = await askMplus('where is add?', NOT_A_FOLDER);
  await saidOnceWithButtons(reply, NOT_A_FOLDER, ['Select Memory Folder…']);
  await shot('store-folder-chat');
}, 240000);

step('Select Memory Folder… (from the Ask view) fixes it: the machine setting is written and M+ reads the workspace', async () => {
  const frame = await chatView();
  await frame.locator('#actions button', { hasText: 'Select Memory Folder…' }).click();
  await pickFolder('Select the folder where M+ keeps its memory', goodStores);
  const end = Date.now() + 20000;
  while (Date.now() < end && readMachine()['mplus.storePath'] !== goodStores) await s.page.waitForTimeout(250);
  assert.equal(readMachine()['mplus.storePath'], goodStores, 'the memory folder was not written to the machine settings');
  const t = await waitForStatus(/M\+ ready (\d+)\/\1$/, 180000);
  console.log(`# after choosing a memory folder: ${t}`);
  await frame.locator('#actions button', { hasText: 'Select Memory Folder…' }).waitFor({ state: 'detached', timeout: 15000 });
  assert.equal(fs.readdirSync(goodStores).length, 1, 'one store folder for this workspace');
  await shot('store-folder-fixed');
}, 240000);

step('a damaged memory store is left where it is: plain words and Rebuild Memory in one notification, the tooltip, the Ask view and @mplus', async () => {
  const store = path.join(goodStores, fs.readdirSync(goodStores)[0]);
  await s.runCommand('Notifications: Clear All Notifications');
  // Damage it while no M+ process holds it: with no model M+ stops (committing and letting go of
  // the store), the manifest is overwritten, then the model comes back and M+ starts again.
  setMachine({ 'mplus.modelPath': undefined });
  await waitForStatus(/M\+ no model/, 60000);
  await s.page.waitForTimeout(1000);
  fs.writeFileSync(path.join(store, 'manifest.json'), '{ "format": "mplus-store", ');
  setMachine({ 'mplus.modelPath': model });
  await waitForStatus(/M\+ error/, 120000);
  const said = 'could not be opened (manifest is not valid JSON)';
  await oneNotification(said, 'Rebuild Memory');
  await tooltipSays(said, 'Rebuild Memory');
  await shot('damaged-store-tooltip');
  await s.page.keyboard.press('Escape');
  // left where it is, damaged, until the user chooses
  assert.equal(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8'), '{ "format": "mplus-store", ');
  const frame = await chatView();
  await frame.locator('#coverage', { hasText: said }).waitFor({ timeout: 15000 });
  assert.doesNotMatch(await frame.locator('#coverage').textContent(), /manifest\.json|--store|mplus ingest/);
  await frame.locator('#actions button', { hasText: 'Rebuild Memory' }).waitFor({ timeout: 15000 });
  await shot('damaged-store-view');
  const reply = await askMplus('what does scale do?', said);
  await saidOnceWithButtons(reply, said, ['Rebuild Memory']);
  await shot('damaged-store-chat');
}, 300000);

step('Rebuild Memory (from the Ask view, confirmed) moves the damaged store aside and M+ reads the workspace again', async () => {
  const store = path.join(goodStores, fs.readdirSync(goodStores).filter((n) => !n.includes('.broken-'))[0]);
  const frame = await chatView();
  await frame.locator('#actions button', { hasText: 'Rebuild Memory' }).click();
  const dialog = s.page.locator('.monaco-dialog-box');
  await dialog.getByText('Rebuild the memory of this workspace?').waitFor({ timeout: 20000 });
  await shot('damaged-store-rebuild-confirm');
  await dialog.getByRole('button', { name: 'Rebuild Memory' }).click();
  assert.ok(await s.waitForNotification('M+: memory starts empty', { timeout: 180000 }), 'no "memory starts empty" notification');
  const t = await waitForStatus(/M\+ ready (\d+)\/\1$/, 180000);
  console.log(`# after the rebuild: ${t}`);
  const aside = fs.readdirSync(goodStores).filter((n) => n.startsWith(`${path.basename(store)}.broken-`));
  assert.equal(aside.length, 1, `the damaged store was not moved aside: ${fs.readdirSync(goodStores)}`);
  assert.equal(fs.readFileSync(path.join(goodStores, aside[0], 'manifest.json'), 'utf8'), '{ "format": "mplus-store", ', 'the damaged store was changed');
  JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8'));
  await frame.locator('#actions button', { hasText: 'Rebuild Memory' }).waitFor({ state: 'detached', timeout: 15000 });
  await shot('damaged-store-rebuilt');
}, 300000);

step('@mplus with no model: one reply with Download Model… and Select Model Folder…', async () => {
  await s.runCommand('Notifications: Clear All Notifications');
  setMachine({ 'mplus.modelPath': undefined });
  await waitForStatus(/M\+ no model/, 60000);
  const said = 'M+ needs a model before it can read this workspace';
  const reply = await askMplus('where is add?', said);
  await saidOnceWithButtons(reply, said, ['Download Model…', 'Select Model Folder…']);
  await shot('no-model-chat');
}, 240000);
