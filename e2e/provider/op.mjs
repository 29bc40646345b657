// A real, certified OpenID Provider (the `oidc-provider` package) configured for the
// end-to-end tests: test clients and users, password-checking login and consent pages,
// PKCE required, RP-initiated and back-channel logout, JWT access tokens for an API
// audience through resource indicators, and cookie names that cannot clash with the
// proxy's own cookies on 127.0.0.1.
//
// Usage:
//   node provider/op.mjs [--port N] [--clients FILE.json] [--exit-on-stdin-close]
// Environment (each optional):
//   OP_PORT            port to listen on (default 0: a free port), 127.0.0.1 only
//   OP_CLIENTS_JSON    JSON object keyed by client_id; its fields override or extend the
//                      built-in clients (e.g. redirect_uris, backchannel_logout_uri)
//   OP_REQUIRE_PAR=1   accept authorization requests only when pushed (RFC 9126
//                      require_pushed_authorization_requests; pushing itself is always offered)
//   OP_DPOP=1          offer DPoP (RFC 9449): a token request with a DPoP proof gets a
//                      DPoP-bound access token
// Prints `READY <issuer>` on stdout once listening.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

import { API_CLIENTS, CLIENTS, USERS, API_RESOURCES, SERVICE_ACCOUNT_CLAIMS } from './fixtures.mjs';
import { loginPage, consentPage, logoutPage, loggedOutPage, errorPage } from './pages.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    clients: { type: 'string' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

const requestedPort = Number.parseInt(args.port ?? process.env.OP_PORT ?? '0', 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  process.stderr.write(`op: invalid port ${args.port ?? process.env.OP_PORT}\n`);
  process.exit(2);
}

const clientOverrides = {
  ...(args.clients ? JSON.parse(readFileSync(args.clients, 'utf8')) : {}),
  ...(process.env.OP_CLIENTS_JSON ? JSON.parse(process.env.OP_CLIENTS_JSON) : {}),
};

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requestedPort, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, buildConfiguration(clientOverrides));
// Plain http on loopback: the provider trusts no forwarded headers, it is reached directly.
provider.proxy = false;

const providerCallback = provider.callback();
server.on('request', (req, res) => {
  handleInteraction(req, res).then((handled) => {
    if (!handled) providerCallback(req, res);
  }).catch((err) => {
    process.stderr.write(`op: interaction error: ${err?.stack ?? err}\n`);
    if (!res.headersSent) {
      res.writeHead(err instanceof errors.SessionNotFound ? 400 : 500, { 'content-type': 'text/html; charset=utf-8' });
      res.end(errorPage(err?.error ?? 'server_error', err?.error_description ?? 'interaction failed'));
    } else {
      res.destroy();
    }
  });
});

provider.on('server_error', (ctx, err) => process.stderr.write(`op: server_error: ${err?.stack ?? err}\n`));
provider.on('backchannel.error', (ctx, err, client) => process.stderr.write(`op: backchannel logout to ${client.clientId} failed: ${err?.message ?? err}\n`));
provider.on('backchannel.success', (ctx, client) => process.stderr.write(`op: backchannel logout delivered to ${client.clientId}\n`));

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['exit-on-stdin-close']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

process.stdout.write(`READY ${issuer}\n`);

