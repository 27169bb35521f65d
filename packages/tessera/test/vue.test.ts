// @vitest-environment happy-dom
import { flushPromises, mount } from '@vue/test-utils'
import { createSSRApp, defineComponent, effectScope, h, nextTick, provide, ref, watch, type Component } from 'vue'
import { renderToString } from 'vue/server-renderer'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Authenticated, authKey, tesseraPlugin, useAuth, useAuthAction, useSession } from '../src/bindings/vue.js'
import type { AuthSnapshot, AuthStatus } from '../src/index.js'
import { countListeners, creds, holdLogins, loggedIn, setup, slowStorage } from './fakes.js'

type User = { id: string; name: string }
type Engine = ReturnType<typeof setup>['auth']

afterEach(() => {
  document.body.innerHTML = ''
  vi.restoreAllMocks()
})

/** The protected child records the engine status at each of its renders. */
function protectedProbe(auth: Engine) {
  const renders: AuthStatus[] = []
  const Secret = defineComponent(() => () => {
    renders.push(auth.getSnapshot().status)
    return h('p', 'secret')
  })
  return { renders, Secret }
}

/** `<Authenticated>` with the three slots, under the engine given by the plugin. */
function guarded(Secret: Component, props: Record<string, unknown> = {}) {
  return defineComponent(() => () =>
    h(Authenticated, props, { default: () => h(Secret), loading: () => h('p', 'loading'), fallback: () => h('p', 'please log in') }),
  )
}

describe('<Authenticated>', () => {
  it('renders nothing protected while initializing, the fallback without a session, the default slot once logged in', async () => {
    const { storage, open } = slowStorage()
    const { auth } = setup({ storage })
    const { renders, Secret } = protectedProbe(auth)
    const wrapper = mount(guarded(Secret), { global: { plugins: [tesseraPlugin(auth)] } })
    expect(wrapper.text()).toBe('loading')
    await flushPromises()
    expect(auth.getSnapshot().status).toBe('initializing')
    expect(wrapper.text()).toBe('loading')
    open()
    await auth.ready()
    await nextTick()
    expect(wrapper.text()).toBe('please log in')
    expect(renders).toEqual([])
    await auth.login(creds)
    await nextTick()
    expect(wrapper.text()).toBe('secret')
    expect(renders.length).toBeGreaterThan(0)
    expect(renders.every((s) => s === 'authenticated')).toBe(true)
  })

  it('a restored session shows loading first and never the fallback or protected content before restore', async () => {
    const first = await loggedIn()
    const { storage, open } = slowStorage(first.storage)
    const { auth } = setup({ storage })
    const { renders, Secret } = protectedProbe(auth)
    const wrapper = mount(guarded(Secret, { auth }))
    const seen: string[] = []
    auth.subscribe(() => seen.push(`${auth.getSnapshot().status}:${wrapper.text()}`))
    expect(wrapper.text()).toBe('loading')
    open()
    await auth.ready()
    await nextTick()
    expect(wrapper.text()).toBe('secret')
    expect(renders.every((s) => s === 'authenticated')).toBe(true)
    expect(seen.filter((x) => x.startsWith('initializing')).every((x) => x === 'initializing:loading')).toBe(true)
    expect(seen.join()).not.toContain('please log in')
  })

  it('calls onUnauthenticated (as @unauthenticated) with redirectTo once when the session ends, and hides the protected content', async () => {
    const { auth } = await loggedIn()
    const onUnauthenticated = vi.fn()
    const wrapper = mount(guarded(protectedProbe(auth).Secret, { auth, redirectTo: '/login', onUnauthenticated }))
    await nextTick()
    expect(wrapper.text()).toBe('secret')
    expect(onUnauthenticated).not.toHaveBeenCalled()
    await auth.logout()
    await flushPromises()
    expect(wrapper.text()).toBe('please log in')
    expect(onUnauthenticated).toHaveBeenCalledTimes(1)
    expect(onUnauthenticated).toHaveBeenCalledWith('/login', 'unauthenticated')
  })

  it('without a session calls onUnauthenticated once mounted, with the fallback already in the page', async () => {
    const { auth } = setup()
    await auth.ready()
    const pages: string[] = []
    const onUnauthenticated = vi.fn(() => void pages.push(document.body.textContent ?? ''))
    mount(guarded(protectedProbe(auth).Secret, { auth, redirectTo: '/login', onUnauthenticated }), { attachTo: document.body })
    expect(onUnauthenticated).toHaveBeenCalledTimes(1)
    expect(onUnauthenticated).toHaveBeenCalledWith('/login', 'unauthenticated')
    expect(pages).toEqual(['please log in'])
  })

  it('leaves no engine listener behind once unmounted', async () => {
    const { auth } = await loggedIn()
    const listeners = countListeners(auth)
    const wrapper = mount(guarded(protectedProbe(auth).Secret), { global: { plugins: [tesseraPlugin(auth)] } })
    expect(listeners.live).toBeGreaterThan(0)
    wrapper.unmount()
    expect(listeners.live).toBe(0)
  })
})

