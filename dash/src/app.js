// The ravsock dashboard: plain modules, no framework. Pages are chosen by the URL's hash
// (#/, #/providers, #/graphs, #/graph/ID); data comes from /dash/api/* with the session
// cookie, and changes are pushed on the /dash socket.io namespace (no polling loop).
import { io } from 'socket.io-client';
import dagre from '@dagrejs/dagre';

const main = document.getElementById('main');
const SVG = 'http://www.w3.org/2000/svg';
// Above this many ops a graph is drawn one box per (band of depths, operator) instead of per
// op, with at most BANDS bands: a chain of 10,000 ops is 60 boxes, not 10,000.
export const SUMMARY_ABOVE = 400;
const BANDS = 60;

let me = null;
let page = { name: null, graphEvent() {}, opsEvent() {} };

const socket = io('/dash', { transports: ['websocket', 'polling'] });
socket.on('connect', () => {
  setLive(true);
  if (page.watching) socket.emit('watch', page.watching);
});
socket.on('disconnect', () => setLive(false));
socket.on('connect_error', () => setLive(false));
socket.on('graph', (progress) => page.graphEvent(progress));
socket.on('ops', (change) => page.opsEvent(change));
socket.on('error_body', (body) => console.warn('refused:', body.message));

function setLive(on) {
  const live = document.getElementById('live');
  live.textContent = on ? 'live' : 'offline';
  live.classList.toggle('off', !on);
}

