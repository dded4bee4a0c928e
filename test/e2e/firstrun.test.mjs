// End-to-end: the first run of the packaged extension with no model, in code-server. The
// walkthrough, Select Model Folder (a wrong folder, then none chosen), and Download Model from a
// Hugging Face hub on 127.0.0.1 (test/extension/localHub.ts, serving the fixture checkpoint; the
// largest file's connection is dropped halfway once, so the download resumes it with Range),
// ending with the model path written to the machine's settings and the sidecar starting on it.
// Run through `bash test/e2e/run.sh` (same environment as mplus.test.mjs); artefacts go to
// $E2E_OUT/firstrun.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { env, harness, EXT_ID } from './harness.mjs';

const tools = env('MPLUS_E2E_TOOLS');
const cache = env('CODE_SERVER_E2E_CACHE');
const outDir = path.join(env('E2E_OUT'), 'firstrun');
// This suite is about life without a model: the .vsix without the bundled checkpoint (run.sh).
const vsix = env('MPLUS_E2E_VSIX_NO_MODEL');
const model = env('MPLUS_E2E_MODEL');
const repo = env('MPLUS_E2E_REPO');
const REPO_ID = 'test-org/mplus-small';
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const { LocalHub } = createRequire(import.meta.url)(path.join(root, 'out', 'test', 'extension', 'localHub.js'));
const { startSession } = await import(pathToFileURL(path.join(tools, 'smoke.mjs')).href);
let s;
let hub;
const { shot, step, waitForStatus, pickFolder } = harness({ outDir, session: () => s });
const downloads = path.join(outDir, 'downloads');
const notAModel = path.join(outDir, 'not-a-model');

const machineSettings = () => path.join(s.userDataDir, 'Machine', 'settings.json');

before(async () => {
  const files = fs.readdirSync(model).filter((n) => fs.statSync(path.join(model, n)).isFile())
    .map((n) => ({ path: n, content: fs.readFileSync(path.join(model, n)), lfs: n.endsWith('.safetensors') }));
  hub = new LocalHub(REPO_ID, files);
  const biggest = files.reduce((a, b) => (b.content.length > a.content.length ? b : a));
  hub.faults.set(biggest.path, { drop: { afterBytes: biggest.content.length >> 1, times: 1 } });
  await hub.start();
  fs.mkdirSync(downloads, { recursive: true });
  fs.mkdirSync(notAModel, { recursive: true });
  fs.writeFileSync(path.join(notAModel, 'notes.txt'), 'not a model\n');
  s = await startSession({
    cache, folder: repo, vsix: [vsix], outDir, timeout: 60000, log: () => {},
    settings: {
      'mplus.device': 'cpu',
      'mplus.answer.maxTokens': 48,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
    },
  });
  // Machine-scoped settings of the remote machine (code-server's extension host is remote):
  // no model, and the hub is the local one.
  fs.mkdirSync(path.dirname(machineSettings()), { recursive: true });
  fs.writeFileSync(machineSettings(), JSON.stringify({
    'mplus.storePath': path.join(outDir, 'stores'),
    'mplus.download.endpoint': hub.hubUrl,
  }, null, 2));
});

after(async () => {
  if (s) {
    await s.screenshot('final.png').catch(() => {});
    await s.close();
  }
  await hub?.stop();
  console.log(`# first-run e2e artefacts: ${outDir}`);
});

step('first run with no model: the status bar says so', async () => {
  assert.ok(s.installedIds.includes(EXT_ID), `installed: ${s.installedIds.join(', ')}`);
  await waitForStatus(/M\+ no model/, 60000);
  // one notice, in plain words, with both ways to get a model and a way to silence it for good
  assert.ok(await s.waitForNotification('M+ needs a model', { timeout: 30000 }), 'no notice about the missing model');
  const toast = s.page.locator('.notification-list-item', { hasText: 'M+ needs a model' }).first();
  for (const b of ['Download Model…', 'Select Model Folder…', "Don't Show Again"]) assert.ok(await toast.getByRole('button', { name: b }).isVisible(), `no "${b}" button`);
  await shot('no-model');
  // the Ask view says the same and offers the same fix
  await s.runCommand('View: Show M+ Memory');
  const frame = await s.webviewFrame('Stop', { extensionId: EXT_ID, timeout: 30000 });
  assert.ok(frame, 'the M+ chat view did not appear');
  await frame.locator('#coverage', { hasText: 'M+ needs a model' }).waitFor({ timeout: 15000 });
  for (const b of ['Download Model…', 'Select Model Folder…']) await frame.locator('#actions button', { hasText: b }).waitFor({ timeout: 15000 });
  await shot('no-model-view');
});

