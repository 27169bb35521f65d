import { CORE, measure } from './measure.js'
const r = await measure({ contents: CORE }, { withCore: true })
process.stdout.write(r.text)
