// A real OpenID Connect provider (panva's oidc-provider) for the portal's SSO tests and `make run SSO=1`.
// Not for production: it signs anyone in with devInteractions (any password) as an account of ACCOUNTS_FILE.
//
// Environment:
//   OIDC_PORT        port on 127.0.0.1 (the issuer is http://127.0.0.1:<port>)
//   OIDC_CLIENTS     JSON list of clients (client_id, client_secret, redirect_uris, post_logout_redirect_uris)
//   ACCOUNTS_FILE    JSON {"<account id>": {"email", "name", "groups": [..], "disabled": bool}}, read at every
//                    look-up so that a test can change a person's groups or disable them while the provider runs
//   JWKS_FILE        optional JSON {"keys": [private JWK]}: the signing keys (a test signs tokens with them too)
import fs from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 9400);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const accountsFile = process.env.ACCOUNTS_FILE;
const jwks = process.env.JWKS_FILE ? JSON.parse(fs.readFileSync(process.env.JWKS_FILE, 'utf8')) : undefined;

function readAccounts() {
  return JSON.parse(fs.readFileSync(accountsFile, 'utf8'));
}

function isActive(id) {
  const person = readAccounts()[id];
  return Boolean(person && !person.disabled);
}

async function findAccount(ctx, id) {
  const person = readAccounts()[id] || {};
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: person.email,
        email_verified: person.email_verified ?? true,
        name: person.name,
        preferred_username: id,
        groups: person.groups || [],
      };
    },
  };
}

const provider = new Provider(issuer, {
  clients,
  ...(jwks ? { jwks } : {}),
  findAccount,
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // The requested scopes' claims in the ID token too, as Entra ID and Keycloak put groups there.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // The portal is a first-party client: no consent screen.
  async loadExistingGrant(ctx) {
    // A person disabled or removed here since they signed in: the portal is told access_denied.
    if (!isActive(ctx.oidc.session.accountId)) {
      throw new errors.AccessDenied('The account is disabled or does not exist.');
    }
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['sub', 'email', 'email_verified', 'name', 'preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
});
// The warning about devInteractions is expected here.
provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.on('end_session.error', (ctx, error) => console.error('end_session.error', error.error_description, error.error_detail));

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
