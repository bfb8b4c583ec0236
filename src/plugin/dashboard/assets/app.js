// Weir's release dashboard: two views (the list, one Microservice), each fed by a stream of
// server-sent events from the dashboard; no polling. Everything from the cluster is put in
// the page as text, never as markup.
'use strict';

const TOKEN = document.querySelector('meta[name="weir-token"]').content;
const SVG = 'http://www.w3.org/2000/svg';
const PHASE_MARK = { Healthy: '✓', Progressing: '↻', Paused: '‖', Degraded: '✕' };
const ACTIONS = [
  ['promote', 'Promote', 'End the current step of {name} and go on to the next one.'],
  ['promote-full', 'Promote fully',
    'Skip every remaining step and the analysis: the new version of {name} takes all traffic.'],
  ['abort', 'Abort',
    'Return all traffic of {name} to the stable version, then scale the new version down.'],
  ['retry', 'Retry', 'Release the aborted revision of {name} again, from the first step.'],
  ['pause', 'Pause', 'Hold the release of {name} at its current step.'],
  ['resume', 'Resume', 'Lift the pause on the release of {name}.'],
];

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function time(at) {
  return at ? new Date(at).toLocaleTimeString() : '';
}

function phaseText(phase) {
  return phase ? `${PHASE_MARK[phase] || '•'} ${phase}` : '… pending';
}

function setConnection(text) {
  document.getElementById('connection').textContent = text;
}

/** Opens the stream at `url` and renders each `kind` message; the browser reconnects. */
function follow(url, kind, render) {
  const source = new EventSource(url);
  source.addEventListener(kind, (message) => {
    setConnection('live');
    render(JSON.parse(message.data));
  });
  source.onerror = () => setConnection('reconnecting…');
  return source;
}

// ---- The list ----

function listView() {
  const params = new URLSearchParams(location.search);
  const select = el('select', { id: 'namespace-filter' }, el('option', { value: '' }, 'All namespaces'));
  const body = el('tbody');
  const table = el('table', { id: 'microservices' },
    el('caption', {}, 'Microservices and where their releases stand'),
    el('thead', {}, el('tr', {}, ['Namespace', 'Name', 'Phase', 'Active slot', 'Step', 'Weight', 'Last event']
      .map((h) => el('th', { scope: 'col' }, h)))),
    body);
  const empty = el('p', { id: 'empty', hidden: true }, 'No Microservices to show.');
  document.title = 'Microservices · Weir';
  main().replaceChildren(
    el('h1', {}, 'Microservices'),
    el('p', {}, el('label', { for: 'namespace-filter' }, 'Namespace '), select),
    table, empty);
  let source;
  const open = () => {
    if (source) source.close();
    const namespace = select.dataset.wanted;
    const url = namespace ? `/api/list?namespace=${encodeURIComponent(namespace)}` : '/api/list';
    source = follow(url, 'list', (view) => renderList(view, select, body, empty));
  };
  select.dataset.wanted = params.get('namespace') || '';
  select.addEventListener('change', () => {
    select.dataset.wanted = select.value;
    const query = select.value ? `?namespace=${encodeURIComponent(select.value)}` : '';
    history.replaceState(null, '', `/${query}`);
    open();
  });
  open();
}

function renderList(view, select, body, empty) {
  const wanted = select.dataset.wanted;
  const namespaces = [...new Set([...view.namespaces, wanted].filter(Boolean))].sort();
  const current = [...select.options].slice(1).map((o) => o.value);
  if (current.join('\n') !== namespaces.join('\n')) {
    select.replaceChildren(el('option', { value: '' }, 'All namespaces'),
      ...namespaces.map((ns) => el('option', { value: ns }, ns)));
  }
  select.value = wanted;
  body.replaceChildren(...view.items.map((item) => {
    const href = `/ms/${encodeURIComponent(item.namespace)}/${encodeURIComponent(item.name)}`;
    const event = item.lastEvent;
    return el('tr', { 'data-name': `${item.namespace}/${item.name}` },
      el('td', {}, item.namespace),
      el('th', { scope: 'row' }, el('a', { href }, item.name)),
      el('td', { class: `phase phase-${item.phase || 'none'}` }, phaseText(item.phase)),
      el('td', {}, item.activeSlot || '—'),
      el('td', { class: 'step' }, item.step || '—'),
      el('td', { class: 'weight' }, item.weight === null || item.weight === undefined ? '—' : `${item.weight}%`),
      el('td', { class: 'event' }, event ? `${event.reason}: ${event.message}` : ''));
  }));
  empty.hidden = view.items.length > 0;
}

// ---- One Microservice ----

