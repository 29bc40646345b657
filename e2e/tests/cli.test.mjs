// The `oidc` CLI against the certified provider: discovery, and token verification of JWT
// access tokens the provider issued (accepted), and of altered or misdirected ones (rejected,
// exit 1).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { assertOidcSubcommand, clientCredentialsToken, decodeJwt, oidcBinary, oidcSkipReason, startProvider, stopAll } from '../lib/harness.mjs';
import { API_RESOURCES, clientSecret } from '../provider/fixtures.mjs';

function oidc(...args) {
  const result = spawnSync(oidcBinary(), args, { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('oidc discover against oidc-provider', { skip: oidcSkipReason('discover') }, () => {
  let op;
  before(async () => { assertOidcSubcommand('discover'); op = await startProvider(); });
  after(async () => { await stopAll(op); });

  test('the discovery document is fetched and its issuer matches', () => {
    const { code, stdout, stderr } = oidc('discover', op.issuer, '--json');
    assert.equal(code, 0, stderr);
    assert.ok(stdout.includes(`"${op.issuer}"`), stdout);
    assert.ok(stdout.includes(`${op.issuer}/jwks`), stdout);
  });

  test('a different issuer URL is not accepted for this document', () => {
    const { code } = oidc('discover', `${op.issuer}/`, '--json');
    assert.notEqual(code, 0);
  });
});

describe('oidc verify against oidc-provider tokens', { skip: oidcSkipReason('verify') }, () => {
  let op;
  let token;
  before(async () => {
    assertOidcSubcommand('verify');
    op = await startProvider();
    token = (await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'))).access_token;
  });
  after(async () => { await stopAll(op); });

  test('a client-credentials access token with the right audience is valid', () => {
    const { code, stdout, stderr } = oidc('verify', '--issuer', op.issuer, '--audience', 'mlflow-proxy', '--json', token);
    assert.equal(code, 0, stderr);
    assert.ok(stdout.includes('mlflow-sdk'), stdout);
  });

  test('the wrong audience is rejected with exit 1', () => {
    const { code } = oidc('verify', '--issuer', op.issuer, '--audience', 'someone-else', token);
    assert.equal(code, 1);
  });

  test('a token meant for another resource is rejected with exit 1', async () => {
    const other = Object.keys(API_RESOURCES.servers).find((resource) => resource !== API_RESOURCES.default);
    const otherToken = (await clientCredentialsToken(op.issuer, 'mlflow-sdk', clientSecret('mlflow-sdk'), { resource: other })).access_token;
    const { code } = oidc('verify', '--issuer', op.issuer, '--audience', 'mlflow-proxy', otherToken);
    assert.equal(code, 1);
  });

  test('an altered payload is rejected with exit 1', () => {
    const [h, , s] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(token).payload, sub: 'mallory' })).toString('base64url');
    const { code } = oidc('verify', '--issuer', op.issuer, '--audience', 'mlflow-proxy', `${h}.${forged}.${s}`);
    assert.equal(code, 1);
  });

  test('an unsigned (alg none) token is rejected with exit 1', () => {
    const [, p] = token.split('.');
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    const { code } = oidc('verify', '--issuer', op.issuer, '--audience', 'mlflow-proxy', `${none}.${p}.`);
    assert.equal(code, 1);
  });

  test('an expired token is rejected with exit 1', () => {
    const { exp } = decodeJwt(token).payload;
    const { code } = oidc('verify', '--issuer', op.issuer, '--audience', 'mlflow-proxy', '--now', String(exp + 3600), token);
    assert.equal(code, 1);
  });
});
