// openid-client registers itself at Tessera by RFC 7591 dynamic client registration (as an MCP
// client would: public, loopback redirect, PKCE), then completes the code flow and a refresh as
// that client. The login and consent forms are driven over plain HTTP. Inputs come from the
// environment; any failed check exits non-zero with a message.
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { Browser } from './pages.mjs';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const ISSUER = env('ISSUER');
const REDIRECT_URI = 'http://127.0.0.1:45999/callback';
let passed = 0;
const check = (what, fn) => { fn(); passed += 1; console.log(`ok - ${what}`); };

const config = await client.dynamicClientRegistration(
  new URL(ISSUER),
  {
    client_name: 'openid-client by DCR',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  client.None(),
  { execute: [client.allowInsecureRequests] },
);
const registered = config.clientMetadata();
check('dynamic client registration', () => {
  assert.ok(registered.client_id);
  assert.equal(registered.client_secret, undefined);
  assert.equal(registered.token_endpoint_auth_method, 'none');
  assert.ok(registered.registration_access_token.startsWith('trg_'));
  assert.equal(registered.registration_client_uri, `${ISSUER}/register/${registered.client_id}`);
});

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: REDIRECT_URI, scope: 'openid', state,
  code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
});
const callback = await new Browser(ISSUER).signIn(authorizationUrl, env('USERNAME'), env('PASSWORD'));
check('login and the unverified-app consent page', () => assert.equal(callback.origin + callback.pathname, REDIRECT_URI));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true,
});
check('code exchange as the registered public client', () => {
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token.startsWith('trt_'));
  assert.equal(tokens.claims().aud, registered.client_id);
});
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
check('refresh with rotation', () => assert.notEqual(refreshed.refresh_token, tokens.refresh_token));

console.log(`registration interop: ${passed} passed, 0 failed`);
