// Every token the proxy accepts must be meant for it. Against the real provider: an opaque
// access token that the provider issued to another application (here the `sso-app` client,
// after a browser sign-in there) is refused at every door of the MLflow proxy with
// `wrong_client`, while its own application accepts it; `oidc token --resource` asks for a JWT
// access token for the proxy's API (RFC 8707) and that token is accepted, as is an opaque token
// of the command-line client once the operator trusts that client; a CI job's
// client-credentials token, which names no person, passes a group rule only when its client is
// allowed by id, and is then named by its client id.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { LoginTrace, chromiumAvailable, completeProviderSteps, launchBrowser, loginThrough } from '../lib/browser.mjs';
import {
  assertProxyBuilt, clientAt, clientCredentialsToken, decodeJwt, freePort, oidcBinary, proxySkipReason, startEchoServer,
  startProvider, startProxy, stopAll, tempDir,
} from '../lib/harness.mjs';
import { API_RESOURCES, PROXY_CLIENT_ID, USERS, clientSecret } from '../provider/fixtures.mjs';

const skip = proxySkipReason() || (chromiumAvailable() ? false : 'chromium missing (run scripts/install-e2e-deps.sh)');
const alice = USERS.find((user) => user.sub === 'alice');
const bob = USERS.find((user) => user.sub === 'bob');

/** The `error_description` of an RFC 6750 challenge. */
function challengeCode(response) {
  const challenge = response.headers.get('www-authenticate') ?? '';
  return /error_description="([^"]*)"/.exec(challenge)?.[1];
}

/**
 * Runs `oidc token` with `args`, completing its browser sign-in as `user` in `page`; resolves to
 * the printed access token.
 */
