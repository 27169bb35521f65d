/**
 * Refresh storm: N requests leave at once with an access token the server has already expired.
 * Every contestant meets the same small rotating-token server on 127.0.0.1 (single-use refresh
 * tokens; a reused one is rejected and counted), on two paths:
 * - expiry known: the client's clock says the token expired (refresh before sending);
 * - expiry unknown: the client thinks it valid, the server answers 401 (refresh, then replay).
 * Each Tessera transport is compared with a minimal correct single flight written for the same
 * client (`reference`, bench/contestants.ts), in the same run: the median over the runs of the
 * paired ratio (Tessera's storm / the reference's storm of that run), for wall time and for this
 * process's CPU time (the server runs in a child process, bench/storm-server.ts). The reference
 * also runs a second time as `control`: its ratio to itself is the noise floor of that run, and
 * the mean over a transport's cells of Tessera's ratio minus the control's is what chance alone
 * does not explain.
 * Then the per-request overhead of `auth.fetch` against the fetch it wraps on loopback.
 *
 *   npm run bench -w tessera            (or: npx tsx bench/refresh-storm.ts in packages/tessera)
 *   BENCH_SIZES=100 BENCH_RUNS=1 BENCH_OVERHEAD=2000 BENCH_CONTROL=0 …   to shorten
 *
 * Bounded: each request counts as hung after 10 s; every loop has a fixed count.
 */
import { globalAgent } from 'node:http'
import { loadavg } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createAuthFetch } from '../src/transports/fetch.js'
import { reference, tessera, tesseraSession } from './contestants.js'
import { REFRESH_LATENCY_MS, skewedClock, startStormServer, type Contestant, type StormServer } from './storm-kit.js'

const SIZES = (process.env.BENCH_SIZES ?? '100,1000').split(',').map(Number)
// The order within a client's group rotates from run to run, so each contestant takes each place
// about equally often over the runs.
const RUNS = Number(process.env.BENCH_RUNS ?? 8)
const CONTROL = process.env.BENCH_CONTROL !== '0'
const HANG_MS = 10_000
const OVERHEAD_REQUESTS = Number(process.env.BENCH_OVERHEAD ?? 20_000)
const OVERHEAD_CONCURRENCY = 50
const OVERHEAD_ROUNDS = 5
const OWN_REQUESTS = 200_000

// axios (through node:http's global agent) keeps 256 idle sockets by default: each axios storm of
// 1 000 would open 744 anew and close them after, in whichever storm runs next. Keep them all, as
// fetch's pool does.
globalAgent.maxFreeSockets = 2048

// Each storm starts on a collected heap: the garbage of the contestant before is not billed to the next.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

type Path = 'known' | 'unknown'
const PATHS: Record<Path, string> = { known: 'expiry known (refresh before sending)', unknown: 'expiry unknown (the 401 path)' }

interface Outcome {
  refresh: number
  reuse: number
  unauthorized: number
  failed: number
  hung: number
  ms: number
  /** CPU time of this (the client) process during the storm; the server runs in another. */
  cpuMs: number
}

