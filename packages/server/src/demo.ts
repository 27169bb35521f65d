/**
 * The demo server `npm start` runs (from source, with tsx): the `tessera-server` command plus fault
 * injection (POST /__faults, GET /__stats), a seeded demo user, password-reset links printed to
 * stdout and 20-second access tokens unless --access-ttl says otherwise. Not part of the package.
 */
import { launch } from './launch.ts';
import { ensureUser } from './users.ts';

const DEMO_EMAIL = 'demo@tessera.dev';
const DEMO_PASSWORD = 'tessera-demo';

const argv = process.argv.slice(2);
const env = { TESSERA_ACCESS_TTL: '20', ...process.env };
await launch(argv, env, {
  command: 'tessera-demo',
  overrides: {
    faults: true,
    // The demo plays the mail service: it prints reset links (the only place a secret is printed).
    mailer: (message) => console.log(`[tessera] password reset for ${message.recipient}: ${String(message.payload.link)}`),
  },
  async started(server) {
    await ensureUser(server.store, { email: DEMO_EMAIL, password: DEMO_PASSWORD, name: 'Demo User', roles: ['user', 'demo'] }, server.options.scryptCost);
    console.log(`Demo account: ${DEMO_EMAIL} / ${DEMO_PASSWORD}; fault injection at POST ${server.url}/__faults`);
  },
});
