// Preloaded (`node --import`) by bench/cache-tests.sh when CACHE_TESTS_CLIENT_H2
// is set: the suite's client calls fetch(), and for the interim-response tests
// composes its own undici Agent; both are pointed at one HTTP/2-only
// dispatcher, so every request the suite makes reaches the proxy over HTTP/2.
// There is no fallback to HTTP/1.1: h2c is by prior knowledge, and on TLS the
// only ALPN protocol offered is h2 (a proxy that declined it fails the
// handshake).
//
//   CACHE_TESTS_UNDICI     path of undici's index.js (the one the suite imports)
//   CACHE_TESTS_CLIENT_H2  h2c | tls
//   CACHE_TESTS_CA         the proxy's CA (PEM), for tls
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const undici = await import(pathToFileURL(process.env.CACHE_TESTS_UNDICI).href)
const { Agent, H2CClient, Dispatcher, setGlobalDispatcher, fetch } = undici

const agent = process.env.CACHE_TESTS_CLIENT_H2 === 'tls'
  ? new Agent({
    allowH2: true,
    connect: { ca: readFileSync(process.env.CACHE_TESTS_CA), ALPNProtocols: ['h2'] }
  })
  : new Agent({ factory: (origin, opts) => new H2CClient(origin, opts) })

setGlobalDispatcher(agent)
// Node's own fetch is an older bundled undici: use the one the agent belongs to.
globalThis.fetch = fetch
// `new undici.Agent().compose(interceptor)` in the suite: compose onto ours.
const compose = Dispatcher.prototype.compose
Agent.prototype.compose = function (...interceptors) {
  return compose.apply(agent, interceptors)
}
