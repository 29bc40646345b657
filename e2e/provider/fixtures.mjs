// Test clients, users and API resources of the end-to-end provider. The tests import the same
// values, so a secret or password is written down once.

/** Users who can sign in on the provider's login page (login with `sub` or `email`). */
export const USERS = [
  { sub: 'alice', email: 'alice@example.com', name: 'Alice Admin', password: 'alice-password', groups: ['mlflow-users', 'admins'] },
  { sub: 'bob', email: 'bob@example.com', name: 'Bob Builder', password: 'bob-password', groups: ['mlflow-users'] },
  { sub: 'carol', email: 'carol@other.example.org', name: 'Carol Outsider', password: 'carol-password', groups: [] },
];

/** The audience the proxy accepts in bearer tokens: its own client id, as oauth2-proxy expects. */
export const PROXY_CLIENT_ID = 'mlflow-proxy';

/** Resource servers (APIs) reachable with JWT access tokens, keyed by resource indicator. */
export const API_RESOURCES = {
  default: 'urn:oidc-e2e:mlflow',
  servers: {
    'urn:oidc-e2e:mlflow': { audience: PROXY_CLIENT_ID, scope: 'mlflow:read mlflow:write' },
    'urn:oidc-e2e:other': { audience: 'other-api', scope: 'other:read' },
  },
};

/** Extra claims put in client-credentials access tokens, keyed by client id. */
export const SERVICE_ACCOUNT_CLAIMS = {
  'mlflow-sdk': { email: 'mlflow-sdk@service.example.com', email_verified: true, groups: ['mlflow-users'] },
};

const browserClient = (clientId, secret, port) => ({
  client_id: clientId,
  client_secret: secret,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [`http://127.0.0.1:${port}/oauth2/callback`],
  post_logout_redirect_uris: [`http://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/oauth2/sign_out`],
  token_endpoint_auth_method: 'client_secret_basic',
  backchannel_logout_session_required: true,
});

/**
 * Built-in clients. Redirect URIs name default ports for manual runs; tests replace them with
 * the ports they picked through `OP_CLIENTS_JSON`.
 */
export const CLIENTS = [
  // The proxy (sidecar / forward-auth) in front of MLflow.
  browserClient(PROXY_CLIENT_ID, 'mlflow-proxy-secret', 4180),
  // A second service on the same provider, for single sign-on.
  browserClient('sso-app', 'sso-app-secret', 4181),
  // The tests' own tiny relying party, which proves provider + browser without the proxy.
  browserClient('e2e-rp', 'e2e-rp-secret', 4182),
  // `oidc token` on a person's machine: a public native client on a loopback redirect (any port,
  // RFC 8252); its access tokens are JWTs for the proxy's audience, like the SDK's.
  {
    client_id: 'mlflow-cli',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'none',
  },
  // Scripts and the MLflow SDK: client credentials, JWT access tokens for the proxy's audience.
  {
    client_id: 'mlflow-sdk',
    client_secret: 'mlflow-sdk-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// A notebook's command-line client the provider is not told about the API for: without a
// resource indicator its access tokens are opaque and name only the client.
CLIENTS.push({
  client_id: 'notebook-cli',
  application_type: 'native',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  token_endpoint_auth_method: 'none',
});

// CI jobs: client credentials with no person behind them (no email, no groups); the proxy lets
// in the one it lists by client id (`--allowed-client-id`) and no other.
for (const clientId of ['ci-pipeline', 'ci-other']) {
  CLIENTS.push({
    client_id: clientId,
    client_secret: `${clientId}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

/** Clients whose user access tokens are for the MLflow API without asking for a resource. */
export const API_CLIENTS = ['mlflow-cli'];

/** Looks up a built-in client's secret by id. */
export function clientSecret(clientId) {
  return CLIENTS.find((client) => client.client_id === clientId)?.client_secret;
}
