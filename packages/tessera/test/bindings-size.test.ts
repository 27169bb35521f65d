import { build, type Plugin } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'

const BUDGET = 1536
const external = ['react', 'react/jsx-runtime', '@refinedev/core', '@tanstack/react-query']

// The core is a peer of every binding: its public entry stays out of their budget.
const coreExternal: Plugin = {
  name: 'core-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: 'tessera', external: true }))
  },
}

async function measure(entry: string) {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`../src/bindings/${entry}`, import.meta.url))],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    write: false,
    external,
    plugins: [coreExternal],
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]!.contents
  return { min: code.length, gzip: gzipSync(code, { level: 9 }).length, text: new TextDecoder().decode(code) }
}

describe('binding size budgets (min+gzip, React, refine, TanStack and the core external)', () => {
  for (const entry of ['react.tsx', 'refine.ts', 'tanstack-query.ts'])
    it(`${entry} stays within ${BUDGET} bytes`, async () => {
      const { min, gzip, text } = await measure(entry)
      console.log(`[size] ${entry}: ${min} B min, ${gzip} B min+gzip (budget ${BUDGET})`)
      expect(text).toMatch(/from"tessera"|from"react"|from"@refinedev\/core"|from"@tanstack\/react-query"/)
      expect(text).not.toMatch(/createAuth|transition\(/) // the engine itself is not bundled in
      expect(gzip).toBeLessThanOrEqual(BUDGET)
    })
})
