// waygate dashboard: confirmation dialogs and live updates, on top of pages that work without it.
// Everything shown comes from the server already escaped; this script only moves server HTML
// around and sets textContent, never builds markup from data.
/* global location, Node, DOMParser, CSS, EventSource, Element, HTMLFormElement, navigator */
'use strict'
;(function () {
  const meta = name => document.querySelector('meta[name="' + name + '"]')?.getAttribute('content') ?? ''
  const prefix = meta('waygate-prefix')
  // a signed-in page carries the prefix, which is '' when the admin is mounted at the root (a Waygate Server)
  const signedIn = document.querySelector('meta[name="waygate-prefix"]') !== null
  const csrf = meta('waygate-csrf')
  const csrfHeader = meta('waygate-csrf-header') || 'x-waygate-csrf'
  const loginPath = prefix + '/login'
  const dialog = document.getElementById('wg-dialog')
  const dialogBody = dialog?.querySelector('.dialog-body') ?? null
  const toast = document.getElementById('wg-toast')
  const live = document.getElementById('wg-live')
  const EVENTS = ['route_changed', 'route_removed', 'global_changed', 'audit', 'window_started', 'window_ended', 'resynced']

  function goToLogin () {
    location.assign(loginPath + '?next=' + encodeURIComponent(location.pathname + location.search))
  }

  function notify (message, isError) {
    if (toast === null) return
    const line = document.createElement('p')
    line.textContent = message
    if (isError) line.className = 'error'
    toast.append(line)
    setTimeout(() => line.remove(), 5000)
  }

  // ---- relative times ("5 min ago"), kept fresh while the page stays open ----
  const UNITS = [[86400000, 'd'], [3600000, 'h'], [60000, 'min'], [1000, 's']]
  function relative (ms, now) {
    const diff = ms - now
    const abs = Math.abs(diff)
    if (abs < 5000) return 'just now'
    for (const [size, unit] of UNITS) {
      if (abs >= size) {
        const n = Math.floor(abs / size)
        return diff < 0 ? n + ' ' + unit + ' ago' : 'in ' + n + ' ' + unit
      }
    }
    return 'just now'
  }
  function tick () {
    const now = Date.now()
    for (const time of document.querySelectorAll('time[data-relative]')) {
      const ms = Date.parse(time.dateTime)
      if (!Number.isNaN(ms)) time.textContent = relative(ms, now)
    }
  }
  setInterval(tick, 30000)

  // ---- live regions: fetch the page again and patch what changed, in place ----
  function sameKind (a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName && (a.id ?? '') === (b.id ?? '')
  }

  function withoutTraffic (node) {
    const copy = node.cloneNode(true)
    for (const cell of copy.querySelectorAll('[data-traffic]')) cell.remove()
    copy.classList.remove('updated')
    return copy
  }

  function onlyTrafficDiffers (current, next) {
    return current.querySelector('[data-traffic]') !== null && withoutTraffic(current).isEqualNode(withoutTraffic(next))
  }

  function morph (current, next) {
    if (!sameKind(current, next)) {
      current.replaceWith(next)
      return
    }
    if (current.nodeType !== Node.ELEMENT_NODE) {
      if (current.nodeValue !== next.nodeValue) current.nodeValue = next.nodeValue
      return
    }
    if (current.isEqualNode(next)) return
    // a row whose traffic chart alone moved is patched without the flash that marks a change of state
    const changedRow = current.nodeName === 'TR' && !onlyTrafficDiffers(current, next)
    for (const attr of [...current.attributes]) if (!next.hasAttribute(attr.name)) current.removeAttribute(attr.name)
    for (const attr of [...next.attributes]) if (current.getAttribute(attr.name) !== attr.value) current.setAttribute(attr.name, attr.value)
    const before = [...current.childNodes]
    const after = [...next.childNodes]
    if (before.length === after.length && before.every((node, i) => sameKind(node, after[i]))) {
      before.forEach((node, i) => morph(node, after[i]))
    } else {
      // a list that grew or shrank: the rows it did not have before flash, like changed ones
      const known = current.hasAttribute('data-live-list') ? new Set(before.map(node => node.id).filter(Boolean)) : null
      current.replaceChildren(...after)
      if (known !== null) {
        for (const node of after) if (node.nodeName === 'TR' && node.id && !known.has(node.id)) node.classList.add('updated')
      }
    }
    if (changedRow) current.classList.add('updated')
  }

  let timer = null
  let running = false
  let again = false

  function scheduleRefresh (delay) {
    clearTimeout(timer)
    timer = setTimeout(refresh, delay ?? 100)
  }

  async function refresh () {
    if (running) {
      again = true
      return
    }
    running = true
    try {
      const res = await fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store', credentials: 'same-origin' })
      if (res.redirected && new URL(res.url).pathname === loginPath) return goToLogin()
      if (!res.ok) return
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
      const focused = document.activeElement?.getAttribute('data-focus') ?? null
      for (const region of doc.querySelectorAll('[data-live][id]')) {
        const current = document.getElementById(region.id)
        if (current !== null) morph(current, document.importNode(region, true))
      }
      if (focused !== null && (document.activeElement === null || document.activeElement === document.body)) {
        document.querySelector('[data-focus="' + CSS.escape(focused) + '"]')?.focus()
      }
    } catch {
      // the next event or reconnection tries again
    } finally {
      running = false
      if (again) {
        again = false
        scheduleRefresh(0)
      }
    }
  }

  // ---- the change feed ----
  function setLive (state, text) {
    if (live === null) return
    live.hidden = false
    live.dataset.state = state
    live.textContent = text
  }

  let source = null
  let backoff = 1000
  let connectedBefore = false

  function connect () {
    setLive('connecting', 'Connecting…')
    source = new EventSource(prefix + '/api/events')
    source.addEventListener('hello', () => {
      setLive('live', 'Live')
      backoff = 1000
      // whatever happened while disconnected is fetched in one go
      if (connectedBefore) scheduleRefresh(0)
      connectedBefore = true
    })
    for (const type of EVENTS) source.addEventListener(type, () => scheduleRefresh())
    // rate limit policies are stored records: their pages follow them, changed here or on another instance
    source.addEventListener('record_changed', event => {
      let namespace = null
      try {
        namespace = JSON.parse(event.data).namespace
      } catch {
        // not JSON: not ours
      }
      if (namespace === 'waygate:rate-limits' && document.querySelector('[data-rate-limits]') !== null) scheduleRefresh()
      // a Waygate Server's services: their maintenance, instances and registrations are records too
      if (typeof namespace === 'string' && namespace.startsWith('waygate:service') && document.querySelector('#wg-services, #wg-service-card, #wg-rl-service') !== null) scheduleRefresh()
    })
    source.addEventListener('error', () => {
      setLive('reconnecting', 'Reconnecting…')
      // CONNECTING: the browser retries by itself; CLOSED: it gave up (server error or signed out)
      if (source.readyState === EventSource.CLOSED) {
        source.close()
        setTimeout(reconnect, backoff)
        backoff = Math.min(backoff * 2, 15000)
      }
    })
  }

  async function reconnect () {
    try {
      const res = await fetch(prefix + '/api/auth/me', { headers: { accept: 'application/json' }, cache: 'no-store' })
      if (res.status === 401) return goToLogin()
    } catch {
      // offline: try the stream anyway, it reports its own failure
    }
    connect()
  }

  // ---- polling, for what no event announces: the blocked-requests log each instance keeps ----
  const POLL_MS = 1000

  async function poll () {
    const marker = document.querySelector('[data-poll]')
    if (marker === null) return
    if (document.visibilityState !== 'hidden') {
      try {
        const res = await fetch(marker.getAttribute('data-poll'), { headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
        const body = res.ok ? await res.json() : null
        // the page carries the version it shows; a refresh brings the new one along
        if (typeof body?.version === 'string' && body.version !== marker.getAttribute('data-poll-version')) scheduleRefresh(0)
      } catch {
        // offline or signed out: the change feed reports it; try again later
      }
    }
    setTimeout(poll, POLL_MS)
  }

  // ---- confirmation dialogs ----
  let opener = null

  document.addEventListener('click', async event => {
    const link = event.target instanceof Element ? event.target.closest('a[data-dialog]') : null
    if (link === null || dialog === null || dialogBody === null || typeof dialog.showModal !== 'function') return
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
    event.preventDefault()
    opener = link
    link.setAttribute('aria-busy', 'true')
    try {
      const res = await fetch(link.href, { headers: { accept: 'text/html' }, cache: 'no-store' })
      if (res.redirected && new URL(res.url).pathname === loginPath) return goToLogin()
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
      const section = doc.querySelector('[data-confirm]')
      // anything unexpected: show the server's own page
      if (!res.ok || section === null) return location.assign(link.href)
      dialogBody.replaceChildren(document.importNode(section, true))
      dialog.showModal()
      dialogBody.querySelector('input:not([type=hidden]), textarea, select, button[type=submit]')?.focus()
    } catch {
      location.assign(link.href)
    } finally {
      link.removeAttribute('aria-busy')
    }
  })

  dialog?.addEventListener('click', event => {
    const close = event.target instanceof Element ? event.target.closest('[data-close]') : null
    if (close !== null) {
      event.preventDefault()
      dialog.close()
    }
  })

  dialog?.addEventListener('close', () => {
    dialogBody?.replaceChildren()
    const focusId = opener?.getAttribute('data-focus')
    const target = opener?.isConnected ? opener : (focusId ? document.querySelector('[data-focus="' + CSS.escape(focusId) + '"]') : null)
    target?.focus()
    opener = null
  })

  dialog?.addEventListener('submit', async event => {
    const form = event.target
    if (!(form instanceof HTMLFormElement)) return
    event.preventDefault()
    const button = form.querySelector('button[type=submit]')
    const error = dialog.querySelector('[data-form-error]')
    const title = dialog.querySelector('h1')?.textContent ?? 'Done'
    const subject = dialog.querySelector('.subject')?.textContent?.trim() ?? ''
    button?.setAttribute('aria-busy', 'true')
    if (button) button.disabled = true
    try {
      // getAttribute: form.action would be the form's own field named "action"
      const res = await fetch(form.getAttribute('action') ?? location.href, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', [csrfHeader]: csrf },
        body: new URLSearchParams(new FormData(form)),
        cache: 'no-store'
      })
      if (res.ok) {
        dialog.close()
        notify('Done: ' + title + (subject === '' ? '' : ' · ' + subject))
        scheduleRefresh(0)
        return
      }
      if (res.status === 401) return goToLogin()
      let message = 'The server answered ' + res.status
      try {
        const body = await res.json()
        if (typeof body?.error?.message === 'string') message = body.error.message
      } catch {
        // not JSON: keep the status line
      }
      if (error !== null) {
        error.textContent = message
        error.hidden = false
      } else {
        notify(message, true)
      }
    } catch (err) {
      if (error !== null) {
        error.textContent = 'Could not reach the server: ' + (err instanceof Error ? err.message : String(err))
        error.hidden = false
      }
    } finally {
      button?.removeAttribute('aria-busy')
      if (button) button.disabled = false
    }
  })

  // ---- copy buttons (a new service token, shown once) ----
  document.addEventListener('click', async event => {
    const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null
    if (button === null) return
    const input = document.getElementById(button.getAttribute('data-copy') ?? '')
    if (input === null) return
    try {
      await navigator.clipboard.writeText(input.value)
      button.textContent = 'Copied'
      notify('Copied to the clipboard')
    } catch {
      // no clipboard access (an insecure origin, or refused): select it for a manual copy
      input.focus()
      input.select()
      notify('Select and copy it by hand (Ctrl+C)', true)
    }
  })
  document.querySelector('[data-autofocus]')?.focus()

  if (signedIn && typeof EventSource === 'function') connect()
  if (signedIn && document.querySelector('[data-poll]') !== null) setTimeout(poll, POLL_MS)
})()