async function storm(server: StormServer, make: Contestant, n: number, path: Path): Promise<Outcome> {
  const clock = skewedClock()
  const contender = await make(server.url, clock)
  await server.expireAll()
  if (path === 'known') clock.skip()
  await server.reset()
  gc()
  let failed = 0
  let hung = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      let timer: NodeJS.Timeout | undefined
      const hang = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG_MS)))
      const sent = contender.send(i).then(
        () => 'ok' as const,
        () => 'failed' as const,
      )
      return Promise.race([sent, hang]).then((r) => {
        clearTimeout(timer)
        if (r === 'failed') failed++
        if (r === 'hung') hung++
      })
    }),
  )
  const ms = performance.now() - start
  const { user, system } = process.cpuUsage(cpu)
  contender.dispose()
  const { refresh, reuse, unauthorized } = await server.counters()
  return { refresh, reuse, unauthorized, failed, hung, ms, cpuMs: (user + system) / 1000 }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`

async function overhead(server: StormServer) {
  const auth = await tesseraSession(server.url)
  const token = await auth.getAccessToken() // valid: no refresh during the measurement
  const url = `${server.url}/api/data`
  const bare = () => fetch(url, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer())
  const wrapped = () => auth.fetch(url).then((r) => r.arrayBuffer())
  // A fixed count, a fixed number in flight; the order alternates each round to share any drift.
  const measure = async (send: () => Promise<unknown>) => {
    gc()
    const cpu = process.cpuUsage()
    const start = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: OVERHEAD_CONCURRENCY }, async () => {
        while (next < OVERHEAD_REQUESTS) {
          next++
          await send()
        }
      }),
    )
    const rps = OVERHEAD_REQUESTS / ((performance.now() - start) / 1000)
    const { user, system } = process.cpuUsage(cpu)
    return { rps, cpuUs: (user + system) / OVERHEAD_REQUESTS }
  }
  await measure(bare)
  await measure(wrapped) // warm-up
  const rounds: { bare: Awaited<ReturnType<typeof measure>>; wrapped: Awaited<ReturnType<typeof measure>> }[] = []
  for (let r = 0; r < OVERHEAD_ROUNDS; r++) {
    if (r % 2) {
      const wrappedRps = await measure(wrapped)
      rounds.push({ wrapped: wrappedRps, bare: await measure(bare) })
    } else rounds.push({ bare: await measure(bare), wrapped: await measure(wrapped) })
  }
  // Tessera's own time per request, without the network: auth.fetch over a fetch that answers at once.
  const answer = new Response(null)
  const instant = (async () => answer) as typeof fetch
  const own = createAuthFetch(auth, instant)
  const perCall = async (send: () => Promise<unknown>) => {
    const start = performance.now()
    for (let i = 0; i < OWN_REQUESTS; i += OVERHEAD_CONCURRENCY) await Promise.all(Array.from({ length: OVERHEAD_CONCURRENCY }, send))
    return ((performance.now() - start) * 1000) / OWN_REQUESTS
  }
  const ownUs: number[] = []
  for (let r = 0; r < OVERHEAD_ROUNDS; r++) ownUs.push((await perCall(() => own(url))) - (await perCall(() => instant(url, { headers: { Authorization: `Bearer ${token}` } }))))
  auth.dispose()
  const b = median(rounds.map((x) => x.bare.rps))
  const w = median(rounds.map((x) => x.wrapped.rps))
  return {
    bare: b,
    wrapped: w,
    ratio: w / b,
    pairedRatio: median(rounds.map((x) => x.wrapped.rps / x.bare.rps)),
    bareCpuUs: median(rounds.map((x) => x.bare.cpuUs)),
    wrappedCpuUs: median(rounds.map((x) => x.wrapped.cpuUs)),
    ownUs: median(ownUs),
  }
}

/** The client a contestant drives: storms are grouped by it. */
const clientOf = (name: string) => (name.includes(' · ') ? name.split(' · ')[1]! : name.includes('urql') ? 'urql' : name.includes('axios') ? 'axios' : name)

async function main() {
  const server = await startStormServer()
  const contestants: Record<string, Contestant> = {}
  for (const name of Object.keys(tessera)) {
    contestants[`tessera · ${name}`] = tessera[name]!
    contestants[`reference · ${name}`] = reference[name]!
    // The same reference once more: its ratio to the reference is what chance alone makes of a pair.
    if (CONTROL) contestants[`control · ${name}`] = reference[name]!
  }
  try {
    // The libraries users leave: installed by bench/install.mjs (`npm run bench` runs it).
    const { others } = (await import(String(new URL('./others.ts', import.meta.url)))) as { others: Record<string, Contestant> }
    Object.assign(contestants, others)
  } catch (e) {
    console.log(`(the libraries compared with are not installed: run \`node bench/install.mjs\`; ${(e as Error).message})\n`)
  }
  const groups = new Map<string, string[]>()
  for (const name of Object.keys(contestants)) groups.set(clientOf(name), [...(groups.get(clientOf(name)) ?? []), name])
  console.log(`# Refresh storm — ${new Date().toISOString()}, Node ${process.version}, ${RUNS} run(s) per cell`)
  console.log(`Single-use refresh tokens (reuse rejected); refresh takes ${REFRESH_LATENCY_MS} ms; a request is hung after ${HANG_MS / 1000} s.`)
  console.log('Counts are medians over the runs; wall time is the median time until every request settled (or was declared hung).')
  console.log('Each run storms client by client: first an unmeasured storm of that client\'s reference (the cost of switching clients lands there), then')
  console.log('its contestants in an order that rotates from run to run; each storm on a collected heap; the server runs in a process of its own.')
  console.log('"× ref" is the median over the runs of (this storm / the reference single flight\'s storm on the same client in the same run): pairs cancel the')
  console.log('machine\'s slow and fast phases. Client CPU is this process\'s CPU time during the storm (the server\'s not included).')
  if (CONTROL) console.log('"control" is the reference once more: its ratio shows how far from 1.00 chance alone moves a ratio in this run.')
  console.log()
  // Warm-up (not reported), at the largest size: JIT, module caches, and as many open sockets as a
  // storm needs, so that no measured storm pays for opening them (the first did: twice the CPU).
  const warm = Math.max(...SIZES)
  for (const make of Object.values(contestants)) for (const path of ['known', 'unknown'] as const) await storm(server, make, warm, path)
  const ratios: string[] = []
  /** Per transport, each cell's median wall-time ratio: [Tessera, control], both over the reference. */
  const versus: Record<string, [number, number][]> = {}
  for (const n of SIZES)
    for (const path of ['known', 'unknown'] as const) {
      const runs: Record<string, Outcome[]> = {}
      for (let r = 0; r < RUNS; r++)
        for (const [client, names] of groups) {
          await storm(server, contestants[`reference · ${client}`]!, n, path) // the primer
          // Run r starts at the r-th contestant: over the runs each takes each place about as often.
          for (let i = 0; i < names.length; i++) {
            const name = names[(i + r) % names.length]!
            ;(runs[name] ??= []).push(await storm(server, contestants[name]!, n, path))
          }
        }
      const m = (name: string, k: keyof Outcome) => median(runs[name]!.map((x) => x[k]))
      const ref = (name: string) => `reference · ${clientOf(name)}`
      console.log(`## N = ${n}, ${PATHS[path]} — ${load()}\n`)
      console.log('| contestant | refresh calls | reuse rejected | 401s served | failed | hung | median wall (ms) | × ref | median client CPU (ms) | × ref |')
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
      const paired = (name: string, other: string, k: 'ms' | 'cpuMs') => runs[name]!.map((run, r) => run[k] / runs[other]![r]![k])
      const x = (name: string, other: string, k: 'ms' | 'cpuMs') => median(paired(name, other, k)).toFixed(2)
      // The spread of the runs' ratios: where the median could as well have fallen.
      const spread = (name: string, other: string, k: 'ms' | 'cpuMs') => {
        const all = paired(name, other, k)
        return `${Math.min(...all).toFixed(2)}–${Math.max(...all).toFixed(2)}`
      }
      for (const name of Object.keys(contestants))
        console.log(
          `| ${name} | ${m(name, 'refresh')} | ${m(name, 'reuse')} | ${m(name, 'unauthorized')} | ${m(name, 'failed')} | ${m(name, 'hung')} | ${m(name, 'ms').toFixed(0)} | ${x(name, ref(name), 'ms')} | ${m(name, 'cpuMs').toFixed(0)} | ${x(name, ref(name), 'cpuMs')} |`,
        )
      console.log()
      const row = (label: string, name: string, other: string) =>
        ratios.push(`| ${label} | ${n} | ${path} | ${x(name, other, 'ms')} | ${spread(name, other, 'ms')} | ${x(name, other, 'cpuMs')} | ${spread(name, other, 'cpuMs')} |`)
      for (const name of Object.keys(tessera)) {
        row(name, `tessera · ${name}`, `reference · ${name}`)
        if (!CONTROL) continue
        row(`${name}: control (reference / reference)`, `control · ${name}`, `reference · ${name}`)
        const cell = (who: string) => median(paired(`${who} · ${name}`, `reference · ${name}`, 'ms'))
        ;(versus[name] ??= []).push([cell('tessera'), cell('control')])
      }
      if (runs['@urql/exchange-auth 3']) row('urql vs @urql/exchange-auth', 'tessera · urql', '@urql/exchange-auth 3')
    }
  console.log(`## Tessera / reference single flight (medians of paired ratios; goal: wall time ≤ 1.00) — ${load()}\n`)
  console.log(`| transport | N | path | wall time | its ${RUNS} runs | client CPU | its ${RUNS} runs |\n|---|---:|---|---:|---|---:|---|`)
  for (const row of ratios.sort()) console.log(row)
  // One cell can land anywhere the control's can; a real difference shows in the mean over the cells.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  for (const [name, cells] of Object.entries(versus)) {
    const gap = mean(cells.map(([t]) => t)) - mean(cells.map(([, c]) => c))
    const over = cells.filter(([, c]) => c > 1).length
    console.log(`${name}: Tessera − control, mean over its ${cells.length} wall-time cells: ${gap >= 0 ? '+' : ''}${gap.toFixed(3)} (the control above 1.00 in ${over} of them)`)
  }
  const o = await overhead(server)
  console.log(`\n## Per-request overhead (loopback, keep-alive, ${OVERHEAD_REQUESTS} requests at concurrency ${OVERHEAD_CONCURRENCY}, median of ${OVERHEAD_ROUNDS}, valid token) — ${load()}\n`)
  console.log('| client | requests/s | client CPU per request (µs) |')
  console.log('|---|---:|---:|')
  console.log(`| bare fetch (header set by hand) | ${o.bare.toFixed(0)} | ${o.bareCpuUs.toFixed(1)} |`)
  console.log(`| auth.fetch | ${o.wrapped.toFixed(0)} | ${o.wrappedCpuUs.toFixed(1)} |`)
  console.log(`\nauth.fetch / bare fetch throughput ratio (goal ≥ 0.97): ${o.ratio.toFixed(3)} as the ratio of the medians, ${o.pairedRatio.toFixed(3)} as the median of the ${OVERHEAD_ROUNDS} paired rounds`)
  console.log(`Tessera's own time per auth.fetch (over a fetch that answers at once, ${OWN_REQUESTS} calls, median of ${OVERHEAD_ROUNDS}): ${o.ownUs.toFixed(2)} µs`)
  await server.close()
}

await main()
process.exit(0)
