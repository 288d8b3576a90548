import { BlockList, isIPv6 } from 'node:net'
import t from 'tap'
import { createIpMatcher, ipKey, ipRuleError } from '@waygate/core'

t.test('ipKey: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 by /64', async t => {
  t.equal(ipKey('203.0.113.7'), '203.0.113.7')
  t.equal(ipKey('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(ipKey('::FFFF:203.0.113.7'), '203.0.113.7')
  t.equal(ipKey('::ffff:cb00:7107'), '203.0.113.7')
  t.equal(ipKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(ipKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64', 'one /64, one key')
  t.equal(ipKey('2001:0DB8:0001:0002::1'), '2001:db8:1:2::/64', 'case and leading zeros do not matter')
  t.equal(ipKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(ipKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone is ignored')
  t.equal(ipKey('::1'), '0:0:0:0::/64')
  t.equal(ipKey('not an ip'), 'not an ip')
  t.equal(ipKey('1:2:3'), '1:2:3', 'unparseable addresses are kept as they are')
})

t.test('parses IPv6 the way node:net does', async t => {
  const good = ['::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::8', 'a:b::c:d',
    '::ffff:1.2.3.4', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:1.2.3.4', 'ABCD:ef01::']
  const bad = [':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', '1:2:3:4:5:6:7', ':1::', '1::2:', 'g::',
    '::1.2.3', '::1.2.3.256', '::01.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4::']
  for (const ip of good) {
    t.ok(isIPv6(ip), `node agrees ${ip} is valid`)
    t.match(ipKey(ip), /::\/64$|^\d+\.\d+\.\d+\.\d+$/, `${ip} has a key`)
    t.equal(ipRuleError(ip), null, ip)
  }
  for (const ip of bad) {
    t.notOk(isIPv6(ip), `node agrees ${ip} is invalid`)
    t.equal(ipKey(ip), ip, ip)
    t.not(ipRuleError(ip), null, ip)
  }
})

t.test('createIpMatcher matches addresses and CIDRs of both families like node:net BlockList', async t => {
  const rules = ['127.0.0.1', '10.0.0.0/8', '192.168.0.0/16', '172.16.0.0/12', '100.64.1.1/32', '2001:db8::/32', '::1', 'fe80::/10', '2001:db8:ffff:1::/64', '::ffff:198.51.100.0/120']
  const isExempt = createIpMatcher(rules)
  const oracle = new BlockList()
  for (const rule of rules) {
    const [address, prefix] = rule.split('/') as [string, string | undefined]
    const type = address.includes(':') ? 'ipv6' : 'ipv4'
    if (prefix === undefined) oracle.addAddress(address, type)
    else oracle.addSubnet(address, Number(prefix), type)
  }
  const samples = ['127.0.0.1', '127.0.0.2', '10.255.255.255', '11.0.0.0', '9.255.255.255', '192.168.3.4', '192.169.0.0',
    '172.31.255.255', '172.32.0.0', '100.64.1.1', '100.64.1.2', '198.51.100.77', '198.51.101.1', '0.0.0.0', '255.255.255.255',
    '::ffff:10.1.2.3', '::ffff:11.1.2.3', '::ffff:127.0.0.1', '2001:db8::1', '2001:db9::1', '2001:db8:ffff:1:2:3:4:5',
    '::1', '::2', 'fe80::1', 'febf:ffff::1', 'fec0::1', '::', '::ffff:198.51.100.1']
  for (const ip of samples) {
    const type = ip.includes(':') ? 'ipv6' : 'ipv4'
    t.equal(isExempt(ip), oracle.check(ip, type), `${ip}: ${String(oracle.check(ip, type))}`)
  }
  t.equal(isExempt('garbage'), false)
  t.equal(isExempt(''), false)
})

t.test('a random sample agrees with BlockList too', async t => {
  const rules = ['10.0.0.0/8', '203.0.113.128/25', '2001:db8:8000::/33', '2001:db8:0:7::/63']
  const isExempt = createIpMatcher(rules)
  const oracle = new BlockList()
  oracle.addSubnet('10.0.0.0', 8, 'ipv4')
  oracle.addSubnet('203.0.113.128', 25, 'ipv4')
  oracle.addSubnet('2001:db8:8000::', 33, 'ipv6')
  oracle.addSubnet('2001:db8:0:7::', 63, 'ipv6')
  let seed = 7
  const next = () => {
    seed = (seed + 0x6D2B79F5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return (x ^ (x >>> 14)) >>> 0
  }
  let mismatches = 0
  let hits = 0
  for (let i = 0; i < 5000; i++) {
    const v4 = [i % 3 === 0 ? 10 : 203, 0, 113, next() & 255].map((n, j) => j === 0 || i % 2 === 0 ? n : next() & 255).join('.')
    const v6 = `2001:db8:${(next() & 0x8001).toString(16)}:${(next() & 0x7).toString(16)}::${(next() & 0xffff).toString(16)}`
    for (const [ip, type] of [[v4, 'ipv4'], [v6, 'ipv6']] as const) {
      const expected = oracle.check(ip, type)
      if (expected) hits++
      if (isExempt(ip) !== expected) mismatches++
    }
  }
  t.equal(mismatches, 0)
  t.ok(hits > 500, `${hits} hits`)
})

t.test('a network with host bits set is the network; an empty list matches nothing', async t => {
  t.equal(createIpMatcher(['10.1.2.3/8'])('10.200.0.1'), true)
  t.equal(createIpMatcher(['::/0'])('1.2.3.4'), true, '::/0 covers IPv4 through its mapped form')
  t.equal(createIpMatcher(['0.0.0.0/0'])('8.8.8.8'), true)
  t.equal(createIpMatcher(['0.0.0.0/0'])('2001:db8::1'), false)
  t.equal(createIpMatcher([])('127.0.0.1'), false)
})

t.test('invalid entries are listed, each with its position', async t => {
  t.throws(() => createIpMatcher(['10.0.0.0/8', '10.0.0.0/33', 'localhost', '::1/129', '1.2.3.4/']), {
    code: 'WG_ERR_RATE_LIMIT_INVALID',
    message: /\/exemptIps\/1: "10\.0\.0\.0\/33" has a prefix longer than 32 bits; \/exemptIps\/2: "localhost" is not an IP address or CIDR; \/exemptIps\/3: "::1\/129" has a prefix longer than 128 bits; \/exemptIps\/4: "1\.2\.3\.4\/" has an invalid prefix length/
  })
  t.match(ipRuleError('010.0.0.1'), /not an IP address/, 'leading zeros are ambiguous')
  t.match(ipRuleError('fe80::1%eth0'), /not an IP address/)
})
