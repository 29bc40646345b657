// Pushed authorization requests (RFC 9126) through `oidc proxy` at a provider that requires
// them (`OP_REQUIRE_PAR=1`): the browser's authorization URL carries only `client_id` and
// `request_uri`, the login completes, and a plain authorization request is refused.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { chromiumAvailable, launchBrowser, loginThrough } from '../lib/browser.mjs';
import {
  assertProxyBuilt, clientAt, freePort, proxySkipReason, startEchoServer, startProvider, startProxy, stopAll,
} from '../lib/harness.mjs';
import { USERS, clientSecret } from '../provider/fixtures.mjs';

const alice = USERS.find((user) => user.sub === 'alice');
const skip = proxySkipReason() || (chromiumAvailable() ? false : 'chromium missing (run scripts/install-e2e-deps.sh)');

describe('oidc proxy at a provider that requires pushed authorization requests', { skip }, () => {
  let op;
  let upstream;
  let proxy;
  let browser;
  let metadata;

  before(async () => {
    assertProxyBuilt();
    const proxyPort = await freePort();
    op = await startProvider({ clients: { 'mlflow-proxy': clientAt(proxyPort) }, env: { OP_REQUIRE_PAR: '1' } });
    metadata = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    upstream = await startEchoServer('upstream');
    proxy = await startProxy({
      issuer: op.issuer,
      port: proxyPort,
      clientId: 'mlflow-proxy',
      clientSecret: clientSecret('mlflow-proxy'),
      upstream: upstream.url,
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await stopAll(op, upstream, proxy);
  });

  test('the provider advertises the endpoint and requires it', () => {
    assert.equal(metadata.require_pushed_authorization_requests, true);
    assert.match(metadata.pushed_authorization_request_endpoint, /^http:\/\/127\.0\.0\.1:\d+\//);
  });

  test('sign-in pushes the request; the browser only sees client_id and request_uri', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Redirects are not navigations of the page: record every request the browser makes.
    const requested = [];
    page.on('request', (request) => requested.push(request.url()));
    const result = await loginThrough(page, `${proxy.url}/runs?id=7`, 'alice', alice.password, { providerOrigin: op.issuer });
    const authorizationPath = new URL(metadata.authorization_endpoint).pathname;
    const authorizations = requested
      .map((url) => new URL(url))
      .filter((url) => url.origin === op.issuer && url.pathname === authorizationPath);
    assert.equal(authorizations.length, 1, `authorization requests among ${requested.join(' ')}`);
    const [authorization] = authorizations;
    assert.ok(requested.includes(`${proxy.url}/oauth2/start?rd=%2Fruns%3Fid%3D7`), 'the login went through start, which pushed');
    assert.deepEqual([...authorization.searchParams.keys()], ['client_id', 'request_uri']);
    assert.equal(authorization.searchParams.get('client_id'), 'mlflow-proxy');
    assert.match(authorization.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
    const seen = JSON.parse(result.body);
    assert.equal(seen.url, '/runs?id=7');
    assert.equal(seen.headers['x-forwarded-email'], 'alice@example.com');
    await context.close();
  });

  test('an authorization request that was not pushed is refused by the provider', async () => {
    const plain = new URL(metadata.authorization_endpoint);
    plain.search = new URLSearchParams({
      client_id: 'mlflow-proxy',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${proxy.url}/oauth2/callback`,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    const response = await fetch(plain, { redirect: 'manual' });
    const location = response.headers.get('location') ?? '';
    const body = await response.text();
    assert.ok(
      response.status === 400 || /error=invalid_request/.test(location),
      `expected a refusal, got ${response.status} ${location} ${body.slice(0, 200)}`,
    );
  });
});
