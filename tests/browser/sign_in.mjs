// A real browser signs in: headless Chromium (Debian's /usr/bin/chromium) opens an
// authorization URL, signs in, consents and lands on the client's redirect with a code; the
// script redeems the code like the client would; the account page lists the session; "Sign out
// all devices" signs the browser out and the access token stops being active.
// Screenshots of the login, consent and account pages go to $SCREENSHOTS.
// Prints one JSON line with what it saw; crates/tessera-cli/tests/it/browser.rs judges it.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const { ISSUER, AUTHORIZE_URL, REDIRECT_URI, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, VERIFIER, SCREENSHOTS } =
  process.env;
mkdirSync(SCREENSHOTS, { recursive: true });
const basic = 'Basic ' + Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64');
const post = async (path, form) => {
  const res = await fetch(`${ISSUER}${path}`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
const seen = {};
try {
  const page = await browser.newPage();
  let callback = null;
  // The client's redirect URI is not a real server: catch the navigation there.
  await page.route(`${new URL(REDIRECT_URI).origin}/**`, (route) => {
    callback = route.request().url();
    return route.fulfill({ status: 200, contentType: 'text/plain', body: 'client callback' });
  });

  await page.goto(AUTHORIZE_URL);
  seen.login_title = await page.title();
  await page.screenshot({ path: `${SCREENSHOTS}/login.png`, fullPage: true });
  await page.getByLabel('Username').fill(USERNAME);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/consent\?/);
  seen.consent_title = await page.title();
  await page.screenshot({ path: `${SCREENSHOTS}/consent.png`, fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${REDIRECT_URI}**`);
  const url = new URL(callback);
  seen.state = url.searchParams.get('state');
  seen.iss = url.searchParams.get('iss');
  const code = url.searchParams.get('code');
  seen.code_prefix = code && code.slice(0, 4);

  const tokens = await post('/token', {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: VERIFIER,
  });
  seen.token_status = tokens.status;
  const access = tokens.body.access_token;
  seen.active_before = (await post('/introspect', { token: access })).body.active;

  await page.goto(`${ISSUER}/account`);
  seen.account_title = await page.title();
  seen.account_sessions = await page.locator('tr.session').count();
  seen.account_text = await page.locator('tr.session').first().innerText();
  await page.screenshot({ path: `${SCREENSHOTS}/account.png`, fullPage: true });
  await page.getByRole('button', { name: 'Sign out all devices' }).click();
  await page.waitForURL(/\/login$/);
  seen.after_sign_out = new URL(page.url()).pathname;
  seen.active_after = (await post('/introspect', { token: access })).body.active;
  await page.goto(`${ISSUER}/account`);
  seen.account_after = new URL(page.url()).pathname;
} catch (err) {
  seen.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
