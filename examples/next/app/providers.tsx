'use client'
import { QueryClientProvider } from '@tanstack/react-query'
import type { ReactNode } from 'react'
import { AuthProvider } from 'tessera/react'
import { auth, queryClient } from '@/lib/auth'

export function Providers({ children }: { children: ReactNode }) {
  return (
    <AuthProvider auth={auth}>
      <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
    </AuthProvider>
  )
}
