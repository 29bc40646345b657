// Headless chromium (Debian's package) driven by playwright-core, and the steps a person takes
// on the provider's pages: sign in, approve consent, confirm sign-out.

import { existsSync } from 'node:fs';

import { chromium } from 'playwright-core';

/** Flags this machine needs: no sandbox as root, no GPU, and no traffic to anything but loopback. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Where the browser binary is: `E2E_CHROMIUM`, else Debian's `/usr/bin/chromium`. */
export function chromiumPath() {
  return process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';
}

/** True when the browser binary exists, so tests can skip with a reason otherwise. */
export function chromiumAvailable() {
  return existsSync(chromiumPath());
}

/**
 * Launches headless chromium. Each launch gets a fresh temporary user-data-dir that playwright
 * deletes on close; each `browser.newContext()` is a further isolated cookie jar.
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/** What happened on the provider's pages during one login. */
export class LoginTrace {
  constructor() {
    /** Times the password form was filled in. */
    this.passwordPrompts = 0;
    /** Times the consent page was approved. */
    this.consentPrompts = 0;
    /** Every URL the main frame navigated to, in order. */
    this.navigations = [];
  }
}

/**
 * Opens `url` and, if it leads to the provider, signs in as `user` with `password` and approves
 * consent, until the browser has left the provider again. Returns the final response's body
 * text and a trace of the prompts shown. `providerOrigin` tells the provider's pages apart
 * from the application's.
 */
export async function loginThrough(page, url, user, password, { providerOrigin, timeoutMs = 30_000 } = {}) {
  const trace = new LoginTrace();
  const onNavigate = (frame) => {
    if (frame === page.mainFrame()) trace.navigations.push(frame.url());
  };
  page.on('framenavigated', onNavigate);
  try {
    await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
    await completeProviderSteps(page, trace, { user, password, providerOrigin, timeoutMs });
  } finally {
    page.off('framenavigated', onNavigate);
  }
  return { trace, url: page.url(), body: await page.locator('body').innerText() };
}

/**
 * Follows the provider's login and consent pages on `page` until the browser leaves the provider.
 * A login page that comes back after submitting (wrong password) is an error.
 */
export async function completeProviderSteps(page, trace, { user, password, providerOrigin, timeoutMs = 30_000 }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await page.waitForLoadState('load');
    const current = new URL(page.url());
    const onProvider = providerOrigin ? current.origin === providerOrigin : current.pathname.startsWith('/interaction/');
    if (onProvider && await page.locator('#op-error').count()) {
      throw new Error(`provider error at ${page.url()}: ${await page.locator('body').innerText()}`);
    }
    if (!onProvider) {
      // An application page that asks to start the sign-in (a "Sign in with ..." button) is clicked.
      const start = page.locator('form[action*="/oauth2/start"] button, a[href*="/oauth2/start"]');
      if (trace.passwordPrompts === 0 && trace.consentPrompts === 0 && await start.count()) {
        await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), start.first().click()]);
        continue;
      }
      return trace;
    }
    if (!current.pathname.startsWith('/interaction/')) return trace;

    if (await page.locator('#op-login').count()) {
      if (trace.passwordPrompts > 0 && await page.locator('.error').count()) {
        throw new Error(`provider rejected the password for ${user}`);
      }
      if (password === undefined) throw new Error(`provider asked for a password for ${user ?? 'nobody'}`);
      trace.passwordPrompts += 1;
      await page.fill('input[name=login]', user);
      await page.fill('input[name=password]', password);
      await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), page.click('#op-login-submit')]);
    } else if (await page.locator('#op-consent').count()) {
      trace.consentPrompts += 1;
      await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), page.click('#op-consent-submit')]);
    } else {
      throw new Error(`unexpected provider page ${page.url()}: ${await page.locator('body').innerText()}`);
    }
  }
  throw new Error(`login did not leave the provider within ${timeoutMs} ms (at ${page.url()})`);
}

/** If the page shows the provider's sign-out confirmation, confirms it. Returns true when it did. */
export async function confirmProviderLogout(page, { timeoutMs = 15_000 } = {}) {
  await page.waitForLoadState('load');
  if (!(await page.locator('#op-logout-yes').count())) return false;
  await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), page.click('#op-logout-yes')]);
  await page.waitForLoadState('load');
  return true;
}

/** True when the page is the provider's password form. */
export async function isProviderLoginPage(page) {
  return new URL(page.url()).pathname.startsWith('/interaction/') && (await page.locator('#op-login').count()) > 0;
}
