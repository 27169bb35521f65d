'use client'
import { useQuery } from '@tanstack/react-query'
import { useRouter } from 'next/navigation'
import { Authenticated, useAuthAction } from 'tessera/react'
import { sessionQueryOptions } from 'tessera/tanstack-query'
import { api, auth } from '@/lib/auth'

interface Data {
  sub: string
  items: { id: number; name: string }[]
}

export function Items() {
  const router = useRouter()
  return (
    <Authenticated loading={<p>Restoring session…</p>} onUnauthenticated={() => router.replace('/')}>
      <ItemList />
    </Authenticated>
  )
}

function ItemList() {
  const { data: session } = useQuery(sessionQueryOptions(auth))
  const items = useQuery({ queryKey: ['items'], queryFn: () => api.get<Data>('/data').then((r) => r.data) })
  const signingOut = useAuthAction('logout').isPending
  return (
    <section>
      <p>Signed in as {session?.user?.email}</p>
      <button onClick={() => items.refetch()}>Reload</button>{' '}
      <button onClick={() => auth.logout().catch(() => {})} disabled={signingOut}>
        Sign out
      </button>
      {items.error && <p role="alert">{items.error.message}</p>}
      <ul aria-label="items">{items.data?.items.map((item) => <li key={item.id}>{item.name}</li>)}</ul>
    </section>
  )
}