function detailView(namespace, name) {
  document.title = `${name} · Weir`;
  const section = (id, title, ...content) => el('section', { id, 'aria-labelledby': `${id}-title` },
    el('h2', { id: `${id}-title` }, title), ...content);
  const buttons = ACTIONS.map(([action, label, text]) => {
    const button = el('button', { type: 'button', 'data-action': action, disabled: true }, label);
    button.addEventListener('click', () => confirmAction(namespace, name, action, label,
      text.replace('{name}', name), button));
    return button;
  });
  main().replaceChildren(
    el('nav', { 'aria-label': 'Breadcrumb' }, el('a', { href: '/' }, 'All microservices')),
    el('h1', {}, name, ' ', el('span', { class: 'namespace' }, `in ${namespace}`)),
    el('p', { id: 'phase' }),
    el('section', { id: 'failure', role: 'alert', hidden: true }),
    section('actions', 'Actions', el('div', { class: 'buttons' }, buttons),
      el('p', { id: 'action-result', role: 'status', 'aria-live': 'polite' })),
    section('steps', 'Steps', el('p', { id: 'release' }), el('ol', { id: 'timeline' })),
    section('traffic', 'Traffic', el('figure', { id: 'weight-plot' })),
    section('analysis', 'Analysis', el('div', { id: 'metrics' })),
    section('slots', 'Slots', el('table', { id: 'slot-table' })),
    section('conditions', 'Conditions', el('table', { id: 'condition-table' })),
    section('events', 'Recent events', el('ol', { id: 'event-list', reversed: true })));
  const url = `/api/ms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  follow(url, 'detail', (view) => renderDetail(view, namespace, name));
}

function renderDetail(view, namespace, name) {
  const byId = (id) => document.getElementById(id);
  if (!view) {
    byId('phase').textContent = `Microservice ${name} is not in namespace ${namespace} (or not visible to you).`;
    return;
  }
  const s = view.summary;
  byId('phase').replaceChildren(el('span', { class: `phase phase-${s.phase || 'none'}` }, phaseText(s.phase)),
    s.message ? ` — ${s.message}` : '', ` · image ${s.image} · strategy ${s.strategy}`);
  renderFailure(byId('failure'), view.failure);
  for (const button of document.querySelectorAll('button[data-action]')) {
    button.disabled = !view.actions.includes(button.dataset.action) || button.dataset.busy === 'true';
  }
  renderTimeline(byId('release'), byId('timeline'), view);
  renderWeights(byId('weight-plot'), view.weights, s.traffic);
  renderMetrics(byId('metrics'), view.metrics);
  renderTable(byId('slot-table'), 'The two slots and their pods', ['Slot', 'Role', 'Revision', 'Image', 'Ready pods'],
    view.slots.map((slot) => [slot.slot, slot.role, slot.revision || '—', slot.image || '—', `${slot.ready} of ${slot.replicas}`]));
  renderTable(byId('condition-table'), 'Conditions', ['Type', 'Status', 'Reason', 'Message'],
    s.conditions.map((c) => [c.type, c.status, c.reason, c.message]));
  byId('event-list').replaceChildren(...[...s.events].reverse().map((e) => el('li', { class: `event-${e.type}` },
    el('time', {}, time(e.lastSeen)), ` ${e.type === 'Warning' ? '⚠ ' : ''}${e.reason}: ${e.message}`,
    e.count > 1 ? ` (×${e.count})` : '')));
}

function renderFailure(box, failure) {
  box.hidden = !failure;
  if (!failure) return box.replaceChildren();
  const metric = failure.metric;
  box.replaceChildren(el('div', {},
    el('h2', {}, `✕ Release failed: ${failure.reason}`),
    el('p', { id: 'failure-message' }, failure.message),
    metric ? el('p', { id: 'failure-metric' }, `Metric ${metric.metric} measured `,
      metric.value === null || metric.value === undefined ? 'no value' : String(metric.value),
      ` at ${time(metric.at)}: ${metric.message || metric.outcome}`) : null));
}

function renderTimeline(summaryLine, list, view) {
  const s = view.summary;
  const release = s.release;
  summaryLine.textContent = release
    ? `Releasing revision ${release.revision}: step ${release.step} of ${release.stepCount}` +
      (release.paused ? ', held by a pause' : '') +
      (release.returning ? `, returning to stable (${release.returning.reason})` : '')
    : `No release in progress${s.stableRevision ? `; revision ${s.stableRevision} is stable` : ''}.`;
  const startOf = (number) => view.stepStarts.filter((start) => start.number === number).pop();
  const items = s.steps.map((step) => {
    const start = startOf(step.number);
    return el('li', { 'data-state': step.state, 'aria-current': step.state === 'current' ? 'step' : null },
      el('span', { class: 'mark', 'aria-hidden': 'true' }, { done: '●', current: '▶', pending: '○' }[step.state]),
      ` Step ${step.number}: ${step.description} `,
      el('span', { class: 'state' }, `(${step.state})`),
      start ? el('time', { datetime: start.startedAt }, ` started ${time(start.startedAt)}`) : null);
  });
  const promotion = startOf(s.steps.length + 1);
  if (release && release.promoting) {
    items.push(el('li', { 'data-state': 'current', 'aria-current': 'step' },
      el('span', { class: 'mark', 'aria-hidden': 'true' }, '▶'), ' Promotion: the new version takes all traffic ',
      promotion ? el('time', { datetime: promotion.startedAt }, ` started ${time(promotion.startedAt)}`) : null));
  }
  list.replaceChildren(...items);
}

// ---- Plots ----

const PLOT = { width: 640, height: 180, left: 48, right: 12, top: 12, bottom: 28 };

/** Maps times and values into the plot's box. */
function scales(times, low, high) {
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1000);
  const x = (t) => PLOT.left + ((t - t0) / (t1 - t0)) * (PLOT.width - PLOT.left - PLOT.right);
  const y = (v) => PLOT.top + (1 - (v - low) / (high - low || 1)) * (PLOT.height - PLOT.top - PLOT.bottom);
  return { x, y, t0, t1 };
}

function frame(label, low, high, scale, format) {
  const svg = el('svg:svg', { viewBox: `0 0 ${PLOT.width} ${PLOT.height}`, role: 'img', 'aria-label': label });
  for (const v of [low, (low + high) / 2, high]) {
    svg.append(el('svg:line', { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: scale.y(v), y2: scale.y(v), class: 'grid' }),
      el('svg:text', { x: PLOT.left - 6, y: scale.y(v) + 4, 'text-anchor': 'end' }, format(v)));
  }
  svg.append(el('svg:text', { x: PLOT.left, y: PLOT.height - 8 }, time(scale.t0)),
    el('svg:text', { x: PLOT.width - PLOT.right, y: PLOT.height - 8, 'text-anchor': 'end' }, time(scale.t1)));
  return svg;
}

/** A step line through `points` ([time, value]), held until `end`. */
function stepPath(points, scale, end) {
  if (!points.length) return '';
  let d = `M${scale.x(points[0][0])},${scale.y(points[0][1])}`;
  for (let i = 1; i < points.length; i++) {
    d += ` H${scale.x(points[i][0])} V${scale.y(points[i][1])}`;
  }
  return `${d} H${scale.x(end)}`;
}

function renderWeights(figure, weights, traffic) {
  const now = Date.now();
  const applied = weights.map((w) => [Date.parse(w.at), w.weight]);
  const verified = [];
  for (const w of weights) {
    if (w.verified) verified.push([Date.parse(w.at), w.weight]);
  }
  const last = weights[weights.length - 1];
  const lastVerified = verified.length ? verified[verified.length - 1][1] : null;
  figure.dataset.points = String(weights.length);
  figure.dataset.applied = last ? String(last.weight) : '';
  figure.dataset.verified = lastVerified === null ? '' : String(lastVerified);
  const caption = last
    ? `New version's weight: ${last.weight}% applied, ${lastVerified === null ? 'none' : `${lastVerified}%`} verified (${weights.length} changes seen).`
    : traffic ? `No release: blue ${traffic.blue}%, green ${traffic.green}%.` : 'No traffic yet.';
  if (!weights.length) {
    figure.replaceChildren(el('figcaption', {}, caption));
    return;
  }
  const scale = scales([...applied.map((p) => p[0]), now], 0, 100);
  const svg = frame('Weight of the new version over time', 0, 100, scale, (v) => `${v}%`);
  svg.append(el('svg:path', { d: stepPath(applied, scale, now), class: 'applied' }),
    el('svg:path', { d: stepPath(verified, scale, now), class: 'verified' }));
  const legend = el('p', { class: 'legend' }, el('span', { class: 'key applied' }, '── applied'), ' ',
    el('span', { class: 'key verified' }, '- - verified by the router'));
  const table = el('details', {}, el('summary', {}, 'As a table'), tableOf(['Time', 'Applied', 'Verified'],
    weights.map((w) => [time(w.at), `${w.weight}%`, w.verified ? 'yes' : 'not yet'])));
  figure.replaceChildren(svg, el('figcaption', {}, caption), legend, table);
}

