/** A `Retry-After` header (seconds or an HTTP date) as milliseconds from now. @internal */
export function retryAfter(res: Response): number | undefined {
  const v = res.headers.get('retry-after')
  if (!v) return undefined
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now()
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined
}
