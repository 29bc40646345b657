// `oidc proxy` between chromium and an upstream, signing in at the real provider: identity
// headers at the upstream, forged identity headers never reaching it, sign-out, single sign-on
// across two services, and bearer tokens for API clients.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { chromiumAvailable, confirmProviderLogout, isProviderLoginPage, launchBrowser, loginThrough } from '../lib/browser.mjs';
import {
  assertProxyBuilt, clientAt, clientCredentialsToken, cookieHeader, decodeJwt, freePort, proxySkipReason,
  startEchoServer, startProvider, startProxy, startRedis, stopAll, which,
} from '../lib/harness.mjs';
import { API_RESOURCES, USERS, clientSecret } from '../provider/fixtures.mjs';

const alice = USERS.find((user) => user.sub === 'alice');
const skip = proxySkipReason() || (chromiumAvailable() ? false : 'chromium missing (run scripts/install-e2e-deps.sh)');

/** Forged identity, in every spelling an upstream might read. */
const FORGED_HEADERS = {
  'X-Forwarded-User': 'mallory',
  'X-Forwarded-Email': 'mallory@evil.example',
  'X-Forwarded-Groups': 'admins',
  'X-Forwarded-Preferred-Username': 'mallory',
  'X-Auth-Request-User': 'mallory',
  'X-Auth-Request-Email': 'mallory@evil.example',
  'X_Forwarded_User': 'mallory',
  'X_Forwarded_Email': 'mallory@evil.example',
  'X-Remote-User': 'mallory',
};

/** Asserts that nothing the upstream received mentions the forger. */
function assertNoForgery(seen) {
  const raw = seen.rawHeaders.join('\n').toLowerCase();
  assert.ok(!raw.includes('mallory'), `forged identity reached the upstream:\n${seen.rawHeaders.join('\n')}`);
}

/** The identity the upstream received, as oauth2-proxy passes it. */
function identity(seen) {
  return {
    user: seen.headers['x-forwarded-user'],
    email: seen.headers['x-forwarded-email'],
    groups: seen.headers['x-forwarded-groups'],
  };
}