function buildConfiguration(overrides) {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const clients = CLIENTS.map((client) => ({ ...client, ...(overrides[client.client_id] ?? {}) }));
  for (const [clientId, extra] of Object.entries(overrides)) {
    if (!clients.some((client) => client.client_id === clientId)) clients.push({ client_id: clientId, ...extra });
  }

  return {
    clients,
    jwks: {
      keys: [
        { ...rsa, kid: `rsa-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' },
        { ...ec, kid: `ec-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'ES256' },
      ],
    },
    cookies: {
      // Cookies on 127.0.0.1 are shared by every port: a prefix keeps these apart from the proxy's.
      names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_interaction_resume' },
      keys: [randomBytes(32).toString('base64url')],
      // SameSite=None needs Secure, which plain http cannot have; Lax is enough for top-level redirects.
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // Put the granted claims in the ID token too, as most relying parties (and the proxy) read them there.
    conformIdTokenClaims: false,
    findAccount,
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: {
        enabled: true,
        requirePushedAuthorizationRequests: process.env.OP_REQUIRE_PAR === '1',
      },
      dPoP: { enabled: process.env.OP_DPOP === '1' },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => { ctx.body = logoutPage(form, ctx.host); },
        postLogoutSuccessSource: (ctx) => { ctx.body = loggedOutPage(ctx.oidc.client?.clientId); },
      },
      resourceIndicators: {
        enabled: true,
        // Client-credentials clients and the command-line client get the API audience without
        // naming it; everyone else must ask.
        defaultResource: (ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          if (ctx.oidc.params?.grant_type === 'client_credentials') return API_RESOURCES.default;
          if (API_CLIENTS.includes(client?.clientId ?? ctx.oidc.client?.clientId)) return API_RESOURCES.default;
          return undefined;
        },
        // The command-line client's code and refresh grants keep the API granted at sign-in, as a
        // provider with an audience mapper does; everyone else asks at the token endpoint.
        useGrantedResource: (ctx) => API_CLIENTS.includes(ctx.oidc.client?.clientId),
        getResourceServerInfo: (ctx, resourceIndicator) => {
          const server = API_RESOURCES.servers[resourceIndicator];
          if (!server) throw new errors.InvalidTarget();
          return {
            scope: server.scope,
            audience: server.audience,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: (ctx, token) => {
      if (token.kind === 'ClientCredentials') return SERVICE_ACCOUNT_CLAIMS[token.clientId];
      if (token.kind === 'AccessToken' && token.accountId) {
        const user = USERS.find((candidate) => candidate.sub === token.accountId);
        return user ? { email: user.email, groups: user.groups } : undefined;
      }
      return undefined;
    },
    // Clients registered for refresh tokens get one with every code, so the proxy can refresh sessions.
    issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
      ClientCredentials: 600,
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = errorPage(out.error, out.error_description);
    },
  };
}

async function findAccount(ctx, sub) {
  const user = USERS.find((candidate) => candidate.sub === sub);
  if (!user) return undefined;
  return {
    accountId: user.sub,
    claims: () => ({
      sub: user.sub,
      email: user.email,
      email_verified: true,
      name: user.name,
      preferred_username: user.sub,
      groups: user.groups,
    }),
  };
}

function checkPassword(login, password) {
  const user = USERS.find((candidate) => candidate.sub === login || candidate.email === login);
  if (!user) return undefined;
  const expected = Buffer.from(user.password);
  const given = Buffer.from(String(password ?? ''));
  return expected.length === given.length && timingSafeEqual(expected, given) ? user : undefined;
}

async function readForm(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

// Login and consent: the pages the provider sends the browser to while an authorization is pending.
async function handleInteraction(req, res) {
  const url = new URL(req.url, issuer);
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(url.pathname);
  if (!match) return false;
  const [, uid, action] = match;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  const { prompt, params, session } = details;
  const client = await provider.Client.find(params.client_id);

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') {
      sendHtml(res, 200, loginPage({ uid, clientId: client?.clientId, loginHint: params.login_hint }));
    } else if (prompt.name === 'consent') {
      sendHtml(res, 200, consentPage({ uid, clientId: client?.clientId, details: prompt.details, accountId: session?.accountId }));
    } else {
      sendHtml(res, 501, errorPage('not_implemented', `prompt ${prompt.name}`));
    }
    return true;
  }

  if (req.method === 'POST' && action === 'login') {
    if (prompt.name !== 'login') throw new errors.InvalidRequest('not a login prompt');
    const form = await readForm(req);
    const user = checkPassword(form.get('login'), form.get('password'));
    if (!user) {
      sendHtml(res, 401, loginPage({ uid, clientId: client?.clientId, loginHint: form.get('login'), error: 'Invalid username or password.' }));
      return true;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return true;
  }

  if (req.method === 'POST' && action === 'confirm') {
    if (prompt.name !== 'consent') throw new errors.InvalidRequest('not a consent prompt');
    await readForm(req);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    if (missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return true;
  }

  if (req.method === 'GET' && action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return true;
  }

  sendHtml(res, 405, errorPage('method_not_allowed', `${req.method} ${url.pathname}`));
  return true;
}