function renderMetrics(box, metrics) {
  if (!metrics.length) {
    box.replaceChildren(el('p', {}, 'This release has no analysis.'));
    return;
  }
  box.replaceChildren(...metrics.map((metric) => {
    const points = metric.points.filter((p) => p.value !== null && p.value !== undefined);
    const failed = metric.points.filter((p) => !p.passed).length;
    const bounds = [metric.min === null || metric.min === undefined ? null : `at least ${metric.min}`,
      metric.max === null || metric.max === undefined ? null : `at most ${metric.max}`].filter(Boolean).join(', ');
    const latest = metric.points[metric.points.length - 1];
    const caption = `${metric.name}: ${bounds || 'no bounds'}; ${metric.points.length} measurements, ${failed} failed` +
      (latest ? `; last ${latest.value ?? 'no value'} (${latest.outcome})` : '');
    const figure = el('figure', { class: 'metric', 'data-metric': metric.name, 'data-measurements': metric.points.length, 'data-failed': failed });
    if (!points.length) {
      figure.append(el('figcaption', {}, caption));
      return figure;
    }
    const values = points.map((p) => p.value).concat([metric.min, metric.max].filter((v) => v !== null && v !== undefined));
    let low = Math.min(...values);
    let high = Math.max(...values);
    if (low === high) { low -= 1; high += 1; }
    const pad = (high - low) * 0.1;
    const scale = scales(points.map((p) => Date.parse(p.at)), low - pad, high + pad);
    const svg = frame(`Measurements of ${metric.name} against its bounds`, low - pad, high + pad, scale, (v) => Number(v.toPrecision(3)));
    for (const [bound, name] of [[metric.min, 'min'], [metric.max, 'max']]) {
      if (bound === null || bound === undefined) continue;
      svg.append(el('svg:line', { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: scale.y(bound), y2: scale.y(bound), class: 'bound' }),
        el('svg:text', { x: PLOT.width - PLOT.right, y: scale.y(bound) - 4, 'text-anchor': 'end' }, `${name} ${bound}`));
    }
    for (const p of points) {
      const x = scale.x(Date.parse(p.at));
      const y = scale.y(p.value);
      const title = el('svg:title', {}, `${time(p.at)}: ${p.value} ${p.passed ? 'passed' : 'failed'}`);
      svg.append(p.passed
        ? el('svg:circle', { cx: x, cy: y, r: 4, class: 'passed' }, title)
        : el('svg:path', { d: `M${x - 5},${y - 5} L${x + 5},${y + 5} M${x - 5},${y + 5} L${x + 5},${y - 5}`, class: 'failed' }, title));
    }
    figure.append(svg, el('figcaption', {}, caption));
    return figure;
  }));
}