describe('login form', () => {
  const LoginForm = defineComponent(() => {
    const { login } = useAuth<User, typeof creds>()
    const { isPending, error, reset } = useAuthAction('login')
    const password = ref('')
    const submit = (e: Event) => {
      e.preventDefault()
      login({ user: 'ada', password: password.value }).catch(() => {})
    }
    return () =>
      h('form', { onSubmit: submit }, [
        h('input', { 'aria-label': 'password', value: password.value, onInput: (e: Event) => (password.value = (e.target as HTMLInputElement).value) }),
        h('button', { disabled: isPending.value }, isPending.value ? 'signing in…' : 'sign in'),
        error.value && h('p', { role: 'alert', onClick: reset }, error.value.message),
      ])
  })

  it('shows pending, then the error for bad credentials, and stays mounted meanwhile; nothing protected renders', async () => {
    const { auth, server } = setup()
    await auth.ready()
    const { release } = holdLogins(server)
    const { renders, Secret } = protectedProbe(auth)
    const App = defineComponent(() => () => h(Authenticated, null, { default: () => h(Secret), fallback: () => h(LoginForm) }))
    const wrapper = mount(App, { global: { plugins: [tesseraPlugin(auth)] }, attachTo: document.body })
    await wrapper.find('input').setValue('nope')
    await wrapper.find('form').trigger('submit')
    expect(wrapper.find('button').text()).toBe('signing in…')
    expect(wrapper.find('button').element.disabled).toBe(true)
    expect(auth.getSnapshot().status).toBe('authenticating')
    release()
    await auth.ready()
    await flushPromises()
    expect(wrapper.find('[role=alert]').text()).toBe('Wrong email or password')
    expect(wrapper.find('button').text()).toBe('sign in')
    expect(wrapper.find('input').element.value).toBe('nope') // the form was not remounted
    expect(renders).toEqual([])
    await wrapper.find('[role=alert]').trigger('click')
    expect(wrapper.find('[role=alert]').exists()).toBe(false)
    expect(auth.getSnapshot().actions.login.status).toBe('idle')
    wrapper.unmount()
  })

  it('useAuthAction follows a reactive action name', async () => {
    const { auth } = await loggedIn()
    const name = ref<'login' | 'refresh'>('login')
    let result!: ReturnType<typeof useAuthAction>
    mount(
      defineComponent(() => {
        result = useAuthAction(name, auth)
        return () => h('p', result.status.value)
      }),
    )
    expect(result.status.value).toBe('fulfilled')
    name.value = 'refresh'
    expect(result.status.value).toBe('idle')
    const refreshing = auth.refresh()
    expect(result.isPending.value).toBe(true)
    await refreshing
    expect(result.status.value).toBe('fulfilled')
  })
})

