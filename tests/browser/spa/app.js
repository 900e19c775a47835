// The SPA's side of the token-handler protocol (see docs/gateway.md, "bff mode").
const $ = (id) => document.getElementById(id);
let csrf = null; // kept in memory only

async function call(method, path, body) {
  const headers = { 'content-type': 'application/json' };
  if (csrf && method !== 'GET') headers['x-tessera-csrf'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'include', body: body && JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function show(signedIn) {
  $('status').textContent = signedIn ? 'signed in' : 'signed out';
  $('sign-in').hidden = signedIn;
  $('call-api').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
}

$('sign-in').addEventListener('click', async () => {
  const { body } = await call('POST', '/bff/login/start');
  location.assign(body.authorization_url);
});

$('call-api').addEventListener('click', async () => {
  const res = await call('GET', '/api/invoices');
  $('output').textContent = JSON.stringify(res);
  if (res.status === 401) show(false);
});

$('sign-out').addEventListener('click', async () => {
  const res = await call('POST', '/bff/logout');
  csrf = null;
  $('output').textContent = JSON.stringify(res);
  show(false);
});

// Every page load ends a login in progress (code and state in the URL) or asks whether a
// session exists; then the code and state leave the address bar.
const { status, body } = await call('POST', '/bff/login/end', { page_url: location.href });
if (status === 200) {
  csrf = body.csrf;
  if (body.handled) history.replaceState(null, '', '/');
  show(body.is_logged_in);
} else {
  $('status').textContent = `login failed: ${body && body.error}`;
}
