import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { canonicalJson, defaultGlobalMaintenance } from '@waygate/core'
import type { BackendRecord, GlobalMaintenance, RemoteChange, RemoteSnapshot, RouteState } from '@waygate/core'

/** What the fake does with one request to the events endpoint. */
export type StreamScript =
  /** Snapshot (or replay when the resume id is current), then live changes. */
  | 'normal'
  /** Headers, then nothing at all: a proxy that stalls without closing. */
  | 'stall'
  /** Snapshot, then the connection is cut. */
  | 'drop'
  /** An error answer. */
  | { status: number, headers?: Record<string, string>, body?: unknown }

/** A request the fake saw. */
export interface SeenRequest {
  method: string
  path: string
  query: URLSearchParams
  headers: http.IncomingHttpHeaders
  body: unknown
}

/**
 * A minimal Waygate Server on a loopback socket, speaking the SDK wire protocol for one service,
 * whose every behaviour a test scripts: what each stream request gets, whether login works, which
 * token it takes.
 */
export interface FakeServer {
  url: string
  service: string
  epoch: string
  revision: number
  routes: Map<string, RouteState>
  global: GlobalMaintenance
  serviceMaintenance: GlobalMaintenance
  rateLimits: Map<string, BackendRecord>
  manifest: string | null
  requests: SeenRequest[]
  /** Scripts for the next stream requests, taken in order; `normal` once empty. */
  streams: StreamScript[]
  /** The token every SDK call must carry; null: no auth. */
  token: string | null
  /** What login answers: 200 with `issueToken`, or this status. */
  loginStatus: number
  issueToken: string
  /** Status the register endpoint answers while not 200. */
  registerStatus: number
  /** Force a snapshot on the next resumed stream (a replay gap too old for the log). */
  forceSnapshot: boolean
  /** How many changes the replay log keeps. */
  logSize: number
  openStreams(): number
  /** Stores a change at the next revision and sends it to every open stream. */
  change(change: RemoteChange): number
  /** Sends a raw change event with a given revision (duplicates, stale ones). */
  sendRaw(revision: number, change: RemoteChange, epoch?: string): void
  /** Writes the heartbeat comment to every open stream. */
  heartbeat(): void
  /** Cuts every open stream. */
  dropStreams(): void
  /** Starts a new history: new epoch, revisions from `revision`. */
  resetEpoch(epoch: string, revision: number): void
  snapshot(): RemoteSnapshot
  count(path: string): number
  close(): Promise<void>
}

