import { defineConfig, type Options } from 'tsup'

// One entry per subpath export; each adapter imports the core from the public entry.
const shared: Options = {
  format: ['esm'],
  dts: true,
  target: 'es2022',
  treeshake: true,
  external: ['axios', '@urql/core', 'wonka', 'alova', 'react', '@refinedev/core', '@tanstack/react-query', 'oauth4webapi', 'vue', 'svelte'],
}

export default defineConfig([
  {
    ...shared,
    entry: {
      index: 'src/index.ts',
      http: 'src/authorities/http.ts',
      oidc: 'src/authorities/oidc.ts',
      dpop: 'src/proof/dpop.ts',
      axios: 'src/transports/axios.ts',
      urql: 'src/transports/urql.ts',
      alova: 'src/transports/alova.ts',
      refine: 'src/bindings/refine.ts',
      'tanstack-query': 'src/bindings/tanstack-query.ts',
      vue: 'src/bindings/vue.ts',
      svelte: 'src/bindings/svelte.ts',
    },
  },
  // React Server Components need 'use client' on the built file; rollup's tree-shaking drops
  // module-level directives, so this entry is built without it.
  { ...shared, entry: { react: 'src/bindings/react.tsx' }, treeshake: false },
])
