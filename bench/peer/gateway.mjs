// The peer of `tessera gateway` in bench/gateway: a Node reverse proxy that verifies each
// request's JWT access token with npm `jose` (issuer, audience, at+jwt, the issuer's JWKS held in
// memory) and forwards it to the upstream over keep-alive connections.
import http from 'node:http';
import { createLocalJWKSet, jwtVerify } from 'jose';

const { PORT, ISSUER, AUDIENCE, UPSTREAM } = process.env;
const jwks = createLocalJWKSet(await (await fetch(`${ISSUER}/jwks.json`)).json());
const upstream = new URL(UPSTREAM);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

http.createServer(async (req, res) => {
  const match = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
  try {
    if (!match) throw new Error('no token');
    await jwtVerify(match[1], jwks, { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt' });
  } catch {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
    res.end('{"error":"invalid_token"}');
    return;
  }
  const outbound = http.request({
    host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers, agent,
  }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  outbound.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(outbound);
}).listen(Number(PORT), '127.0.0.1');
