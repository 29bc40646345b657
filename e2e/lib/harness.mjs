// Starting and stopping the real parts of an end-to-end scenario on 127.0.0.1: the provider
// (child process), an upstream that echoes request headers, the `oidc` proxy binary, and any
// other child process (Caddy, MLflow, Redis). Everything started here is stopped by `stop()`
// and, as a last resort, when this process exits.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The e2e/ folder. */
export const E2E_DIR = resolve(here, '..');
/** The repository root. */
export const REPO_ROOT = resolve(E2E_DIR, '..');

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** A free TCP port on 127.0.0.1 (bound to port 0, then released). */
export async function freePort() {
  const server = createNetServer();
  await new Promise((ok, fail) => { server.once('error', fail); server.listen(0, '127.0.0.1', ok); });
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/** A fresh temporary folder, removed by the returned `remove()`. */
export function tempDir(prefix) {
  const path = mkdtempSync(join(tmpdir(), `oidc-e2e-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Spawns a child process whose output is kept (last 64 KiB) for failure messages.
 * Resolves once `ready(outputSoFar)` is true or `readyPort` accepts connections.
 */
export async function startProcess(name, command, args, { env = {}, cwd = REPO_ROOT, ready, readyPort, timeoutMs = 30_000 } = {}) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString('utf8');
    if (output.length > 65536) output = output.slice(-65536);
    if (process.env.E2E_VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((ok) => child.once('exit', (code, signal) => { running.delete(child); ok({ code, signal }); }));

  const handle = {
    name,
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited early (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    if (ready && ready(output)) return handle;
    if (readyPort && await portOpen(readyPort)) return handle;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`${name} not ready within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(100);
  }
}

/** Waits `ms` milliseconds. */
export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port) {
  return new Promise((ok) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); ok(true); });
    socket.once('error', () => ok(false));
  });
}

/**
 * Starts the provider (`provider/op.mjs`) as a child process on a free port.
 * `clients` overrides the built-in clients' metadata by client id; `env` sets its feature
 * switches (`OP_REQUIRE_PAR`, `OP_DPOP`).
 */
export async function startProvider({ clients = {}, env = {} } = {}) {
  const handle = await startProcess('op', process.execPath, [join(E2E_DIR, 'provider', 'op.mjs'), '--port', '0', '--exit-on-stdin-close'], {
    cwd: E2E_DIR,
    env: { OP_CLIENTS_JSON: JSON.stringify(clients), ...env },
    ready: (output) => /^READY (\S+)$/m.test(output),
  });
  const issuer = /^READY (\S+)$/m.exec(handle.output())[1];
  return { ...handle, issuer };
}

/**
 * An upstream application: answers every request with a JSON echo of its method, URL and
 * headers, and records the requests it saw.
 */
