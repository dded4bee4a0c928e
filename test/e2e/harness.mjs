// What every e2e suite needs beside its code-server session: its environment, PASS/FAIL steps with
// screenshots, the status bar, and typing a path into code-server's simple file dialog (and picking
// a folder with it). Shared by the suites run through test/e2e/run.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The extension under test (package.json publisher.name). */
export const EXT_ID = 'mplus-dev.mplus-repo-memory';

/** Packs the extension folder `dir` into `file` with the e2e tools' vsce (e.g. the fake chat model). */
export function packVsix(cache, dir, file) {
  execFileSync(path.join(cache, 'bin', 'vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', file],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return file;
}

/** A variable run.sh sets; a clear error when the suite was started some other way. */
export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this suite through test/e2e/run.sh`);
  return v;
};

/**
 * Helpers for one suite: `outDir` receives results.txt (emptied here), `session()` returns the
 * suite's code-server session once it has started (screenshots before that are skipped).
 */
export function harness({ outDir, session }) {
  const results = path.join(outDir, 'results.txt');
  fs.writeFileSync(results, '');
  let shotNo = 0;

  async function shot(name) {
    const s = session();
    if (!s) return;
    await s.screenshot(`${String(++shotNo).padStart(2, '0')}-${name}.png`).catch(() => {});
  }

  /** A test that records PASS/FAIL (and a screenshot on failure). */
  function step(name, fn, timeout = 120000) {
    test(name, { timeout }, async () => {
      try {
        await fn();
        fs.appendFileSync(results, `PASS ${name}\n`);
        console.log(`PASS ${name}`);
      } catch (e) {
        fs.appendFileSync(results, `FAIL ${name}: ${String(e.message).split('\n')[0]}\n`);
        console.log(`FAIL ${name}: ${e.message}`);
        await shot(`FAIL-${name.replace(/[^\w]+/g, '-')}`);
        throw e;
      }
    });
  }

  async function statusText() {
    const items = session().page.locator('.statusbar-item', { hasText: /M\+ / });
    if (!(await items.count())) return '';
    return ((await items.first().textContent()) || '').trim();
  }

  async function waitForStatus(re, timeout) {
    const end = Date.now() + timeout;
    let last = '';
    while (Date.now() < end) {
      last = await statusText();
      if (re.test(last)) return last;
      await session().page.waitForTimeout(250);
    }
    throw new Error(`status bar never matched ${re} (last: "${last}")`);
  }

  /**
   * Types `want` into a file dialog's input box until it stays: the dialog can set its starting
   * folder after the box appears, overwriting a path typed too early (Enter would then pick the
   * whole workspace folder).
   */
  async function typePath(box, want, message) {
    for (let i = 0; i < 10; i++) {
      await box.fill(want);
      await session().page.waitForTimeout(1000);
      if ((await box.inputValue()) === want) break;
    }
    assert.equal(await box.inputValue(), want, message);
  }

  /**
   * Answers VS Code's folder picker. In code-server it is the "simple file dialog": a quick input
   * whose box holds a path; typing a folder's path and pressing its OK button picks it. `title` tells
   * the picker from the quick input it replaces (a repository id box can still be on screen), and
   * the typed path is only sent once the dialog has shown its own starting folder: typed earlier,
   * it would be overwritten by it.
   */
  async function pickFolder(title, dir) {
    const page = session().page;
    await page.waitForTimeout(500);
    const widget = page.locator('.quick-input-widget', { hasText: title });
    await widget.waitFor({ timeout: 20000 });
    const box = widget.locator('.quick-input-box input');
    const end = Date.now() + 20000;
    while (!(await box.inputValue()).startsWith('/') && Date.now() < end) await page.waitForTimeout(200);
    await typePath(box, dir.endsWith('/') ? dir : `${dir}/`, 'the folder picker changed the typed path');
    await shot('folder-picker');
    await widget.locator('.quick-input-action .monaco-button, .quick-input-ok .monaco-button').first().click();
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10000 });
  }

  /** Shows the M+ Ask view and returns its webview frame. */
  async function chatView() {
    const s = session();
    await s.runCommand('View: Show M+ Memory');
    const frame = await s.webviewFrame('Stop', { extensionId: EXT_ID, timeout: 30000 });
    assert.ok(frame, 'the M+ chat view did not appear');
    return frame;
  }

  /** Asks `question` in the Ask view `frame`; returns the new entry once it shows. */
  async function askInView(frame, question) {
    const n = await frame.locator('.entry').count();
    await frame.locator('#question').click();
    await frame.locator('#question').fill(question);
    await frame.locator('#question').press('Enter');
    const entry = frame.locator('.entry').nth(n);
    await entry.waitFor({ timeout: 30000 });
    return entry;
  }

  /**
   * Types "@mplus QUESTION" into the VS Code chat input: clears it, lets the mention's suggestion
   * list open and closes it, then types the question. True when the input then starts with
   * "@mplus CHECK" (the chat input sometimes drops keys under load: callers retry).
   */
  async function typeMention(question, check) {
    const s = session();
    const input = s.page.locator('.interactive-input-part .monaco-editor').first();
    await input.click();
    await s.page.keyboard.press('Control+A');
    await s.page.keyboard.press('Backspace');
    await s.page.keyboard.type('@mplus', { delay: 50 });
    await s.page.waitForTimeout(1000);
    if (await s.page.locator('.suggest-widget.visible').count()) await s.page.keyboard.press('Escape');
    await s.page.keyboard.type(` ${question}`, { delay: 10 });
    const typed = ((await input.textContent()) || '').replace(/\s+/g, ' ').trim();
    if (typed.startsWith(`@mplus ${check}`)) return true;
    console.log(`# chat input was "${typed}", retrying`);
    return false;
  }

  return { shot, step, statusText, waitForStatus, typePath, pickFolder, chatView, askInView, typeMention };
}
