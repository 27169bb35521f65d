// The few parts of oidc-provider (which ships no types) that the OIDC tests use.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: string, listener: (...args: unknown[]) => void): this
    /** A Koa middleware around every endpoint. */
    use(middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>): void
  }
  /** The parts of Koa's context the tests read or bend. */
  export interface ProviderContext {
    method: string
    path: string
    query: Record<string, string | string[] | undefined>
    headers: Record<string, string | string[] | undefined>
    status: number
    body: unknown
    type: string
    set(header: string, value: string): void
    response: { get(header: string): string; remove(header: string): void }
    /** oidc-provider's request state: its parsed parameters. */
    oidc?: { params?: Record<string, unknown> }
  }
}
