// The whole deployment of examples/deployment, as its README builds it: Caddy with `tls internal`
// serving MLflow at /mlflow and Airflow 3 at /airflow on one host, both behind `oidc proxy`'s
// forward-auth, Airflow also signing in itself (FAB) through the same certified provider, driven
// in Chromium. Every file of examples/deployment is used as written; the test only supplies the
// ports, the provider's address and the secrets, as a user would.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromiumAvailable, completeProviderSteps, confirmProviderLogout, isProviderLoginPage, launchBrowser, LoginTrace } from '../lib/browser.mjs';
import {
  REPO_ROOT, airflowAvailable, airflowVenvDir, assertProxyBuilt, caddyAvailable, clientCredentialsToken, freePort,
  mlflowAvailable, mlflowCreateExperiment, oidcBinary, proxySkipReason, randomCookieSecret, readEnvFile, sleep,
  startCaddy, startProcess, startProvider, stopAll, tempDir, venvDir,
} from '../lib/harness.mjs';
import { USERS, clientSecret } from '../provider/fixtures.mjs';

const DEPLOYMENT = join(REPO_ROOT, 'examples', 'deployment');
const missingReason = !airflowAvailable() ? 'Airflow missing in .venv-airflow (run scripts/install-e2e-deps.sh)'
  : !mlflowAvailable() ? 'MLflow missing in .venv-e2e (run scripts/install-e2e-deps.sh)'
    : !chromiumAvailable() ? 'chromium missing (run scripts/install-e2e-deps.sh)'
      : !caddyAvailable() ? 'caddy missing (run scripts/install-e2e-deps.sh)' : false;
// With E2E_REQUIRE_ALL=1 a missing part fails the suite instead of skipping it.
const skip = proxySkipReason() || (process.env.E2E_REQUIRE_ALL === '1' ? false : missingReason);
const user = (sub) => USERS.find((candidate) => candidate.sub === sub);
const AIRFLOW_SECRET = 'airflow-client-secret';

/** GET/POST over https to Caddy, trusting its internal CA. Resolves to `{ status, headers, body }`. */
function https(url, { method = 'GET', headers = {}, body, ca } = {}) {
  return new Promise((ok, fail) => {
    const req = httpsRequest(url, { method, headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

/**
 * A plain-http GET that may set the Host header (fetch may not), to `url` over TCP or, with
 * `socketPath`, over that Unix domain socket.
 */
function plainGet(url, headers, socketPath) {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { headers, socketPath }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => ok({ status: res.statusCode, body: text }));
    });
    req.on('error', fail);
    req.end();
  });
}

/** Polls MLflow's health endpoint on its socket until it answers 200. */
async function waitForSocketOk(socketPath, path, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(socketPath)) {
      try {
        if ((await plainGet(`http://localhost${path}`, {}, socketPath)).status === 200) return;
      } catch { /* not yet */ }
    }
    await sleep(250);
  }
  throw new Error(`${socketPath} not answering ${path} within ${timeoutMs} ms`);
}

