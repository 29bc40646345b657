// Caddy `forward_auth` (examples/caddy/Caddyfile) in front of a real upstream. First with a
// stand-in auth endpoint that proves the Caddyfile itself: forged headers stripped before
// forward_auth, identity copied from the auth answer, browsers redirected to sign in, API
// refusals kept as 401. Then with `oidc proxy` as the auth endpoint and the real provider.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { chromiumAvailable, launchBrowser, loginThrough } from '../lib/browser.mjs';
import {
  assertProxyBuilt, caddyAvailable, clientAt, clientCredentialsToken, cookieHeader, freePort, proxySkipReason,
  startCaddy, startEchoServer, startProvider, startProxy, stopAll,
} from '../lib/harness.mjs';
import { USERS, clientSecret } from '../provider/fixtures.mjs';

const IDENTITY = {
  'X-Auth-Request-User': 'alice',
  'X-Auth-Request-Email': 'alice@example.com',
  'X-Auth-Request-Groups': 'mlflow-users,admins',
  'X-Auth-Request-Preferred-Username': 'alice',
};
const FORGED = {
  'X-Auth-Request-User': 'mallory',
  'X-Auth-Request-Email': 'mallory@evil.example',
  'X_Auth_Request_Email': 'mallory@evil.example',
  'X-Forwarded-User': 'mallory',
  'X-Forwarded-Email': 'mallory@evil.example',
  'X_Forwarded_Email': 'mallory@evil.example',
};

function assertNoForgery(seen) {
  const raw = seen.rawHeaders.join('\n');
  assert.ok(!raw.toLowerCase().includes('mallory'), `forged identity reached the upstream:\n${raw}`);
  assert.ok(!raw.includes('{http.'), `a Caddy placeholder reached the upstream:\n${raw}`);
}

/** Answers like a forward-auth endpoint: 200 + identity for `Cookie: session=ok` or `Bearer good`, else 401. */
async function startStandInAuth() {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url, headers: req.headers });
    if (req.url.startsWith('/oauth2/start')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`sign-in start ${req.url}`);
      return;
    }
    const ok = /(^|;\s*)session=ok(;|$)/.test(req.headers.cookie ?? '') || req.headers.authorization === 'Bearer good';
    res.writeHead(ok ? 202 : 401, ok ? IDENTITY : {});
    res.end();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    address: `127.0.0.1:${server.address().port}`,
    seen,
    stop: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

describe('examples/caddy/Caddyfile with a stand-in auth endpoint', { skip: caddyAvailable() ? false : 'caddy missing (run scripts/install-e2e-deps.sh)' }, () => {
  let auth;
  let upstream;
  let caddy;
  before(async () => {
    auth = await startStandInAuth();
    upstream = await startEchoServer('mlflow');
    caddy = await startCaddy({ env: { OIDC_PROXY: auth.address, MLFLOW_UPSTREAM: upstream.url.replace('http://', '') } });
  });
  after(async () => { await stopAll(auth, upstream, caddy); });

  test('authenticated: identity copied from the auth answer, forged headers stripped', async () => {
    const response = await fetch(`${caddy.url}/mlflow/api/2.0/x?y=1`, { headers: { cookie: 'session=ok', ...FORGED } });
    assert.equal(response.status, 200);
    const seen = await response.json();
    assert.equal(seen.url, '/mlflow/api/2.0/x?y=1');
    assertNoForgery(seen);
    assert.equal(seen.headers['x-auth-request-email'], 'alice@example.com');
    assert.equal(seen.headers['x-auth-request-user'], 'alice');
    assert.equal(seen.headers['x-auth-request-groups'], 'mlflow-users,admins');
    assert.equal(seen.headers['x-forwarded-user'], undefined);
    // The auth endpoint saw the original method and URI, and none of the forged headers matter there.
    const check = auth.seen.at(-1);
    assert.equal(check.headers['x-forwarded-uri'], '/mlflow/api/2.0/x?y=1');
    assert.equal(check.headers['x-forwarded-method'], 'GET');
  });

  test('browser without a session: redirected to sign in with the way back', async () => {
    const before = upstream.requests.length;
    const response = await fetch(`${caddy.url}/mlflow/#/experiments`, { headers: FORGED, redirect: 'manual' });
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), '/oauth2/start?rd=/mlflow/');
    assert.equal(upstream.requests.length, before);
  });

  test('API client with a refused bearer token: 401, not a redirect', async () => {
    const before = upstream.requests.length;
    const response = await fetch(`${caddy.url}/mlflow/api/2.0/mlflow/experiments/search`, { headers: { authorization: 'Bearer bad', ...FORGED }, redirect: 'manual' });
    assert.equal(response.status, 401);
    assert.equal(upstream.requests.length, before);
    const good = await fetch(`${caddy.url}/mlflow/api/2.0/mlflow/experiments/search`, { headers: { authorization: 'Bearer good' } });
    assert.equal(good.status, 200);
    assertNoForgery(await good.json());
  });

  test('the proxy\'s own /oauth2/ pages are passed through', async () => {
    const response = await fetch(`${caddy.url}/oauth2/start?rd=/mlflow/`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'sign-in start /oauth2/start?rd=/mlflow/');
  });

  test('other paths are not served', async () => {
    const response = await fetch(`${caddy.url}/elsewhere`);
    assert.equal(response.status, 404);
  });
});

