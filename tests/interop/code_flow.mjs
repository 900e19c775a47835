// openid-client (an independent OpenID Connect relying party) against Tessera: discovery,
// authorization code + PKCE through PAR (the login and consent forms are driven over plain
// HTTP), ID token validation, userinfo, refresh, revocation, introspection and RP-initiated
// logout. Inputs come from the environment; any failed check exits non-zero with a message.
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { Browser } from './pages.mjs';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const ISSUER = env('ISSUER');
const REDIRECT_URI = env('REDIRECT_URI');
const POST_LOGOUT = env('POST_LOGOUT_REDIRECT_URI');
let passed = 0;
const check = (what, fn) => { fn(); passed += 1; console.log(`ok - ${what}`); };

// Loopback http only, as Tessera allows for development issuers.
const config = await client.discovery(
  new URL(ISSUER), env('CLIENT_ID'), undefined, client.ClientSecretBasic(env('CLIENT_SECRET')),
  { execute: [client.allowInsecureRequests] },
);
const metadata = config.serverMetadata();
check('discovery', () => {
  assert.equal(metadata.issuer, ISSUER);
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
});

const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: REDIRECT_URI, scope: 'openid profile email offline_access', code_challenge: challenge,
  code_challenge_method: 'S256', state, nonce,
});
check('PAR', () => assert.ok(authorizationUrl.searchParams.get('request_uri').startsWith('urn:ietf:params:oauth:request_uri:')));

const browser = new Browser(ISSUER);
const visit = (url, form) => browser.visit(url, form);
const callback = await browser.signIn(authorizationUrl, env('USERNAME'), env('PASSWORD'));
check('login and consent forms', () => assert.equal(callback.origin + callback.pathname, REDIRECT_URI));

// openid-client checks state, iss (RFC 9207), PKCE, and the ID token (signature via JWKS,
// iss, aud, exp, iat, nonce, at_hash).
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
});
const claims = tokens.claims();
check('code exchange and ID token validation', () => {
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.refresh_token.startsWith('trt_'));
  assert.equal(claims.sub, env('USER_ID'));
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.sid && claims.auth_time);
});

const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
check('userinfo', () => {
  assert.equal(userinfo.preferred_username, env('USERNAME'));
  assert.equal(userinfo.email_verified, true);
});

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
check('refresh with rotation', () => {
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, claims.sub);
});

const active = await client.tokenIntrospection(config, refreshed.access_token);
check('introspection', () => assert.equal(active.active, true));
await client.tokenRevocation(config, refreshed.refresh_token);
const revoked = await client.tokenIntrospection(config, refreshed.access_token);
check('revocation of the refresh token revokes its access tokens', () => assert.equal(revoked.active, false));

const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: refreshed.id_token, post_logout_redirect_uri: POST_LOGOUT, state: 'bye',
});
let res = await visit(endSession);
check('RP-initiated logout', () => {
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), `${POST_LOGOUT}?state=bye`);
});
res = await visit('/account');
check('the browser is signed out', () => assert.equal(res.status, 303));

console.log(`code-flow interop: ${passed} passed, 0 failed`);
