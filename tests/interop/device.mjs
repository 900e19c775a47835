// openid-client (an independent client library) runs the device authorization grant (RFC 8628)
// against Tessera: discovery names the endpoint, the device asks for a code, a person (driven
// over HTTP) signs in at the verification URI and allows, and the library's own polling gets
// the tokens; then a refresh. Inputs come from the environment; any failed check exits non-zero.
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { Browser } from './pages.mjs';

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const ISSUER = env('ISSUER');
let passed = 0;
const check = (what, fn) => { fn(); passed += 1; console.log(`ok - ${what}`); };

const config = await client.discovery(new URL(ISSUER), env('CLIENT_ID'), undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
check('discovery names the device authorization endpoint', () => {
  assert.equal(config.serverMetadata().device_authorization_endpoint, `${ISSUER}/device_authorization`);
});

const started = await client.initiateDeviceAuthorization(config, { scope: 'openid offline_access' });
check('device authorization response', () => {
  assert.match(started.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(started.verification_uri, `${ISSUER}/device`);
  assert.equal(started.verification_uri_complete, `${ISSUER}/device?user_code=${started.user_code}`);
  assert.equal(started.interval, 5);
});

// The library waits one interval before its first poll; the person answers meanwhile.
const polling = client.pollDeviceAuthorizationGrant(config, started);

const browser = new Browser(ISSUER);
const field = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
let res = await browser.visit(started.verification_uri_complete);
assert.equal(res.status, 303);
const login = res.headers.get('location');
assert.match(login, /^\/login\?request=device:/);
let html = await (await browser.visit(login)).text();
res = await browser.visit('/login', {
  request: field(html, 'request'), csrf_token: field(html, 'csrf_token'),
  username: env('USERNAME'), password: env('PASSWORD'),
});
assert.equal(res.status, 303);
html = await (await browser.visit(res.headers.get('location'))).text();
assert.ok(html.includes('Allow this device?'), html);
res = await browser.visit('/device/decide', {
  csrf_token: field(html, 'csrf_token'), user_code: field(html, 'user_code'), decision: 'allow',
});
check('the person allows the device at /device', () => assert.equal(res.status, 200));

const tokens = await polling;
check('the library polls and gets the tokens', () => {
  assert.ok(tokens.access_token);
  assert.ok(tokens.refresh_token.startsWith('trt_'));
  assert.equal(tokens.claims().aud, env('CLIENT_ID'));
});
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
check('refresh with rotation', () => assert.notEqual(refreshed.refresh_token, tokens.refresh_token));

console.log(`device interop: ${passed} passed, 0 failed`);
