/**
 * How the size budgets and the size benchmark measure: esbuild bundle + minify (ES2022, ESM,
 * browser) and gzip -9, as an app bundles an entry. Frameworks and clients stay external, and for
 * adapters and bindings the core does too (it is their peer).
 */
import { build, type Plugin } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const root = fileURLToPath(new URL('..', import.meta.url))
const frameworks = ['axios', '@urql/core', 'wonka', 'alova', 'react', 'react/jsx-runtime', '@refinedev/core', '@tanstack/react-query', 'oauth4webapi', 'vue', 'svelte']

/** What a user of the core imports: the engine, its fetch transport, the error class and guard. */
export const CORE = "export { createAuth, createAuthFetch, isTesseraError, TesseraError } from './src/index.ts'"

/**
 * Parts of the core, each with a stand-in that keeps the bundle building but does nothing. The
 * size a part costs is the bundle with it minus the bundle with its stand-in (what it adds after
 * gzip has shared its words with the rest). The engine's own glue for a part stays counted in the
 * engine.
 */
export const parts: Record<string, { files: RegExp; stub: Record<string, string> }> = {
  'cross-tab protocol (tabs, BroadcastChannel, Web Locks)': {
    files: /(core\/tabs|ports\/channel|ports\/lock)\.ts$/,
    stub: {
      tabs: 'export const newer=(a,b)=>!b;export const PROTOCOL=2,MAX_COOLDOWN=6e5,STEP=1;export const isCount=()=>1;export const ordered=t=>t;export function createTabs(){return{post(){},withLock:t=>t(1),seen:()=>0,see(){},stop(){}}}',
      channel: 'export const broadcastChannel=()=>null',
      lock: 'export const webLocks=()=>null',
    },
  },
  'fetch transport': { files: /transports\/fetch\.ts$/, stub: { fetch: 'export const createAuthFetch=()=>()=>{};export const allowList=()=>()=>1' } },
  'retry, backoff, timeouts': {
    files: /core\/retry\.ts$/,
    stub: { retry: 'export const defaultRetry={};export const isRejection=()=>0;export const toTesseraError=e=>e;export const abortable=p=>p;export const sleep=()=>0;export const timed=f=>f();export const retry=f=>f();export const deferred=()=>{let d={ctrl:new AbortController};d.promise=new Promise((a,b)=>{d.resolve=a;d.reject=b});return d}' },
  },
  'token response + JWT parsing': {
    files: /core\/tokens\.ts$/,
    stub: { tokens: 'export const parseTokenResponse=b=>b;export const decodeJwt=()=>null;export const isTokenSet=()=>1' },
  },
  'storage (versioned, fallback to memory)': {
    files: /(core\/stored|ports\/storage)\.ts$/,
    stub: { stored: 'export const sessionStore=()=>({read:async()=>null,write(){}});export const encodeSession=()=>"";export const decodeSession=()=>null', storage: 'export const memoryStorage=()=>({});export const localStorageStore=memoryStorage,sessionStorageStore=memoryStorage' },
  },
  'state table + transition': {
    files: /core\/machine\.ts$/,
    stub: { machine: 'export const transition=(s,e)=>[{...s,...e},[]];export const transitions={};export const toMermaid=()=>""' },
  },
  'page lifecycle + clock ports': {
    files: /(ports\/environment|ports\/clock)\.ts$/,
    stub: { environment: 'export const browserEnvironment={subscribe:()=>()=>{}}', clock: 'export const systemClock={}' },
  },
}

function stubbing(names: string[]): Plugin {
  return {
    name: 'stub-parts',
    setup(b) {
      for (const name of names) {
        const part = parts[name]!
        b.onLoad({ filter: part.files }, (args) => {
          const file = args.path.match(/(\w+)\.ts$/)![1]!
          return { contents: part.stub[file]!, loader: 'js' }
        })
      }
    },
  }
}

// The adapters import the engine from the public entry: keep it out of their bundle.
const coreExternal: Plugin = {
  name: 'core-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: 'tessera', external: true }))
  },
}

/** Bundles `code` (an entry under `src/`, or module text) and returns its minified and gzipped sizes. */
export async function measure(code: { entry: string } | { contents: string }, opts: { withCore?: boolean; without?: string[] } = {}) {
  const result = await build({
    ...('entry' in code
      ? { entryPoints: [`${root}src/${code.entry}`] }
      : { stdin: { contents: code.contents, resolveDir: root, loader: 'ts' as const } }),
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    write: false,
    external: frameworks,
    nodePaths: [`${root}bench/node_modules`], // the libraries compared with (bench/install.mjs)
    plugins: [...(opts.withCore ? [] : [coreExternal]), stubbing(opts.without ?? [])],
    logLevel: 'silent',
  })
  const out = result.outputFiles[0]!.contents
  return { min: out.length, gzip: gzipSync(out, { level: 9 }).length, text: new TextDecoder().decode(out) }
}
