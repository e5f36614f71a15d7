// An HTTP/2 (h2c, prior knowledge) front for the suite's HTTP/1.1 origin, used
// by bench/cache-tests.sh with CACHE_TESTS_UPSTREAM_H2=1, so the proxy under
// test fetches, revalidates and streams over HTTP/2. It is meant to be
// transparent: every request goes to the origin as it came (hop-by-hop fields
// dropped, RFC 9113 §8.2.2), the origin's 1xx go back as interim HEADERS
// frames (RFC 9113 §8.1) and its final response as it is; when the origin
// closes the connection without answering, the stream is reset
// (INTERNAL_ERROR), which is what an HTTP/2 origin that gave up does — not a
// 502, which would be an answer.
//
//   node cache-tests-h2-relay.mjs HOST:PORT   prints "relay h2c://127.0.0.1:PORT"
import http from 'node:http'
import http2 from 'node:http2'

const [host, port] = process.argv[2].split(':')
const agent = new http.Agent({ keepAlive: true })
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings', 'host'])

// Field lines as name → value, without hop-by-hop ones. Repeated lines are
// joined with ", " (RFC 9110 §5.3), Set-Cookie kept as a list: node's http2
// refuses a second line of Age, Expires, Content-Type and other fields it
// takes for single-valued, where an HTTP/2 origin could send one.
function fields (raw) {
  const out = {}
  // ... and those the Connection field names (RFC 9110 §7.6.1).
  const named = new Set()
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === 'connection') {
      for (const n of raw[i + 1].split(',')) named.add(n.trim().toLowerCase())
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (HOP.has(name) || named.has(name) || name.startsWith(':')) continue
    if (!(name in out)) out[name] = raw[i + 1]
    else if (name === 'set-cookie') out[name] = [].concat(out[name], raw[i + 1])
    else out[name] = `${out[name]}, ${raw[i + 1]}`
  }
  return out
}

const server = http2.createServer({ settings: { maxConcurrentStreams: 256 } })
server.on('stream', (stream, headers, _flags, rawHeaders) => {
  try {
    relay(stream, headers, rawHeaders)
  } catch (e) {
    console.error(`relay: ${headers[':method']} ${headers[':path']}: ${e.message}`)
    reset(stream)
  }
})

function reset (stream) {
  if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)
}

function relay (stream, headers, rawHeaders) {
  stream.on('error', () => {})
  const req = http.request({
    host,
    port,
    agent,
    method: headers[':method'],
    path: headers[':path'],
    headers: { ...fields(rawHeaders), host: `${host}:${port}` }
  })
  req.on('information', info => {
    if (info.statusCode === 101 || stream.destroyed || stream.headersSent) return
    stream.additionalHeaders({ ':status': info.statusCode, ...fields(info.rawHeaders) })
  })
  req.on('response', res => {
    if (stream.destroyed) return res.resume()
    res.on('error', () => reset(stream))
    stream.response = res
    try {
      stream.respond({ ':status': res.statusCode, ...fields(res.rawHeaders) })
    } catch (e) {
      // A status HTTP/2 cannot carry (outside 100..599, RFC 9110 §15).
      console.error(`relay: ${headers[':method']} ${headers[':path']}: ${e.message}`)
      res.resume()
      return reset(stream)
    }
    res.pipe(stream)
  })
  // An origin that sends more than its Content-Length breaks its
  // connection after the response, not the response: that one goes on whole.
  req.on('error', () => { if (!stream.response?.complete) reset(stream) })
  stream.pipe(req)
}
server.listen(0, '127.0.0.1', () => console.log(`relay h2c://127.0.0.1:${server.address().port}`))
