import { build, type Plugin } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'

/**
 * Size budgets, esbuild min + gzip -9, measured as an app bundles each entry: frameworks and
 * clients external, and for the adapters the core external too (it is their peer).
 *
 * The core's first target was 4 096 bytes; with the cross-tab protocol it is ~6.3 kB today (see
 * the issue notes), so the suite holds the line where it is and fails on any growth.
 */
const budgets = {
  core: 6_400,
  http: 2_500,
  adapter: 1_200,
  binding: 1_536,
}
const frameworks = ['axios', '@urql/core', 'wonka', 'alova', 'react', 'react/jsx-runtime', '@refinedev/core', '@tanstack/react-query', 'oauth4webapi']

// The adapters import the engine from the public entry: keep it out of their bundle.
const coreExternal: Plugin = {
  name: 'core-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: 'tessera', external: true }))
  },
}

async function measure(code: { entry: string } | { contents: string }, withCore = false) {
  const result = await build({
    ...('entry' in code
      ? { entryPoints: [fileURLToPath(new URL(`../src/${code.entry}`, import.meta.url))] }
      : { stdin: { contents: code.contents, resolveDir: fileURLToPath(new URL('..', import.meta.url)), loader: 'ts' as const } }),
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    write: false,
    external: frameworks,
    plugins: withCore ? [] : [coreExternal],
    logLevel: 'silent',
  })
  const out = result.outputFiles[0]!.contents
  return { min: out.length, gzip: gzipSync(out, { level: 9 }).length, text: new TextDecoder().decode(out) }
}

describe('size budgets (min+gzip)', () => {
  it(`the core (createAuth with auth.fetch and tabs, errors) stays within ${budgets.core} bytes`, async () => {
    const { min, gzip } = await measure({ contents: "export { createAuth, createAuthFetch, isTesseraError, TesseraError } from './src/index.ts'" }, true)
    console.log(`[size] core + fetch + tabs: ${min} B min, ${gzip} B min+gzip (budget ${budgets.core})`)
    expect(gzip).toBeLessThanOrEqual(budgets.core)
  })

  it(`tessera/http stays within ${budgets.http} bytes`, async () => {
    const { min, gzip } = await measure({ entry: 'authorities/http.ts' })
    console.log(`[size] http: ${min} B min, ${gzip} B min+gzip (budget ${budgets.http})`)
    expect(gzip).toBeLessThanOrEqual(budgets.http)
  })

  const entries: [string, keyof typeof budgets][] = [
    ['transports/axios.ts', 'adapter'],
    ['transports/urql.ts', 'adapter'],
    ['transports/alova.ts', 'adapter'],
    ['bindings/react.tsx', 'binding'],
    ['bindings/refine.ts', 'binding'],
    ['bindings/tanstack-query.ts', 'binding'],
  ]
  it.each(entries)('%s stays within its budget, with the engine not bundled in', async (entry, kind) => {
    const { min, gzip, text } = await measure({ entry })
    console.log(`[size] ${entry}: ${min} B min, ${gzip} B min+gzip (budget ${budgets[kind]})`)
    expect(text).not.toMatch(/createAuth|transition\(/)
    expect(text).not.toMatch(/interceptors\.request\.use=|function makeSubject/) // nor axios or wonka
    expect(gzip).toBeLessThanOrEqual(budgets[kind])
  })
})
