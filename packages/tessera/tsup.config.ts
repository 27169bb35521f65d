import { defineConfig } from 'tsup'

// One entry per subpath export; each adapter imports the core from the public entry.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    http: 'src/authorities/http.ts',
    axios: 'src/transports/axios.ts',
    urql: 'src/transports/urql.ts',
    alova: 'src/transports/alova.ts',
    react: 'src/bindings/react.tsx',
    refine: 'src/bindings/refine.ts',
    'tanstack-query': 'src/bindings/tanstack-query.ts',
    oidc: 'src/authorities/oidc.ts',
  },
  format: ['esm'],
  dts: true,
  clean: true,
  target: 'es2022',
  treeshake: true,
  external: ['axios', '@urql/core', 'wonka', 'alova', 'react', '@refinedev/core', '@tanstack/react-query', 'oauth4webapi'],
})
