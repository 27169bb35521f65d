'use client'
import Link from 'next/link'
import { useRouter } from 'next/navigation'
import type { FormEvent } from 'react'
import { Authenticated, useAuthAction } from 'tessera/react'
import { auth } from '@/lib/auth'

export function SignIn() {
  return (
    <Authenticated loading={<p>Restoring session…</p>} fallback={<SignInForm />}>
      <p>
        Signed in. <Link href="/items">Your items</Link>
      </p>
    </Authenticated>
  )
}

function SignInForm() {
  const router = useRouter()
  const { isPending, error } = useAuthAction('login')
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const form = new FormData(e.currentTarget)
    auth.login({ email: `${form.get('email')}`, password: `${form.get('password')}` }).then(
      () => router.push('/items'),
      () => {}, // shown below through useAuthAction
    )
  }
  return (
    <form onSubmit={submit}>
      <label>
        Email <input name="email" type="email" autoComplete="username" required />
      </label>
      <label>
        Password <input name="password" type="password" autoComplete="current-password" required />
      </label>
      <button disabled={isPending}>{isPending ? 'Signing in…' : 'Sign in'}</button>
      {error && <p role="alert">{error.message}</p>}
    </form>
  )
}
