/**
 * The Swagger UI theme that shows waygate's state: a site-wide maintenance banner, badges on
 * operations in maintenance, and a status chip otherwise. It is served by the docs UI itself as a
 * theme file (no inline script, no CDN), so it works under `@fastify/swagger-ui`'s `staticCSP`.
 *
 * The script polls the JSON status endpoint next to the docs (`<docs prefix>/waygate-status`),
 * found from its own URL. It builds every node with `textContent`: reasons are operator input
 * and never reach `innerHTML`.
 */

/** File name of the theme script under `<docs prefix>/static/theme/`. */
export const BANNER_SCRIPT_FILE = 'waygate.js'
/** File name of the theme stylesheet under `<docs prefix>/static/theme/`. */
export const BANNER_STYLE_FILE = 'waygate.css'
/** Path of the status endpoint, relative to the docs prefix. */
export const STATUS_PATH = '/waygate-status'

/** The theme script; `pollIntervalMs` is the only value put into it. */
export function bannerScript (pollIntervalMs: number): string {
  if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 250) throw new RangeError('pollIntervalMs must be an integer >= 250')
  return `/* waygate: live route state in Swagger UI */
(function () {
  'use strict'
  var POLL_MS = ${pollIntervalMs}
  var MARKER = ${JSON.stringify('/static/theme/' + BANNER_SCRIPT_FILE)}
  var src = document.currentScript && document.currentScript.src ? document.currentScript.src : ''
  var at = src.lastIndexOf(MARKER)
  var base = at === -1 ? location.pathname.replace(/\\/$/, '') : src.slice(0, at)
  var statusUrl = base + ${JSON.stringify(STATUS_PATH)}

  var current = null
  var lastText = ''
  var firstLayout = null
  var timer = null
  var frame = 0

  function node (tag, className, text) {
    var el = document.createElement(tag)
    if (className) el.className = className
    if (text !== undefined && text !== null) el.textContent = String(text)
    return el
  }

  function reloadButton () {
    var button = node('button', 'waygate-reload', 'Operations changed: reload')
    button.type = 'button'
    button.addEventListener('click', function () { location.reload() })
    return button
  }

  function renderStatus () {
    var g = current.global
    var banner = document.getElementById('waygate-banner')
    var chip = document.getElementById('waygate-chip')
    var changed = firstLayout !== null && current.layout !== firstLayout
    if (g.enabled) {
      if (chip) chip.remove()
      if (!banner) {
        banner = node('div', 'waygate-banner')
        banner.id = 'waygate-banner'
        banner.setAttribute('role', 'alert')
        document.body.insertBefore(banner, document.body.firstChild)
      }
      var parts = [
        node('div', 'waygate-banner-title', 'Site-wide maintenance in progress'),
        node('div', 'waygate-banner-reason', g.reason || 'The API is temporarily unavailable.')
      ]
      if (g.exemptPaths && g.exemptPaths.length > 0) {
        parts.push(node('div', 'waygate-banner-detail', 'Still available: ' + g.exemptPaths.join(', ')))
      }
      if (g.since) parts.push(node('div', 'waygate-banner-detail', 'Since ' + new Date(g.since).toUTCString()))
      if (changed) parts.push(reloadButton())
      banner.replaceChildren.apply(banner, parts)
      return
    }
    if (banner) banner.remove()
    if (!chip) {
      chip = node('div', 'waygate-chip')
      chip.id = 'waygate-chip'
      chip.setAttribute('role', 'status')
      document.body.appendChild(chip)
    }
    var count = current.maintenance.length
    chip.className = count > 0 ? 'waygate-chip waygate-chip-warn' : 'waygate-chip'
    chip.title = count > 0 ? 'Some operations are in maintenance' : 'No site-wide maintenance: routes serve normally'
    var items = [
      node('span', 'waygate-chip-dot'),
      node('span', null, count > 0 ? count + (count === 1 ? ' operation' : ' operations') + ' in maintenance' : 'All systems operational')
    ]
    if (changed) items.push(reloadButton())
    chip.replaceChildren.apply(chip, items)
  }

  function applyBadges () {
    frame = 0
    if (current === null) return
    var inMaintenance = {}
    current.maintenance.forEach(function (item) { inMaintenance[item.method + ' ' + item.path] = item })
    var blocks = document.querySelectorAll('#swagger-ui .opblock')
    for (var i = 0; i < blocks.length; i++) {
      var block = blocks[i]
      var method = block.querySelector('.opblock-summary-method')
      var path = block.querySelector('.opblock-summary [data-path]')
      if (!method || !path) continue
      var item = inMaintenance[method.textContent.trim().toUpperCase() + ' ' + path.getAttribute('data-path')]
      var badge = block.querySelector('.waygate-badge')
      if (item) {
        if (!block.classList.contains('waygate-maintenance')) block.classList.add('waygate-maintenance')
        var title = item.reason ? 'Maintenance: ' + item.reason : 'In maintenance'
        if (!badge) {
          badge = node('span', 'waygate-badge', 'Maintenance')
          path.parentNode.appendChild(badge)
        }
        if (badge.title !== title) badge.title = title
      } else {
        if (block.classList.contains('waygate-maintenance')) block.classList.remove('waygate-maintenance')
        if (badge) badge.remove()
      }
    }
  }

  function scheduleBadges () {
    if (frame === 0) frame = requestAnimationFrame(applyBadges)
  }

  function update (status) {
    if (!status || !status.global || !Array.isArray(status.maintenance)) return
    var text = JSON.stringify(status)
    if (text === lastText) return
    lastText = text
    current = status
    if (firstLayout === null) firstLayout = status.layout
    renderStatus()
    scheduleBadges()
  }

  function schedule () {
    clearTimeout(timer)
    timer = setTimeout(poll, POLL_MS)
  }

  function poll () {
    if (document.hidden) {
      schedule()
      return
    }
    fetch(statusUrl, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : null })
      .then(update)
      .catch(function () { /* keep the last known state; the next poll retries */ })
      .then(schedule)
  }

  // Swagger UI renders operations after the document loads and again on every expand: badge them each time
  var root = document.getElementById('swagger-ui') || document.body
  new MutationObserver(scheduleBadges).observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: ['class'] })
  document.addEventListener('visibilitychange', function () { if (!document.hidden) poll() })
  poll()
})()
`
}

