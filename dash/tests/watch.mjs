// The dashboard left open in Chromium while the grid benchmark runs (`GRID_WATCH=1 cargo bench
// -p ravtest --bench grid`): it logs in with an admin token, prints WATCHING, then follows the
// lines the benchmark writes on its standard input: `graph N` opens graph N's page (its DAG,
// live), `page NAME` opens the overview, providers or graphs page, `end` closes the browser.
// At the end it prints WATCHED, or the page's errors and exits 1.
//
// Environment: DASH_URL (the server), DASH_TOKEN (an admin's), CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const url = process.env.DASH_URL;
const token = process.env.DASH_TOKEN;
if (!url || !token) throw new Error('DASH_URL and DASH_TOKEN must be set');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
});
const problems = [];
try {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(`${url}/dash/login`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${url}/dash`);
  await page.waitForSelector('#live:text("live")');
  console.log('WATCHING');
  for await (const line of createInterface({ input: process.stdin })) {
    const [verb, arg] = line.trim().split(/\s+/);
    if (verb === 'end') break;
    if (verb === 'graph') {
      await page.goto(`${url}/dash#/graph/${arg}`);
      await page.waitForSelector('#dag g.node, #dag g.group', { timeout: 60_000 });
    } else if (verb === 'page') {
      await page.goto(`${url}/dash#/${arg}`);
    }
    console.log(`at ${verb} ${arg ?? ''}`.trim());
  }
} finally {
  await browser.close();
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('WATCHED');
