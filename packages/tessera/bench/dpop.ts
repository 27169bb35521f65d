/**
 * DPoP benchmark (issue 16), in Node (WebCrypto's ES256, the key in fake-indexeddb):
 *
 * 1. What a proof costs per request: `dpop.proof(method, url, token)` (header, claims, `ath`
 *    cached per token, one ECDSA P-256 signature), one at a time and 50 at a time, beside the bare
 *    `crypto.subtle.sign` it is built on.
 * 2. The DPoP storm: N concurrent requests per transport with an access token the server has
 *    already expired, against the loopback server that verifies every proof with jose
 *    (test/servers/dpop-server.ts): refreshes, failed and hung requests, 401s served, and the same
 *    with a server nonce the page does not have yet (each request is asked once for it).
 *
 *   npm run bench -w tessera      (or: npx tsx bench/dpop.ts in packages/tessera)
 *   BENCH_DPOP_N=100 …            to shorten
 *
 * Bounded: fixed counts; a request is counted as hung after 120 s. Each storm has a server of its
 * own (a straggler of one storm never lands in the next one's counts), and the engine a 60 s
 * refresh timeout: on a busy 2-core machine a refresh is slow, not failed.
 */
import { IDBFactory } from 'fake-indexeddb'
import { loadavg } from 'node:os'
import { createAuth } from '../src/index.js'
import { httpAuthority } from '../src/authorities/http.js'
import { createDpop } from '../src/proof/dpop.js'
import { startDpopServer } from '../test/servers/dpop-server.js'
import { TRANSPORTS, senders, type TransportName } from '../test/transport-kit.js'

const N = Number(process.env.BENCH_DPOP_N ?? 1_000)
const PROOFS = 2_000
const HANG_MS = 120_000

async function signingCost() {
  const dpop = createDpop({ indexedDB: new IDBFactory() })
  const { privateKey } = await dpop.keyPair()
  const url = 'https://api.example.test/items/42?page=1'
  const token = 'a'.repeat(800)
  const data = new TextEncoder().encode('x'.repeat(300))
  const perProof = async (make: () => Promise<unknown>, inFlight: number) => {
    for (let i = 0; i < 200; i++) await make() // warm-up
    const start = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < PROOFS) {
          next++
          await make()
        }
      }),
    )
    return ((performance.now() - start) * 1000) / PROOFS
  }
  const sign = () => crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, data)
  const proof = () => dpop.proof('GET', url, token)
  console.log(`## What a DPoP proof costs (Node ${process.version}, WebCrypto ES256, ${PROOFS} proofs per cell, median of 3 interleaved rounds)\n`)
  console.log('| what | one at a time (µs/proof) | 50 in flight (µs/proof) |\n|---|---:|---:|')
  const rows = [
    ['crypto.subtle.sign (ECDSA P-256, SHA-256) alone', sign],
    ['dpop.proof(method, url, token): header, claims, ath, signature', proof],
  ] as const
  const cells: number[][][] = rows.map(() => [[], []])
  for (let r = 0; r < 3; r++)
    for (const [i, [, make]] of rows.entries()) {
      cells[i]![0]!.push(await perProof(make, 1))
      cells[i]![1]!.push(await perProof(make, 50))
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!
  rows.forEach(([name], i) => console.log(`| ${name} | ${median(cells[i]![0]!).toFixed(0)} | ${median(cells[i]![1]!).toFixed(0)} |`))
}

interface Outcome {
  refresh: number
  failed: number
  /** Why requests failed: a status or an error code, with counts. */
  why: Record<string, number>
  hung: number
  unauthorized: number
  challenges: number
  keys: number
  ms: number
}

async function storm(name: TransportName, nonce: boolean): Promise<Outcome> {
  const server = await startDpopServer({ refreshLatencyMs: 20 })
  const dpop = createDpop({ indexedDB: new IDBFactory() })
  const authority = httpAuthority({ baseUrl: `${server.url}/auth`, dpop })
  const auth = createAuth({ authority, proof: dpop, allowedOrigins: [server.url], channel: null, lock: null, retry: { timeout: 60_000 } })
  await auth.ready()
  await auth.login({ email: 'storm@example.test', password: 'pw' })
  const send = senders(auth)[name]
  await send(`${server.url}/api/echo`, { warm: true }) // connections open
  server.expireAll()
  if (nonce) {
    server.demand.resource = true
    server.rotateNonce()
  }
  server.reset()
  const why: Record<string, number> = {}
  const failed = (reason: string) => void (why[reason] = (why[reason] ?? 0) + 1)
  let hung = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: N }, (_, i) => {
      let timer: NodeJS.Timeout | undefined
      const hang = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG_MS)))
      const sent = send(`${server.url}/api/echo`, { i }).then(
        (a) => (a.status === 200 ? 'ok' : failed(`HTTP ${a.status}`)),
        (e: { code?: string; name?: string }) => failed(e?.code ?? e?.name ?? 'error'),
      )
      return Promise.race([sent, hang]).then((r) => {
        clearTimeout(timer)
        if (r === 'hung') hung++
      })
    }),
  )
  const ms = performance.now() - start
  auth.dispose()
  const { stats } = server
  const outcome = {
    refresh: stats.refresh.calls,
    failed: Object.values(why).reduce((a, b) => a + b, 0),
    why,
    hung,
    unauthorized: stats.api.unauthorized,
    challenges: stats.challenges.resource,
    keys: server.keys('/api/').length,
    ms,
  }
  await server.close()
  return outcome
}

async function main() {
  console.log(`Load average at start: ${loadavg().map((x) => x.toFixed(1)).join(', ')} (${N} requests per storm)\n`)
  await signingCost()
  console.log(`\n## DPoP storm: ${N} concurrent requests, the access token already expired on the server (refresh takes 20 ms; every proof verified with jose)\n`)
  console.log('| transport | server nonce | refresh calls | failed | hung | 401s served | nonce retries | keys seen | wall (ms) |')
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const nonce of [false, true])
    for (const name of TRANSPORTS) {
      const o = await storm(name, nonce)
      const why = o.failed ? ` (${Object.entries(o.why).map(([k, v]) => `${v} ${k}`).join(', ')})` : ''
      console.log(`| ${name} | ${nonce ? 'new, unknown to the page' : 'none'} | ${o.refresh} | ${o.failed}${why} | ${o.hung} | ${o.unauthorized} | ${o.challenges} | ${o.keys} | ${o.ms.toFixed(0)} |`)
    }
  console.log(`\nLoad average at the end: ${loadavg().map((x) => x.toFixed(1)).join(', ')}`)
}

await main()
process.exit(0)
