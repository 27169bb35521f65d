/**
 * Size benchmark: every entry min+gzip, and what each part of the core costs, measured by
 * bundling the core with that part replaced by a no-op stand-in (see `measure.ts`). The budgets
 * themselves are checked by `test/size.test.ts`. The libraries users come from are bundled the same
 * way beside ours.
 *
 *   npx tsx bench/size.ts      (in packages/tessera; also run by `npm run bench`)
 */
import { CORE, measure, parts } from './measure.js'

const entries = ['authorities/http.ts', 'authorities/oidc.ts', 'proof/dpop.ts', 'transports/axios.ts', 'transports/urql.ts', 'transports/alova.ts', 'bindings/react.tsx', 'bindings/refine.ts', 'bindings/tanstack-query.ts', 'bindings/vue.ts', 'bindings/svelte.ts']

const core = await measure({ contents: CORE }, { withCore: true })
console.log('## Sizes (esbuild minify, gzip -9)\n')
console.log('| entry | min | min+gzip |\n|---|---:|---:|')
console.log(`| tessera (createAuth + fetch + cross-tab) | ${core.min} | ${core.gzip} |`)
for (const entry of entries) {
  const { min, gzip } = await measure({ entry })
  console.log(`| ${entry} (core external) | ${min} | ${gzip} |`)
}
// Tokens per audience import the core's own pieces: what they add to it is the difference.
const audiences = await measure({ contents: CORE.replace(' }', ', createAudiences }') }, { withCore: true })
console.log(`| createAudiences (tokens per audience, added to the core) | +${audiences.min - core.min} | +${audiences.gzip - core.gzip} |`)

// What users leave behind, bundled the same way (their frameworks external, as ours are).
const others: [string, string][] = [
  ['@auth0/auth0-spa-js (Auth0Client)', "export { Auth0Client } from '@auth0/auth0-spa-js'"],
  ['oidc-client-ts (UserManager)', "export { UserManager } from 'oidc-client-ts'"],
  ['@supabase/auth-js (GoTrueClient)', "export { GoTrueClient } from '@supabase/auth-js'"],
  ['axios-auth-refresh (axios external)', "export { default } from 'axios-auth-refresh'"],
  ['@urql/exchange-auth (@urql/core, wonka external)', "export { authExchange } from '@urql/exchange-auth'"],
]
for (const [name, contents] of others) {
  const { min, gzip } = await measure({ contents }, { withCore: true })
  console.log(`| ${name} | ${min} | ${gzip} |`)
}

console.log('\n## What each part of the core costs (min+gzip bytes it adds to the bundle)\n')
console.log('| part | bytes | share |\n|---|---:|---:|')
let rest = core.gzip
for (const name of Object.keys(parts)) {
  const { gzip } = await measure({ contents: CORE }, { withCore: true, without: [name] })
  rest -= core.gzip - gzip
  console.log(`| ${name} | ${core.gzip - gzip} | ${(((core.gzip - gzip) / core.gzip) * 100).toFixed(0)} % |`)
}
console.log(`| engine (auth.ts: state, single flight, grants, verbs, restore, tab glue) and what parts share | ${rest} | ${((rest / core.gzip) * 100).toFixed(0)} % |`)
const all = await measure({ contents: CORE }, { withCore: true, without: Object.keys(parts) })
console.log(`\nWith every part above stubbed, the engine alone bundles to ${all.gzip} B min+gzip.`)
