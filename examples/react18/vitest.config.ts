import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { defineConfig } from 'vitest/config'

// tessera/react's test file, with every import of React resolved to this folder's React 18.
// Testing Library is taken as ESM so that its own imports of react-dom go through the aliases too.
const here = createRequire(import.meta.url)
const dir = (name: string) => dirname(here.resolve(`${name}/package.json`))
const rtl = `${dir('@testing-library/react')}/dist/@testing-library/react.esm.js`

export default defineConfig({
  resolve: {
    alias: [
      { find: /^react$/, replacement: dir('react') },
      { find: /^react\/(.*)$/, replacement: `${dir('react')}/$1` },
      { find: /^react-dom$/, replacement: dir('react-dom') },
      { find: /^react-dom\/(.*)$/, replacement: `${dir('react-dom')}/$1` },
      { find: /^@testing-library\/react$/, replacement: rtl },
    ],
  },
  test: {
    root: '../../packages/tessera',
    include: ['test/react.test.tsx'],
    setupFiles: [new URL('./setup.ts', import.meta.url).pathname],
    server: { deps: { inline: [/@testing-library\/react/] } },
  },
})
