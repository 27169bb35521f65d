import { CORE, measure } from './measure.js'
const r = await measure({ contents: CORE }, { withCore: true })
console.log(r.gzip, r.min)
