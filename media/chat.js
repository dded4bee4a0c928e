// M+ chat view script. Plain JS, no framework. Everything that comes from the model arrives as
// HTML already rendered and escaped by the extension host (markdown-it, html:false, no links or
// images); everything else is built with textContent. The CSP allows only this script.
// Message shapes, both ways: src/extension/webviewMessages.ts (ToWebview / FromWebview).
(function () {
  'use strict';
  const vscode = acquireVsCodeApi();
  const log = document.getElementById('log');
  const form = document.getElementById('form');
  const question = document.getElementById('question');
  const stopBtn = document.getElementById('stop');
  const header = document.getElementById('header');
  const coverage = document.getElementById('coverage');
  const actions = document.getElementById('actions');
  /** askId -> { root, answer, sources, status } */
  const entries = new Map();
  let running = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function entryFor(askId, q, quoteHtml) {
    let e = entries.get(askId);
    if (!e) {
      const root = el('section', 'entry');
      root.dataset.askId = askId;
      const qEl = el('div', 'question', q || '');
      root.append(qEl);
      if (quoteHtml) {
        const quote = el('blockquote', 'quote');
        quote.innerHTML = quoteHtml; // rendered and escaped by the extension host
        root.append(quote);
      }
      const answer = el('div', 'answer');
      answer.setAttribute('aria-live', 'polite');
      const status = el('div', 'status');
      const note = el('div', 'note');
      const sources = el('div', 'sources');
      root.append(answer, status, note, sources);
      log.append(root);
      e = { root, answer, sources, status, note };
      entries.set(askId, e);
    }
    return e;
  }

  function setRunning(askId) {
    running = askId;
    stopBtn.disabled = !askId;
    document.body.classList.toggle('running', !!askId);
  }

  function scroll() {
    log.scrollTop = log.scrollHeight;
  }

  function renderSources(e, askId, list) {
    e.sources.textContent = '';
    if (!list || !list.length) return;
    e.sources.append(el('div', 'sources-title', 'Sources'));
    const ul = el('ul');
    list.forEach((s, i) => {
      const li = el('li');
      const a = el('a', 'source', s.label);
      a.href = '#';
      a.title = `Open ${s.label}` + (typeof s.weight === 'number' ? ` (weight ${(s.weight * 100).toFixed(0)}%)` : '');
      a.dataset.index = String(i);
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        vscode.postMessage({ type: 'open', askId, index: i });
      });
      li.append(a);
      ul.append(li);
    });
    e.sources.append(ul);
  }

  window.addEventListener('message', (ev) => {
    const m = ev.data;
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'header':
        coverage.textContent = m.text;
        header.dataset.phase = m.phase;
        actions.textContent = '';
        (m.actions || []).forEach((title, i) => {
          const b = el('button', i ? 'secondary' : '', title);
          b.type = 'button';
          b.addEventListener('click', () => vscode.postMessage({ type: 'action', index: i }));
          actions.append(b);
        });
        break;
      case 'start': {
        const e = entryFor(m.askId, m.question, m.quote);
        e.status.textContent = 'Thinking…';
        setRunning(m.askId);
        scroll();
        break;
      }
      case 'answer': {
        const e = entryFor(m.askId);
        e.answer.innerHTML = m.html; // rendered and escaped by the extension host
        e.status.textContent = 'Answering…';
        scroll();
        break;
      }
      case 'sources':
        renderSources(entryFor(m.askId), m.askId, m.sources);
        break;
      case 'entry': {
        const e = entryFor(m.askId, m.question, m.quote);
        e.answer.innerHTML = m.html;
        e.status.textContent = m.error ? m.error : m.cancelled ? 'Stopped.' : m.done ? '' : 'Answering…';
        e.note.textContent = m.note || '';
        e.root.classList.toggle('error', !!m.error);
        e.root.classList.toggle('cancelled', !!m.cancelled);
        renderSources(e, m.askId, m.sources);
        if (m.done && running === m.askId) setRunning(null);
        scroll();
        break;
      }
    }
  });

  // Links inside answers are never followed (there should be none: the renderer emits no links).
  log.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('.answer a') : null;
    if (a) ev.preventDefault();
  });

  function submit() {
    const q = question.value.trim();
    if (!q) return;
    vscode.postMessage({ type: 'ask', question: q });
    question.value = '';
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  question.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && running) {
      ev.preventDefault();
      vscode.postMessage({ type: 'stop' });
    }
  });
  stopBtn.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));

  vscode.postMessage({ type: 'ready' });
  question.focus();
})();
