// @vitest-environment happy-dom
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compile } from 'svelte/compiler'
import { derived, get } from 'svelte/store'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { actionStore, sessionStore } from '../src/bindings/svelte.js'
import type { AuthSnapshot } from '../src/index.js'
import { countListeners, creds, flush, holdLogins, loggedIn, setup, slowStorage } from './fakes.js'

type User = { id: string; name: string }

// Real components, compiled here with the Svelte compiler and imported like any module: the
// component's `import … from 'tessera/svelte'` is pointed at this source tree.
const root = `${dirname(dirname(fileURLToPath(import.meta.url)))}/`
mkdirSync(`${root}.tmp`, { recursive: true })
const out = mkdtempSync(`${root}.tmp/svelte-`)
afterAll(() => rmSync(out, { recursive: true, force: true }))

/** Compiles (once per file) and imports a component; `file` names the output. */
async function load(file: string, compileIt: () => string) {
  if (!existsSync(`${out}/${file}`))
    writeFileSync(`${out}/${file}`, compileIt().replace(/(['"])tessera\/svelte\1/g, JSON.stringify(`${root}src/bindings/svelte.ts`)))
  return (await import(/* @vite-ignore */ `${out}/${file}`)).default
}
const source = (name: string) => readFileSync(`${root}test/svelte/${name}.svelte`, 'utf8')

type Props = Record<string, unknown>
interface Svelte {
  version: string
  /** The version of the compiler used, and the runtime module its output imports. */
  compiler(): Promise<string>
  runtime: string
  mount(name: string, props: Props): Promise<{ destroy(): void }>
  /** Lets the component apply what changed. */
  settle(): Promise<void>
}

// Svelte 5's `mount` lives in its browser entry, chosen by the `browser` export condition, which an
// app's bundler sets and Node does not: load that entry by its path.
const client = () => import(/* @vite-ignore */ `${dirname(createRequire(import.meta.url).resolve('svelte/package.json'))}/src/index-client.js`) as Promise<typeof import('svelte')>

const svelte5: Svelte = {
  version: '5',
  compiler: async () => (await import('svelte/compiler')).VERSION,
  runtime: 'svelte/internal/client',
  async mount(name, props) {
    const { mount, unmount } = await client()
    const Component = await load(`${name}.5.js`, () => compile(source(name), { filename: `${name}.svelte`, generate: 'client' }).js.code)
    const app = mount(Component, { target: document.body, props })
    return { destroy: () => void unmount(app) }
  },
  async settle() {
    const { flushSync } = await client()
    await flush()
    flushSync()
  },
}

// Svelte 4 from the `svelte4` alias; its compiler is told to import its own runtime. Imported by a
// computed name: its type declarations claim the module names 'svelte/…', which Svelte 5's own.
const v4 = <T>(path: 'compiler' | 'internal') => import(/* @vite-ignore */ `svelte4/${path}`) as Promise<T>
type Compiler4 = { VERSION: string; compile(source: string, options: object): { js: { code: string } } }

const svelte4: Svelte = {
  version: '4',
  compiler: async () => (await v4<Compiler4>('compiler')).VERSION,
  runtime: 'svelte4/internal',
  async mount(name, props) {
    const { compile: compile4 } = await v4<Compiler4>('compiler')
    const Component = await load(`${name}.4.js`, () => compile4(source(name), { filename: `${name}.svelte`, sveltePath: 'svelte4' }).js.code)
    const app = new Component({ target: document.body, props })
    return { destroy: () => app.$destroy() }
  },
  async settle() {
    const { flush: flush4 } = await v4<{ flush(): void }>('internal')
    await flush()
    flush4()
  },
}

afterEach(() => {
  document.body.innerHTML = ''
})

const text = () => document.body.textContent?.replace(/\s+/g, ' ').trim()
const button = (cls: string) => document.querySelector<HTMLButtonElement>(`button.${cls}`)

describe.each([svelte5, svelte4])('a component compiled with Svelte $version', (svelte) => {
  it('is compiled by that Svelte and runs on its runtime', async () => {
    const { auth } = setup()
    ;(await svelte.mount('Session', { auth })).destroy()
    expect(await svelte.compiler()).toMatch(new RegExp(`^${svelte.version}\\.`))
    expect(readFileSync(`${out}/Session.${svelte.version}.js`, 'utf8')).toMatch(new RegExp(`from ['"]${svelte.runtime}['"]`))
  })

  it('shows loading while the session is restored, the sign-in form without one, the protected part once logged in', async () => {
    const { storage, open } = slowStorage()
    const { auth } = setup({ storage })
    const app = await svelte.mount('Session', { auth })
    expect(text()).toBe('loading')
    open()
    await auth.ready()
    await svelte.settle()
    expect(text()).toBe('sign in')
    await auth.login(creds)
    await svelte.settle()
    expect(text()).toBe('secret for Ada sign out')
    app.destroy()
  })

  it('the form shows pending, then the error, and stays mounted; dismissing resets the action; logout clears the user', async () => {
    const { auth, server } = setup()
    await auth.ready()
    const { release, restore } = holdLogins(server)
    const app = await svelte.mount('Session', { auth })
    const input = document.querySelector('input')!
    input.value = 'nope'
    input.dispatchEvent(new Event('input'))
    document.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }))
    await svelte.settle()
    expect(button('submit')!.textContent).toBe('signing in…')
    expect(button('submit')!.disabled).toBe(true)
    release()
    await auth.ready()
    await svelte.settle()
    expect(button('dismiss')!.textContent).toBe('Wrong email or password')
    expect(button('submit')!.textContent).toBe('sign in')
    expect(document.querySelector('input')!.value).toBe('nope') // the form was not remounted
    button('dismiss')!.click()
    await svelte.settle()
    expect(button('dismiss')).toBeNull()
    expect(auth.getSnapshot().actions.login.status).toBe('idle')
    restore()
    await auth.login(creds)
    await svelte.settle()
    expect(text()).toContain('secret for Ada')
    button('logout')!.click()
    await auth.ready()
    await svelte.settle()
    expect(auth.getSnapshot().user).toBeNull()
    expect(text()).toBe('sign in')
    app.destroy()
  })

  it('selected stores update the component only when their value changes', async () => {
    const { auth } = await loggedIn()
    const runs = { name: 0, object: 0 }
    const app = await svelte.mount('Session', { auth, ran: (what: keyof typeof runs) => runs[what]++ })
    expect(runs).toEqual({ name: 1, object: 1 })
    let changes = 0
    auth.subscribe(() => changes++)
    await auth.refresh() // refreshing, generation, expiresAt and actions.refresh all change
    await svelte.settle()
    expect(changes).toBeGreaterThanOrEqual(3)
    expect(runs).toEqual({ name: 1, object: 1 })
    await auth.logout()
    await svelte.settle()
    expect(runs).toEqual({ name: 2, object: 2 })
    app.destroy()
  })

  it('unmounting leaves no engine listener behind', async () => {
    const { auth } = await loggedIn()
    const listeners = countListeners(auth)
    const app = await svelte.mount('Session', { auth })
    expect(listeners.live).toBeGreaterThan(0)
    app.destroy()
    expect(listeners.live).toBe(0)
  })
})

describe('Svelte 5 runes and server rendering', () => {
  it('a runes component reads the stores with $store', async () => {
    const { storage, open } = slowStorage()
    const { auth } = setup({ storage })
    const app = await svelte5.mount('Runes', { auth })
    expect(text()).toBe('initializing: hello nobody')
    open()
    await auth.ready()
    await auth.login(creds)
    await svelte5.settle()
    expect(text()).toBe('authenticated: hello Ada')
    app.destroy()
  })

  it('SSR: svelte/server renders the snapshot and keeps no subscription', async () => {
    const { render } = await import('svelte/server')
    const { storage, open } = slowStorage()
    const { auth } = setup({ storage })
    const listeners = countListeners(auth)
    const Session = await load('Session.server.js', () => compile(source('Session'), { filename: 'Session.svelte', generate: 'server' }).js.code)
    expect(render(Session, { props: { auth } }).body).toContain('loading')
    open()
    await auth.ready()
    expect(render(Session, { props: { auth } }).body).toContain('sign in')
    expect(listeners.live).toBe(0)
  })
})

describe('the store contract', () => {
  it('calls a subscriber synchronously with the current value, then only on change; unsubscribe stops it', async () => {
    const { auth } = setup()
    const listeners = countListeners(auth)
    const status = sessionStore(auth, (s) => s.status)
    expect(listeners.live).toBe(0) // nothing listens before the first subscriber
    const seen: string[] = []
    const stop = status.subscribe((s) => seen.push(s))
    expect(seen).toEqual(['initializing'])
    await auth.ready()
    await auth.login(creds)
    await auth.refresh()
    expect(seen).toEqual(['initializing', 'unauthenticated', 'authenticating', 'authenticated'])
    stop()
    expect(listeners.live).toBe(0)
    await auth.logout()
    expect(seen).toHaveLength(4)
  })

  it('works with svelte/store derived and get, and an action store follows any action name', async () => {
    const { auth } = await loggedIn()
    const session = sessionStore(auth)
    const greeting = derived(session, (s: AuthSnapshot<User>) => `hi ${s.user?.name ?? 'nobody'}`)
    expect(get(greeting)).toBe('hi Ada')
    const names = Object.keys(auth.getSnapshot().actions) as (keyof AuthSnapshot['actions'])[]
    expect(names.map((n) => get(actionStore(auth, n)).status)).toEqual(names.map((n) => auth.getSnapshot().actions[n].status))
    const refresh = actionStore(auth, 'refresh')
    const seen: boolean[] = []
    const stop = refresh.subscribe((a) => seen.push(a.isPending))
    const same = get(refresh)
    expect(get(refresh)).toBe(same) // one value per action state
    await auth.refresh()
    expect(seen).toEqual([false, true, false])
    refresh.reset()
    expect(get(refresh).status).toBe('idle')
    stop()
  })

  it('P16: a subscriber may call a verb, and still hears what that verb changes', async () => {
    const { auth } = await loggedIn()
    const seen: string[] = []
    const stop = sessionStore(auth, (s) => s.status).subscribe((s) => {
      seen.push(s)
      if (s === 'authenticated') void auth.logout()
    })
    await flush()
    expect(seen).toEqual(['authenticated', 'unauthenticated'])
    expect(auth.getSnapshot().status).toBe('unauthenticated')
    stop()
    // A verb that changes the session at once, called from the first (synchronous) call.
    await auth.login({ ...creds, password: 'nope' }).catch(() => {})
    const login = actionStore(auth, 'login')
    const states: string[] = []
    const stopLogin = login.subscribe((a) => {
      states.push(a.status)
      if (a.error) login.reset()
    })
    expect(states).toEqual(['rejected', 'idle'])
    stopLogin()
  })
})
