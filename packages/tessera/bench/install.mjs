// Installs what only the benchmarks use (bench/package.json) into bench/node_modules, once per
// lockfile: the libraries Tessera is compared with. Their peers (axios, @urql/core) are not
// installed here, so the comparison shares the workspace's copies with Tessera's adapters.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const lock = `${dir}package-lock.json`
const marker = `${dir}node_modules/.installed-from`
const wanted = existsSync(lock) ? readFileSync(lock, 'utf8') : ''
if (!wanted || !existsSync(marker) || readFileSync(marker, 'utf8') !== wanted) {
  console.log('[bench] installing the libraries the benchmarks compare with (bench/package.json)…')
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const args = [wanted ? 'ci' : 'install', '--legacy-peer-deps', '--no-audit', '--no-fund', '--ignore-scripts']
  const { status } = spawnSync(npm, args, { cwd: dir, stdio: 'inherit', shell: process.platform === 'win32' })
  if (status !== 0) process.exit(status ?? 1)
  writeFileSync(marker, readFileSync(lock, 'utf8'))
}
