// A tiny relying party written with Node's http, crypto and fetch only: authorization code
// flow with state, nonce and PKCE S256, the code exchanged with fetch, the ID token's signature
// and claims checked against the provider's JWKS. It proves the provider, its pages and the
// browser work together before the proxy exists, and records back-channel logout tokens.

import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { createServer } from 'node:http';

const SIGNATURE_ALGORITHMS = {
  RS256: { hash: 'sha256' },
  ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363' },
};

/**
 * Starts the relying party on a free 127.0.0.1 port. Routes:
 * `/login` (redirect to the provider), `/oauth2/callback` (code exchange, JSON of the verified
 * ID token claims), `/logout` (RP-initiated logout), `/` (post-logout landing),
 * `/oauth2/backchannel-logout` (records logout tokens).
 */
export async function startRelyingParty({ issuer, clientId, clientSecret, port = 0 }) {
  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const pending = new Map();
  const backchannelLogouts = [];
  let lastIdToken;

  const server = createServer((req, res) => {
    route(req, res).catch((err) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'rp_error', message: String(err?.message ?? err) }));
    });
  });
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${server.address().port}`;
  const redirectUri = `${base}/oauth2/callback`;

  async function route(req, res) {
    const url = new URL(req.url, base);
    if (url.pathname === '/login') {
      const state = randomBytes(16).toString('base64url');
      const nonce = randomBytes(16).toString('base64url');
      const verifier = randomBytes(32).toString('base64url');
      pending.set(state, { nonce, verifier });
      const authorize = new URL(metadata.authorization_endpoint);
      authorize.search = new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: redirectUri,
        scope: url.searchParams.get('scope') ?? 'openid email profile groups',
        state,
        nonce,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        ...(url.searchParams.get('prompt') ? { prompt: url.searchParams.get('prompt') } : {}),
      }).toString();
      res.writeHead(302, { location: authorize.toString() });
      res.end();
      return;
    }
    if (url.pathname === '/oauth2/callback') {
      const state = url.searchParams.get('state');
      const login = pending.get(state);
      pending.delete(state);
      if (!login) return sendJson(res, 400, { error: 'unknown_state' });
      if (url.searchParams.get('error')) return sendJson(res, 400, { error: url.searchParams.get('error') });
      if (url.searchParams.get('iss') !== issuer) return sendJson(res, 400, { error: 'wrong_iss_parameter' });
      const tokens = await exchangeCode(url.searchParams.get('code'), login.verifier);
      const claims = await verifyIdToken(tokens.id_token, login.nonce);
      lastIdToken = tokens.id_token;
      return sendJson(res, 200, { claims, token_type: tokens.token_type, has_refresh_token: Boolean(tokens.refresh_token) });
    }
    if (url.pathname === '/logout') {
      const endSession = new URL(metadata.end_session_endpoint);
      endSession.search = new URLSearchParams({
        client_id: clientId,
        post_logout_redirect_uri: `${base}/`,
        ...(lastIdToken ? { id_token_hint: lastIdToken } : {}),
      }).toString();
      res.writeHead(302, { location: endSession.toString() });
      res.end();
      return;
    }
    if (url.pathname === '/oauth2/backchannel-logout' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const logoutToken = form.get('logout_token');
      const claims = await verifyJwt(logoutToken);
      backchannelLogouts.push(claims);
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (url.pathname === '/') return sendJson(res, 200, { signed_out_landing: true });
    return sendJson(res, 404, { error: 'not_found' });
  }

  async function exchangeCode(code, verifier) {
    const response = await fetch(metadata.token_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`token endpoint ${response.status}: ${JSON.stringify(json)}`);
    return json;
  }

  async function verifyJwt(jwt) {
    const parts = String(jwt).split('.');
    if (parts.length !== 3) throw new Error('not a compact JWS');
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    const algorithm = SIGNATURE_ALGORITHMS[header.alg];
    if (!algorithm) throw new Error(`algorithm ${header.alg} not accepted`);
    const { keys } = await (await fetch(metadata.jwks_uri)).json();
    const jwk = keys.find((key) => key.kid === header.kid);
    if (!jwk) throw new Error(`no key ${header.kid}`);
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], 'base64url');
    const valid = verify(algorithm.hash, signed, algorithm.dsaEncoding ? { key, dsaEncoding: algorithm.dsaEncoding } : key, signature);
    if (!valid) throw new Error('bad signature');
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (claims.iss !== issuer) throw new Error(`iss ${claims.iss}`);
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(clientId)) throw new Error(`aud ${claims.aud}`);
    return claims;
  }

  async function verifyIdToken(idToken, nonce) {
    const claims = await verifyJwt(idToken);
    const now = Math.floor(Date.now() / 1000);
    if (!(claims.exp > now - 60)) throw new Error(`expired: exp ${claims.exp} now ${now}`);
    if (claims.nonce !== nonce) throw new Error('nonce mismatch');
    return claims;
  }

  return {
    url: base,
    redirectUri,
    metadata,
    backchannelLogouts,
    stop: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