/** An ES256 JWT signed with `privateKey`: what a forger without the proxy's key can make. */
function es256Jwt(claims, privateKey, kid) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ alg: 'ES256', typ: 'JWT', kid })}.${encode(claims)}`;
  const signature = createSign('SHA256').update(input).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** Runs `oidc token` for the command-line client; the returned `url` is where to sign in. */
async function startOidcToken(issuer, redirectPort, cacheDir) {
  const child = spawn(oidcBinary(), [
    'token', '--issuer', issuer, '--client-id', 'mlflow-cli', '--no-browser',
    '--redirect-port', String(redirectPort), '--scope', 'openid email profile', '--timeout', '120',
  ], { env: { ...process.env, OIDC_CACHE_DIR: cacheDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise((ok) => child.on('exit', (code) => ok({ code, stdout: stdout.trim(), stderr })));
  const deadline = Date.now() + 30_000;
  while (!/^\s+(http\S+)$/m.test(stderr)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`oidc token printed no URL:\n${stderr}`);
    await sleep(100);
  }
  return { url: /^\s+(http\S+)$/m.exec(stderr)[1], exited };
}

/**
 * Opens `url` in `page` and completes the provider's pages as `sub` whenever they come, also
 * when an application's script sends the browser there after the page loaded (Airflow's UI does).
 */
async function visit(page, url, sub, { providerOrigin }) {
  const trace = new LoginTrace();
  await page.goto(url, { waitUntil: 'load' });
  for (let round = 0; round < 4; round += 1) {
    await page.waitForLoadState('networkidle').catch(() => {});
    if (new URL(page.url()).origin !== providerOrigin) break;
    await completeProviderSteps(page, trace, { user: sub, password: sub ? user(sub).password : undefined, providerOrigin, timeoutMs: 60_000 });
  }
  await page.waitForLoadState('load');
  return trace;
}

/**
 * Airflow's idea of who is signed in, asked with the browser context's cookies once Airflow's
 * UI has finished its own sign-in (it may still be on its way when the page first loads).
 */
async function airflowMe(context, site, { timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    const response = await context.request.get(`${site}/airflow/ui/auth/me`, { maxRedirects: 0 });
    last = { status: response.status() };
    if (last.status === 200) return { status: 200, ...(await response.json()) };
    await sleep(250);
  }
  return last;
}

/** Records the URL of every navigation request of `page`, each redirect hop included. */
function recordNavigations(page) {
  const urls = [];
  page.on('request', (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) urls.push(request.url());
  });
  return urls;
}

describe('one host: MLflow and Airflow behind Caddy and oidc proxy (examples/deployment)', { skip }, () => {
  let op;
  let proxy;
  let mlflow;
  let airflow;
  let caddy;
  let browser;
  let site;
  let caCert;
  let caPath;
  let cliPort;
  let mlflowSocket;
  let dirs = [];

  before(async () => {
    assertProxyBuilt();
    if (missingReason) throw new Error(`${missingReason} (E2E_REQUIRE_ALL=1 makes this a failure)`);
    const caddyPort = await freePort();
    const [proxyPort, mlflowPort, airflowPort] = [await freePort(), await freePort(), await freePort()];
    cliPort = await freePort();
    site = `https://127.0.0.1:${caddyPort}`;

    op = await startProvider({
      clients: {
        'mlflow-proxy': {
          redirect_uris: [`${site}/oauth2/callback`],
          post_logout_redirect_uris: [`${site}/oauth2/signed_out`],
        },
        airflow: {
          client_secret: AIRFLOW_SECRET,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          // Through Caddy, and Airflow's own port (where the test checks Airflow's refusal alone).
          redirect_uris: [`${site}/airflow/auth/oauth-authorized/oidc`, `http://127.0.0.1:${airflowPort}/airflow/auth/oauth-authorized/oidc`],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        'mlflow-cli': { redirect_uris: [`http://127.0.0.1:${cliPort}/callback`] },
      },
    });

    const keyDir = tempDir('deploy-keys');
    dirs.push(keyDir);
    const assertionKeyFile = join(keyDir.path, 'assertion.pem');
    writeFileSync(assertionKeyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));

    // The proxy, from the recipe's TOML; what differs here comes from OIDC_PROXY_* variables.
    proxy = await startProcess('proxy', oidcBinary(), ['proxy', '--config', join(DEPLOYMENT, 'oidc-proxy.toml')], {
      env: {
        RUST_LOG: process.env.RUST_LOG ?? 'info',
        OIDC_PROXY_HTTP_ADDRESS: `127.0.0.1:${proxyPort}`,
        OIDC_PROXY_OIDC_ISSUER_URL: op.issuer,
        OIDC_PROXY_CLIENT_ID: 'mlflow-proxy',
        OIDC_PROXY_CLIENT_SECRET: clientSecret('mlflow-proxy'),
        OIDC_PROXY_COOKIE_SECRET: randomCookieSecret(),
        OIDC_PROXY_REDIRECT_URL: `${site}/oauth2/callback`,
        OIDC_PROXY_POST_LOGOUT_REDIRECT_URL: `${site}/oauth2/signed_out`,
        // As the README says for replicas: a P-256 key in a PKCS#8 PEM file.
        OIDC_PROXY_IDENTITY_ASSERTION_KEY_FILE: assertionKeyFile,
      },
      readyPort: proxyPort,
    });
    proxy.port = proxyPort;

    // MLflow with the recipe's environment; its auth database goes to a temporary folder.
    const mlflowDir = tempDir('deploy-mlflow');
    dirs.push(mlflowDir);
    const mlflowEnv = readEnvFile(join(DEPLOYMENT, 'mlflow.env'));
    const ini = readFileSync(join(REPO_ROOT, mlflowEnv.MLFLOW_AUTH_CONFIG_PATH), 'utf8')
      .replace(/^database_uri = .*$/m, `database_uri = sqlite:///${join(mlflowDir.path, 'auth.db')}`);
    writeFileSync(join(mlflowDir.path, 'basic_auth.ini'), ini);
    // On a socket file only, as the recipe runs it: `--host`/`--port` are MLflow's defaults, unused.
    mlflowSocket = join(mlflowDir.path, 'mlflow.sock');
    mlflow = await startProcess('mlflow', join(venvDir(), 'bin', 'mlflow'), [
      'server', '--app-name', 'basic-auth', '--workers', '1', '--port', String(mlflowPort),
      '--static-prefix', '/mlflow', '--allowed-hosts', `127.0.0.1:${caddyPort}`,
      '--uvicorn-opts', `--uds ${mlflowSocket}`,
      '--backend-store-uri', `sqlite:///${join(mlflowDir.path, 'mlflow.db')}`, '--default-artifact-root', join(mlflowDir.path, 'artifacts'),
    ], {
      cwd: mlflowDir.path,
      env: {
        ...mlflowEnv,
        MLFLOW_AUTH_CONFIG_PATH: join(mlflowDir.path, 'basic_auth.ini'),
        PYTHONPATH: join(REPO_ROOT, mlflowEnv.PYTHONPATH),
        MLFLOW_AUTH_ADMIN_PASSWORD: randomCookieSecret(),
        MLFLOW_FLASK_SERVER_SECRET_KEY: randomCookieSecret(),
        MLFLOW_OIDC_ASSERTION_JWKS_URL: `http://127.0.0.1:${proxyPort}/oauth2/jwks`,
        MLFLOW_OIDC_ASSERTION_ISSUER: site,
      },
      ready: (output) => /Uvicorn running on unix socket/.test(output),
      timeoutMs: 120_000,
    });

    // Airflow with the recipe's environment and examples/airflow/webserver_config.py.
    const airflowDir = tempDir('deploy-airflow');
    dirs.push(airflowDir);
    const airflowEnv = {
      ...readEnvFile(join(DEPLOYMENT, 'airflow.env')),
      AIRFLOW_HOME: airflowDir.path,
      AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${join(airflowDir.path, 'airflow.db')}`,
      AIRFLOW__FAB__CONFIG_FILE: join(REPO_ROOT, 'examples', 'airflow', 'webserver_config.py'),
      AIRFLOW__API__BASE_URL: `${site}/airflow`,
      AIRFLOW__API__SECRET_KEY: randomCookieSecret(),
      AIRFLOW__API_AUTH__JWT_SECRET: randomCookieSecret(),
      AIRFLOW_OIDC_ISSUER: op.issuer,
      AIRFLOW_OIDC_CLIENT_SECRET: AIRFLOW_SECRET,
    };
    const airflowBin = join(airflowVenvDir(), 'bin', 'airflow');
    await runToEnd(airflowBin, ['db', 'migrate'], airflowEnv, airflowDir.path);
    const airflowStarted = Date.now();
    airflow = await startProcess('airflow', airflowBin, ['api-server', '--host', '127.0.0.1', '--port', String(airflowPort), '--proxy-headers'], {
      env: airflowEnv,
      cwd: airflowDir.path,
      readyPort: airflowPort,
      timeoutMs: 180_000,
    });
    await waitForOk(`http://127.0.0.1:${airflowPort}/api/v2/monitor/health`, 180_000);
    process.stderr.write(`deployment: Airflow api-server ready in ${Date.now() - airflowStarted} ms\n`);
    airflow.port = airflowPort;
    await waitForSocketOk(mlflowSocket, '/mlflow/health', 120_000);
    mlflow.port = mlflowPort;

    caddy = await startCaddy({
      configPath: join(DEPLOYMENT, 'Caddyfile'),
      env: {
        CADDY_LISTEN: `127.0.0.1:${caddyPort}`,
        SITE_ADDRESS: site,
        OIDC_PROXY: `127.0.0.1:${proxyPort}`,
        MLFLOW_UPSTREAM: `unix/${mlflowSocket}`,
        AIRFLOW_UPSTREAM: `127.0.0.1:${airflowPort}`,
      },
    });
    caPath = join(caddy.dataDir, 'caddy', 'pki', 'authorities', 'local', 'root.crt');
    caCert = await waitForFile(caPath);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await stopAll(op, proxy, mlflow, airflow, caddy);
    for (const dir of dirs) dir.remove();
  });

  let alice;
  test('alice signs in to MLflow through the provider (one password prompt), landing on her deep link', async () => {
    alice = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await alice.newPage();
    const apiStatuses = [];
    page.on('response', (response) => {
      if (/\/mlflow\/(ajax-api|api)\//.test(response.url())) apiStatuses.push(response.status());
    });
    const navigations = recordNavigations(page);
    // A deep link: its fragment never reaches a server, and survives the sign-in all the same.
    const trace = await visit(page, `${site}/mlflow/#/experiments/0`, 'alice', { providerOrigin: op.issuer });
    assert.equal(trace.passwordPrompts, 1);
    await page.waitForLoadState('networkidle').catch(() => {});
    assert.match(page.url(), /\/mlflow\/#\/experiments\/0/, navigations.join('\n -> '));
    assert.match(await page.title(), /\bMLflow$/);
    assert.ok(apiStatuses.length > 0);
    assert.deepEqual(apiStatuses.filter((status) => status >= 400), []);
  });

  test('alice gets into Airflow without a password, as herself', async () => {
    const page = await alice.newPage();
    const navigations = recordNavigations(page);
    const trace = await visit(page, `${site}/airflow/`, undefined, { providerOrigin: op.issuer });
    assert.equal(trace.passwordPrompts, 0);
    assert.ok(page.url().startsWith(`${site}/airflow/`), page.url());
    const me = await airflowMe(alice, site);
    assert.equal(me.status, 200, `${navigations.join('\n -> ')}\n${(await alice.cookies()).map((c) => `${c.name} ${c.path}`).join(', ')}\n${airflow.output().slice(-3000)}`);
    assert.equal(me.username, 'alice');
  });

  test('the MLflow client creates an experiment with a token from `oidc token`', async () => {
    const cache = tempDir('oidc-token');
    dirs.push(cache);
    const cli = await startOidcToken(op.issuer, cliPort, cache.path);
    const page = await alice.newPage();
    const trace = await visit(page, cli.url, 'alice', { providerOrigin: op.issuer });
    assert.equal(trace.passwordPrompts, 0, 'the provider session from the browser sign-in is reused');
    const { code, stdout, stderr } = await cli.exited;
    assert.equal(code, 0, stderr);
    const token = stdout.split('\n').pop();
    const name = `deployment-${Date.now()}`;
    const created = await mlflowCreateExperiment(`${site}/mlflow`, name, token, { MLFLOW_TRACKING_SERVER_CERT_PATH: caPath });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^\d+$/);

    // Without a token, MLflow's client reports the proxy's refusal as an authentication error.
    const refused = await mlflowCreateExperiment(`${site}/mlflow`, `${name}-no-token`, undefined, { MLFLOW_TRACKING_SERVER_CERT_PATH: caPath });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /UNAUTHENTICATED/);
    assert.doesNotMatch(refused.stderr, /INTERNAL_ERROR/);
  });

  test('a service account token (client credentials) works too; none or a bad one gets 401', async () => {
    const { access_token: token } = await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'));
    const search = `${site}/mlflow/api/2.0/mlflow/experiments/search?max_results=5`;
    assert.equal((await https(search, { ca: caCert, headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal((await https(search, { ca: caCert, headers: { authorization: 'Bearer not-a-token' } })).status, 401);
    assert.equal((await https(search, { ca: caCert, headers: { accept: 'application/json' } })).status, 401);
  });

  test('MLflow has no port, and on its socket believes neither forged headers nor a forged assertion', async () => {
    // Nothing listens on the port MLflow would have used.
    await assert.rejects(plainGet(`http://127.0.0.1:${mlflow.port}/mlflow/health`, {}), /ECONNREFUSED/);
    // On the socket itself, with the Host MLflow allows (Caddy's), so that only the identity check can refuse.
    const direct = (headers) => plainGet('http://localhost/mlflow/api/2.0/mlflow/experiments/search?max_results=5', { host: new URL(site).host, ...headers }, mlflowSocket);
    const forged = await direct({ 'X-Auth-Request-Email': 'alice@example.com', 'X-Auth-Request-Groups': 'admins' });
    assert.equal(forged.status, 401);
    assert.match(forged.body, /did not come through the proxy/);
    // An assertion that says all the right things, signed with a key that is not the proxy's.
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: site, aud: 'mlflow', sub: 'alice', email: 'alice@example.com', groups: ['mlflow-users', 'admins'], iat: now, nbf: now, exp: now + 60 };
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const published = JSON.parse((await plainGet(`http://127.0.0.1:${proxy.port}/oauth2/jwks`, {})).body);
    assert.equal(published.keys.length, 1);
    const madeUp = await direct({ 'X-Identity-Assertion': es256Jwt(claims, privateKey, published.keys[0].kid) });
    assert.equal(madeUp.status, 401);
    assert.match(madeUp.body, /identity assertion refused/);
    // ...while the same request through Caddy, signed in, is answered.
    const through = await alice.request.get(`${site}/mlflow/api/2.0/mlflow/experiments/search?max_results=5`, { maxRedirects: 0 });
    assert.equal(through.status(), 200);
  });

  test('carol (outside the allowed group) is refused by both, with a clear page', async () => {
    const carol = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await carol.newPage();
    await visit(page, `${site}/mlflow/`, 'carol', { providerOrigin: op.issuer });
    assert.match(await page.locator('body').innerText(), /not allowed to use this application/);
    const airflowPage = await carol.newPage();
    const response = await airflowPage.goto(`${site}/airflow/`, { waitUntil: 'load' });
    assert.equal(response.status(), 403);
    assert.match(await airflowPage.locator('body').innerText(), /not allowed to use this application/);
    await carol.close();
  });

  test("Airflow on its own refuses carol too: no role, no account, a clear 403 page", async () => {
    const carol = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await carol.newPage();
    const direct = `http://127.0.0.1:${airflow.port}/airflow/auth/login/oidc`;
    await visit(page, direct, 'carol', { providerOrigin: op.issuer });
    assert.match(await page.locator('#airflow-no-access').innerText(), /No access to Airflow/);
    assert.match(await page.locator('body').innerText(), /carol/);
    await carol.close();
  });

  test('signing out from MLflow ends both sessions and returns to MLflow', async () => {
    const page = await alice.newPage();
    const navigations = recordNavigations(page);
    await page.goto(`${site}/oauth2/sign_out?rd=/mlflow/`, { waitUntil: 'load' });
    assert.equal(await confirmProviderLogout(page), true);
    // Back at the application: which, signed out, asks the provider for a password again.
    await page.waitForLoadState('load');
    assert.equal(await isProviderLoginPage(page), true, page.url());
    assertReturnedTo(navigations, `${site}/mlflow/`);

    const airflowPage = await alice.newPage();
    await airflowPage.goto(`${site}/airflow/`, { waitUntil: 'load' });
    assert.equal(await isProviderLoginPage(airflowPage), true, `Airflow still open after sign-out: ${airflowPage.url()}`);
  });

  test('bob signing in next on the same browser is bob in Airflow, not alice', async () => {
    const page = await alice.newPage();
    await visit(page, `${site}/airflow/`, 'bob', { providerOrigin: op.issuer });
    const me = await airflowMe(alice, site);
    assert.equal(me.status, 200);
    assert.equal(me.username, 'bob');
  });

  test("Airflow's own Log out ends both sessions and comes back to Airflow", async () => {
    const page = await alice.newPage();
    const navigations = recordNavigations(page);
    await page.goto(`${site}/airflow/api/v2/auth/logout`, { waitUntil: 'load' });
    assert.equal(await confirmProviderLogout(page), true);
    await page.waitForLoadState('load');
    assert.equal(await isProviderLoginPage(page), true, page.url());
    assertReturnedTo(navigations, `${site}/airflow/`);
    const mlflowPage = await alice.newPage();
    await mlflowPage.goto(`${site}/mlflow/`, { waitUntil: 'load' });
    assert.equal(await isProviderLoginPage(mlflowPage), true, `MLflow still open after sign-out: ${mlflowPage.url()}`);
  });
});

/**
 * After the provider's sign-out page, the browser went to the proxy's `signed_out` and from there
 * to `target` (which, signed out, then sent it on to sign in).
 */
function assertReturnedTo(navigations, target) {
  const signedOut = navigations.findIndex((url) => new URL(url).pathname === '/oauth2/signed_out');
  assert.ok(signedOut >= 0, `never came back to /oauth2/signed_out: ${navigations.join(' -> ')}`);
  assert.ok(navigations.slice(signedOut + 1).some((url) => url.startsWith(target)), `did not return to ${target}: ${navigations.join(' -> ')}`);
}

/** Runs a command to its end; throws with its output when it fails. */
function runToEnd(command, args, env, cwd) {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output.slice(-4000)}`))));
  });
}

/** Polls `url` until it answers 200. */
async function waitForOk(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not yet */ }
    await sleep(250);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

/** Waits for a file to exist and returns its content. */
async function waitForFile(path, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}