describe('examples/caddy/Caddyfile.sidecar', { skip: caddyAvailable() ? false : 'caddy missing (run scripts/install-e2e-deps.sh)' }, () => {
  test('passes everything to the sidecar, telling it the original scheme and host', async () => {
    const sidecar = await startEchoServer('sidecar');
    const caddy = await startCaddy({ caddyfile: 'Caddyfile.sidecar', env: { OIDC_PROXY: sidecar.url.replace('http://', '') } });
    try {
      const response = await fetch(`${caddy.url}/oauth2/callback?code=c&state=s`, { headers: { cookie: '_oauth2_proxy=v' } });
      assert.equal(response.status, 200);
      const seen = await response.json();
      assert.equal(seen.url, '/oauth2/callback?code=c&state=s');
      assert.equal(seen.headers.cookie, '_oauth2_proxy=v');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${caddy.port}`);
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    } finally {
      await stopAll(sidecar, caddy);
    }
  });
});

const proxySkip = proxySkipReason()
  || (caddyAvailable() ? false : 'caddy missing (run scripts/install-e2e-deps.sh)')
  || (chromiumAvailable() ? false : 'chromium missing (run scripts/install-e2e-deps.sh)');

describe('Caddy forward_auth with oidc proxy and the real provider', { skip: proxySkip }, () => {
  let op;
  let upstream;
  let proxy;
  let caddy;
  let browser;

  before(async () => {
    assertProxyBuilt();
    const proxyPort = await freePort();
    upstream = await startEchoServer('mlflow');
    // Caddy's port is only known once it runs; the provider must know the callback first.
    const caddyPort = await freePort();
    op = await startProvider({ clients: { 'mlflow-proxy': clientAt(caddyPort) } });
    proxy = await startProxy({
      issuer: op.issuer,
      port: proxyPort,
      clientId: 'mlflow-proxy',
      clientSecret: clientSecret('mlflow-proxy'),
      upstream: upstream.url,
      redirectUrl: `http://127.0.0.1:${caddyPort}/oauth2/callback`,
      args: ['--reverse-proxy', '--set-xauthrequest', '--skip-jwt-bearer-tokens'],
    });
    caddy = await startCaddy({ env: { CADDY_LISTEN: `127.0.0.1:${caddyPort}`, OIDC_PROXY: `127.0.0.1:${proxyPort}`, MLFLOW_UPSTREAM: upstream.url.replace('http://', '') } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stopAll(op, upstream, proxy, caddy);
  });

  test('browser login through Caddy: copy_headers deliver the identity, forged ones never arrive', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'X-Auth-Request-Email': 'mallory@evil.example' } });
    const page = await context.newPage();
    const alice = USERS.find((user) => user.sub === 'alice');
    const result = await loginThrough(page, `${caddy.url}/mlflow/experiments`, 'alice', alice.password, { providerOrigin: op.issuer });
    assert.equal(result.trace.passwordPrompts, 1);
    const seen = JSON.parse(result.body);
    assert.equal(seen.url, '/mlflow/experiments');
    assertNoForgery(seen);
    assert.equal(seen.headers['x-auth-request-email'], 'alice@example.com');
    assert.ok(['alice', 'alice@example.com'].includes(seen.headers['x-auth-request-user']));

    const cookie = await cookieHeader(context, caddy.url);
    const again = await fetch(`${caddy.url}/mlflow/again`, { headers: { cookie, ...FORGED } });
    assert.equal(again.status, 200);
    assertNoForgery(await again.json());
    await context.close();
  });

  test('bearer token through Caddy: accepted with identity; a bad one is 401', async () => {
    const { access_token: token } = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'));
    const good = await fetch(`${caddy.url}/mlflow/api/2.0/mlflow/experiments/search`, { headers: { authorization: `Bearer ${token}`, ...FORGED } });
    assert.equal(good.status, 200);
    const seen = await good.json();
    assertNoForgery(seen);
    assert.equal(seen.headers['x-auth-request-email'], 'mlflow-sdk@service.example.com');

    const bad = await fetch(`${caddy.url}/mlflow/api/2.0/mlflow/experiments/search`, { headers: { authorization: 'Bearer nope' }, redirect: 'manual' });
    assert.equal(bad.status, 401);
  });
});
