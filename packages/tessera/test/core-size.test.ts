import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'

/**
 * The core with the fetch transport: what every app bundles (`createAuth` includes `auth.fetch`
 * and, by default, the cross-tab session). The first target was 4 096 bytes; the engine with the
 * cross-tab protocol is ~6.3 kB today (see the issue notes), so the suite holds the line where it
 * is and fails on any growth.
 */
const CORE_BUDGET = 6_400

async function gzipOf(contents: string) {
  const result = await build({
    stdin: { contents, resolveDir: new URL('..', import.meta.url).pathname, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]!.contents
  return { min: code.length, gzip: gzipSync(code, { level: 9 }).length }
}

describe('core size (esbuild min + gzip -9)', () => {
  it(`createAuth + fetch transport + tabs + errors stay within ${CORE_BUDGET} bytes`, async () => {
    const { min, gzip } = await gzipOf("export { createAuth, createAuthFetch, isTesseraError, TesseraError } from './src/index.ts'")
    console.log(`[size] core + fetch: ${min} B min, ${gzip} B min+gzip (budget ${CORE_BUDGET})`)
    expect(gzip).toBeLessThanOrEqual(CORE_BUDGET)
  })

  it('the http authority is measured too (its own entry, core external)', async () => {
    const { min, gzip } = await gzipOf("export { httpAuthority } from './src/authorities/http.ts'")
    console.log(`[size] tessera/http (with the error class): ${min} B min, ${gzip} B min+gzip`)
    expect(gzip).toBeLessThan(2_500)
  })
})
