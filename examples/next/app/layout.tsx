import type { Metadata } from 'next'
import type { ReactNode } from 'react'
import { Providers } from './providers'

export const metadata: Metadata = { title: 'Tessera + Next.js' }

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ font: '16px system-ui, sans-serif', margin: '2rem' }}>
        <h1>Tessera + Next.js</h1>
        <Providers>{children}</Providers>
      </body>
    </html>
  )
}
