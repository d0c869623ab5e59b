// The dashboard in a real browser (Debian's Chromium, driven by playwright-core), run by
// ravtest's e2e test `dash`, which starts ravsock, submits the graphs and starts the
// provider when this script says READY. Steps are printed as they pass; any failure exits 1.
//
// Environment: DASH_URL (the server), DASH_TOKEN (alice's, a requester), DASH_GRAPH (hers,
// waiting for a provider), DASH_OTHER_GRAPH (bob's), DASH_BIG_GRAPH (hers, 10,000 ops),
// DASH_PROVIDER (the provider's account
// name), DASH_SHOTS (where screenshots go), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env('DASH_URL');
const token = env('DASH_TOKEN');
const graph = Number(env('DASH_GRAPH'));
const other = Number(env('DASH_OTHER_GRAPH'));
const big = Number(env('DASH_BIG_GRAPH'));
const providerName = env('DASH_PROVIDER');
const shots = env('DASH_SHOTS');
const step = (text) => console.log(`step: ${text}`);
const check = (ok, what) => {
  if (!ok) throw new Error(`failed: ${what}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Refusals the test asks for (a bad token's 401, bob's graph's 404) are logged as failed
    // loads; any other error is the page's.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`console: ${message.text()}`);
    }
  });

  // Without a session the dashboard sends the browser to the login page.
  await page.goto(`${url}/dash`);
  check(page.url().endsWith('/dash/login'), `redirected to the login page, at ${page.url()}`);
  await page.fill('#token', 'rav_not_a_token');
  await page.click('button[type=submit]');
  await page.waitForSelector('.refusal');
  check((await page.textContent('.refusal')).includes('not valid'), 'a bad token is refused with a reason');
  await page.screenshot({ path: `${shots}/login-refused.png` });
  step('a bad token is refused');

  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${url}/dash`);
  await page.waitForSelector('#who:text("alice (requester)")');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'rav_dash');
  check(session && session.httpOnly && session.sameSite === 'Strict', `an HttpOnly, SameSite=Strict cookie: ${JSON.stringify(session)}`);
  check(!(await page.evaluate(() => document.cookie)).includes('rav_dash'), 'scripts cannot read the session');
  check((await page.locator('a[data-page=providers]').count()) === 0, 'a requester has no providers page');
  await page.waitForSelector('#live:text("live")');
  await page.screenshot({ path: `${shots}/overview.png` });
  step('logged in; the overview is live');

  await page.goto(`${url}/dash#/graphs`);
  await page.waitForSelector(`#graphs tr[data-graph="${graph}"]`);
  check((await page.locator(`#graphs tr[data-graph="${other}"]`).count()) === 0, "bob's graph is not listed");
  await page.screenshot({ path: `${shots}/graphs.png` });
  step('her graph is listed, not bob\'s');

  await page.click(`#graphs tr[data-graph="${graph}"] a`);
  await page.waitForSelector('#dag g.node');
  const statuses = () => page.$$eval('#dag g.node', (nodes) => nodes.map((n) => n.getAttribute('data-status')));
  const before = await statuses();
  check(before.includes('pending'), `ops wait for a provider: ${before}`);
  check(!before.every((s) => s === 'computed'), 'not yet computed');
  // A marker that a reload would lose: the colours must change without one.
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  await page.screenshot({ path: `${shots}/graph-waiting.png` });
  step(`the DAG is drawn: ${before.length} ops, waiting`);
  console.log('READY');

  // The test starts a provider on READY; the page is pushed each op's change.
  await page.waitForFunction(
    () => [...document.querySelectorAll('#dag g.node')].every((n) => n.getAttribute('data-status') === 'computed'),
    null,
    { timeout: 60_000 },
  );
  check(await page.evaluate(() => window.__sameDocument === true), 'the page changed colour without reloading');
  await page.waitForSelector('#graph-status .s-computed');
  step('every op turned computed, live');

  // The last op is the graph's result: computed by the provider.
  const last = await page.$$eval('#dag g.node', (nodes) => Math.max(...nodes.map((n) => Number(n.getAttribute('data-op')))));
  await page.click(`#dag g.node[data-op="${last}"]`);
  await page.waitForSelector('#op-title');
  const provider = await page.textContent('#op-provider');
  check(provider === providerName, `the op names its provider: ${provider}`);
  check((await page.textContent('#op-params')).includes('"operator"'), 'the op shows its params');
  check(!(await page.textContent('#op-value')).startsWith('not kept'), 'a persisted result has a preview');
  await page.screenshot({ path: `${shots}/graph-done.png` });
  step(`an op opened: computed by ${provider}`);

  // Another requester's graph: neither page nor data.
  await page.goto(`${url}/dash#/graph/${other}`);
  await page.waitForSelector('#page-error');
  check((await page.textContent('#page-error')).includes(`No graph ${other}`), 'bob\'s graph is not shown');
  const status = await page.evaluate(async (id) => (await fetch(`/dash/api/graphs/${id}`)).status, other);
  check(status === 404, `bob's graph's data answers 404, not ${status}`);
  await page.screenshot({ path: `${shots}/other-owner.png` });
  step("bob's graph cannot be opened");

  // 10,000 ops: drawn one box per operator and band of depths, fast enough to use.
  const started = Date.now();
  await page.goto(`${url}/dash#/graph/${big}`);
  await page.waitForSelector('#dag g.group');
  const drawnMs = Date.now() - started;
  const boxes = await page.locator('#dag g.group').count();
  check(boxes > 1 && boxes <= 200, `a summary of a few boxes, not ${boxes}`);
  check(drawnMs < 15_000, `drawn in ${drawnMs} ms`);
  await page.click('#dag g.group >> nth=1');
  await page.waitForSelector('#op-panel li');
  const clickMs = await page.evaluate(() => {
    const t = performance.now();
    document.querySelector('#dag g.group').dispatchEvent(new MouseEvent('click', { bubbles: true }));
    return performance.now() - t;
  });
  check(clickMs < 500, `a click answered in ${clickMs} ms`);
  await page.screenshot({ path: `${shots}/big-graph.png` });
  step(`10,000 ops drawn as ${boxes} boxes in ${drawnMs} ms (load and layout); a click took ${clickMs.toFixed(1)} ms`);

  await page.click('header form button');
  await page.waitForURL(`${url}/dash/login`);
  // The login page may fetch nothing (its CSP): ask with the browser context's cookies.
  check(!(await context.cookies()).some((c) => c.name === 'rav_dash' && c.value), 'the cookie is cleared');
  const after = (await page.request.get(`${url}/dash/api/overview`)).status();
  check(after === 401, `logged out: ${after}`);
  step('logged out');
  check(problems.length === 0, problems.join('\n'));
  console.log('OK');
} finally {
  await browser.close();
}
