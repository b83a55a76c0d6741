// Discover a jwtlite issuer as panva's oauth4webapi does, and print what it accepted.
// usage: node discovery.mjs <issuer> <oidc|oauth2>
import * as oauth from 'oauth4webapi';

const issuer = new URL(process.argv[2]);
const algorithm = process.argv[3];
const response = await oauth.discoveryRequest(issuer, {
  algorithm,
  [oauth.allowInsecureRequests]: true, // loopback http in the tests
});
const metadata = await oauth.processDiscoveryResponse(issuer, response);
console.log(JSON.stringify({ requested: response.url, metadata }));
