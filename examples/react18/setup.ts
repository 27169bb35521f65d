import { version } from 'react'
import { version as domVersion } from 'react-dom'

// The point of this workspace: fail loudly if the aliases ever stop giving the tests React 18.
if (!version.startsWith('18.') || !domVersion.startsWith('18.')) throw new Error(`expected React 18, got react ${version}, react-dom ${domVersion}`)
console.log(`[react18] tessera/react tests on react ${version}, react-dom ${domVersion}`)
