/**
 * package.json's `contributes` against itself and against the code: every command has the M+
 * category (titles do not repeat "M+:"), every command a menu, keybinding or walkthrough names
 * exists and is registered by the extension, every file the manifest points at exists, and every
 * `mplus.*` context key a when-clause reads is set by the extension.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { REPO_ROOT } from '../helpers/tmp';

interface Command { command: string; title: string; category?: string; enablement?: string }
interface Step { id: string; description: string; media: { markdown?: string; image?: string }; completionEvents?: string[] }

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
const c = pkg.contributes;
const commands: Command[] = c.commands;
const declared = new Set(commands.map((x) => x.command));
const views: string[] = Object.values(c.views as Record<string, Array<{ id: string }>>).flat().map((v) => v.id);
/** Commands VS Code itself provides that the manifest may name. */
const BUILTIN = new Set(['workbench.action.openSettings', ...views.map((v) => `${v}.focus`)]);

function extensionSources(): string {
  const dir = path.join(REPO_ROOT, 'src', 'extension');
  const all: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith('.ts')) all.push(fs.readFileSync(path.join(d, e.name), 'utf8'));
    }
  };
  walk(dir);
  return all.join('\n');
}

function commandLinks(markdown: string): string[] {
  return [...markdown.matchAll(/\(command:([\w.-]+)/g)].map((m) => m[1]);
}

describe('extension: the manifest (package.json contributes)', () => {
  it('every command has the M+ category and a title that does not repeat it', () => {
    for (const x of commands) {
      assert.strictEqual(x.category, 'M+', `${x.command} has category ${x.category}`);
      assert.ok(!/^M\+\s*[:(]/.test(x.title), `${x.command}'s title "${x.title}" repeats the category`);
    }
  });

  it('every contributed command is registered by the extension, and every registered one is contributed, except test hooks', () => {
    const src = extensionSources();
    const registered = new Set([...src.matchAll(/registerCommand\(\s*'([\w.]+)'/g)].map((m) => m[1]));
    for (const x of declared) assert.ok(registered.has(x), `${x} is in package.json but no registerCommand registers it`);
    const hooks = fs.readFileSync(path.join(REPO_ROOT, 'src', 'extension', 'testHooks.ts'), 'utf8');
    for (const x of registered) {
      if (x.startsWith('mplus._')) {
        assert.ok(!declared.has(x), `the test-only ${x} ships in package.json`);
        assert.ok(hooks.includes(`'${x}'`), `${x} is registered outside testHooks.ts (only there is it gated by MPLUS_TEST_HOOKS)`);
      } else assert.ok(declared.has(x), `${x} is registered but not in package.json's commands`);
    }
    assert.ok(!JSON.stringify(c).includes('mplus._'), 'the manifest names a test-only command');
  });

  it('menus, keybindings and walkthroughs name only commands that exist', () => {
    const named: Array<[string, string]> = [];
    for (const [menu, items] of Object.entries(c.menus as Record<string, Array<{ command: string }>>)) {
      for (const i of items) named.push([`menus.${menu}`, i.command]);
    }
    for (const k of c.keybindings) named.push(['keybindings', k.command]);
    for (const w of c.walkthroughs) {
      for (const s of w.steps as Step[]) {
        for (const cmd of commandLinks(s.description)) named.push([`walkthrough step ${s.id}`, cmd]);
        for (const ev of s.completionEvents ?? []) {
          const m = /^onCommand:(.+)$/.exec(ev);
          if (m) named.push([`walkthrough step ${s.id} completion`, m[1]]);
        }
      }
    }
    assert.ok(named.length > 20);
    for (const [where, cmd] of named) assert.ok(declared.has(cmd) || BUILTIN.has(cmd), `${where} names ${cmd}, which does not exist`);
  });

  it('Ask and focusing the view have keybindings for Windows/Linux and macOS', () => {
    for (const cmd of ['mplus.ask', 'mplus.chatView.focus']) {
      const k = c.keybindings.find((x: { command: string }) => x.command === cmd);
      assert.ok(k?.key && k?.mac, `no keybinding for ${cmd}`);
    }
  });

  it('the walkthrough has the four first-run steps, with buttons for both model commands and media that exists', () => {
    const [w] = c.walkthroughs;
    const steps = w.steps as Step[];
    assert.deepStrictEqual(steps.map((s) => s.id), ['getModel', 'hardware', 'openView', 'ask']);
    assert.deepStrictEqual(commandLinks(steps[0].description), ['mplus.downloadModel', 'mplus.selectModelFolder']);
    for (const s of steps) {
      const media = s.media.markdown ?? s.media.image;
      assert.ok(media && fs.existsSync(path.join(REPO_ROOT, media)), `step ${s.id}: media ${media} is missing`);
    }
    const setting = /^onSettingChanged:(.+)$/.exec(steps[0].completionEvents![0])![1];
    assert.ok(c.configuration.properties[setting], `the walkthrough waits for ${setting}, which is not a setting`);
    assert.match(fs.readFileSync(path.join(REPO_ROOT, steps[1].media.markdown!), 'utf8'), /RAM[\s\S]*GPU[\s\S]*Disk for memory/);
  });

  it('settings that choose what runs or where it comes from are machine-scoped', () => {
    for (const k of ['mplus.modelPath', 'mplus.nodePath', 'mplus.storePath', 'mplus.download.endpoint']) {
      assert.strictEqual(c.configuration.properties[k]?.scope, 'machine', k);
    }
  });

  it('the .mplusignore language has a configuration with # comments, and its grammar exists', () => {
    const lang = c.languages.find((l: { id: string }) => l.id === 'mplusignore');
    const conf = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, lang.configuration), 'utf8'));
    assert.strictEqual(conf.comments.lineComment, '#');
    for (const g of c.grammars) assert.ok(fs.existsSync(path.join(REPO_ROOT, g.path)), g.path);
  });

  it('every mplus.* context key a when-clause reads is set by the extension', () => {
    const clauses: string[] = [];
    for (const items of Object.values(c.menus as Record<string, Array<{ when?: string }>>)) for (const i of items) if (i.when) clauses.push(i.when);
    for (const k of c.keybindings) if (k.when) clauses.push(k.when);
    for (const x of commands) if (x.enablement) clauses.push(x.enablement);
    const keys = new Set(clauses.flatMap((w) => [...w.matchAll(/\b(mplus\.[\w.]+)/g)].map((m) => m[1])).filter((k) => !k.startsWith('mplus.chatView')));
    const src = extensionSources();
    for (const k of keys) assert.ok(src.includes(`'setContext', '${k}'`), `when-clauses read ${k}, which the extension never sets`);
  });

  it('carries repository, bugs, license metadata and the files the Marketplace shows', () => {
    assert.match(pkg.repository?.url ?? '', /^https:\/\//);
    assert.match(pkg.bugs?.url ?? '', /^https:\/\//);
    assert.strictEqual(pkg.license, 'MIT');
    assert.match(fs.readFileSync(path.join(REPO_ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.ok(fs.existsSync(path.join(REPO_ROOT, 'CHANGELOG.md')));
    // the user-facing page speaks of installing and using, not of building from source
    const page = fs.readFileSync(path.join(REPO_ROOT, 'MARKETPLACE.md'), 'utf8');
    assert.ok(!/npm (ci|start|run)|bin\/mplus/.test(page), 'MARKETPLACE.md shows developer commands');
    assert.ok(!/\]\((?!https:)/.test(page), 'MARKETPLACE.md has a relative link (vsce would rewrite it to the repository)');
  });
});