step('the walkthrough shows how to get a model and what a model needs', async () => {
  await s.runCommand('Welcome: Open Walkthrough...');
  const box = s.page.locator('.quick-input-widget .quick-input-box input');
  await box.fill('M+ Repository Memory');
  await s.page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Get Started with M+ Repository Memory' }).first().click({ timeout: 20000 });
  const page = s.page.locator('.gettingStartedContainer');
  await page.getByText('Get an M+ model').first().waitFor({ timeout: 20000 });
  for (const b of ['Download Model…', 'Select Model Folder…']) {
    assert.ok(await page.getByRole('button', { name: b }).first().isVisible(), `no "${b}" button in the walkthrough`);
  }
  await shot('walkthrough-get-model');
  await page.getByText('What a model needs').first().click();
  const md = await s.webviewFrame('Disk for memory', { timeout: 20000 });
  assert.ok(md, 'the hardware page did not render');
  assert.ok(await md.locator('body', { hasText: 'RAM, running on the CPU' }).count());
  await shot('walkthrough-hardware');
});

step('Select Model Folder refuses a folder that is not a model, in plain words', async () => {
  await s.runCommand('M+: Select Model Folder…');
  await pickFolder('Select the M+ model folder', notAModel);
  assert.ok(await s.waitForNotification('M+ cannot use this folder', { timeout: 20000 }), 'no error for a folder without a model');
  assert.ok(await s.waitForNotification('has no config.json', { timeout: 5000 }));
  await shot('select-folder-refused');
  const settings = fs.existsSync(machineSettings()) ? JSON.parse(fs.readFileSync(machineSettings(), 'utf8')) : {};
  assert.equal(settings['mplus.modelPath'], undefined, 'a bad folder was written to the settings');
  await s.page.keyboard.press('Escape');
});

step('Download Model from the (local) hub: progress, a dropped connection resumed, then M+ uses it', async () => {
  await s.runCommand('M+: Download Model…');
  const box = s.page.locator('.quick-input-widget .quick-input-box input');
  await box.waitFor({ timeout: 20000 });
  assert.equal(await box.inputValue(), 'YuWangX/mplus-8b', 'the repository id should default to mplus-8b');
  await box.fill(REPO_ID);
  await box.press('Enter');
  await pickFolder('Folder to download', downloads);
  // the size and free space, asked once before anything moves
  const dialog = s.page.locator('.monaco-dialog-box');
  await dialog.getByText(`Download ${REPO_ID}:`).waitFor({ timeout: 20000 });
  assert.match(await dialog.textContent(), /downloads\/mplus-small\?/, 'the download goes to another folder than the one picked');
  await shot('download-confirm');
  await dialog.getByRole('button', { name: 'Download' }).click();
  assert.ok(await s.waitForNotification(`Downloading ${REPO_ID}`, { timeout: 20000 }) ||
    await s.page.locator('.notification-list-item', { hasText: 'Downloading' }).first().isVisible(), 'no progress notification');
  await shot('download-progress');
  assert.ok(await s.waitForNotification(`Downloaded ${REPO_ID}`, { timeout: 300000 }), 'the download did not finish');
  await shot('download-done');
  const dest = path.join(downloads, 'mplus-small');
  for (const f of hub.files) assert.ok(fs.readFileSync(path.join(dest, f.path)).equals(f.content), `${f.path} differs`);
  const resumed = hub.requests.filter((q) => q.server === 'cdn' && q.range);
  assert.ok(resumed.length >= 1, 'the dropped file was not resumed with a Range request');
  const settings = JSON.parse(fs.readFileSync(machineSettings(), 'utf8'));
  assert.equal(settings['mplus.modelPath'], dest, 'the model path was not written to the machine settings');
  await waitForStatus(/M\+ (starting|feeding|ready)/, 120000);
  await shot('model-in-use');
}, 420000);
