/** Shared kubeconfig texts for the kubeconfig tests. */
import { Effect } from "effect"
import type { Kubeconfig } from "../../src/kubeconfig/index.js"
import { parseKubeconfig } from "../../src/kubeconfig/index.js"

export const SYSTEM_SOURCE = "secret argo/argo-kubeconfig"
export const USER_SOURCE = "secret local/workflow-kubeconfig"

/** Distinctive secret values: no error message may ever contain them. */
export const SYSTEM_TOKEN = "sys-token-0123456789abcdef"
export const USER_TOKEN = "user-token-fedcba9876543210"
export const CA_DATA = Buffer.from("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n").toString("base64")
export const CERT_DATA = Buffer.from("-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n").toString("base64")
export const KEY_DATA = Buffer.from("-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n")
  .toString("base64")

export const SEED_SYSTEM = `apiVersion: v1
kind: Config
clusters:
  - name: cluster-1
    cluster:
      server: https://cluster-1.example:6443
      certificate-authority-data: ${CA_DATA}
      tls-server-name: kubernetes
contexts:
  - name: cluster-1
    context:
      cluster: cluster-1
      namespace: remote
      user: cluster-1
current-context: cluster-1
preferences: {}
users:
  - name: cluster-1
    user:
      token: ${SYSTEM_TOKEN}
`

/** The user kubeconfig from the seed example: no clusters section. */
export const SEED_USER = `apiVersion: v1
contexts:
  - context:
      cluster: cluster-1
      namespace: remote
      user: cluster-1
    name: cluster-1
current-context: cluster-1
kind: Config
preferences: { }
users:
  - name: cluster-1
    user:
      token: ${USER_TOKEN}
`

export const parse = (text: string, source = SYSTEM_SOURCE): Effect.Effect<Kubeconfig, unknown> =>
  parseKubeconfig(text, source)
