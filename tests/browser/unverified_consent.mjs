// The consent page of a client that registered itself (RFC 7591, `registration = "open"`), in
// headless Chromium at 390 px wide, in the light and the dark scheme: it says the app is not
// verified and names the redirect host; nothing scrolls sideways; the notice's text has WCAG AA
// contrast; the page works from the keyboard alone (Tab to "Allow", Enter). Screenshots go to
// $SCREENSHOTS. Prints one JSON line with what it saw; crates/tessera-cli/tests/it/browser.rs
// judges it.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { contrast } from './wcag.mjs';
import { createServer } from 'node:http';

const { ISSUER, CLIENT_ID, CHALLENGE, USERNAME, PASSWORD, SCREENSHOTS } = process.env;
mkdirSync(SCREENSHOTS, { recursive: true });
// The client's loopback redirect (registered without a port: RFC 8252 §7.3, any port), served here.
let callback = null;
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  // Not the browser's /favicon.ico.
  if (url.pathname === '/callback') callback = url;
  res.end('client callback');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const REDIRECT_URI = `http://127.0.0.1:${server.address().port}/callback`;
const AUTHORIZE_URL = `${ISSUER}/authorize?` + new URLSearchParams({
  response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: 'openid', state: 's',
  code_challenge: CHALLENGE, code_challenge_method: 'S256',
});


const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
const seen = {};
try {
  for (const scheme of ['light', 'dark']) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: scheme });
    const page = await context.newPage();
    callback = null;
    await page.goto(AUTHORIZE_URL);
    await page.getByLabel('Username').fill(USERNAME);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForURL(/\/consent\?/);
    const note = page.getByRole('note');
    seen[`${scheme}_note`] = await note.innerText();
    seen[`${scheme}_overflow`] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const [fg, bg] = await note.evaluate((el) => {
      const style = getComputedStyle(el);
      return [style.color, style.backgroundColor];
    });
    seen[`${scheme}_colors`] = [fg, bg];
    seen[`${scheme}_contrast`] = contrast(fg, bg);
    // The outline "Deny" button: its text on the page's background.
    const [deny, page_bg] = await page.getByRole('button', { name: 'Deny' }).evaluate((el) =>
      [getComputedStyle(el).color, getComputedStyle(document.body).backgroundColor]);
    seen[`${scheme}_deny_contrast`] = contrast(deny, page_bg);
    await page.screenshot({ path: `${SCREENSHOTS}/consent-unverified-${scheme}.png`, fullPage: true });
    // Keyboard only: Tab until "Allow" has the focus, then Enter.
    const tabbed = [];
    for (let i = 0; i < 20 && tabbed[tabbed.length - 1] !== 'Allow'; i += 1) {
      await page.keyboard.press('Tab');
      tabbed.push(await page.evaluate(() => document.activeElement && document.activeElement.textContent.trim()));
    }
    seen[`${scheme}_tabbed`] = tabbed;
    await page.keyboard.press('Enter');
    await page.waitForURL(`${REDIRECT_URI}**`);
    seen[`${scheme}_code`] = Boolean(callback && callback.searchParams.get('code'));
    await context.close();
  }
} catch (err) {
  seen.error = String(err && err.stack || err);
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(seen));
