// What a Node app using simple-oauth2 does with Latchkey: get a client_credentials token, then revoke it.
// Usage: node revoke.js ISSUER CLIENT_ID CLIENT_SECRET header|body
// Prints the revoked access token; on any failure prints the error and exits 1.
'use strict';

const { ClientCredentials } = require('simple-oauth2');

async function main() {
  const [tokenHost, id, secret, authorizationMethod] = process.argv.slice(2);
  const client = new ClientCredentials({
    client: { id, secret },
    auth: { tokenHost, tokenPath: '/oauth/token', revokePath: '/oauth/revoke' },
    options: { authorizationMethod },
    http: { timeout: 10000 },
  });
  const token = await client.getToken({});
  await token.revoke('access_token');
  console.log(token.token.access_token);
}

main().catch((err) => {
  console.error(`${err.message} ${JSON.stringify(err.data?.payload?.toString() ?? null)}`);
  process.exit(1);
});
