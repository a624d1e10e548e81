// Opens the HTML site `courier docs` writes in headless Chromium (Debian's
// `chromium`, driven by playwright-core) from file://: every internal link
// and anchor must resolve, pages must load without script errors, search
// must find a message by name and by its fields' text, long pages must have a
// table of contents, and at 375 px (a phone) the navigation must stay one row
// and tables must fit as stacked rows; screenshots (desktop and phone) are
// written to tools/docs/artifacts/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { generateDocs, Tally } from './generate.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function ensureChromium() {
  if (fs.existsSync(CHROMIUM)) return;
  console.log(`${CHROMIUM} missing: installing Debian's chromium`);
  const sudo = process.getuid && process.getuid() === 0 ? [] : ['sudo'];
  for (const args of [['apt-get', 'update'], ['apt-get', 'install', '-y', 'chromium']]) {
    const cmd = [...sudo, ...args];
    const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed`);
  }
}

const t = new Tally('docs-site');
ensureChromium();
const dir = generateDocs();
fs.mkdirSync(artifacts, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-docs-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
// Nothing may leave the machine: the site is self-contained.
await context.route(/^(https?|wss?):/, (route) => { t.check(false, `network request to ${route.request().url()}`); route.abort(); });

try {
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  const htmlFiles = [];
  (function walk(d) {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (e.name.endsWith('.html')) htmlFiles.push(p);
    }
  })(dir);
  t.check(htmlFiles.length >= 30, `only ${htmlFiles.length} HTML pages`);

  // Ids per page, filled as pages are visited (every page is visited).
  const ids = new Map();
  const links = [];
  for (const file of htmlFiles) {
    errors.length = 0;
    const url = pathToFileURL(file).href;
    const resp = await page.goto(url, { waitUntil: 'load' });
    t.check(resp === null || resp.ok(), `${file} did not load`);
    const info = await page.evaluate(() => ({
      ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
      links: [...document.querySelectorAll('a[href], link[href], script[src]')].map((e) => e.href || e.src),
      title: document.title,
      overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
    }));
    ids.set(url, new Set(info.ids));
    t.check(info.title.includes('Courier'), `${file}: title ${info.title}`);
    t.check(errors.length === 0, `${file}: script errors ${errors.join('; ')}`);
    for (const l of info.links) links.push([file, l]);
  }

  let internal = 0;
  for (const [from, link] of links) {
    if (!link.startsWith('file:')) { t.check(/^(https?|mailto):/.test(link), `${from}: odd link ${link}`); continue; }
    internal++;
    const [target, frag] = link.split('#');
    const targetPath = fileURLToPath(target);
    if (!fs.existsSync(targetPath)) { t.check(false, `${from}: broken link ${link}`); continue; }
    if (frag) {
      const known = ids.get(target);
      t.check(known ? known.has(decodeURIComponent(frag)) : false, `${from}: missing anchor #${frag} in ${targetPath}`);
    } else {
      t.check(true, 'link');
    }
  }
  t.check(internal > 1000, `only ${internal} internal links`);

  // Search: typing a message name lists its page; Enter goes there.
  await page.goto(pathToFileURL(path.join(dir, 'index.html')).href);
  await page.fill('#q', 'publish_a');
  const first = await page.locator('#results a').first().getAttribute('href');
  t.check(first && first.endsWith('messages/publish_ack.html'), `search for publish_a found ${first}`);
  await page.press('#q', 'Enter');
  await page.waitForURL(/publish_ack\.html$/);
  t.check(page.url().endsWith('messages/publish_ack.html'), `Enter went to ${page.url()}`);
  await page.goto(pathToFileURL(path.join(dir, 'messages', 'subscribe.html')).href);
  await page.fill('#q', 'SEQ-GAP');
  const req = await page.locator('#results a').first().getAttribute('href');
  t.check(req && req.endsWith('requirements.html#req-SEQ-GAPFREE'), `search from a sub-page found ${req}`);

  // Full-text search: descriptions and field names, not only names.
  const searchFor = async (q) => {
    await page.fill('#q', q);
    return page.locator('#results a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  };
  await page.goto(pathToFileURL(path.join(dir, 'index.html')).href);
  const heartbeat = await searchFor('heartbeat');
  t.check(heartbeat.some((h) => h.endsWith('messages/welcome.html')), `"heartbeat" does not find welcome (heartbeat_interval_ms): ${heartbeat.slice(0, 8)}`);
  const resume = await searchFor('resume');
  t.check(resume.some((h) => h.endsWith('messages/subscribe.html')), `"resume" does not find subscribe: ${resume.slice(0, 8)}`);
  const specHit = (await searchFor('gap-free')).find((h) => h.includes('spec/'));
  t.check(Boolean(specHit), 'full-text search finds no spec section for "gap-free"');
  if (specHit) {
    await page.press('#q', 'Escape');
    const [target, frag] = new URL(specHit, page.url()).href.split('#');
    await page.goto(target);
    t.check(await page.locator(`[id="${frag}"]`).count() === 1, `search hit ${specHit}: no such anchor`);
  }

  // Long pages get a table of contents: beside the text on a wide screen, above it on a phone.
  const longPage = pathToFileURL(path.join(dir, 'spec', 'encoding.html')).href;
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(longPage);
  const toc = await page.evaluate(() => {
    const aside = document.querySelector('aside.page-toc');
    if (!aside) return null;
    const links = [...aside.querySelectorAll('a')].map((a) => a.getAttribute('href').slice(1));
    const h1 = document.querySelector('main h1');
    return { links, missing: links.filter((id) => !document.getElementById(id)), beside: aside.getBoundingClientRect().left >= h1.getBoundingClientRect().right && aside.querySelector('details').open };
  });
  t.check(toc !== null && toc.links.length >= 4, `no table of contents on ${page.url()}`);
  t.check(toc !== null && toc.missing.length === 0, `table of contents links to missing ids: ${toc && toc.missing}`);
  t.check(toc !== null && toc.beside, 'the table of contents is not beside the text at 1280 px');
  await page.screenshot({ path: path.join(artifacts, 'spec-toc.png'), fullPage: false });

  // Screenshots, desktop and phone (375 px, the narrowest common phone width). On the phone the
  // sections stay one row, no page scrolls sideways, and every table cell is on screen.
  const shots = [['index', 'index.html'], ['message-publish', 'messages/publish.html'], ['requirements', 'requirements.html'], ['close-codes', 'close-codes.html']];
  for (const [name, rel] of shots) {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(pathToFileURL(path.join(dir, rel)).href);
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    await page.setViewportSize({ width: 375, height: 812 });
    await page.goto(pathToFileURL(path.join(dir, rel)).href);
    const phone = await page.evaluate(() => {
      const nav = [...document.querySelectorAll('header.top nav a')].map((a) => a.getBoundingClientRect().top);
      const cells = [...document.querySelectorAll('main table td')];
      const off = cells.filter((td) => {
        const r = td.getBoundingClientRect();
        return r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1);
      });
      const unlabeled = cells.filter((td) => !td.hasAttribute('data-label')).length;
      return {
        overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
        navRows: new Set(nav.map((y) => Math.round(y))).size,
        cells: cells.length,
        off: off.slice(0, 3).map((td) => td.textContent.slice(0, 40)),
        unlabeled,
      };
    });
    t.check(!phone.overflow, `${rel} scrolls sideways at 375 px`);
    t.check(phone.navRows === 1, `${rel}: the navigation takes ${phone.navRows} rows at 375 px`);
    t.check(phone.off.length === 0, `${rel}: table cells off-screen at 375 px: ${phone.off.join(' | ')}`);
    t.check(phone.unlabeled === 0, `${rel}: ${phone.unlabeled} of ${phone.cells} cells without a column label`);
    await page.screenshot({ path: path.join(artifacts, `${name}-phone.png`), fullPage: false });
    t.check(fs.statSync(path.join(artifacts, `${name}.png`)).size > 10_000, `${name}.png is empty`);
    t.check(fs.statSync(path.join(artifacts, `${name}-phone.png`)).size > 10_000, `${name}-phone.png is empty`);
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`screenshots in ${artifacts}`);
t.finish();
