// The person's side of the device authorization grant (RFC 8628) in headless Chromium at 390 px
// wide, in the light and the dark scheme: /device sends them to sign in and back, they type the
// code their device shows (in lower case, without the dash: typing is forgiving) into the field
// labelled "Code", check the confirmation page, and allow with the keyboard alone (Tab to
// "Allow", Enter). Nothing scrolls sideways; text has WCAG AA contrast. Screenshots go to
// $SCREENSHOTS. Prints one JSON line with what it saw; crates/tessera-cli/tests/it/browser.rs
// judges it (and then polls /token as the device).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { contrast } from './wcag.mjs';

const { ISSUER, USER_CODES, USERNAME, PASSWORD, SCREENSHOTS } = process.env;
mkdirSync(SCREENSHOTS, { recursive: true });
const codes = USER_CODES.split(',');

const textContrast = (locator) => locator.evaluate((el) =>
  [getComputedStyle(el).color, getComputedStyle(document.body).backgroundColor]).then(([fg, bg]) => contrast(fg, bg));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
const seen = {};
try {
  for (const [i, scheme] of ['light', 'dark'].entries()) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: scheme });
    const page = await context.newPage();
    await page.goto(`${ISSUER}/device`);
    await page.waitForURL(/\/login\?request=device/);
    await page.getByLabel('Username').fill(USERNAME);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await page.waitForURL(/\/device$/);
    seen[`${scheme}_enter_overflow`] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    seen[`${scheme}_label_contrast`] = await textContrast(page.locator('label[for="user_code"]'));
    await page.screenshot({ path: `${SCREENSHOTS}/device-enter-${scheme}.png`, fullPage: true });
    await page.getByLabel('Code').fill(codes[i].replace('-', '').toLowerCase());
    await page.getByLabel('Code').press('Enter');
    await page.getByRole('heading', { name: 'Allow this device?' }).waitFor();
    seen[`${scheme}_confirm_text`] = await page.locator('main').innerText().catch(() => page.locator('body').innerText());
    seen[`${scheme}_confirm_overflow`] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    seen[`${scheme}_code_contrast`] = await textContrast(page.locator('.user-code'));
    seen[`${scheme}_deny_contrast`] = await textContrast(page.getByRole('button', { name: 'Deny' }));
    await page.screenshot({ path: `${SCREENSHOTS}/device-confirm-${scheme}.png`, fullPage: true });
    const tabbed = [];
    for (let n = 0; n < 20 && tabbed[tabbed.length - 1] !== 'Allow'; n += 1) {
      await page.keyboard.press('Tab');
      tabbed.push(await page.evaluate(() => document.activeElement && document.activeElement.textContent.trim()));
    }
    seen[`${scheme}_tabbed`] = tabbed;
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Device connected' }).waitFor();
    seen[`${scheme}_done`] = await page.getByRole('status').innerText();
    seen[`${scheme}_done_overflow`] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: `${SCREENSHOTS}/device-done-${scheme}.png`, fullPage: true });
    await context.close();
  }
} catch (err) {
  seen.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
