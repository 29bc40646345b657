// DPoP (RFC 9449) against the certified provider with DPoP on (`OP_DPOP=1`): a client-credentials
// request with a proof made here gets a DPoP-bound access token (`cnf.jkt`), and `oidc dpop`
// (the core's resource-side check) accepts a proof for an API request only from the bound key.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { assertOidcSubcommand, decodeJwt, oidcBinary, oidcSkipReason, startProvider, stopAll } from '../lib/harness.mjs';
import { clientSecret } from '../provider/fixtures.mjs';

const API = 'https://api.example/v1/runs';

/** An ES256 key and the DPoP proofs it signs. */
function proofKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const jwk = { kty, crv, x, y };
  return {
    jwk,
    proof(htm, htu, accessToken) {
      const header = { typ: 'dpop+jwt', alg: 'ES256', jwk };
      const claims = { jti: randomBytes(16).toString('base64url'), htm, htu, iat: Math.floor(Date.now() / 1000) };
      if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
      const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

/** `oidc dpop ... --json`: the exit status and the parsed answer. */
function oidcDpop(proof, { method = 'GET', url = API, accessToken, jkt }) {
  const args = ['dpop', '--json', `--method=${method}`, `--url=${url}`];
  if (accessToken) args.push(`--access-token=${accessToken}`);
  if (jkt) args.push(`--jkt=${jkt}`);
  args.push(proof);
  const run = spawnSync(oidcBinary(), args, { encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, json: JSON.parse(run.stdout || '{}'), stderr: run.stderr };
}

describe('DPoP-bound tokens from the certified provider', { skip: oidcSkipReason('dpop') }, () => {
  let op;
  let metadata;

  before(async () => {
    assertOidcSubcommand('dpop');
    op = await startProvider({ env: { OP_DPOP: '1' } });
    metadata = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
  });

  after(async () => {
    await stopAll(op);
  });

  test('a proof at the token endpoint binds the token; only that key can use it', async () => {
    assert.ok(metadata.dpop_signing_alg_values_supported.includes('ES256'));
    const key = proofKey();
    const response = await fetch(metadata.token_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`mlflow-sdk:${clientSecret('mlflow-sdk')}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        dpop: key.proof('POST', metadata.token_endpoint),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const tokens = await response.json();
    assert.equal(response.status, 200, JSON.stringify(tokens));
    assert.equal(tokens.token_type, 'DPoP');
    const jkt = decodeJwt(tokens.access_token).payload.cnf?.jkt;
    assert.match(jkt ?? '', /^[A-Za-z0-9_-]{43}$/, 'the access token carries cnf.jkt');

    // The provider's thumbprint of our key is the core's.
    const good = oidcDpop(key.proof('GET', API, tokens.access_token), { accessToken: tokens.access_token, jkt });
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.json.valid, true);
    assert.equal(good.json.jkt, jkt);

    const thief = proofKey();
    const stolen = oidcDpop(thief.proof('GET', API, tokens.access_token), { accessToken: tokens.access_token, jkt });
    assert.equal(stolen.status, 1);
    assert.equal(stolen.json.error.code, 'dpop_jkt_mismatch');

    const elsewhere = oidcDpop(key.proof('GET', 'https://api.example/v1/other', tokens.access_token), { accessToken: tokens.access_token, jkt });
    assert.equal(elsewhere.status, 1);
    assert.equal(elsewhere.json.error.code, 'dpop_htu_mismatch');
  });
});
