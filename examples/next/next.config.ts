import type { NextConfig } from 'next'

// The token server and the API it guards, served under this app's own origin: the browser talks
// to one origin only, so Tessera sends the token to relative URLs (no `allowedOrigins`, no CORS).
// Next reads this when it builds: set TESSERA_API before `next build`.
const api = process.env.TESSERA_API ?? 'http://127.0.0.1:8787'

const nextConfig: NextConfig = {
  async rewrites() {
    return [
      { source: '/auth/:path*', destination: `${api}/auth/:path*` },
      { source: '/api/:path*', destination: `${api}/api/:path*` },
    ]
  },
}

export default nextConfig