/** The theme stylesheet. */
export const BANNER_STYLE = `/* waygate: live route state in Swagger UI */
.waygate-banner {
  position: sticky; top: 0; z-index: 10000;
  padding: 14px 24px; text-align: center;
  background: linear-gradient(135deg, #b71c1c 0%, #d32f2f 100%); color: #fff;
  font-family: -apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, sans-serif;
  box-shadow: 0 3px 12px rgba(0, 0, 0, 0.35);
}
.waygate-banner-title { font-size: 18px; font-weight: 800; letter-spacing: 0.06em; text-transform: uppercase; }
.waygate-banner-reason { margin-top: 4px; font-size: 15px; overflow-wrap: anywhere; }
.waygate-banner-detail { margin-top: 4px; font-size: 12px; opacity: 0.85; overflow-wrap: anywhere; }
.waygate-chip {
  position: fixed; right: 16px; bottom: 16px; z-index: 10000;
  display: flex; align-items: center; gap: 8px; padding: 7px 14px; border-radius: 999px;
  background: #1b5e20; color: #fff; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25);
  font: 600 13px -apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, sans-serif;
}
.waygate-chip.waygate-chip-warn { background: #e65100; }
.waygate-chip-dot { width: 8px; height: 8px; border-radius: 50%; background: #69f0ae; }
.waygate-chip-warn .waygate-chip-dot { background: #ffe0b2; }
.waygate-reload {
  margin: 8px 0 0; padding: 4px 10px; border: 0; border-radius: 4px; cursor: pointer;
  background: #fff; color: #b71c1c; font-weight: 700;
}
.waygate-chip .waygate-reload { margin: 0 0 0 6px; color: #1b5e20; }
.swagger-ui .opblock.waygate-maintenance { border-left: 5px solid #ef6c00; }
.waygate-badge {
  display: inline-block; margin-left: 10px; padding: 2px 8px; border-radius: 3px;
  background: #ef6c00; color: #fff; vertical-align: middle; white-space: nowrap;
  font: 700 10px -apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, sans-serif;
  letter-spacing: 0.06em; text-transform: uppercase;
}
`
