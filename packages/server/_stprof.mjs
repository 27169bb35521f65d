import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
const dir = process.argv[2], profDir = process.argv[3]
const port = 28000 + Math.floor(Math.random() * 1000)
const args = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []
const t0 = performance.now()
const child = spawn(process.execPath, [...args, '--import', 'tsx', 'src/demo.ts'], { env: { ...process.env, PORT: String(port), TESSERA_DATA_DIR: dir }, stdio: 'ignore' })
for (;;) { if (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`).then(r => r.ok, () => false)) break; await new Promise(r => setTimeout(r, 20)) }
console.log('first answer', (performance.now() - t0).toFixed(0), 'ms')
child.kill('SIGINT'); await new Promise(r => child.once('exit', r))
