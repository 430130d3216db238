/**
 * Kubeconfig parsing and validation: the controller's own (trusted)
 * argo-kubeconfig and workflows' (untrusted) `<serviceAccount>-kubeconfig`,
 * both turned into ConnectionSpecs.
 */
export * from "./Kubeconfig.js"
export * from "./SystemKubeconfig.js"
export * from "./UserKubeconfig.js"
export * from "./LocalKubeconfig.js"
