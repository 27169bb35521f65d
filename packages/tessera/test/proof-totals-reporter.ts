import type { UserConsoleLog } from 'vitest'
import type { Reporter } from 'vitest/node'

/**
 * Adds one line to the end of every run: the total property schedules tried (the two property
 * files each print theirs), with the other proof figures the suites print (chaos, outage, bad
 * input, leak scan) gathered below it.
 */
export default class ProofTotals implements Reporter {
  schedules = 0
  files = 0
  figures: string[] = []

  onUserConsoleLog(log: UserConsoleLog) {
    for (const line of log.content.split('\n')) {
      const m = /property schedules run: (\d+)/.exec(line)
      if (m) {
        this.schedules += Number(m[1])
        this.files++
      } else if (/^(chaos totals|outage|bad input|leak scan)/.test(line)) this.figures.push(line.trim())
    }
  }

  onTestRunEnd() {
    if (!this.files && !this.figures.length) return
    const lines = [`property schedules total: ${this.schedules} (${this.files} property files; TESSERA_PROPERTY_RUNS=deep for 100 000 + 20 000)`, ...this.figures]
    process.stdout.write(`\n${lines.map((l) => `  ${l}`).join('\n')}\n`)
  }
}
