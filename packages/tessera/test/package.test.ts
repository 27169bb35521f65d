import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

/** The published shape: every subpath built as ESM with its types, importable on a server. */
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  exports: Record<string, { types: string; import: string } | string>
  sideEffects: boolean
  dependencies?: Record<string, string>
  peerDependenciesMeta: Record<string, { optional: boolean }>
}
const entries = Object.entries(pkg.exports).filter(([, v]) => typeof v !== 'string') as [string, { types: string; import: string }][]

beforeAll(() => {
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' })
}, 120_000)

describe('the package', () => {
  it('is side-effect free, with no runtime dependencies and only optional peers', () => {
    expect(pkg.sideEffects).toBe(false)
    expect(pkg.dependencies ?? {}).toEqual({})
    expect(Object.values(pkg.peerDependenciesMeta).every((m) => m.optional)).toBe(true)
  })

  it.each(entries)('%s: types first, ESM built, importable under Node', async (name, target) => {
    expect(Object.keys(target)[0]).toBe('types')
    expect(existsSync(`${root}${target.types}`)).toBe(true)
    expect(existsSync(`${root}${target.import}`)).toBe(true)
    const mod = await import(`${root}${target.import}`)
    expect(Object.keys(mod).length).toBeGreaterThan(0)
    if (name === './react') expect(readFileSync(`${root}${target.import}`, 'utf8').startsWith('"use client"')).toBe(true)
  })

  it('no public type is `any`', () => {
    const files = readdirSync(`${root}dist`).filter((f) => f.endsWith('.d.ts'))
    expect(files.length).toBeGreaterThanOrEqual(entries.length)
    for (const f of files) expect(readFileSync(`${root}dist/${f}`, 'utf8'), f).not.toMatch(/:\s*any\b|<any>|any\[\]/)
  })

  it('every declaration a user can import carries TSDoc', () => {
    const undocumented: string[] = []
    for (const f of readdirSync(`${root}dist`).filter((f) => f.endsWith('.d.ts'))) {
      const lines = readFileSync(`${root}dist/${f}`, 'utf8').split('\n')
      lines.forEach((line, i) => {
        // Top-level declarations only; `declare module` augmentations document their members.
        if (!/^(export )?(declare )?(function|const|class|interface|type) /.test(line)) return
        let j = i - 1
        while (j >= 0 && lines[j]!.trim() === '') j--
        if (!lines[j]?.trim().endsWith('*/')) undocumented.push(`${f}:${i + 1} ${line.slice(0, 80)}`)
      })
    }
    expect(undocumented).toEqual([])
  })
})