export async function startEchoServer(name = 'upstream') {
  const requests = [];
  const server = createServer((req, res) => {
    const seen = { name, method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders };
    requests.push(seen);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

/**
 * Path of the `oidc` binary: `OIDC_BIN`, else `$CARGO_TARGET_DIR/debug/oidc`, else
 * `target/debug/oidc` in the repository.
 */
export function oidcBinary() {
  if (process.env.OIDC_BIN) return process.env.OIDC_BIN;
  const candidates = [];
  if (process.env.CARGO_TARGET_DIR) candidates.push(resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR, 'debug', 'oidc'));
  candidates.push(join(REPO_ROOT, 'target', 'debug', 'oidc'));
  return candidates.find((path) => existsSync(path)) ?? candidates[candidates.length - 1];
}

const subcommandCache = new Map();

/** True when the `oidc` binary exists and knows `subcommand` (`oidc SUBCOMMAND --help` exits 0). */
export function oidcHasSubcommand(subcommand) {
  const bin = oidcBinary();
  const key = `${bin}\0${subcommand}`;
  if (!subcommandCache.has(key)) {
    const known = existsSync(bin) && spawnSync(bin, [subcommand, '--help'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
    subcommandCache.set(key, known);
  }
  return subcommandCache.get(key);
}

/**
 * For `describe(name, { skip: oidcSkipReason('verify') })`: the reason to skip when the `oidc`
 * binary is missing or lacks the subcommand, or false. With `E2E_REQUIRE_PROXY=1` it is always
 * false, so the suite's `before` hook fails instead (see `assertOidcSubcommand`).
 */
export function oidcSkipReason(subcommand) {
  if (oidcHasSubcommand(subcommand) || process.env.E2E_REQUIRE_PROXY === '1') return false;
  return existsSync(oidcBinary()) ? `${oidcBinary()} has no \`${subcommand}\` subcommand yet` : 'target/debug/oidc not built';
}

/** The skip reason for suites that run `oidc proxy`. */
export function proxySkipReason() {
  return oidcSkipReason('proxy');
}

/** Throws a clear error when the binary or its subcommand is missing (for `before` hooks). */
export function assertOidcSubcommand(subcommand) {
  if (!existsSync(oidcBinary())) {
    throw new Error(`${oidcBinary()} not built (E2E_REQUIRE_PROXY=1 makes this a failure)`);
  }
  if (!oidcHasSubcommand(subcommand)) {
    throw new Error(`${oidcBinary()} has no \`${subcommand}\` subcommand (E2E_REQUIRE_PROXY=1 makes this a failure)`);
  }
}

/** Throws a clear error when `oidc proxy` is not available (for `before` hooks). */
export function assertProxyBuilt() {
  assertOidcSubcommand('proxy');
}

/** Finds an executable on PATH, or undefined. */
export function which(command) {
  for (const folder of (process.env.PATH ?? '').split(':')) {
    if (folder && existsSync(join(folder, command))) return join(folder, command);
  }
  return undefined;
}

/** A `Cookie` header value holding the browser context's cookies for `url`. */
export async function cookieHeader(context, url) {
  return (await context.cookies(url)).map((cookie) => `${cookie.name}=${cookie.value}`).join('; ');
}

/**
 * Starts `oidc proxy` with oauth2-proxy-compatible flags on a free port (or `port`).
 * `args` are appended; the returned `url` is the proxy's base URL.
 */
export async function startProxy({ issuer, port, clientId, clientSecret, upstream, redirectUrl, args = [], env = {} }) {
  const listenPort = port ?? await freePort();
  const base = `http://127.0.0.1:${listenPort}`;
  const flags = [
    'proxy',
    `--http-address=127.0.0.1:${listenPort}`,
    `--oidc-issuer-url=${issuer}`,
    `--client-id=${clientId}`,
    `--client-secret=${clientSecret}`,
    `--redirect-url=${redirectUrl ?? `${base}/oauth2/callback`}`,
    `--cookie-secret=${randomCookieSecret()}`,
    '--cookie-secure=false',
    '--email-domain=*',
  ];
  if (upstream) flags.push(`--upstream=${upstream}`);
  flags.push(...args);
  const handle = await startProcess(`proxy:${clientId}`, oidcBinary(), flags, {
    env: { RUST_LOG: process.env.RUST_LOG ?? 'info', ...env },
    readyPort: listenPort,
  });
  // The port opens at once; /readyz answers 200 once the provider's metadata and keys are loaded.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await fetch(`${base}/readyz`).then((answer) => answer.status, () => 0);
    if (status === 200) break;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`proxy:${clientId} not ready within 30000 ms (last /readyz status ${status})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { ...handle, port: listenPort, url: base };
}

/** 32 random bytes, base64url: what `--cookie-secret` takes. */
export function randomCookieSecret() {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
}

/** The client metadata overrides that point a browser client at a proxy on `port`. */
export function clientAt(port, { backchannel = false } = {}) {
  const base = `http://127.0.0.1:${port}`;
  return {
    redirect_uris: [`${base}/oauth2/callback`],
    post_logout_redirect_uris: [`${base}/`, `${base}/oauth2/sign_out`, `${base}/oauth2/signed_out`],
    ...(backchannel ? { backchannel_logout_uri: `${base}/oauth2/backchannel-logout` } : {}),
  };
}

/**
 * Asks the provider's token endpoint for a client-credentials access token.
 * `resource` picks the API (and so the audience); omitted, the provider's default applies.
 */
export async function clientCredentialsToken(issuer, clientId, clientSecret, { resource, scope } = {}) {
  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (resource) body.set('resource', resource);
  if (scope) body.set('scope', scope);
  const response = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body,
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Decodes a JWT's header and payload without checking anything (for assertions only). */
export function decodeJwt(jwt) {
  const [header, payload] = String(jwt).split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')),
  };
}

/** Stops every handle given, ignoring the ones that are undefined. */
export async function stopAll(...handles) {
  for (const handle of handles.reverse()) {
    if (handle) await handle.stop();
  }
}

/** The e2e Python virtualenv: `E2E_VENV`, else `.venv-e2e` at the repository root. */
export function venvDir() {
  return process.env.E2E_VENV ?? join(REPO_ROOT, '.venv-e2e');
}

/** True when MLflow is installed in the e2e virtualenv. */
export function mlflowAvailable() {
  return existsSync(join(venvDir(), 'bin', 'mlflow'));
}

/**
 * Starts a real MLflow tracking server on a free loopback port with its auth app
 * (`--app-name basic-auth`) configured by `examples/mlflow/basic_auth.ini`, so that the
 * identity header set by the proxy decides the MLflow user. `allowedHosts` lists the Host
 * headers MLflow accepts (the proxy's, when it passes the host through).
 */
export async function startMlflow({ allowedHosts = [], userHeader = 'X-Forwarded-Email', adminGroup = 'admins', socketPath, assertion } = {}) {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const port = await freePort();
  const dir = tempDir('mlflow');
  const ini = readFileSync(join(REPO_ROOT, 'examples', 'mlflow', 'basic_auth.ini'), 'utf8')
    .replace(/^database_uri = .*$/m, `database_uri = sqlite:///${join(dir.path, 'auth.db')}`);
  const iniPath = join(dir.path, 'basic_auth.ini');
  writeFileSync(iniPath, ini);
  const hosts = [`127.0.0.1:${port}`, ...allowedHosts].join(',');
  // On a socket file, MLflow has no TCP port at all (`--port` is then unused).
  const listen = socketPath ? ['--uvicorn-opts', `--uds ${socketPath}`] : ['--host', '127.0.0.1'];
  const assertionEnv = assertion ? {
    MLFLOW_OIDC_ASSERTION_JWKS_URL: assertion.jwksUrl,
    MLFLOW_OIDC_ASSERTION_ISSUER: assertion.issuer,
    MLFLOW_OIDC_ASSERTION_AUDIENCE: assertion.audience ?? 'mlflow',
  } : {};
  const handle = await startProcess('mlflow', join(venvDir(), 'bin', 'mlflow'), [
    'server',
    '--app-name', 'basic-auth',
    ...listen,
    '--port', String(port),
    '--workers', '1',
    '--backend-store-uri', `sqlite:///${join(dir.path, 'mlflow.db')}`,
    '--default-artifact-root', join(dir.path, 'artifacts'),
    '--allowed-hosts', hosts,
  ], {
    cwd: dir.path,
    env: {
      MLFLOW_AUTH_CONFIG_PATH: iniPath,
      MLFLOW_AUTH_ADMIN_PASSWORD: randomCookieSecret(),
      MLFLOW_FLASK_SERVER_SECRET_KEY: randomCookieSecret(),
      MLFLOW_OIDC_USER_HEADER: userHeader,
      MLFLOW_OIDC_ADMIN_GROUP: adminGroup,
      PYTHONPATH: join(REPO_ROOT, 'examples', 'mlflow'),
      ...assertionEnv,
    },
    ...(socketPath ? { ready: (output) => /Uvicorn running on unix socket/.test(output) } : { readyPort: port }),
    timeoutMs: 120_000,
  });
  if (!socketPath) {
    // The port opens before the app has loaded; /health answers once it has.
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
      } catch { /* not yet */ }
      await sleep(250);
    }
  }
  return {
    ...handle,
    port,
    url: socketPath ? undefined : `http://127.0.0.1:${port}`,
    socketPath,
    async stop() { await handle.stop(); dir.remove(); },
  };
}

/**
 * Runs the MLflow Python client against `trackingUri` with `MLFLOW_TRACKING_TOKEN=token` and
 * creates an experiment. Resolves to `{ code, stdout, stderr }` of the Python process.
 */
export function mlflowCreateExperiment(trackingUri, name, token, extraEnv = {}) {
  const script = [
    'import sys, mlflow',
    'mlflow.set_tracking_uri(sys.argv[1])',
    'print(mlflow.create_experiment(sys.argv[2]))',
  ].join('\n');
  const env = { ...process.env, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', MLFLOW_HTTP_REQUEST_TIMEOUT: '30', ...extraEnv };
  delete env.MLFLOW_TRACKING_TOKEN;
  if (token !== undefined) env.MLFLOW_TRACKING_TOKEN = token;
  return new Promise((ok) => {
    const child = spawn(join(venvDir(), 'bin', 'python'), ['-c', script, trackingUri, name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('exit', (code) => ok({ code, stdout: stdout.trim(), stderr }));
  });
}

/** The Airflow virtualenv: `E2E_AIRFLOW_VENV`, else `.venv-airflow` at the repository root. */
export function airflowVenvDir() {
  return process.env.E2E_AIRFLOW_VENV ?? join(REPO_ROOT, '.venv-airflow');
}

/** True when Airflow is installed in its virtualenv (scripts/install-e2e-deps.sh). */
export function airflowAvailable() {
  return existsSync(join(airflowVenvDir(), 'bin', 'airflow'));
}

/** `KEY=VALUE` lines of an env file (comments and blank lines skipped), as an object. */
export function readEnvFile(path) {
  const env = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]] = match[2];
  }
  return env;
}

/** True when the `caddy` binary is on PATH. */
export function caddyAvailable() {
  return which('caddy') !== undefined;
}

/**
 * Runs `caddy run` with one of the Caddyfiles in examples/caddy on a free loopback port.
 * `env` fills the Caddyfile's `{$VAR}` placeholders (OIDC_PROXY, MLFLOW_UPSTREAM, ...).
 */
export async function startCaddy({ caddyfile = 'Caddyfile', configPath, env = {} } = {}) {
  // A caller that fixed the listen address (its callback URL names the port) is waited for there.
  const port = env.CADDY_LISTEN ? Number(env.CADDY_LISTEN.split(':').pop()) : await freePort();
  const dir = tempDir('caddy');
  const handle = await startProcess('caddy', which('caddy') ?? 'caddy', [
    'run', '--config', configPath ?? join(REPO_ROOT, 'examples', 'caddy', caddyfile), '--adapter', 'caddyfile',
  ], {
    cwd: dir.path,
    env: { HOME: dir.path, XDG_DATA_HOME: dir.path, XDG_CONFIG_HOME: dir.path, CADDY_LISTEN: `127.0.0.1:${port}`, ...env },
    readyPort: port,
  });
  return { ...handle, port, url: `http://127.0.0.1:${port}`, dataDir: dir.path, async stop() { await handle.stop(); dir.remove(); } };
}

/** Starts a throwaway redis-server on a free loopback port, persisting nothing. */
export async function startRedis() {
  const port = await freePort();
  const dir = tempDir('redis');
  const handle = await startProcess('redis', which('redis-server') ?? 'redis-server', [
    '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir.path,
  ], { readyPort: port });
  return { ...handle, port, url: `redis://127.0.0.1:${port}`, async stop() { await handle.stop(); dir.remove(); } };
}
