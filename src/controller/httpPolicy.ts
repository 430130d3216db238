/**
 * Where http templates may send requests. They are made by the controller
 * (HttpTemplates.ts), whose network position is not a tenant's: it reaches
 * the cloud's metadata service (credentials of the controller's node), its
 * own /metrics and /healthz, and cluster services that NetworkPolicies keep
 * away from tenants' pods. So, unless the operator allows it in the
 * configmap (key `httpTemplates`), a request may not reach:
 *
 *  - loopback, unspecified and link-local addresses (127.0.0.0/8, ::1,
 *    0.0.0.0/8, ::, 169.254.0.0/16 where metadata services live, fe80::/10):
 *    `allowLoopbackAndLinkLocal: true` allows them (the embedded runtime does:
 *    the whole "cluster" is the user's own machine);
 *  - private networks (10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15,
 *    fc00::/7, fec0::/10): `allowPrivateNetworks: true` allows them, for
 *    operators whose workflows call internal services;
 *  - multicast and reserved ranges: never.
 *
 * IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d in any spelling,
 * ::a.b.c.d, NAT64 64:ff9b::/96) are judged by that address. Names are judged
 * by what they resolve to, at connection time, through the agent's `lookup`
 * (`guardedLookup`), so the address checked is the one connected to.
 */
import * as dns from "node:dns"
import { BlockList, isIP, type LookupFunction } from "node:net"

export interface HttpAddressPolicy {
  readonly allowLoopbackAndLinkLocal: boolean
  readonly allowPrivateNetworks: boolean
}

export const strictPolicy: HttpAddressPolicy = { allowLoopbackAndLinkLocal: false, allowPrivateNetworks: false }
export const openPolicy: HttpAddressPolicy = { allowLoopbackAndLinkLocal: true, allowPrivateNetworks: true }

const blockList = (ipv4: ReadonlyArray<[string, number]>, ipv6: ReadonlyArray<[string, number]>): BlockList => {
  const list = new BlockList()
  for (const [net, prefix] of ipv4) list.addSubnet(net, prefix, "ipv4")
  for (const [net, prefix] of ipv6) list.addSubnet(net, prefix, "ipv6")
  return list
}

const local = blockList(
  [["127.0.0.0", 8], ["0.0.0.0", 8], ["169.254.0.0", 16]],
  [["::1", 128], ["::", 128], ["fe80::", 10]]
)
const privateNetworks = blockList(
  [["10.0.0.0", 8], ["172.16.0.0", 12], ["192.168.0.0", 16], ["100.64.0.0", 10], ["198.18.0.0", 15]],
  [["fc00::", 7], ["fec0::", 10]]
)
const reserved = blockList(
  [["224.0.0.0", 4], ["240.0.0.0", 4]],
  [["ff00::", 8]]
)

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64), if any. */
const embeddedIpv4 = (ip6: string): string | undefined => {
  const words = expandIpv6(ip6)
  if (words === undefined) return undefined
  const mapped = words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff
  const compatible = words.slice(0, 6).every((w) => w === 0) && (words[6] !== 0 || words[7] > 1)
  const nat64 = words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)
  if (!mapped && !compatible && !nat64) return undefined
  return [words[6] >> 8, words[6] & 0xff, words[7] >> 8, words[7] & 0xff].join(".")
}

/** The eight 16-bit words of an IPv6 address (with an embedded dotted quad, if written so). */
const expandIpv6 = (ip6: string): Array<number> | undefined => {
  let text = ip6.toLowerCase()
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted !== null) {
    const parts = dotted[1]!.split(".").map(Number)
    text = text.slice(0, -dotted[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`
  }
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const head = halves[0] === "" ? [] : halves[0]!.split(":")
  const tail = halves.length === 2 ? (halves[1] === "" ? [] : halves[1]!.split(":")) : []
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0
  const all = [...head, ...Array<string>(Math.max(0, fill)).fill("0"), ...tail]
  if (all.length !== 8) return undefined
  const words = all.map((w) => parseInt(w, 16))
  return words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined
}

/** Why `address` (an IP literal) may not be reached under `policy`, or undefined when it may. */
export const blockedReason = (address: string, policy: HttpAddressPolicy): string | undefined => {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "")
  const family = isIP(bare)
  if (family === 0) return undefined
  if (family === 6) {
    const v4 = embeddedIpv4(bare)
    if (v4 !== undefined) return blockedReason(v4, policy)
  }
  const type = family === 4 ? "ipv4" : "ipv6"
  if (reserved.check(bare, type)) return `${bare} is a multicast or reserved address`
  if (!policy.allowLoopbackAndLinkLocal && local.check(bare, type)) {
    return `${bare} is a loopback, unspecified or link-local address (configmap httpTemplates.allowLoopbackAndLinkLocal)`
  }
  if (!policy.allowPrivateNetworks && privateNetworks.check(bare, type)) {
    return `${bare} is a private network address (configmap httpTemplates.allowPrivateNetworks)`
  }
  return undefined
}

/** Is `host` (a URL's hostname: a name or an IP literal) local or private whatever the policy? */
export const isLocalOrPrivateHost = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  if (h === "localhost" || h.endsWith(".localhost")) return true
  return blockedReason(h, strictPolicy) !== undefined
}

/** Why a URL's host may not be reached, judged before connecting (IP literals and `localhost`); names are judged by `guardedLookup`. */
export const hostBlockedReason = (host: string, policy: HttpAddressPolicy): string | undefined => {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  if ((h === "localhost" || h.endsWith(".localhost")) && !policy.allowLoopbackAndLinkLocal) {
    return `${host} is a loopback name (configmap httpTemplates.allowLoopbackAndLinkLocal)`
  }
  return blockedReason(h, policy)
}

/**
 * A `lookup` for the http agent that refuses a name resolving to any address
 * the policy forbids, so a name cannot smuggle in what an IP literal may not.
 */
export const guardedLookup = (policy: HttpAddressPolicy): LookupFunction =>
  ((hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | Array<dns.LookupAddress>, family?: number) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "", 0)
      for (const a of addresses) {
        const reason = blockedReason(a.address, policy)
        if (reason !== undefined) {
          const e: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${a.address}: ${reason}`)
          e.code = "EADDRBLOCKED"
          return callback(e, "", 0)
        }
      }
      if (options.all === true) return callback(null, addresses)
      const first = addresses[0]
      if (first === undefined) return callback(Object.assign(new Error(`${hostname}: no address`), { code: "ENOTFOUND" }), "", 0)
      return callback(null, first.address, first.family)
    })
  }) as LookupFunction
