// A minimal browser for the interop scripts: a cookie jar, no automatic redirects, and the
// login and consent forms of Tessera driven over HTTP as a person would submit them.
import assert from 'node:assert/strict';

export class Browser {
  constructor(issuer) {
    this.issuer = issuer;
    this.jar = new Map();
  }

  async visit(url, form) {
    const res = await fetch(new URL(url, this.issuer), {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form) : undefined,
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const [name, value] = pair.split('=');
      if (/Max-Age=0/i.test(line)) this.jar.delete(name); else this.jar.set(name, value);
    }
    return res;
  }

  // Follows an authorization URL through login and, if asked, consent; returns the callback URL.
  async signIn(authorizationUrl, username, password) {
    const field = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
    let res = await this.visit(authorizationUrl);
    assert.equal(res.status, 303);
    let location = res.headers.get('location');
    assert.match(location, /^\/login\?request=/);
    let html = await (await this.visit(location)).text();
    res = await this.visit('/login', {
      request: field(html, 'request'), csrf_token: field(html, 'csrf_token'), username, password,
    });
    assert.equal(res.status, 303);
    location = res.headers.get('location');
    if (location.startsWith('/consent')) {
      html = await (await this.visit(location)).text();
      res = await this.visit('/consent', { request: field(html, 'request'), csrf_token: field(html, 'csrf_token'), decision: 'allow' });
      assert.equal(res.status, 303);
      location = res.headers.get('location');
    }
    return new URL(location);
  }
}