describe('useSession', () => {
  it('re-renders only when the selected value changes', async () => {
    const { auth } = await loggedIn()
    const renders = { name: 0, status: 0, object: 0 }
    const Name = defineComponent(() => {
      const name = useSession((s: AuthSnapshot<User>) => s.user?.name ?? 'nobody')
      return () => (renders.name++, h('span', name.value))
    })
    const Status = defineComponent(() => {
      const status = useSession((s) => s.status)
      return () => (renders.status++, h('span', status.value))
    })
    const shallow = (a: { name?: string }, b: { name?: string }) => a.name === b.name
    const Obj = defineComponent(() => {
      // A selector that builds a new object each time, steadied by `isEqual`.
      const v = useSession((s: AuthSnapshot<User>) => ({ name: s.user?.name }), shallow)
      return () => (renders.object++, h('span', v.value.name))
    })
    const wrapper = mount(defineComponent(() => () => [h(Name), h(Status), h(Obj)]), { global: { plugins: [tesseraPlugin(auth)] } })
    expect(renders).toEqual({ name: 1, status: 1, object: 1 })
    let changes = 0
    auth.subscribe(() => changes++)
    await auth.refresh() // refreshing, generation, expiresAt and actions.refresh all change
    await nextTick()
    expect(changes).toBeGreaterThanOrEqual(3)
    expect(renders).toEqual({ name: 1, status: 1, object: 1 })
    await auth.logout()
    await nextTick()
    expect(renders).toEqual({ name: 2, status: 2, object: 2 })
    expect(wrapper.text()).toBe('nobodyunauthenticated')
  })

  it('a selector that reads a prop follows the prop', async () => {
    const { auth } = await loggedIn()
    const Field = defineComponent({
      props: { field: { type: String as () => 'status' | 'generation', required: true } },
      setup(props) {
        const v = useSession((s) => s[props.field], undefined, auth)
        return () => h('span', String(v.value))
      },
    })
    const field = ref<'status' | 'generation'>('status')
    const wrapper = mount(defineComponent(() => () => h(Field, { field: field.value })))
    expect(wrapper.text()).toBe('authenticated')
    field.value = 'generation'
    await nextTick()
    expect(wrapper.text()).toBe(String(auth.getSnapshot().generation))
  })

  it('works without the plugin when given the engine, and throws a TypeError with neither or outside a scope', async () => {
    const { auth } = setup()
    const wrapper = mount(defineComponent(() => {
      const status = useSession((s) => s.status, undefined, auth)
      return () => h('span', status.value)
    }))
    expect(wrapper.text()).toBe('initializing')
    await auth.ready()
    await nextTick()
    expect(wrapper.text()).toBe('unauthenticated')
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    expect(() => mount(defineComponent(() => (useAuth(), () => null)))).toThrow(TypeError)
    // Outside setup() and any effectScope nothing could ever unsubscribe: refused.
    expect(() => useSession((s) => s.status, undefined, auth)).toThrow(TypeError)
    // Inside an effectScope (a store, say) it works and stops listening with the scope.
    const listeners = countListeners(auth)
    const scope = effectScope()
    const status = scope.run(() => useSession((s) => s.status, undefined, auth))!
    expect(status.value).toBe('unauthenticated')
    await auth.login(creds)
    expect(status.value).toBe('authenticated')
    scope.stop()
    expect(listeners.live).toBe(0)
  })

  it('provide(authKey) gives a subtree another engine than the app', async () => {
    const app = await loggedIn()
    const other = setup()
    await other.auth.ready()
    const Status = defineComponent(() => {
      const status = useSession((s) => s.status)
      return () => h('span', status.value)
    })
    const Sub = defineComponent(() => {
      provide(authKey, other.auth)
      return () => h(Status)
    })
    const wrapper = mount(defineComponent(() => () => [h(Status), h(Sub)]), { global: { plugins: [tesseraPlugin(app.auth)] } })
    expect(wrapper.text()).toBe('authenticatedunauthenticated')
  })

  it('useAuth exposes every snapshot field as a ref and the verbs; logout clears the user', async () => {
    const { auth } = setup()
    await auth.ready()
    let result!: ReturnType<typeof useAuth<User, typeof creds>>
    mount(defineComponent(() => ((result = useAuth<User, typeof creds>()), () => null)), { global: { plugins: [tesseraPlugin(auth)] } })
    expect(Object.keys(result)).toEqual(expect.arrayContaining([...Object.keys(auth.getSnapshot()), 'login', 'logout', 'auth']))
    expect([result.status.value, result.isAuthenticated.value, result.user.value, result.auth]).toEqual(['unauthenticated', false, null, auth])
    await result.login(creds)
    expect([result.status.value, result.isAuthenticated.value, result.user.value]).toEqual(['authenticated', true, { id: 'u1', name: 'Ada' }])
    await expect(result.getAccessToken()).resolves.toMatch(/^at-/)
    await result.logout()
    expect([result.status.value, result.isAuthenticated.value, result.user.value]).toEqual(['unauthenticated', false, null])
  })

  it('P16: a watcher may call a verb from inside the engine notification', async () => {
    const { auth } = await loggedIn()
    const seen: string[] = []
    mount(
      defineComponent(() => {
        const { status, logout } = useAuth(auth)
        // flush: 'sync' runs inside the engine's notify loop.
        watch(status, (s) => (seen.push(s), s === 'authenticated' && void logout()), { flush: 'sync' })
        return () => h('span', status.value)
      }),
    )
    await auth.logout()
    await auth.login(creds)
    await flushPromises()
    expect(seen).toEqual(['unauthenticated', 'authenticating', 'authenticated', 'unauthenticated'])
    expect(auth.getSnapshot().status).toBe('unauthenticated')
  })
})

