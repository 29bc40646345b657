// The provider and the browser on their own, without the proxy: chromium signs in through the
// provider's real login and consent pages into a tiny relying party, which exchanges the code
// and checks the ID token; logout ends the provider session and notifies the back channel.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { chromiumAvailable, confirmProviderLogout, isProviderLoginPage, launchBrowser, loginThrough } from '../lib/browser.mjs';
import { clientAt, clientCredentialsToken, decodeJwt, freePort, startProvider, stopAll } from '../lib/harness.mjs';
import { startRelyingParty } from '../lib/relying-party.mjs';
import { API_RESOURCES, USERS, clientSecret } from '../provider/fixtures.mjs';

const alice = USERS.find((user) => user.sub === 'alice');

describe('provider alone (no browser)', () => {
  let op;
  before(async () => { op = await startProvider(); });
  after(async () => { await stopAll(op); });

  test('discovery states the issuer, S256-only PKCE and both logout features', async () => {
    const metadata = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(metadata.issuer, op.issuer);
    assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
    assert.equal(metadata.end_session_endpoint, `${op.issuer}/session/end`);
    assert.equal(metadata.backchannel_logout_supported, true);
    assert.equal(metadata.backchannel_logout_session_supported, true);
    assert.ok(metadata.claims_supported.includes('groups'));
  });

  test('client credentials give a signed JWT access token for the proxy audience', async () => {
    const tokens = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'));
    assert.equal(tokens.token_type, 'Bearer');
    const { header, payload } = decodeJwt(tokens.access_token);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'RS256');
    assert.equal(payload.iss, op.issuer);
    assert.equal(payload.aud, 'mlflow-proxy');
    assert.equal(payload.client_id, 'mlflow-sdk');
    assert.equal(payload.sub, 'mlflow-sdk');
    assert.equal(payload.email, 'mlflow-sdk@service.example.com');
    assert.equal(payload.exp - payload.iat, 600);
  });

  test('another resource indicator gives another audience', async () => {
    const other = Object.keys(API_RESOURCES.servers).find((resource) => resource !== API_RESOURCES.default);
    const tokens = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'), { resource: other });
    assert.equal(decodeJwt(tokens.access_token).payload.aud, 'other-api');
  });

  test('a wrong client secret is refused', async () => {
    await assert.rejects(clientCredentialsToken(op.issuer, 'mlflow-sdk', 'not-the-secret'), /answered 401.*invalid_client/);
  });

  test('an authorization request without PKCE is refused', async () => {
    const url = new URL(`${op.issuer}/auth`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'mlflow-proxy',
      redirect_uri: 'http://127.0.0.1:4180/oauth2/callback',
      scope: 'openid',
      state: 'state-1',
    }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location'));
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.match(location.searchParams.get('error_description'), /PKCE/);
  });

  test('cookies the provider sets are prefixed op_', async () => {
    const url = new URL(`${op.issuer}/auth`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'mlflow-proxy',
      redirect_uri: 'http://127.0.0.1:4180/oauth2/callback',
      scope: 'openid',
      state: 'state-2',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 303);
    const names = response.headers.getSetCookie().map((cookie) => cookie.split('=')[0]);
    assert.ok(names.length > 0);
    for (const name of names) assert.match(name, /^op_/);
  });
});

describe('provider with chromium and a tiny relying party', { skip: chromiumAvailable() ? false : 'chromium missing (run scripts/install-e2e-deps.sh)' }, () => {
  let op;
  let rp;
  let browser;

  before(async () => {
    const port = await freePort();
    op = await startProvider({ clients: { 'e2e-rp': { ...clientAt(port, { backchannel: true }), post_logout_redirect_uris: [`http://127.0.0.1:${port}/`] } } });
    rp = await startRelyingParty({ issuer: op.issuer, clientId: 'e2e-rp', clientSecret: clientSecret('e2e-rp'), port });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stopAll(op, rp);
  });

  test('login, consent, code exchange: the ID token carries the user', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const result = await loginThrough(page, `${rp.url}/login`, 'alice', alice.password, { providerOrigin: op.issuer });
    assert.equal(result.trace.passwordPrompts, 1);
    assert.equal(result.trace.consentPrompts, 1);
    assert.ok(result.url.startsWith(`${rp.redirectUri}?`), result.url);
    const body = JSON.parse(result.body);
    assert.equal(body.claims.sub, 'alice');
    assert.equal(body.claims.email, 'alice@example.com');
    assert.equal(body.claims.email_verified, true);
    assert.deepEqual(body.claims.groups, ['mlflow-users', 'admins']);
    assert.equal(body.claims.aud, 'e2e-rp');
    assert.equal(typeof body.claims.sid, 'string');
    assert.equal(body.has_refresh_token, true);

    const cookies = await context.cookies(op.issuer);
    assert.ok(cookies.some((cookie) => cookie.name === 'op_session'));
    for (const cookie of cookies) assert.match(cookie.name, /^op_/);

    // The provider session now signs the user in again without any prompt.
    const again = await loginThrough(page, `${rp.url}/login`, 'alice', undefined, { providerOrigin: op.issuer });
    assert.equal(again.trace.passwordPrompts, 0);
    assert.equal(again.trace.consentPrompts, 0);
    assert.equal(JSON.parse(again.body).claims.sub, 'alice');
    await context.close();
  });

  test('a wrong password keeps the user on the login page with an error', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${rp.url}/login`);
    assert.ok(await isProviderLoginPage(page));
    await page.fill('input[name=login]', 'alice');
    await page.fill('input[name=password]', 'wrong-password');
    await Promise.all([page.waitForNavigation(), page.click('#op-login-submit')]);
    assert.ok(await isProviderLoginPage(page));
    assert.equal(await page.locator('.error').innerText(), 'Invalid username or password.');
    await context.close();
  });

  test('RP-initiated logout ends the provider session and calls the back channel', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = await loginThrough(page, `${rp.url}/login`, 'bob@example.com', USERS.find((user) => user.sub === 'bob').password, { providerOrigin: op.issuer });
    const { sid } = JSON.parse(login.body).claims;
    const before = rp.backchannelLogouts.length;

    await page.goto(`${rp.url}/logout`);
    assert.equal(await confirmProviderLogout(page), true);
    assert.equal(page.url(), `${rp.url}/`);

    const deadline = Date.now() + 5000;
    while (rp.backchannelLogouts.length === before && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
    const logoutToken = rp.backchannelLogouts.at(-1);
    assert.equal(logoutToken?.sub, 'bob');
    assert.equal(logoutToken?.sid, sid);
    assert.ok(logoutToken?.events?.['http://schemas.openid.net/event/backchannel-logout']);

    await page.goto(`${rp.url}/login`);
    assert.ok(await isProviderLoginPage(page), 'the provider asks for the password again');
    await context.close();
  });
});
