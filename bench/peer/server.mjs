// node-oidc-provider set up like Tessera in bench/run: client_credentials with
// client_secret_basic, ES256 JWT or opaque access tokens (by resource indicator), introspection
// and revocation, the default in-memory adapter. PORT and SECRET come from the environment.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const secret = process.env.SECRET;
const issuer = `http://127.0.0.1:${port}`;
const JWT_RESOURCE = 'https://api.bench.test/jwt';
const OPAQUE_RESOURCE = 'https://api.bench.test/opaque';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' };
const client = (client_id) => ({
  client_id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
});

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [client('bench-jwt'), client('bench-opaque')],
  scopes: ['read', 'write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, c) => (c.clientId === 'bench-jwt' ? JWT_RESOURCE : OPAQUE_RESOURCE),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'read write',
        audience: resource,
        accessTokenTTL: 600,
        accessTokenFormat: resource === JWT_RESOURCE ? 'jwt' : 'opaque',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`peer listening on ${issuer}`));