describe('oidc proxy in front of an upstream', { skip }, () => {
  let op;
  let upstream;
  let otherUpstream;
  let proxy;
  let ssoProxy;
  let browser;

  before(async () => {
    assertProxyBuilt();
    const [proxyPort, ssoPort] = [await freePort(), await freePort()];
    op = await startProvider({
      clients: {
        'mlflow-proxy': clientAt(proxyPort),
        'sso-app': clientAt(ssoPort),
      },
    });
    upstream = await startEchoServer('upstream');
    otherUpstream = await startEchoServer('sso-upstream');
    proxy = await startProxy({
      issuer: op.issuer,
      port: proxyPort,
      clientId: 'mlflow-proxy',
      clientSecret: clientSecret('mlflow-proxy'),
      upstream: upstream.url,
      args: ['--skip-jwt-bearer-tokens', '--skip-auth-route=^/public/'],
    });
    ssoProxy = await startProxy({
      issuer: op.issuer,
      port: ssoPort,
      clientId: 'sso-app',
      clientSecret: clientSecret('sso-app'),
      upstream: otherUpstream.url,
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await stopAll(op, upstream, otherUpstream, proxy, ssoProxy);
  });

  test('browser login through the proxy: the upstream sees the identity headers', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const result = await loginThrough(page, `${proxy.url}/app/page?x=1`, 'alice', alice.password, { providerOrigin: op.issuer });
    assert.equal(result.trace.passwordPrompts, 1);
    assert.ok(result.trace.navigations.some((url) => url.startsWith(`${op.issuer}/`)), 'went through the provider');
    assert.equal(new URL(result.url).origin, proxy.url);
    const seen = JSON.parse(result.body);
    assert.equal(seen.name, 'upstream');
    assert.equal(seen.url, '/app/page?x=1');
    const { user, email, groups } = identity(seen);
    assert.equal(email, 'alice@example.com');
    assert.ok(['alice', 'alice@example.com'].includes(user), `X-Forwarded-User is ${user}`);
    assert.ok(String(groups).split(',').includes('admins'), `X-Forwarded-Groups is ${groups}`);
    for (const cookie of await context.cookies(proxy.url)) {
      if (!cookie.name.startsWith('op_')) assert.equal(cookie.httpOnly, true, `${cookie.name} is HttpOnly`);
    }
    await context.close();
  });

  test('forged identity headers from the browser never reach the upstream', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'X-Forwarded-User': 'mallory', 'X-Forwarded-Email': 'mallory@evil.example' } });
    const page = await context.newPage();
    const result = await loginThrough(page, `${proxy.url}/spoof`, 'alice', alice.password, { providerOrigin: op.issuer });
    const seen = JSON.parse(result.body);
    assertNoForgery(seen);
    assert.equal(identity(seen).email, 'alice@example.com');

    // Every spelling, including `_` for `-`, on an authenticated request...
    const cookie = await cookieHeader(context, proxy.url);
    const authed = await fetch(`${proxy.url}/spoof-all`, { headers: { cookie, ...FORGED_HEADERS } });
    assert.equal(authed.status, 200);
    const authedSeen = await authed.json();
    assertNoForgery(authedSeen);
    assert.equal(identity(authedSeen).email, 'alice@example.com');

    // ...and on a route that skips authentication.
    const open = await fetch(`${proxy.url}/public/info`, { headers: FORGED_HEADERS });
    assert.equal(open.status, 200);
    const openSeen = await open.json();
    assertNoForgery(openSeen);
    assert.equal(openSeen.url, '/public/info');
    await context.close();
  });

  test('sign-out ends the session at the proxy and at the provider', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await loginThrough(page, `${proxy.url}/before-sign-out`, 'alice', alice.password, { providerOrigin: op.issuer });
    const requestsBefore = upstream.requests.length;

    await page.goto(`${proxy.url}/oauth2/sign_out`);
    await confirmProviderLogout(page);

    // The proxy no longer lets the browser's cookies through.
    const response = await context.request.get(`${proxy.url}/after-sign-out`, { maxRedirects: 0, failOnStatusCode: false });
    assert.ok([302, 303, 307, 401].includes(response.status()), `status ${response.status()} after sign-out`);
    assert.equal(upstream.requests.length, requestsBefore, 'no request reached the upstream after sign-out');

    // And the provider asks for the password again: its session is gone too.
    await page.goto(`${proxy.url}/after-sign-out`);
    assert.ok(await isProviderLoginPage(page), `expected the provider's password form, got ${page.url()}`);
    await context.close();
  });

  test('single sign-on: a second service signs in without a second password prompt', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await loginThrough(page, `${proxy.url}/first`, 'bob', USERS.find((user) => user.sub === 'bob').password, { providerOrigin: op.issuer });
    assert.equal(first.trace.passwordPrompts, 1);
    const second = await loginThrough(page, `${ssoProxy.url}/second`, 'bob', undefined, { providerOrigin: op.issuer });
    assert.equal(second.trace.passwordPrompts, 0);
    const seen = JSON.parse(second.body);
    assert.equal(seen.name, 'sso-upstream');
    assert.equal(identity(seen).email, 'bob@example.com');
    await context.close();
  });

  test('bearer tokens: a client-credentials JWT is accepted, anything else gets 401', async () => {
    const { access_token: token } = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'));
    const good = await fetch(`${proxy.url}/api/2.0/mlflow/experiments/search`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
    assert.equal(good.status, 200);
    const seen = await good.json();
    assert.equal(identity(seen).email, 'mlflow-sdk@service.example.com');

    const api = { accept: 'application/json' };
    const noToken = await fetch(`${proxy.url}/api/2.0/mlflow/experiments/search`, { headers: api, redirect: 'manual' });
    assert.equal(noToken.status, 401);

    const garbage = await fetch(`${proxy.url}/api/x`, { headers: { ...api, authorization: 'Bearer not-a-jwt' }, redirect: 'manual' });
    assert.equal(garbage.status, 401);

    const [h, p, s] = token.split('.');
    const tamperedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(token).payload, sub: 'mallory' })).toString('base64url');
    const tampered = await fetch(`${proxy.url}/api/x`, { headers: { ...api, authorization: `Bearer ${h}.${tamperedPayload}.${s}` }, redirect: 'manual' });
    assert.equal(tampered.status, 401);

    const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    const unsigned = await fetch(`${proxy.url}/api/x`, { headers: { ...api, authorization: `Bearer ${noneHeader}.${p}.` }, redirect: 'manual' });
    assert.equal(unsigned.status, 401);

    const otherResource = Object.keys(API_RESOURCES.servers).find((resource) => resource !== API_RESOURCES.default);
    const { access_token: otherAudience } = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'), { resource: otherResource });
    const wrongAudience = await fetch(`${proxy.url}/api/x`, { headers: { ...api, authorization: `Bearer ${otherAudience}` }, redirect: 'manual' });
    assert.equal(wrongAudience.status, 401);

    assert.ok(!upstream.requests.some((request) => request.url === '/api/x'), 'no rejected request reached the upstream');
  });
});

const redisSkip = skip || (which('redis-server') ? false : 'redis-server missing (run scripts/install-e2e-deps.sh)');

describe('oidc proxy with the Redis session store', { skip: redisSkip }, () => {
  let op;
  let upstream;
  let redis;
  let proxy;
  let browser;

  before(async () => {
    assertProxyBuilt();
    const proxyPort = await freePort();
    op = await startProvider({ clients: { 'mlflow-proxy': clientAt(proxyPort) } });
    upstream = await startEchoServer('upstream');
    redis = await startRedis();
    proxy = await startProxy({
      issuer: op.issuer,
      port: proxyPort,
      clientId: 'mlflow-proxy',
      clientSecret: clientSecret('mlflow-proxy'),
      upstream: upstream.url,
      args: ['--session-store-type=redis', `--redis-connection-url=${redis.url}`],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stopAll(op, upstream, redis, proxy);
  });

  test('after sign-out, a copy of the old session cookie no longer works', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = await loginThrough(page, `${proxy.url}/kept`, 'alice', alice.password, { providerOrigin: op.issuer });
    assert.equal(identity(JSON.parse(login.body)).email, 'alice@example.com');
    const stolen = await cookieHeader(context, proxy.url);
    const replayBefore = await fetch(`${proxy.url}/replay-before`, { headers: { cookie: stolen } });
    assert.equal(replayBefore.status, 200);

    await page.goto(`${proxy.url}/oauth2/sign_out`);
    await confirmProviderLogout(page);

    const requestsBefore = upstream.requests.length;
    const replayAfter = await fetch(`${proxy.url}/replay-after`, { headers: { cookie: stolen, accept: 'application/json' }, redirect: 'manual' });
    assert.ok([302, 303, 307, 401].includes(replayAfter.status), `status ${replayAfter.status} for a revoked session`);
    assert.equal(upstream.requests.length, requestsBefore);
    await context.close();
  });
});