async function oidcToken(page, issuer, cacheDir, args, user) {
  const child = spawn(oidcBinary(), ['token', '--issuer', issuer, '--client-id', 'notebook-cli', '--no-browser', '--timeout', '60', ...args], {
    env: { ...process.env, OIDC_CACHE_DIR: cacheDir, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise((ok) => child.once('exit', ok));
  const deadline = Date.now() + 30_000;
  let url;
  while (!(url = /https?:\/\/\S+\/auth\?\S+/.exec(stderr)?.[0])) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill();
      throw new Error(`oidc token printed no sign-in URL:\n${stderr}`);
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  await page.goto(url, { waitUntil: 'load' });
  await completeProviderSteps(page, new LoginTrace(), { user: user.sub, password: user.password });
  const code = await exited;
  assert.equal(code, 0, `oidc token failed:\n${stderr}`);
  return stdout.trim();
}

describe('tokens are bound to the service that receives them', { skip }, () => {
  let op;
  let upstream;
  let ssoUpstream;
  let proxy;
  let ssoProxy;
  let browser;

  before(async () => {
    assertProxyBuilt();
    const [proxyPort, ssoPort] = [await freePort(), await freePort()];
    op = await startProvider({
      clients: { [PROXY_CLIENT_ID]: clientAt(proxyPort), 'sso-app': clientAt(ssoPort) },
    });
    upstream = await startEchoServer('mlflow');
    ssoUpstream = await startEchoServer('sso-upstream');
    proxy = await startProxy({
      issuer: op.issuer,
      port: proxyPort,
      clientId: PROXY_CLIENT_ID,
      clientSecret: clientSecret(PROXY_CLIENT_ID),
      upstream: upstream.url,
      args: ['--skip-jwt-bearer-tokens', '--trusted-client-id=notebook-cli'],
    });
    ssoProxy = await startProxy({
      issuer: op.issuer,
      port: ssoPort,
      clientId: 'sso-app',
      clientSecret: clientSecret('sso-app'),
      upstream: ssoUpstream.url,
      args: ['--skip-jwt-bearer-tokens', '--pass-access-token'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await stopAll(op, upstream, ssoUpstream, proxy, ssoProxy);
  });

  test("another application's opaque token is refused with wrong_client at every door", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const signedIn = await loginThrough(page, `${ssoProxy.url}/whoami`, bob.sub, bob.password, { providerOrigin: op.issuer });
    const seen = JSON.parse(signedIn.body);
    const foreign = seen.headers['x-forwarded-access-token'];
    assert.ok(foreign && foreign.split('.').length === 1, `sso-app received an opaque access token: ${foreign}`);
    await context.close();

    // The token is valid: its own application accepts it as a bearer token.
    const own = await fetch(`${ssoProxy.url}/api/x`, { headers: { authorization: `Bearer ${foreign}`, accept: 'application/json' } });
    assert.equal(own.status, 200);

    const api = await fetch(`${proxy.url}/api/2.0/mlflow/experiments/create`, {
      method: 'POST',
      headers: { authorization: `Bearer ${foreign}`, accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'should-not-exist' }),
      redirect: 'manual',
    });
    assert.equal(api.status, 401);
    assert.equal(challengeCode(api), 'wrong_client');

    const forwardAuth = await fetch(`${proxy.url}/oauth2/auth`, { headers: { authorization: `Bearer ${foreign}` }, redirect: 'manual' });
    assert.equal(forwardAuth.status, 401);
    assert.equal(challengeCode(forwardAuth), 'wrong_client');

    const navigation = await fetch(`${proxy.url}/`, { headers: { authorization: `Bearer ${foreign}`, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(navigation.status, 401, 'a refused bearer token is not turned into a sign-in redirect');

    assert.ok(!upstream.requests.some((request) => request.url.startsWith('/api/2.0/mlflow/experiments/create')), 'nothing reached MLflow');
  });

  test('oidc token --resource gets a JWT for the proxy, and the proxy accepts it', async () => {
    const cache = tempDir('token-cache');
    const cacheDir = cache.path;
    const context = await browser.newContext();
    const page = await context.newPage();
    const token = await oidcToken(page, op.issuer, cacheDir, ['--resource', API_RESOURCES.default], alice);
    const { payload } = decodeJwt(token);
    assert.equal(payload.aud, PROXY_CLIENT_ID);
    const answer = await fetch(`${proxy.url}/api/2.0/mlflow/experiments/search`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
    assert.equal(answer.status, 200);
    const seen = await answer.json();
    assert.equal(seen.headers['x-forwarded-email'], alice.email);

    // Without a resource the provider issues an opaque token to the command-line client: the
    // proxy accepts it only because the operator trusts that client (--trusted-client-id).
    const opaque = await oidcToken(page, op.issuer, cacheDir, [], alice);
    assert.equal(opaque.split('.').length, 1, 'an opaque token');
    const trusted = await fetch(`${proxy.url}/api/x`, { headers: { authorization: `Bearer ${opaque}`, accept: 'application/json' } });
    assert.equal(trusted.status, 200);
    const untrusted = await fetch(`${ssoProxy.url}/api/x`, { headers: { authorization: `Bearer ${opaque}`, accept: 'application/json' } });
    assert.equal(untrusted.status, 401);
    assert.equal(challengeCode(untrusted), 'wrong_client');
    await context.close();
    cache.remove();
  });

  test('a machine identity passes a group rule only when its client is allowed by id', async () => {
    const guarded = await startProxy({
      issuer: op.issuer,
      clientId: PROXY_CLIENT_ID,
      clientSecret: clientSecret(PROXY_CLIENT_ID),
      upstream: upstream.url,
      args: ['--skip-jwt-bearer-tokens', '--allowed-group=mlflow-users', '--allowed-client-id=ci-pipeline'],
    });
    try {
      const call = (token) => fetch(`${guarded.url}/api/2.0/mlflow/runs/create`, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        redirect: 'manual',
      });
      const { access_token: ci } = await clientCredentialsToken(op.issuer, 'ci-pipeline', clientSecret('ci-pipeline'));
      const { payload } = decodeJwt(ci);
      assert.equal(payload.email, undefined, 'the CI token names no person');
      const allowed = await call(ci);
      assert.equal(allowed.status, 200);
      const seen = await allowed.json();
      assert.equal(seen.headers['x-forwarded-user'], 'ci-pipeline');
      assert.equal(seen.headers['x-forwarded-email'] ?? '', '');

      const { access_token: other } = await clientCredentialsToken(op.issuer, 'ci-other', clientSecret('ci-other'));
      const refused = await call(other);
      assert.equal(refused.status, 403);

      const { access_token: sdk } = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'));
      assert.equal((await call(sdk)).status, 200, 'a service account in the group passes by its groups');
    } finally {
      await stopAll(guarded);
    }
  });
});