function tableOf(headers, rows, caption) {
  return el('table', {}, caption ? el('caption', {}, caption) : null,
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((row) => el('tr', {}, row.map((cell) => el('td', {}, cell))))));
}

function renderTable(table, caption, headers, rows) {
  table.replaceChildren(...tableOf(headers, rows, caption).childNodes);
}

// ---- Actions ----

/** Asks before acting; the request carries the session token, and the page then sees the
 *  outcome through its stream like any other change. */
function confirmAction(namespace, name, action, label, text, button) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = `${label} ${name}?`;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = label;
  const done = (go) => {
    ok.onclick = null;
    cancel.onclick = null;
    dialog.close();
    button.focus();
    if (go) send(namespace, name, action, button);
  };
  ok.onclick = () => done(true);
  cancel.onclick = () => done(false);
  dialog.oncancel = () => done(false);
  dialog.showModal();
  cancel.focus();
}

async function send(namespace, name, action, button) {
  const result = document.getElementById('action-result');
  button.dataset.busy = 'true';
  button.disabled = true;
  result.textContent = `Requesting ${action}…`;
  try {
    const url = `/api/ms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/actions`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Weir-Token': TOKEN },
      body: JSON.stringify({ action }),
    });
    const answer = await response.json().catch(() => ({ message: response.statusText }));
    result.textContent = response.ok ? answer.message : `Refused: ${answer.message}`;
    result.dataset.outcome = response.ok ? 'requested' : 'refused';
  } catch (error) {
    result.textContent = `Cannot reach the dashboard: ${error}`;
    result.dataset.outcome = 'error';
  } finally {
    button.dataset.busy = 'false';
  }
}

// ---- Start ----

function main() {
  return document.getElementById('main');
}

const route = location.pathname.match(/^\/ms\/([^/]+)\/([^/]+)$/);
if (route) {
  detailView(decodeURIComponent(route[1]), decodeURIComponent(route[2]));
} else {
  listView();
}
