'use client'
// The one session engine of the app, and the clients that talk through it. A client module:
// created once when the browser loads it. (Next also runs it while pre-rendering; there the
// engine never signs in, and <AuthProvider> renders the `initializing` state.)
import { QueryClient } from '@tanstack/react-query'
import axios from 'axios'
import { createAuth } from 'tessera'
import { attachAuth } from 'tessera/axios'
import { httpAuthority } from 'tessera/http'
import { connectQueryClient } from 'tessera/tanstack-query'

/** The reference server's user (`GET /auth/me`). */
export interface User {
  id: string
  email: string
  name: string | null
  roles: string[]
}

// '/auth' is this app's origin: next.config.ts rewrites it to the token server.
export const auth = createAuth<User>({ authority: httpAuthority<User>({ baseUrl: '/auth' }) })

// Every request of `api` carries the token; a 401 refreshes once and replays.
export const api = axios.create({ baseURL: '/api' })
attachAuth(api, auth)

// Private queries are dropped when the session ends, refetched when one begins.
export const queryClient = new QueryClient()
connectQueryClient(auth, queryClient)
