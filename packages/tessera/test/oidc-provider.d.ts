// The few parts of oidc-provider (which ships no types) that the OIDC tests use.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: string, listener: (...args: unknown[]) => void): this
    /** A Koa middleware around every endpoint. */
    use(middleware: (ctx: { path: string; status: number; body: unknown }, next: () => Promise<void>) => Promise<void>): void
  }
}
