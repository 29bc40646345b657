// Real MLflow from PyPI as the upstream: its auth app with examples/mlflow/oidc_header_auth.py
// on its own (the header decides the user), then behind `oidc proxy` on a Unix socket only,
// believing only the proxy's signed identity assertion: the UI loads after login, and the MLflow
// Python client creates an experiment with a bearer token while no or a bad token gets 401.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromiumAvailable, launchBrowser, loginThrough } from '../lib/browser.mjs';
import {
  assertProxyBuilt, clientAt, clientCredentialsToken, freePort, mlflowAvailable, mlflowCreateExperiment,
  proxySkipReason, startMlflow, startProvider, startProxy, stopAll, tempDir,
} from '../lib/harness.mjs';
import { USERS, clientSecret } from '../provider/fixtures.mjs';

const missing = !mlflowAvailable() ? 'MLflow missing in .venv-e2e (run scripts/install-e2e-deps.sh)'
  : !chromiumAvailable() ? 'chromium missing (run scripts/install-e2e-deps.sh)' : false;
const alice = USERS.find((user) => user.sub === 'alice');

/** Loads the MLflow UI and collects the status of every API call it makes. */
async function loadMlflowUi(page, url) {
  const apiStatuses = [];
  page.on('response', (response) => {
    if (/\/ajax-api\/|\/api\/2\.0\//.test(response.url())) apiStatuses.push({ url: response.url(), status: response.status() });
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForResponse((response) => /experiments\/search/.test(response.url()), { timeout: 30_000 });
  return { title: await page.title(), apiStatuses };
}

describe('MLflow auth app trusting the proxy header (MLflow alone)', { skip: missing }, () => {
  let mlflow;
  let browser;
  before(async () => {
    mlflow = await startMlflow();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stopAll(mlflow);
  });

  test('no identity header: 401 without a Basic challenge', async () => {
    const response = await fetch(`${mlflow.url}/api/2.0/mlflow/experiments/search?max_results=5`);
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), null);
  });

  test('an identity header makes a user who can create an experiment and owns it', async () => {
    const headers = { 'X-Forwarded-Email': 'bob@example.com', 'content-type': 'application/json' };
    const created = await fetch(`${mlflow.url}/api/2.0/mlflow/experiments/create`, { method: 'POST', headers, body: JSON.stringify({ name: 'header-auth-bob' }) });
    assert.equal(created.status, 200, await created.clone().text());
    const { experiment_id: id } = await created.json();
    const permissions = await fetch(`${mlflow.url}/api/3.0/mlflow/users/current/permissions`, { headers });
    assert.equal(permissions.status, 200, await permissions.clone().text());
    const mine = (await permissions.json()).permissions.filter((grant) => grant.resource_type === 'experiment' && grant.resource_pattern === id);
    assert.deepEqual(mine.map((grant) => grant.permission), ['MANAGE']);

    // Another user only has the default READ permission on it.
    const rename = await fetch(`${mlflow.url}/api/2.0/mlflow/experiments/update`, {
      method: 'POST',
      headers: { 'X-Forwarded-Email': 'carol@other.example.org', 'content-type': 'application/json' },
      body: JSON.stringify({ experiment_id: id, new_name: 'taken-over' }),
    });
    assert.equal(rename.status, 403);
  });

  test('the UI loads and its API calls pass with the header', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { 'X-Forwarded-Email': 'alice@example.com', 'X-Forwarded-Groups': 'admins' } });
    const page = await context.newPage();
    const { title, apiStatuses } = await loadMlflowUi(page, `${mlflow.url}/`);
    assert.match(title, /\bMLflow$/);
    assert.ok(apiStatuses.length > 0);
    assert.deepEqual(apiStatuses.filter((call) => call.status >= 400), []);
    await context.close();
  });
});

describe('MLflow behind oidc proxy, on a Unix socket, believing only identity assertions', { skip: proxySkipReason() || missing }, () => {
  let op;
  let mlflow;
  let proxy;
  let browser;
  let socketDir;

  before(async () => {
    assertProxyBuilt();
    const proxyPort = await freePort();
    socketDir = tempDir('mlflow-socket');
    const socketPath = join(socketDir.path, 'mlflow.sock');
    op = await startProvider({ clients: { 'mlflow-proxy': clientAt(proxyPort) } });
    // The proxy first: MLflow fetches its keys when the first assertion arrives.
    proxy = await startProxy({
      issuer: op.issuer,
      port: proxyPort,
      clientId: 'mlflow-proxy',
      clientSecret: clientSecret('mlflow-proxy'),
      upstream: `unix://${socketPath}`,
      args: ['--skip-jwt-bearer-tokens', '--identity-assertion-audience=mlflow'],
    });
    mlflow = await startMlflow({
      allowedHosts: [`127.0.0.1:${proxyPort}`],
      socketPath,
      assertion: { jwksUrl: `${proxy.url}/oauth2/jwks`, issuer: proxy.url },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stopAll(op, mlflow, proxy);
    socketDir?.remove();
  });

  test('the MLflow UI loads after login through the provider', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = await loginThrough(page, `${proxy.url}/`, 'alice', alice.password, { providerOrigin: op.issuer });
    assert.equal(login.trace.passwordPrompts, 1);
    const { title, apiStatuses } = await loadMlflowUi(page, `${proxy.url}/`);
    assert.match(title, /\bMLflow$/);
    assert.ok(apiStatuses.length > 0);
    assert.deepEqual(apiStatuses.filter((call) => call.status >= 400), []);
    await context.close();
  });

  test('the MLflow Python client creates an experiment with a bearer token', async () => {
    const { access_token: token } = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'));
    const name = `sdk-${Date.now()}`;
    const result = await mlflowCreateExperiment(proxy.url, name, token);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\d+$/);

    const lookup = await fetch(`${proxy.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${name}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(lookup.status, 200);
    assert.equal((await lookup.json()).experiment.experiment_id, result.stdout);
  });

  test('no token or a bad token gets 401 and creates nothing', async () => {
    const noToken = await mlflowCreateExperiment(proxy.url, `no-token-${Date.now()}`, undefined);
    // Under MLflow's API paths the proxy answers in MLflow's error format, which the SDK shows
    // as a RestException with the error code: an authentication error, not INTERNAL_ERROR.
    assert.notEqual(noToken.code, 0);
    assert.match(noToken.stderr, /UNAUTHENTICATED/);
    assert.doesNotMatch(noToken.stderr, /INTERNAL_ERROR/);

    const badToken = await mlflowCreateExperiment(proxy.url, `bad-token-${Date.now()}`, 'not-a-valid-token');
    assert.notEqual(badToken.code, 0);
    assert.match(badToken.stderr, /UNAUTHENTICATED/);
    assert.doesNotMatch(badToken.stderr, /INTERNAL_ERROR/);
  });
});
