// An Express API guarded by Auth0's express-oauth2-jwt-bearer, configured as its docs say.
// usage: node resource-server.mjs '<auth() options as JSON>'
// Prints {"port": N} once it listens on 127.0.0.1; GET /api answers the token's claims.
import express from 'express';
import { auth } from 'express-oauth2-jwt-bearer';

const app = express();
app.use(auth(JSON.parse(process.argv[2])));
app.get('/api', (req, res) => res.json(req.auth.payload));
app.use((err, req, res, next) => {
  res.status(err.status || 500).json({ error: err.code || 'error', description: err.message });
});
const server = app.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
