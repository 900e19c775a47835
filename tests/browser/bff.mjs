// The token handler in a real browser: headless Chromium loads the SPA the gateway serves
// (tests/browser/spa), signs in at the issuer, calls the API through the gateway, looks for
// tokens where JavaScript could read them, and signs out.
// Prints one JSON line with what it saw; crates/tessera-cli/tests/it/bff.rs judges it.
import { chromium } from 'playwright-core';

const { SPA_URL, USERNAME, PASSWORD } = process.env;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
const seen = { shown: [] };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const spaOrigin = new URL(SPA_URL).origin;
  // Everything the gateway shows the page: headers and bodies.
  page.on('response', async (response) => {
    if (new URL(response.url()).origin !== spaOrigin) return;
    const headers = JSON.stringify(await response.allHeaders());
    const body = await response.text().catch(() => '');
    seen.shown.push(headers, body);
  });
  await page.goto(SPA_URL);
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Username').fill(USERNAME);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${spaOrigin}/**`);
  await page.locator('#status', { hasText: /^signed in$/ }).waitFor();
  seen.url_after_login = page.url();
  await page.getByRole('button', { name: 'Call the API' }).click();
  await page.locator('#output', { hasText: 'status' }).waitFor();
  seen.api = JSON.parse(await page.locator('#output').innerText());
  seen.document_cookie = await page.evaluate(() => document.cookie);
  seen.storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  const cookies = await context.cookies(spaOrigin);
  seen.cookies = cookies.map(({ name, value, httpOnly, secure, sameSite, path, domain }) =>
    ({ name, value, httpOnly, secure, sameSite, path, domain }));
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  seen.logout = JSON.parse(await page.locator('#output').innerText());
  seen.cookies_after = (await context.cookies(spaOrigin)).map((c) => c.name);
  seen.api_after = await page.evaluate(async () => (await fetch('/api/invoices')).status);
} catch (err) {
  seen.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
