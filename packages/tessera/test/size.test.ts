import { build, type Plugin } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'

const BUDGET = 1200
const external = ['axios', '@urql/core', 'wonka', 'alova']

// The core is a peer of every adapter: its public entry stays out of their budget.
const coreExternal: Plugin = {
  name: 'core-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: 'tessera', external: true }))
  },
}

async function measure(entry: string) {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`../src/transports/${entry}`, import.meta.url))],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external,
    plugins: [coreExternal],
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]!.contents
  return { min: code.length, gzip: gzipSync(code, { level: 9 }).length, text: new TextDecoder().decode(code) }
}

describe('adapter size budgets (min+gzip, the HTTP client and the core external)', () => {
  for (const entry of ['axios.ts', 'urql.ts', 'alova.ts'])
    it(`${entry} stays within ${BUDGET} bytes`, async () => {
      const { min, gzip, text } = await measure(entry)
      console.log(`[size] ${entry}: ${min} B min, ${gzip} B min+gzip (budget ${BUDGET})`)
      expect(text).not.toMatch(/createAuth|transition\(/) // the engine itself is not bundled in
      expect(text).not.toMatch(/interceptors\.request\.use=|function makeSubject/) // nor axios or wonka
      expect(gzip).toBeLessThanOrEqual(BUDGET)
    })
})
