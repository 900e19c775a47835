// oauth4webapi against Tessera: discovery, client_credentials for a JWT and an opaque client,
// introspection, revocation, and its own RFC 9068 validation of our JWT.
// Inputs come from the environment; any failed check exits non-zero with a message.
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const issuer = new URL(env('ISSUER'));
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http only, as Tessera allows

const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
const as = await oauth.processDiscoveryResponse(issuer, response);
assert.equal(as.issuer, issuer.href.replace(/\/$/, ''));
assert.ok(as.introspection_endpoint && as.revocation_endpoint && as.jwks_uri);

async function grant(id, secret, parameters = {}) {
  const client = { client_id: id };
  const auth = oauth.ClientSecretBasic(secret);
  const res = await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams(parameters), insecure);
  const result = await oauth.processClientCredentialsResponse(as, client, res);
  assert.equal(result.token_type, 'bearer');
  assert.ok(result.expires_in > 0);
  return { client, auth, result };
}

async function introspect(client, auth, token) {
  const res = await oauth.introspectionRequest(as, client, auth, token, insecure);
  return oauth.processIntrospectionResponse(as, client, res);
}

// JWT client: the token validates with oauth4webapi's own RFC 9068 checks.
const jwt = await grant(env('JWT_CLIENT_ID'), env('JWT_CLIENT_SECRET'), { scope: 'read' });
assert.equal(jwt.result.scope, 'read');
const request = new Request('https://api.example.test/resource', {
  headers: { authorization: `Bearer ${jwt.result.access_token}` },
});
const claims = await oauth.validateJwtAccessToken(as, request, env('AUDIENCE'), insecure);
assert.equal(claims.client_id, env('JWT_CLIENT_ID'));
assert.equal(claims.iss, as.issuer);
let info = await introspect(jwt.client, jwt.auth, jwt.result.access_token);
assert.equal(info.active, true);
assert.equal(info.client_id, env('JWT_CLIENT_ID'));

// Opaque client.
const opaque = await grant(env('OPAQUE_CLIENT_ID'), env('OPAQUE_CLIENT_SECRET'));
assert.ok(opaque.result.access_token.startsWith('tat_'));
info = await introspect(opaque.client, opaque.auth, opaque.result.access_token);
assert.equal(info.active, true);
assert.equal(info.scope, 'read write');

// Revocation of both, then introspection says inactive.
for (const { client, auth, result } of [jwt, opaque]) {
  const res = await oauth.revocationRequest(as, client, auth, result.access_token, insecure);
  await oauth.processRevocationResponse(res);
  const after = await introspect(client, auth, result.access_token);
  assert.equal(after.active, false);
}

// A wrong secret: 401 with a Basic challenge (RFC 6749 §5.2), which oauth4webapi surfaces as such.
await assert.rejects(
  () => grant(env('JWT_CLIENT_ID'), 'tcs_wrong'),
  (err) => err instanceof oauth.WWWAuthenticateChallengeError && err.status === 401 && err.cause[0].scheme === 'basic',
);

console.log('interop: 1 passed, 0 failed');
