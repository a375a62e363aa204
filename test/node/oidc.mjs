// An OAuth 2.0 / OpenID Connect issuer for airlock's tests and demo, built on
// the certified npm `oidc-provider`. It issues Okta-shaped JWT access tokens
// through the client_credentials grant with RFC 8707 resource indicators:
//
//   header  { alg: RS256, kid }                       (typ at+jwt, RFC 9068)
//   claims  { ver: 1, jti, iss, aud: <resource>, sub: <client id>, iat, exp,
//             cid: <client id>, scp: [..], uid?: .., groups?: [..] }
//
// Configuration comes as JSON in AIRLOCK_OIDC_CONFIG:
//   { "issuer": "http://127.0.0.1:PORT/oauth2/default",
//     "accessTokenTTL": 3600,                 // seconds
//     "defaultAudience": "api://default",     // aud when no resource is asked for
//     "clients": [ { "client_id": "..", "client_secret": "..", "uid": "..",
//                    "groups": [".."], "scopes": [".."] } ] }
// A client's "scopes" limits what it may be granted (requested scopes outside
// it are left out of the token, as oidc-provider does); with none, any scope
// asked for is granted.
//
// Sign-in for people (authorization code + PKCE), for the inbox's tests:
//   "webClients": [ { "client_id": "..", "client_secret": "..",   // no secret: a public client
//                     "redirect_uris": [".."] } ],
//   "users": [ { "login": "00u-bob", "name": "..", "email": "..",
//                "preferred_username": "..", "groups": [".."] } ]
// oidc-provider's development login form asks for a login and a password;
// the login must be one of "users" (the password is not checked: this is a
// test issuer). Consent is skipped for web clients (first-party apps, as in
// Okta). ID tokens carry the users' claims (name, email,
// preferred_username, groups) for the scopes asked. The server listens on 127.0.0.1 at the issuer's port
// and serves the provider under the issuer's path: discovery at
// <issuer>/.well-known/openid-configuration (and oauth-authorization-server),
// keys at <issuer>/jwks, tokens at <issuer>/token.
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.AIRLOCK_OIDC_CONFIG ?? '{}');
if (!config.issuer) {
  console.error('oidc.mjs: AIRLOCK_OIDC_CONFIG must name an issuer');
  process.exit(2);
}
const issuer = new URL(config.issuer);
const mountPath = issuer.pathname.replace(/\/+$/, '');
const ttl = Number(config.accessTokenTTL) > 0 ? Number(config.accessTokenTTL) : 3600;
const defaultAudience = config.defaultAudience || 'api://default';
const clients = new Map((config.clients ?? []).map((c) => [c.client_id, c]));
const webClients = new Map((config.webClients ?? []).map((c) => [c.client_id, c]));
const users = new Map((config.users ?? []).map((u) => [u.login, u]));

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

// The scopes a client may be granted at a resource, as a space-separated string.
function grantableScopes(ctx, client) {
  const allowed = clients.get(client.clientId)?.scopes;
  if (Array.isArray(allowed) && allowed.length > 0) {
    return allowed.join(' ');
  }
  return ctx.oidc.params.scope ?? '';
}

const serviceClients = [...clients.values()].map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
}));
const signInClients = [...webClients.values()].map((c) => ({
  client_id: c.client_id,
  ...(c.client_secret ? { client_secret: c.client_secret } : {}),
  application_type: 'web',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: c.redirect_uris ?? [],
  token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
}));

// The people who can sign in; their claims go into ID tokens and userinfo.
// The account id, and the ID token's sub, is the login typed into the form
// (for Okta-like ids, make the login the user id: 00u…).
async function findAccount(_ctx, id) {
  const u = users.get(id);
  if (!u) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        name: u.name ?? u.login,
        preferred_username: u.preferred_username ?? u.login,
        email: u.email,
        email_verified: Boolean(u.email),
        groups: u.groups ?? [],
      };
    },
  };
}

const provider = new Provider(`${issuer.origin}${mountPath}`, {
  clients: [...serviceClients, ...signInClients],
  findAccount,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  // ID tokens carry the user's claims, as Okta's do with a groups claim.
  conformIdTokenClaims: false,
  // First-party sign-in: no consent screen for web clients.
  loadExistingGrant: async (ctx) => {
    const { client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (!webClients.has(client.clientId)) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ttl },
  features: {
    // The development login form: users log in by name (see "users").
    devInteractions: { enabled: users.size > 0 },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Sign-in clients get no resource by default: their access token is
      // for userinfo only, and the ID token is what they use.
      defaultResource: (_ctx, client, oneOf) => oneOf ?? (webClients.has(client.clientId) ? undefined : defaultAudience),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: grantableScopes(ctx, client),
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // Okta's claims: ver, cid (the client id), uid (the user), groups.
  extraTokenClaims: (_ctx, token) => {
    const c = clients.get(token.clientId) ?? {};
    const claims = { ver: 1, cid: token.clientId };
    if (c.uid) claims.uid = c.uid;
    if (Array.isArray(c.groups) && c.groups.length > 0) claims.groups = c.groups;
    return claims;
  },
  formats: {
    customizers: {
      // Okta carries scopes as the scp array, and no scope/client_id claims.
      jwt: (_ctx, _token, jwt) => {
        jwt.payload.scp = (jwt.payload.scope ?? '').split(' ').filter(Boolean);
        delete jwt.payload.scope;
        delete jwt.payload.client_id;
      },
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('oidc.mjs: server_error:', err));

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const path = req.url ?? '/';
  if (mountPath && !(path === mountPath || path.startsWith(`${mountPath}/`) || path.startsWith(`${mountPath}?`))) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not_found', error_description: `this issuer lives under ${mountPath}` }));
    return;
  }
  // oidc-provider works out its mount path from originalUrl vs url.
  req.originalUrl = path;
  req.url = path.slice(mountPath.length) || '/';
  callback(req, res);
});
server.listen(Number(issuer.port), '127.0.0.1', () => {
  console.log(`oidc.mjs: issuer ${provider.issuer} listening on 127.0.0.1:${issuer.port}`);
});
server.on('error', (err) => {
  console.error('oidc.mjs: listen failed:', err.message);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
