// oauth4webapi against Tessera with sender-constrained tokens:
// 1. DPoP (RFC 9449) with server nonces: a client authenticating with private_key_jwt pushes its
//    request with a DPoP proof (PAR), signs in through the real forms, redeems the code, calls
//    /userinfo and refreshes, all with DPoP-bound tokens; oauth4webapi retries on use_dpop_nonce.
// 2. mTLS (RFC 8705): a tls_client_auth client gets a certificate-bound token over HTTPS through
//    the mtls_endpoint_aliases and introspects it.
// Inputs come from the environment; any failed check exits non-zero with a message.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { calculateJwkThumbprint } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { Browser } from './pages.mjs';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
let passed = 0;
const check = (what, fn) => { fn(); passed += 1; console.log(`ok - ${what}`); };

// Runs a request and its response processing, once more with the server's nonce if it asks.
async function withNonceRetry(send, process) {
  try {
    return await process(await send());
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return process(await send());
  }
}

// --- 1. DPoP with nonces, private_key_jwt, the code flow through PAR --------------------------
{
  const issuer = new URL(env('ISSUER'));
  const insecure = { [oauth.allowInsecureRequests]: true }; // loopback http only, as Tessera allows
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  check('discovery advertises DPoP', () => assert.ok(as.dpop_signing_alg_values_supported.includes('ES256')));

  // The client's own key for private_key_jwt, registered by the operator with its public half.
  const clientKeys = await oauth.generateKeyPair('ES256', { extractable: true });
  const publicJwk = { ...(await crypto.subtle.exportKey('jwk', clientKeys.publicKey)), kid: 'c1', use: 'sig' };
  const registered = await fetch(`${env('ADMIN_URL')}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env('ADMIN_TOKEN')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'oauth4webapi DPoP', grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [env('REDIRECT_URI')], scope: 'openid profile offline_access', first_party: true,
      token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] },
      dpop_bound_access_tokens: true, dpop_nonce_required: true,
    }),
  });
  assert.equal(registered.status, 201, await registered.clone().text());
  const client = { client_id: (await registered.json()).client_id };
  const clientAuth = oauth.PrivateKeyJwt({ key: clientKeys.privateKey, kid: 'c1' });
  const dpopKeys = await oauth.generateKeyPair('ES256', { extractable: true });
  const DPoP = oauth.DPoP(client, dpopKeys);
  const jkt = await calculateJwkThumbprint(await crypto.subtle.exportKey('jwk', dpopKeys.publicKey));

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const params = new URLSearchParams({
    redirect_uri: env('REDIRECT_URI'), scope: 'openid profile offline_access', response_type: 'code',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce,
  });
  const pushed = await withNonceRetry(
    () => oauth.pushedAuthorizationRequest(as, client, clientAuth, params, { DPoP, ...insecure }),
    (res) => oauth.processPushedAuthorizationResponse(as, client, res),
  );
  check('PAR with private_key_jwt and a DPoP proof (after use_dpop_nonce)', () => assert.ok(pushed.request_uri));

  const authorizationUrl = new URL(as.authorization_endpoint);
  authorizationUrl.searchParams.set('client_id', client.client_id);
  authorizationUrl.searchParams.set('request_uri', pushed.request_uri);
  const callback = await new Browser(issuer.href).signIn(authorizationUrl, env('USERNAME'), env('PASSWORD'));
  const callbackParams = oauth.validateAuthResponse(as, client, callback, state);

  const tokens = await withNonceRetry(
    () => oauth.authorizationCodeGrantRequest(as, client, clientAuth, callbackParams, env('REDIRECT_URI'), verifier, { DPoP, ...insecure }),
    (res) => oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: nonce, requireIdToken: true }),
  );
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  check('DPoP-bound tokens from the code (ID token validated by oauth4webapi)', () => {
    assert.equal(tokens.token_type, 'dpop');
    assert.equal(claims.sub, env('USER_ID'));
  });
  check('cnf.jkt is the thumbprint of oauth4webapi\'s DPoP key', () => {
    const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
    assert.equal(payload.cnf.jkt, jkt);
  });

  const userinfo = await withNonceRetry(
    () => oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...insecure }),
    (res) => oauth.processUserInfoResponse(as, client, claims.sub, res),
  );
  check('userinfo with a DPoP proof of the bound key', () => assert.equal(userinfo.sub, claims.sub));

  // The same token as a bearer token is refused.
  const bearer = await fetch(as.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  check('the DPoP-bound token is no bearer token', () => {
    assert.equal(bearer.status, 401);
    assert.match(bearer.headers.get('www-authenticate'), /^DPoP /);
  });

  const refreshed = await withNonceRetry(
    () => oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { DPoP, ...insecure }),
    (res) => oauth.processRefreshTokenResponse(as, client, res),
  );
  check('refresh with DPoP', () => {
    assert.equal(refreshed.token_type, 'dpop');
    assert.notEqual(refreshed.access_token, tokens.access_token);
  });

  const info = await oauth.processIntrospectionResponse(as, client,
    await oauth.introspectionRequest(as, client, clientAuth, refreshed.access_token, insecure));
  check('introspection reports the binding', () => {
    assert.equal(info.active, true);
    assert.equal(info.token_type, 'DPoP');
    assert.equal(info.cnf.jkt, jkt);
  });
}

// --- 2. mTLS: tls_client_auth and a certificate-bound token over HTTPS -----------------------
{
  const issuer = new URL(env('MTLS_ISSUER'));
  const agent = new Agent({
    connect: { ca: readFileSync(env('CA_FILE')), cert: readFileSync(env('CERT_FILE')), key: readFileSync(env('KEY_FILE')) },
  });
  const options = { [oauth.customFetch]: (url, init) => undiciFetch(url, { ...init, dispatcher: agent }), [oauth.useMtlsAlias]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
  check('discovery over HTTPS names mTLS aliases', () => {
    assert.equal(as.tls_client_certificate_bound_access_tokens, true);
    assert.ok(as.mtls_endpoint_aliases.token_endpoint.startsWith('https://'));
  });
  const client = { client_id: env('MTLS_CLIENT_ID'), use_mtls_endpoint_aliases: true };
  const clientAuth = oauth.TlsClientAuth();
  const result = await oauth.processClientCredentialsResponse(as, client,
    await oauth.clientCredentialsGrantRequest(as, client, clientAuth, new URLSearchParams({ scope: 'read' }), options));
  const payload = JSON.parse(Buffer.from(result.access_token.split('.')[1], 'base64url'));
  check('tls_client_auth and a certificate-bound token', () => {
    assert.equal(result.token_type, 'bearer');
    assert.equal(payload.cnf['x5t#S256'], env('CERT_THUMBPRINT'));
  });
  const info = await oauth.processIntrospectionResponse(as, client,
    await oauth.introspectionRequest(as, client, clientAuth, result.access_token, options));
  check('introspection over mTLS reports x5t#S256', () => assert.equal(info.cnf['x5t#S256'], env('CERT_THUMBPRINT')));
}

console.log(`sender-constrained interop: ${passed} passed, 0 failed`);
