/**
 * The refresh-storm server in a process of its own (started by `startStormServer` in storm-kit.ts):
 * it sends its port first, then answers each command from the parent with one message.
 */
import { serveStorm, type StormCommand } from './storm-kit.js'

const server = await serveStorm()
const reply = (m: unknown) => process.send!(m)
reply({ port: server.port })
process.on('message', (command: StormCommand) => {
  if (command === 'counters') return reply({ ...server.counters })
  if (command === 'close') return void server.close().then(() => (reply(true), process.disconnect()))
  server[command]()
  reply(true)
})
// The bench ending without `close` (a crash) must not leave this process behind.
process.on('disconnect', () => process.exit(0))