/** GET a dashboard data route; a lost session goes back to the login page. */
async function api(path) {
  const response = await fetch(`/dash/api/${path}`, { credentials: 'same-origin' });
  if (response.status === 401) {
    location.href = '/dash/login';
    throw new Error('the session has ended');
  }
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.message || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** An element with attributes and children (strings become text: nothing is parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'onclick') node.addEventListener('click', value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const badge = (status) => el('span', { class: `badge s-${status}` }, status);
const when = (unix) => (unix ? new Date(unix * 1000).toLocaleString() : '');
const debounce = (fn, ms) => {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
};

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function failed(error) {
  show(el('p', { class: 'error', id: 'page-error' }, error.message));
}

// ---- overview ----

async function overview() {
  const data = await api('overview');
  const count = (status) => data.graphs[status] || 0;
  const card = (n, label) => el('div', { class: 'card' }, el('div', { class: 'n' }, n), el('div', { class: 'l' }, label));
  show(
    el('div', { class: 'cards' },
      card(count('computing'), 'graphs computing'),
      card(count('pending'), 'graphs pending'),
      card(count('computed'), 'graphs computed'),
      card(count('failed'), 'graphs failed'),
      card(data.providers, 'providers connected'),
      card(data.ready_subgraphs, 'subgraphs waiting'),
      card(data.assigned_subgraphs, 'subgraphs out'),
      card(data.ops_computed, 'ops computed (since start)')),
    el('div', { class: 'chart' }, el('strong', {}, 'Providers connected, last hour'), providersChart(data.providers_history, data.providers)),
  );
  const refresh = debounce(() => page.name === 'overview' && overview().catch(failed), 1000);
  page.graphEvent = refresh;
  page.opsEvent = () => {};
}

function providersChart(history, now) {
  const end = Date.now() / 1000;
  const start = end - 3600;
  const points = history.filter(([t]) => t >= start);
  const before = history.filter(([t]) => t < start).pop();
  const steps = [[start, before ? before[1] : (points[0] ? 0 : now)], ...points, [end, now]];
  const top = Math.max(1, ...steps.map(([, n]) => n));
  const x = (t) => ((t - start) / 3600) * 600;
  const y = (n) => 140 - (n / top) * 120;
  const path = [];
  steps.forEach(([t, n], i) => {
    if (i > 0) path.push(`${x(t)},${y(steps[i - 1][1])}`);
    path.push(`${x(t)},${y(n)}`);
  });
  return el('svg:svg', { viewBox: '0 0 600 160', preserveAspectRatio: 'none', id: 'providers-chart' },
    el('svg:polyline', { points: path.join(' ') }),
    el('svg:text', { x: 2, y: 12 }, `${top}`),
    el('svg:text', { x: 2, y: 155 }, '-60 min'),
    el('svg:text', { x: 560, y: 155 }, 'now'));
}

// ---- providers ----

async function providers() {
  const rows = await api('providers');
  const gib = (bytes) => (bytes / 2 ** 30).toFixed(1);
  show(el('table', { id: 'providers' },
    el('tr', {}, ['connection', 'account', 'cores', 'RAM GiB', 'GPU', 'speed', 'graph', 'connected', 'holds', 'done', 'failed', 'balance']
      .map((h) => el('th', {}, h))),
    rows.map((p) => el('tr', {},
      el('td', {}, p.id), el('td', {}, p.account), el('td', { class: 'num' }, p.benchmark.cores),
      el('td', { class: 'num' }, gib(p.benchmark.ram_bytes)), el('td', {}, p.benchmark.gpu ? 'yes' : 'no'),
      el('td', { class: 'num' }, p.benchmark.speed_score.toFixed(2)), el('td', {}, p.graph ?? 'any'),
      el('td', {}, `${Math.round(p.joined_ms_ago / 1000)} s ago`), el('td', { class: 'num' }, p.in_flight),
      el('td', { class: 'num' }, p.done), el('td', { class: 'num' }, p.failed), el('td', { class: 'num' }, p.available))),
    rows.length ? null : el('tr', {}, el('td', { colspan: 12, class: 'muted' }, 'No provider is connected.'))));
  const refresh = debounce(() => page.name === 'providers' && providers().catch(failed), 2000);
  page.graphEvent = refresh;
  page.opsEvent = refresh;
}

// ---- graphs ----

async function graphs(params) {
  const q = params.get('q') || '';
  const number = Number(params.get('page') || 0);
  const data = await api(`graphs?q=${encodeURIComponent(q)}&page=${number}&per_page=25`);
  const search = el('input', { type: 'search', placeholder: 'name or id', value: q, id: 'search' });
  search.addEventListener('change', () => (location.hash = `#/graphs?q=${encodeURIComponent(search.value)}`));
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  const go = (to) => () => (location.hash = `#/graphs?q=${encodeURIComponent(q)}&page=${to}`);
  const row = (g) => el('tr', { 'data-graph': g.id },
    el('td', {}, el('a', { href: `#/graph/${g.id}` }, g.id)), el('td', {}, g.name), el('td', {}, g.owner),
    el('td', { class: 'status' }, badge(g.status)),
    el('td', {}, el('div', { class: 'bar' }, el('div', { class: `pct-${Math.round(g.percent)}` })), ` ${g.percent.toFixed(0)}%`),
    el('td', {}, when(g.created_at)),
    el('td', {}, g.ended_at ? `${g.ended_at - g.created_at} s` : ''),
    el('td', {}, g.requirements || 'none'));
  const table = el('table', { id: 'graphs' },
    el('tr', {}, ['id', 'name', 'owner', 'status', 'progress', 'created', 'took', 'requirements'].map((h) => el('th', {}, h))),
    data.rows.map(row));
  show(
    el('div', { class: 'toolbar' }, search,
      el('button', { onclick: go(number - 1), ...(number <= 0 ? { disabled: '' } : {}) }, '‹ newer'),
      el('span', {}, `page ${number + 1} of ${pages} (${data.total} graphs)`),
      el('button', { onclick: go(number + 1), ...(number + 1 >= pages ? { disabled: '' } : {}) }, 'older ›')),
    table);
  widthBars(table);
  page.graphEvent = (progress) => {
    const tr = table.querySelector(`tr[data-graph="${progress.graph_id}"]`);
    if (!tr) return;
    tr.querySelector('.status').replaceChildren(badge(progress.status));
    const bar = tr.querySelector('.bar > div');
    bar.className = `pct-${Math.round(progress.percent)}`;
    widthBars(tr);
  };
  page.opsEvent = () => {};
}

/** Progress bars: widths set through the CSSOM (the page's CSP forbids inline style attributes). */
function widthBars(root) {
  root.querySelectorAll('.bar > div').forEach((bar) => {
    bar.style.width = `${bar.className.replace('pct-', '')}%`;
  });
}

// ---- one graph ----

async function graph(id) {
  let view;
  try {
    view = await api(`graphs/${id}`);
  } catch (error) {
    if (error.status === 404) {
      show(el('p', { class: 'error', id: 'page-error' }, `No graph ${id} that you may see.`));
      return;
    }
    throw error;
  }
  page.watching = Number(id);
  socket.emit('watch', Number(id));
  const status = new Map(view.ops.map((op) => [op.id, op.status]));
  const summary = view.ops.length > SUMMARY_ABOVE;
  const panel = el('div', { class: 'panel', id: 'op-panel' }, el('p', { class: 'muted' }, summary
    ? `${view.ops.length} ops: drawn one box per operator and band of depths. Click a box to list its ops.`
    : 'Click an op to see it.'));
  const header = el('div', { class: 'toolbar' },
    el('strong', {}, `Graph ${view.graph.id}: ${view.graph.name}`),
    el('span', { id: 'graph-status' }, badge(view.graph.status)),
    el('span', {}, `owner ${view.graph.owner}`),
    el('span', { id: 'graph-percent' }, `${view.graph.percent.toFixed(0)}% of ${view.ops.length} ops`),
    el('span', { class: 'legend' }, ['pending', 'computing', 'computed', 'failed'].map((s) => badge(s))));
  const dag = el('div', { class: 'dag', id: 'dag' });
  show(header, el('div', { class: 'graph-layout' }, dag, panel));
  const drawing = summary ? drawSummary(dag, view.ops, status, panel, id) : drawOps(dag, view.ops, panel, id);
  page.opsEvent = (change) => {
    if (change.graph !== Number(id)) return;
    for (const op of change.ops) {
      if (status.get(op) !== 'computed' || change.status === 'computed') status.set(op, change.status);
    }
    drawing.update(change.ops, status);
  };
  page.graphEvent = (progress) => {
    if (progress.graph_id !== Number(id)) return;
    document.getElementById('graph-status').replaceChildren(badge(progress.status));
    document.getElementById('graph-percent').textContent = `${progress.percent.toFixed(0)}% of ${view.ops.length} ops`;
    // An end is read again in full: an op event lost on the way is mended here.
    if (['computed', 'failed', 'cancelled'].includes(progress.status)) {
      api(`graphs/${id}`).then((fresh) => {
        fresh.ops.forEach((op) => status.set(op.id, op.status));
        drawing.update(fresh.ops.map((op) => op.id), status);
      }).catch(() => {});
    }
  };
}

/** Depth of each op: the longest chain of inputs before it. An op without inputs (a value)
 *  sits just above its first consumer, so that inputs fed in along a chain stay beside it. */
function depths(ops) {
  const byId = new Map(ops.map((op) => [op.id, op]));
  const depth = new Map();
  // Iterative (a chain of 10,000 ops would overflow a recursive walk's stack).
  for (const start of ops) {
    const stack = [start];
    while (stack.length) {
      const op = stack[stack.length - 1];
      if (depth.has(op.id)) {
        stack.pop();
        continue;
      }
      const waiting = op.inputs.map((i) => byId.get(i)).filter((p) => p && !depth.has(p.id));
      if (waiting.length) {
        stack.push(...waiting);
        continue;
      }
      const parents = op.inputs.map((i) => byId.get(i)).filter(Boolean);
      depth.set(op.id, parents.length ? Math.max(...parents.map((p) => depth.get(p.id) + 1)) : 0);
      stack.pop();
    }
  }
  const firstUse = new Map();
  for (const op of ops) {
    for (const input of op.inputs) {
      firstUse.set(input, Math.min(firstUse.get(input) ?? Infinity, depth.get(op.id)));
    }
  }
  for (const op of ops) {
    if (op.inputs.length === 0 && firstUse.has(op.id)) depth.set(op.id, Math.max(0, firstUse.get(op.id) - 1));
  }
  return depth;
}

/** Lays out `nodes` ({id, label, width}) and `edges` ([from, to]) with dagre into an SVG. */
function layout(container, nodes, edges) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 36, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  nodes.forEach((n) => g.setNode(String(n.id), { width: n.width, height: 28 }));
  edges.forEach(([a, b]) => g.setEdge(String(a), String(b)));
  dagre.layout(g);
  const { width, height } = g.graph();
  const svg = el('svg:svg', { viewBox: `0 0 ${Math.max(width, 10)} ${Math.max(height, 10)}` });
  const world = el('svg:g', {});
  svg.append(world);
  g.edges().forEach((e) => {
    const points = g.edge(e).points.map((p) => `${p.x},${p.y}`).join(' ');
    world.append(el('svg:polyline', { class: 'edge', points }));
  });
  const elements = new Map();
  nodes.forEach((n) => {
    const box = g.node(String(n.id));
    const group = el('svg:g', { class: n.class, transform: `translate(${box.x - box.width / 2},${box.y - 14})`, ...n.attrs },
      el('svg:rect', { width: box.width, height: 28, class: 'back' }), el('svg:text', { x: 8, y: 18 }, n.label));
    world.append(group);
    elements.set(n.id, group);
  });
  panZoom(container, svg);
  container.replaceChildren(svg);
  return elements;
}

function drawOps(container, ops, panel, graphId) {
  const known = new Set(ops.map((op) => op.id));
  const nodes = ops.map((op) => ({
    id: op.id,
    label: `${op.op} #${op.local_id}${op.persist ? ` → ${op.persist}` : ''}`,
    width: Math.max(70, 8 + 7 * `${op.op} #${op.local_id}${op.persist ? ` → ${op.persist}` : ''}`.length),
    class: 'node',
    attrs: { 'data-op': op.id, 'data-status': op.status },
  }));
  const edges = ops.flatMap((op) => op.inputs.filter((i) => known.has(i)).map((i) => [i, op.id]));
  const elements = layout(container, nodes, edges);
  elements.forEach((node, id) => node.addEventListener('click', () => {
    container.querySelectorAll('.selected').forEach((s) => s.classList.remove('selected'));
    node.classList.add('selected');
    showOp(panel, graphId, id);
  }));
  return {
    update(changed, status) {
      for (const id of changed) {
        const node = elements.get(id);
        if (node) node.setAttribute('data-status', status.get(id));
      }
    },
  };
}

function drawSummary(container, ops, status, panel, graphId) {
  const depth = depths(ops);
  const deepest = Math.max(0, ...depth.values());
  const band = (d) => Math.floor((d * BANDS) / (deepest + 1));
  const groups = new Map();
  const groupOf = new Map();
  for (const op of ops) {
    const key = `${band(depth.get(op.id))}:${op.op}`;
    if (!groups.has(key)) groups.set(key, { id: key, ops: [], inputs: new Set() });
    groups.get(key).ops.push(op);
    groupOf.set(op.id, key);
  }
  for (const op of ops) {
    for (const input of op.inputs) {
      const from = groupOf.get(input);
      if (from && from !== groupOf.get(op.id)) groups.get(groupOf.get(op.id)).inputs.add(from);
    }
  }
  const label = (group) => {
    const done = group.ops.filter((op) => status.get(op.id) === 'computed').length;
    return `${group.ops[0].op} ×${group.ops.length} (${done} done)`;
  };
  const nodes = [...groups.values()].map((group) => ({
    id: group.id, label: label(group), width: 190, class: 'group', attrs: { 'data-group': group.id },
  }));
  const edges = [...groups.values()].flatMap((group) => [...group.inputs].map((from) => [from, group.id]));
  const elements = layout(container, nodes, edges);
  const paint = (key) => {
    const group = groups.get(key);
    const node = elements.get(key);
    const done = group.ops.filter((op) => status.get(op.id) === 'computed').length;
    let bar = node.querySelector('rect.done');
    if (!bar) {
      bar = el('svg:rect', { class: 'done', height: 28 });
      node.insertBefore(bar, node.querySelector('text'));
    }
    bar.setAttribute('width', (190 * done) / group.ops.length);
    node.querySelector('text').textContent = label(group);
    node.setAttribute('data-status', done === group.ops.length ? 'computed' : 'pending');
  };
  groups.forEach((_, key) => paint(key));
  elements.forEach((node, key) => node.addEventListener('click', () => {
    const group = groups.get(key);
    const levels = group.ops.map((op) => depth.get(op.id));
    panel.replaceChildren(el('h3', {}, `${group.ops[0].op}, depth ${Math.min(...levels)}–${Math.max(...levels)}`),
      el('ul', {}, group.ops.slice(0, 200).map((op) => el('li', {},
        el('a', { href: '#', onclick: (event) => { event.preventDefault(); showOp(panel, graphId, op.id); } },
          `#${op.local_id}`), ' ', badge(status.get(op.id))))),
      group.ops.length > 200 ? el('p', { class: 'muted' }, `and ${group.ops.length - 200} more`) : null);
  }));
  return {
    update(changed) {
      const touched = new Set(changed.map((id) => groupOf.get(id)).filter(Boolean));
      touched.forEach(paint);
    },
  };
}

/** Wheel zooms and dragging pans, by changing the SVG's viewBox. */
function panZoom(container, svg) {
  let drag = null;
  const box = () => svg.getAttribute('viewBox').split(' ').map(Number);
  container.addEventListener('wheel', (event) => {
    event.preventDefault();
    const [x, y, w, h] = box();
    const k = event.deltaY > 0 ? 1.15 : 1 / 1.15;
    svg.setAttribute('viewBox', `${x + (w - w * k) / 2} ${y + (h - h * k) / 2} ${w * k} ${h * k}`);
  }, { passive: false });
  container.addEventListener('mousedown', (event) => (drag = { x: event.clientX, y: event.clientY, start: box() }));
  window.addEventListener('mouseup', () => (drag = null));
  container.addEventListener('mousemove', (event) => {
    if (!drag) return;
    const [x, y, w, h] = drag.start;
    const scale = w / container.clientWidth;
    svg.setAttribute('viewBox', `${x - (event.clientX - drag.x) * scale} ${y - (event.clientY - drag.y) * scale} ${w} ${h}`);
  });
}

async function showOp(panel, graphId, opId) {
  panel.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  try {
    const op = await api(`graphs/${graphId}/ops/${opId}`);
    const took = op.assigned_at_ms && op.computed_at_ms ? `${op.computed_at_ms - op.assigned_at_ms} ms` : null;
    const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '—');
    panel.replaceChildren(
      el('h3', { id: 'op-title' }, `${op.node.op} #${op.node.local_id}`),
      el('p', {}, badge(op.node.status), ' ', op.node.persist ? `kept as ${op.node.persist}` : ''),
      el('dl', {},
        el('dt', {}, 'Provider'), el('dd', { id: 'op-provider' }, op.provider ?? '—'),
        el('dt', {}, 'Handed out'), el('dd', {}, time(op.assigned_at_ms)),
        el('dt', {}, 'Computed'), el('dd', {}, time(op.computed_at_ms), took ? ` (${took} for its subgraph)` : ''),
        el('dt', {}, 'Inputs'), el('dd', {}, op.node.inputs.length ? op.node.inputs.join(', ') : 'none')),
      el('h4', {}, 'Operation'), el('pre', { id: 'op-params' }, JSON.stringify(op.operation, null, 1)),
      el('h4', {}, 'Value'), el('pre', { id: 'op-value' }, op.preview ?? 'not kept by the server (only inputs and persisted results are)'));
  } catch (error) {
    panel.replaceChildren(el('p', { class: 'error' }, error.message));
  }
}

// ---- routing ----

async function route() {
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query || '');
  const parts = (path || '/').split('/').filter(Boolean);
  const name = parts[0] === 'graph' ? 'graph' : parts[0] || 'overview';
  page = { name, graphEvent() {}, opsEvent() {}, watching: null };
  document.querySelectorAll('header nav a').forEach((a) => a.classList.toggle('current', a.dataset.page === name || (name === 'graph' && a.dataset.page === 'graphs')));
  try {
    if (name === 'providers') await providers();
    else if (name === 'graphs') await graphs(params);
    else if (name === 'graph') await graph(parts[1]);
    else await overview();
  } catch (error) {
    failed(error);
  }
}

async function start() {
  try {
    me = await api('overview');
  } catch (error) {
    failed(error);
    return;
  }
  document.getElementById('who').textContent = `${me.caller} (${me.role})`;
  if (me.role !== 'admin') document.querySelectorAll('.admin-only').forEach((a) => a.remove());
  window.addEventListener('hashchange', route);
  route();
}

start();
