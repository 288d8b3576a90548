import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { redisServerBinary, type Teardown } from './redis-server.js'

// Real multi-node Redis topologies on loopback for tests: a Cluster of masters, and a master with
// a replica watched by three sentinels. Every process is SIGKILLed and its directory removed at
// teardown; nothing touches a shared Redis.

const HOST = '127.0.0.1'

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

function canBind (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, HOST, () => probe.close(() => resolve(true)))
  })
}

/**
 * A free loopback port; with `bus`, one whose Cluster bus port (port + 10000) is free as well.
 * Ports the OS hands out are spread widely, so two test files rarely draw the same one.
 */
async function freePort (bus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer()
      probe.once('error', reject)
      probe.listen(0, HOST, () => {
        const address = probe.address()
        probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
      })
    })
    if (!bus) return port
    if (port + 10000 < 65536 && await canBind(port + 10000)) return port
  }
  throw new Error('no free port pair for a Cluster node')
}

/** Sends one command (RESP) to a loopback port and resolves the raw reply text. */
function send (port: number, args: string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection({ host: HOST, port })
    let data = ''
    const timer = setTimeout(() => {
      conn.destroy()
      reject(new Error(`no reply to ${args[0] ?? ''} on ${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    conn.setEncoding('utf8')
    conn.on('connect', () => {
      conn.write(`*${args.length}\r\n` + args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
    })
    conn.on('data', chunk => {
      data += chunk
      const bulk = /^\$(-?\d+)\r\n/.exec(data)
      const complete = /^[+\-:]/.test(data)
        ? data.endsWith('\r\n')
        : bulk !== null && (bulk[1] === '-1' || Buffer.byteLength(data) >= bulk[0].length + Number(bulk[1]) + 2)
      // arrays (sentinel replies) are only read by the tests through ioredis
      if (complete) {
        clearTimeout(timer)
        conn.end()
        resolve(data.trimEnd())
      }
    })
    conn.on('error', err => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** One redis-server (or sentinel) process on a loopback port. */
export interface RedisNode {
  readonly port: number
  readonly running: boolean
  readonly pid: number | undefined
  /** SIGKILL, as a crash would; resolves once it exited. */
  kill (): Promise<void>
  /** Starts it again with the same arguments (as a supervisor would after a crash), empty. */
  start (): Promise<void>
}

async function startNode (dir: string, name: string, args: string[], port: number): Promise<RedisNode> {
  const binary = redisServerBinary()
  let running = false
  let proc: ChildProcess | null = null
  let exited: Promise<void> = Promise.resolve()
  async function start (): Promise<void> {
    if (running) throw new Error(`${name} on ${port} is already running`)
    const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
    proc = child
    running = true
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', chunk => { stderr += chunk })
    exited = new Promise<void>(resolve => {
      child.once('exit', () => { running = false; resolve() })
      child.once('error', err => { stderr += err.message; running = false; resolve() })
    })
    const deadline = Date.now() + 5000
    for (;;) {
      if (!running) throw new Error(`${name} on ${port} exited at start: ${stderr.trim()}`)
      try {
        if (await send(port, ['PING'], 500) === '+PONG') return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${name} did not answer on ${port} within 5 s: ${stderr.trim()}`)
      await sleep(20)
    }
  }
  await start()
  return {
    port,
    get running () { return running },
    get pid () { return proc?.pid },
    start,
    async kill () {
      if (!running || proc === null) return
      proc.kill('SIGCONT')
      proc.kill('SIGKILL')
      await exited
    }
  }
}

function run (file: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/** `redis-cli` next to the redis-server the tests use (REDIS_CLI overrides). */
function redisCliBinary (): string {
  if (process.env.REDIS_CLI !== undefined) return process.env.REDIS_CLI
  const server = redisServerBinary()
  return server.endsWith('redis-server') ? server.slice(0, -'redis-server'.length) + 'redis-cli' : 'redis-cli'
}

/** A Redis Cluster of masters on loopback (no replicas), every slot assigned, `cluster_state:ok`. */
export interface RedisCluster {
  /** The nodes' addresses, what `new Cluster(nodes)` takes. */
  readonly nodes: Array<{ host: string, port: number }>
  /** A new ioredis Cluster client of it, disconnected at teardown. */
  client (options?: ClusterOptions): Cluster
  /** The port of the master serving `key`'s slot. */
  masterOf (key: string): Promise<number>
}

/**
 * Starts `masters` (default 3) `redis-server --cluster-enabled yes` processes on free loopback
 * ports, joins them with `redis-cli --cluster create … --cluster-replicas 0`, and waits until
 * every node reports `cluster_state:ok`. About 2 s.
 */
export async function startRedisCluster (t: Teardown, options: { masters?: number } = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const dir = mkdtempSync(join(tmpdir(), 'wg-cluster-'))
  const started: RedisNode[] = []
  const clients: Cluster[] = []
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await Promise.all(started.map(node => node.kill()))
    rmSync(dir, { recursive: true, force: true })
  })
  for (let i = 0; i < masters; i++) {
    const port = await freePort(true)
    started.push(await startNode(dir, 'cluster node', [
      '--cluster-enabled', 'yes',
      '--port', String(port),
      '--bind', HOST,
      '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--loglevel', 'warning',
      '--daemonize', 'no'
    ], port))
  }
  const nodes = started.map(node => ({ host: HOST, port: node.port }))
  await run(redisCliBinary(), ['--cluster', 'create', ...nodes.map(n => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  const deadline = Date.now() + 15_000
  for (;;) {
    const states = await Promise.all(nodes.map(n => send(n.port, ['CLUSTER', 'INFO']).catch(() => '')))
    if (states.every(info => info.includes('cluster_state:ok'))) break
    if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok within 15 s:\n${states.join('\n')}`)
    await sleep(50)
  }
  return {
    nodes,
    client (clientOptions = {}) {
      const c = new Cluster(nodes, clientOptions)
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    async masterOf (key) {
      const reply = await send(nodes[0]!.port, ['CLUSTER', 'KEYSLOT', key])
      const slot = Number(reply.slice(1))
      const c = new Redis({ host: HOST, port: nodes[0]!.port, lazyConnect: true })
      c.on('error', () => {})
      try {
        const ranges = await c.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
        const range = ranges.find(([from, to]) => slot >= from && slot <= to)
        if (range === undefined) throw new Error(`no node serves slot ${slot}`)
        return range[2][1]
      } finally {
        c.disconnect()
      }
    }
  }
}

/** One master, one replica and three sentinels on loopback, with quick failure detection. */
export interface RedisSentinel {
  /** The name the sentinels monitor the master by. */
  readonly name: string
  /** The sentinels' addresses, what ioredis's `sentinels` option takes. */
  readonly sentinels: Array<{ host: string, port: number }>
  /** The data nodes, the first one the master at start. */
  readonly servers: readonly RedisNode[]
  /** A new ioredis client of the master through the sentinels, disconnected at teardown. */
  client (options?: RedisOptions): Redis
  /** The port the sentinels currently name as the master (asked of a running sentinel). */
  masterPort (): Promise<number>
  /** The data node that is master now. */
  master (): Promise<RedisNode>
  /** Sends one command to a data node (by port) and resolves the raw reply. */
  command (port: number, ...args: string[]): Promise<string>
}

/**
 * Starts a master, `replicas` (default 1) replicas of it and three sentinels (quorum 2) on free loopback ports,
 * sentinel configs in a temp dir (`redis-server <conf> --sentinel`), and waits until each
 * sentinel knows the replica and the two other sentinels, so a failover can be elected at once.
 * `downAfterMs` (default 500) and `failoverTimeoutMs` (default 2000) keep a failover to a few seconds.
 */
export async function startRedisSentinel (t: Teardown, options: { downAfterMs?: number, failoverTimeoutMs?: number, replicas?: number } = {}): Promise<RedisSentinel> {
  const replicaCount = options.replicas ?? 1
  const downAfterMs = options.downAfterMs ?? 500
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 2000
  const name = 'wgmaster'
  const dir = mkdtempSync(join(tmpdir(), 'wg-sentinel-'))
  const started: RedisNode[] = []
  const clients: Redis[] = []
  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await Promise.all(started.map(node => node.kill()))
    rmSync(dir, { recursive: true, force: true })
  })
  const dataArgs = (port: number): string[] => [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--dbfilename', `dump-${port}.rdb`,
    '--loglevel', 'warning',
    '--daemonize', 'no',
    // a promoted replica must accept writes; a replica must answer reads while it syncs
    '--replica-serve-stale-data', 'yes'
  ]
  const masterPort = await freePort()
  const master = await startNode(dir, 'master', dataArgs(masterPort), masterPort)
  started.push(master)
  const replicas: RedisNode[] = []
  for (let i = 0; i < replicaCount; i++) {
    const replicaPort = await freePort()
    const replica = await startNode(dir, 'replica', [...dataArgs(replicaPort), '--replicaof', HOST, String(masterPort)], replicaPort)
    started.push(replica)
    replicas.push(replica)
  }
  const deadline = Date.now() + 15_000
  for (const replica of replicas) {
    while (!(await send(replica.port, ['INFO', 'replication']).catch(() => '')).includes('master_link_status:up')) {
      if (Date.now() > deadline) throw new Error('a replica did not sync with the master within 15 s')
      await sleep(50)
    }
  }

  const sentinelPorts: number[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const conf = join(dir, `sentinel-${port}.conf`)
    // sentinel rewrites its config file (known peers, epochs): one writable file each
    writeFileSync(conf, [
      `port ${port}`,
      `bind ${HOST}`,
      `dir ${dir}`,
      'daemonize no',
      'loglevel warning',
      `sentinel monitor ${name} ${HOST} ${masterPort} 2`,
      `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
      `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
      `sentinel parallel-syncs ${name} 1`,
      ''
    ].join('\n'))
    started.push(await startNode(dir, 'sentinel', [conf, '--sentinel'], port))
    sentinelPorts.push(port)
  }
  const sentinels = sentinelPorts.map(port => ({ host: HOST, port }))

  async function ask (port: number, ...args: string[]): Promise<unknown> {
    const c = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    c.on('error', () => {})
    try {
      await c.connect()
      return await c.call('SENTINEL', ...args)
    } finally {
      c.disconnect()
    }
  }
  const known = async (port: number): Promise<boolean> => {
    const fields = await ask(port, 'MASTER', name).catch(() => []) as string[]
    const at = (field: string): string | undefined => fields[fields.indexOf(field) + 1]
    return at('num-slaves') === String(replicaCount) && at('num-other-sentinels') === '2'
  }
  while (!(await Promise.all(sentinelPorts.map(known))).every(Boolean)) {
    if (Date.now() > deadline + 15_000) throw new Error('the sentinels did not discover each other and the replica within 30 s')
    await sleep(100)
  }

  const servers = [master, ...replicas]
  async function currentMasterPort (): Promise<number> {
    for (const port of sentinelPorts) {
      const reply = await ask(port, 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null) as [string, string] | null
      if (Array.isArray(reply)) return Number(reply[1])
    }
    throw new Error('no sentinel answered')
  }
  return {
    name,
    sentinels,
    servers,
    client (clientOptions = {}) {
      const c = new Redis({ sentinels, name, ...clientOptions })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    masterPort: currentMasterPort,
    async master () {
      const port = await currentMasterPort()
      const node = servers.find(s => s.port === port)
      if (node === undefined) throw new Error(`the sentinels name ${port}, not one of the data nodes`)
      return node
    },
    command: (port, ...args) => send(port, args)
  }
}
