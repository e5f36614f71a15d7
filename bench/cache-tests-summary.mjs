// Counts a cache-tests result file the way cache-tests.fyi does (the suite's
// own determineTestResult, dependencies honoured) and prints netrun's figures
// beside the published results that ship with the same suite version.
//
//   node cache-tests-summary.mjs SUITE_DIR RESULTS_JSON [LABEL] [MIN_PASS]
//
// Exit status: 0 when no required test failed outright and at least MIN_PASS
// (default 0) required tests passed, 1 otherwise.

import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [suiteDir, resultsFile, label = 'netrun proxy', minPassArg = '0'] = process.argv.slice(2)
const minPass = Number(minPassArg)
if (!suiteDir || !resultsFile) {
  console.error('usage: node cache-tests-summary.mjs SUITE_DIR RESULTS_JSON [LABEL] [MIN_PASS]')
  process.exit(2)
}
const load = p => import(pathToFileURL(path.resolve(suiteDir, p)).href)
const suites = (await load('tests/index.mjs')).default
const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')

// The proxies the issue compares with, in its order, by their file in results/.
const PUBLISHED = [
  ['nginx', 'nginx'],
  ['Varnish', 'varnish'],
  ['Squid', 'squid'],
  ['Apache Traffic Server', 'trafficserver']
]

/** Tallies one result set; browser-only tests never run against a proxy. */
function tally (results) {
  const t = { required: 0, pass: 0, fail: 0, notRun: 0, optional: 0, optionalFail: 0, optionalNotRun: 0, failed: [], optionalFailed: [], notRunIds: [] }
  for (const suite of suites) {
    for (const test of suite.tests) {
      if (test.browser_only === true) continue
      const r = determineTestResult(suites, test.id, results)
      const kind = test.kind ?? 'required'
      if (kind === 'required') {
        t.required++
        if (r === resultTypes.pass) t.pass++
        else if (r === resultTypes.fail) { t.fail++; t.failed.push(test.id) } else { t.notRun++; t.notRunIds.push(`${test.id} (${r[2]})`) }
      } else if (kind === 'optimal') {
        t.optional++
        if (r === resultTypes.optional_fail) { t.optionalFail++; t.optionalFailed.push(test.id) } else if (r !== resultTypes.pass) t.optionalNotRun++
      }
    }
  }
  return t
}

const all = suites.flatMap(s => s.tests)
const browserOnly = all.filter(t => t.browser_only === true && (t.kind ?? 'required') === 'required').length
const ours = tally(JSON.parse(fs.readFileSync(resultsFile, 'utf8')))
const rows = PUBLISHED.flatMap(([name, file]) => {
  const f = path.join(suiteDir, 'results', `${file}.json`)
  if (!fs.existsSync(f)) return []
  return [[`${name} (published)`, tally(JSON.parse(fs.readFileSync(f, 'utf8')))]]
})
rows.push([label, ours])

const total = ours.required + browserOnly
console.log(`required tests: ${total} (${ours.required} run against a proxy, ${browserOnly} browser-only); optional tests: ${ours.optional}`)
console.log('')
const header = ['cache', 'required passed', 'failed', 'could not run', 'optional failed']
const table = rows.map(([name, t]) => [name, `${t.pass} / ${total}`, `${t.fail}`, `${t.notRun}`, `${t.optionalFail} / ${t.optional}`])
const widths = header.map((h, i) => Math.max(h.length, ...table.map(r => r[i].length)))
const line = cells => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(' | ') + ' |'
console.log(line(header))
console.log('|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|')
for (const r of table) console.log(line(r))
console.log('')
const list = (title, ids) => { if (ids.length) console.log(`${title} (${ids.length}): ${ids.join(', ')}`) }
list('required, failed', ours.failed)
list('required, could not run', ours.notRunIds)
list('optional, failed', ours.optionalFailed)
if (!Number.isInteger(minPass) || minPass < 0) {
  console.error(`MIN_PASS must be a whole number, not ${minPassArg}`)
  process.exit(2)
}
console.log('')
const verdicts = [
  [ours.fail === 0, `required failed: ${ours.fail} (must be 0)`],
  [ours.pass >= minPass, `required passed: ${ours.pass} / ${total} (must be at least ${minPass})`]
]
for (const [ok, text] of verdicts) console.log(`${ok ? 'pass' : 'FAIL'} ${text}`)
process.exit(verdicts.every(([ok]) => ok) ? 0 : 1)