describe('server rendering', () => {
  const app = (auth: Engine, Secret: Component) => createSSRApp(guarded(Secret)).use(tesseraPlugin(auth))

  it('SSR: renderToString renders the loading slot, no protected content, and subscribes to nothing', async () => {
    const { auth } = setup()
    const listeners = countListeners(auth)
    const { renders, Secret } = protectedProbe(auth)
    const html = await renderToString(app(auth, Secret))
    expect(html).toContain('loading')
    expect(html).not.toContain('secret')
    expect(html).not.toContain('please log in')
    expect(renders).toEqual([])
    expect(listeners.live).toBe(0)
  })

  it('SSR: even an engine that is already authenticated renders only the loading state on the server', async () => {
    const { auth } = await loggedIn()
    const { renders, Secret } = protectedProbe(auth)
    const Page = defineComponent(() => {
      const { user, isAuthenticated } = useAuth<User>()
      // Every action the engine tracks reads idle on the server, whichever they are.
      const actions = Object.keys(auth.getSnapshot().actions).map((name) => useAuthAction(name as keyof AuthSnapshot['actions']).status)
      return () => h('div', [h(guarded(Secret)), h('i', `${user.value?.name ?? 'nobody'} ${isAuthenticated.value} ${actions.map((a) => a.value)}`)])
    })
    const html = await renderToString(createSSRApp(Page).use(tesseraPlugin(auth)))
    expect(html).toContain('loading')
    expect(html).toContain(`nobody false ${Object.keys(auth.getSnapshot().actions).map(() => 'idle')}`)
    expect(html).not.toContain('secret')
    expect(html).not.toContain('Ada')
    expect(renders).toEqual([])
  })

  it('hydrating server markup with an already-restored engine causes no mismatch, then shows the content', async () => {
    const server = setup()
    const html = await renderToString(app(server.auth, protectedProbe(server.auth).Secret))
    const { auth } = await loggedIn()
    const { renders, Secret } = protectedProbe(auth)
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.appendChild(container)
    const warnings: string[] = []
    vi.spyOn(console, 'error').mockImplementation((...a) => void warnings.push(a.join(' ')))
    const client = app(auth, Secret)
    client.config.warnHandler = (msg) => void warnings.push(msg)
    client.mount(container)
    expect(warnings).toEqual([])
    await nextTick()
    expect(container.textContent).toBe('secret')
    expect(renders.every((s) => s === 'authenticated')).toBe(true)
    client.unmount()
  })
})
