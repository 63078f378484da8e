// What a Node relying party using panva's openid-client does with Latchkey, checked independently with jose:
// discovery, an authorization URL with nonce and PKCE, the code grant (ID token, nonce), userinfo with the ID
// token's subject expected, a refresh, and jose.jwtVerify of both ID tokens against the published JWKS.
// Usage: node oidc.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI ALG
// Prints the authorization URL, reads the callback URL (one line on stdin: the caller drives the browser part),
// then prints one JSON line of what it verified; on any failure prints the error and exits 1.
import * as client from 'openid-client';
import * as jose from 'jose';
import { createInterface } from 'node:readline';

const [issuer, clientId, clientSecret, redirectUri, alg] = process.argv.slice(2);

// Plain http is allowed here only because the server is on 127.0.0.1.
const options = { execute: [client.allowInsecureRequests], timeout: 10 };

async function firstLine() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    return line;
  }
  throw new Error('no callback URL on stdin');
}

async function verified(config, idToken) {
  const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  return jose.jwtVerify(idToken, jwks, { issuer, audience: clientId, algorithms: [alg] });
}

async function main() {
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    { id_token_signed_response_alg: alg },
    client.ClientSecretBasic(clientSecret),
    options,
  );
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  console.log(url.href);

  const callback = new URL(await firstLine());
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const again = refreshed.claims();
  if (!again) throw new Error('the refresh returned no ID token');
  const first = await verified(config, tokens.id_token);
  const second = await verified(config, refreshed.id_token);
  if (first.payload.nonce !== nonce) throw new Error('jose: the nonce differs');
  console.log(
    JSON.stringify({
      sub: claims.sub,
      auth_time: claims.auth_time,
      userinfo_sub: info.sub,
      refreshed_sub: again.sub,
      refreshed_auth_time: again.auth_time,
      refreshed_nonce: again.nonce ?? null,
      jose_alg: first.protectedHeader.alg,
      jose_refreshed_sub: second.payload.sub,
    }),
  );
}

main().catch((err) => {
  console.error(`${err.name}: ${err.message} ${JSON.stringify(err.cause ?? null)}`);
  process.exit(1);
});