export async function startFakeServer (options: { service?: string, token?: string | null } = {}): Promise<FakeServer> {
  const service = options.service ?? 'payments'
  const open = new Set<http.ServerResponse>()
  const log: Array<{ revision: number, change: RemoteChange }> = []
  const prefix = `/api/sdk/services/${service}`

  const fake: FakeServer = {
    url: '',
    service,
    epoch: 'ep1',
    revision: 10,
    routes: new Map(),
    global: defaultGlobalMaintenance(),
    serviceMaintenance: defaultGlobalMaintenance(),
    rateLimits: new Map(),
    manifest: null,
    requests: [],
    streams: [],
    token: options.token === undefined ? 'tok' : options.token,
    loginStatus: 200,
    issueToken: 'tok',
    registerStatus: 200,
    forceSnapshot: false,
    logSize: 1000,
    openStreams: () => open.size,
    change (change) {
      fake.revision++
      apply(change)
      log.push({ revision: fake.revision, change })
      if (log.length > fake.logSize) log.shift()
      for (const res of open) send(res, 'change', `${fake.epoch}.${fake.revision}`, { revision: fake.revision, change })
      return fake.revision
    },
    sendRaw (revision, change, epoch = fake.epoch) {
      for (const res of open) send(res, 'change', `${epoch}.${revision}`, { revision, change })
    },
    heartbeat () {
      for (const res of open) res.write(': hb\n\n')
    },
    dropStreams () {
      for (const res of open) res.destroy()
      open.clear()
    },
    resetEpoch (epoch, revision) {
      fake.epoch = epoch
      fake.revision = revision
      log.length = 0
    },
    snapshot () {
      return {
        epoch: fake.epoch,
        revision: fake.revision,
        service,
        routes: [...fake.routes.values()],
        global: fake.global,
        serviceMaintenance: fake.serviceMaintenance,
        rateLimits: [...fake.rateLimits.values()],
        manifest: fake.manifest
      }
    },
    count: path => fake.requests.filter(r => r.path === path).length,
    async close () {
      fake.dropStreams()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }

  function apply (change: RemoteChange): void {
    switch (change.type) {
      case 'route': fake.routes.set(change.state.key, change.state); break
      case 'route_deleted': fake.routes.delete(change.key); break
      case 'global': fake.global = change.global; break
      case 'service': fake.serviceMaintenance = change.maintenance; break
      case 'record':
        if (change.record === null) fake.rateLimits.delete(change.id)
        else fake.rateLimits.set(change.id, change.record)
        break
    }
  }

  function send (res: http.ServerResponse, event: string, id: string, data: unknown): void {
    res.write(`event: ${event}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  function json (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }

  function authorized (req: http.IncomingMessage): boolean {
    return fake.token === null || req.headers.authorization === `Bearer ${fake.token}`
  }

  function events (req: http.IncomingMessage, res: http.ServerResponse): void {
    const script = fake.streams.shift() ?? 'normal'
    if (typeof script === 'object') {
      json(res, script.status, script.body ?? { error: { code: 'FAKE', message: `scripted ${script.status}` } }, script.headers)
      return
    }
    if (!authorized(req)) {
      json(res, 401, { error: { code: 'WG_ERR_AUTH_REQUIRED', message: 'no token' } })
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', connection: 'keep-alive' })
    res.flushHeaders()
    if (script === 'stall') {
      open.add(res)
      res.on('close', () => open.delete(res))
      return
    }
    const resume = req.headers['last-event-id']
    const [epoch, rev] = typeof resume === 'string' ? [resume.slice(0, resume.lastIndexOf('.')), Number(resume.slice(resume.lastIndexOf('.') + 1))] : [null, NaN]
    const oldest = log[0]?.revision ?? fake.revision + 1
    const canReplay = !fake.forceSnapshot && epoch === fake.epoch && Number.isInteger(rev) && rev <= fake.revision && rev >= oldest - 1
    fake.forceSnapshot = false
    if (canReplay) {
      for (const entry of log) if (entry.revision > rev) send(res, 'change', `${fake.epoch}.${entry.revision}`, entry)
    } else {
      send(res, 'snapshot', `${fake.epoch}.${fake.revision}`, fake.snapshot())
    }
    if (script === 'drop') {
      setTimeout(() => res.destroy(), 20)
      return
    }
    open.add(res)
    res.on('close', () => open.delete(res))
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake')
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown = null
      if (text !== '') body = JSON.parse(text)
      fake.requests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body })
      route(req, res, url, body)
    })
  })

  function route (req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: unknown): void {
    const path = url.pathname
    if (req.method === 'POST' && path === '/api/auth/login') {
      if (fake.loginStatus !== 200) {
        json(res, fake.loginStatus, { error: { code: 'WG_ERR_AUTH_INVALID', message: 'bad credentials' } })
        return
      }
      json(res, 200, { token: fake.issueToken, user: 'svc', platform: 'sdk', expiresAt: null, service })
      return
    }
    if (!path.startsWith(prefix)) {
      json(res, 404, { error: { code: 'WG_ERR_NOT_FOUND', message: 'nothing here' } })
      return
    }
    const rest = path.slice(prefix.length)
    if (rest === '/events' && req.method === 'GET') {
      events(req, res)
      return
    }
    if (!authorized(req)) {
      json(res, 401, { error: { code: 'WG_ERR_AUTH_REQUIRED', message: 'no token' } })
      return
    }
    if (rest === '/register' && req.method === 'POST') {
      if (fake.registerStatus !== 200) {
        json(res, fake.registerStatus, { error: { code: 'FAKE', message: 'scripted' } })
        return
      }
      const { manifest, routes } = body as { manifest: string, routes: RouteState[] }
      const added: string[] = []
      for (const state of routes) {
        if (fake.routes.has(state.key)) continue
        added.push(state.key)
        fake.change({ type: 'route', state })
      }
      fake.manifest = manifest
      json(res, 200, { manifest, added, revision: fake.revision })
      return
    }
    if (rest.startsWith('/routes/') && req.method === 'PUT') {
      const key = decodeURIComponent(rest.slice('/routes/'.length))
      const { base, next } = body as { base: RouteState | null, next: RouteState }
      const current = fake.routes.get(key) ?? null
      if (canonicalJson(current) !== canonicalJson(base)) {
        json(res, 409, { error: { code: 'WG_ERR_CONFLICT', message: 'changed meanwhile', current } })
        return
      }
      const revision = fake.change({ type: 'route', state: next })
      json(res, 200, { state: next, revision })
      return
    }
    if (rest === '/maintenance' && req.method === 'PUT') {
      const { base, next } = body as { base: GlobalMaintenance, next: GlobalMaintenance }
      if (canonicalJson(fake.serviceMaintenance) !== canonicalJson(base)) {
        json(res, 409, { error: { code: 'WG_ERR_CONFLICT', message: 'changed meanwhile', current: fake.serviceMaintenance } })
        return
      }
      const revision = fake.change({ type: 'service', maintenance: next })
      json(res, 200, { state: next, revision })
      return
    }
    if (rest === '/audit' && req.method === 'POST') {
      json(res, 200, { written: true })
      return
    }
    json(res, 404, { error: { code: 'WG_ERR_NOT_FOUND', message: 'nothing here' } })
  }

  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return fake
}
