import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'

interface Teardown { teardown: (fn: () => unknown) => void }

/** What a hostile server saw of one request. */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

/** A plain HTTP server that records every request and answers with `respond`. */
export interface HostileServer {
  /** `http://127.0.0.1:PORT/waygate` */
  adminUrl: string
  origin: string
  requests: SeenRequest[]
}

/**
 * Starts a server that is not waygate: it records what reaches it (to prove what a CLI run sent)
 * and answers as `respond` says, by default a JSON `[]`.
 */
export async function startHostile (t: Teardown, respond: (req: SeenRequest, res: ServerResponse) => void = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('[]')
}): Promise<HostileServer> {
  const requests: SeenRequest[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
      requests.push(seen)
      respond(seen, res)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const origin = `http://127.0.0.1:${address.port}`
  return { adminUrl: `${origin}/waygate`, origin, requests }
}
