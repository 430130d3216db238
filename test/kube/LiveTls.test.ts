/**
 * The live client's TLS (src/kube/live/config.ts `buildTransport`) against an
 * API server on 127.0.0.1 that requires a client certificate, with a server
 * certificate valid only for `kube.internal`: the connection's CA, client
 * certificate, TLS server name and `insecure-skip-tls-verify` each do what
 * client-go does with them, for requests and for watches.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Stream } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { TLSSocket } from "node:tls"
import type { ClusterEndpoint, ConnectionSpec } from "../../src/kube/api/Connection.js"
import { KubeConnector } from "../../src/kube/api/KubeConnector.js"
import { LiveKubeConnector } from "../../src/kube/live/LiveKubeConnector.js"

interface Pki {
  readonly ca: string
  readonly serverKey: string
  readonly serverCert: string
  readonly clientKey: string
  readonly clientCert: string
}

/** A CA, a server certificate for DNS:kube.internal only, and a client certificate (CN=flotilla-controller). */
const makePki = (dir: string): Pki => {
  const file = (name: string) => path.join(dir, name)
  const openssl = (...args: Array<string>) => execFileSync("openssl", args, { stdio: "ignore" })
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=test-ca", "-keyout", file("ca.key"), "-out", file("ca.crt"))
  const issue = (name: string, subject: string, extensions: string) => {
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject,
      "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`))
    fs.writeFileSync(file(`${name}.ext`), extensions)
    openssl("x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial",
      "-days", "1", "-extfile", file(`${name}.ext`), "-out", file(`${name}.crt`))
  }
  issue("server", "/CN=kube-apiserver", "subjectAltName=DNS:kube.internal\nextendedKeyUsage=serverAuth\n")
  issue("client", "/CN=flotilla-controller", "extendedKeyUsage=clientAuth\n")
  const read = (name: string) => fs.readFileSync(file(name), "utf8")
  return { ca: read("ca.crt"), serverKey: read("server.key"), serverCert: read("server.crt"), clientKey: read("client.key"), clientCert: read("client.crt") }
}

/** The API server: answers a GET with the client certificate's CN, and a watch with one event. */
const apiServer = Effect.acquireRelease(
  Effect.callback<{ pki: Pki; port: number; dir: string; server: https.Server }>((resume) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flotilla-tls-"))
    const pki = makePki(dir)
    const server = https.createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN
      res.writeHead(200, { "Content-Type": "application/json" })
      if ((req.url ?? "").includes("watch=true")) {
        res.end(JSON.stringify({ type: "ADDED", object: { kind: "Pod", metadata: { name: String(cn), namespace: "ns", resourceVersion: "2" } } }) + "\n")
      } else {
        res.end(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: "ns" }, data: { caller: String(cn) } }))
      }
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ pki, port: (server.address() as AddressInfo).port, dir, server })))
  }),
  ({ dir, server }) =>
    Effect.callback<void>((resume) => {
      fs.rmSync(dir, { recursive: true, force: true })
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

const b64 = (pem: string) => Buffer.from(pem).toString("base64")

const specOf = (srv: { pki: Pki; port: number }, endpoint: Partial<ClusterEndpoint>, withClientCert = true): ConnectionSpec => ({
  cluster: "tls",
  user: "controller",
  endpoint: { server: `https://127.0.0.1:${srv.port}`, ...endpoint },
  auth: withClientCert
    ? { _tag: "ClientCertificate", certificateData: b64(srv.pki.clientCert), keyData: Redacted.make(b64(srv.pki.clientKey)) }
    : { _tag: "Anonymous" }
})

const getCaller = (spec: ConnectionSpec) =>
  Effect.gen(function*() {
    const client = yield* (yield* KubeConnector).connect(spec)
    const cm = yield* client.get("configmaps", "ns", "cm")
    return (cm["data"] as { caller: string }).caller
  }).pipe(Effect.scoped, Effect.provide(LiveKubeConnector.layer))

describe("live client TLS", () => {
  it.live("the CA, the client certificate and the TLS server name make a verified mutual-TLS connection, for requests and watches", () =>
    Effect.gen(function*() {
      const srv = yield* apiServer
      const spec = specOf(srv, { certificateAuthorityData: b64(srv.pki.ca), tlsServerName: "kube.internal" })
      assert.strictEqual(yield* getCaller(spec), "flotilla-controller")
      const events = yield* Effect.gen(function*() {
        const client = yield* (yield* KubeConnector).connect(spec)
        return yield* Stream.runCollect(client.watch("pods", "ns", { resourceVersion: "1" }))
      }).pipe(Effect.scoped, Effect.provide(LiveKubeConnector.layer))
      assert.deepStrictEqual(events.map((e) => (e.type === "ADDED" ? e.object.metadata.name : e.type)), ["OPENED", "flotilla-controller"])
    }))

  it.live("the server certificate is checked: a name it does not carry, or a CA that did not sign it, fail; insecure-skip-tls-verify skips the check", () =>
    Effect.gen(function*() {
      const srv = yield* apiServer
      const wrongName = yield* Effect.flip(getCaller(specOf(srv, { certificateAuthorityData: b64(srv.pki.ca) })))
      assert.strictEqual(wrongName.reason, "Unavailable")
      assert.include(wrongName.detail, "ERR_TLS_CERT_ALTNAME_INVALID")
      const systemRoots = yield* Effect.flip(getCaller(specOf(srv, { tlsServerName: "kube.internal" })))
      assert.strictEqual(systemRoots.reason, "Unavailable")
      assert.match(systemRoots.detail, /certificate/i)
      assert.strictEqual(yield* getCaller(specOf(srv, { insecureSkipTlsVerify: true })), "flotilla-controller")
    }))

  it.live("without a client certificate the server refuses the connection", () =>
    Effect.gen(function*() {
      const srv = yield* apiServer
      const error = yield* Effect.flip(getCaller(specOf(srv, { certificateAuthorityData: b64(srv.pki.ca), tlsServerName: "kube.internal" }, false)))
      assert.strictEqual(error.reason, "Unavailable")
    }))
})
