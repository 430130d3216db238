import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as YAML from "yaml"

const k8s = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "k8s")

const yamlFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e.name) ? [p] : []
  })

interface Doc {
  readonly apiVersion?: string
  readonly kind?: string
  readonly metadata?: { readonly name?: string; readonly namespace?: string }
  readonly spec?: Record<string, any>
  readonly [key: string]: unknown
}

const docs = (file: string): Array<Doc> =>
  YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`)
    return d.toJS() as Doc
  }).filter((d) => d !== null)

const all = yamlFiles(k8s).map((file) => ({ file: path.relative(k8s, file), docs: docs(file) }))
const byKind = (kind: string) => all.flatMap((f) => f.docs.filter((d) => d.kind === kind).map((d) => ({ file: f.file, doc: d })))

describe("k8s manifests", () => {
  it("every document parses and has apiVersion, kind and metadata.name", () => {
    assert.isAbove(all.length, 10)
    for (const { file, docs } of all) {
      assert.isAbove(docs.length, 0, file)
      for (const d of docs) {
        assert.isString(d.apiVersion, file)
        assert.isString(d.kind, file)
        assert.isString(d.metadata?.name, `${file}: ${d.kind}`)
      }
    }
  })

  it("kustomizations only reference files and folders that exist", () => {
    for (const { file, doc } of byKind("Kustomization")) {
      for (const r of (doc as { resources?: Array<string> }).resources ?? []) {
        assert.isTrue(fs.existsSync(path.join(k8s, path.dirname(file), r)), `${file} -> ${r}`)
      }
    }
  })

  it("has the seven Argo CRDs in upstream's minimal shape", () => {
    const crds = byKind("CustomResourceDefinition").filter((c) => c.file.startsWith("crd/"))
    assert.deepStrictEqual(crds.map((c) => c.doc.metadata!.name).sort(), [
      "clusterworkflowtemplates.argoproj.io",
      "cronworkflows.argoproj.io",
      "workflowartifactgctasks.argoproj.io",
      "workflows.argoproj.io",
      "workflowtaskresults.argoproj.io",
      "workflowtasksets.argoproj.io",
      "workflowtemplates.argoproj.io"
    ])
    for (const { doc } of crds) {
      assert.strictEqual(doc.apiVersion, "apiextensions.k8s.io/v1")
      const spec = doc.spec!
      assert.strictEqual(spec.group, "argoproj.io")
      assert.strictEqual(`${spec.names.plural}.${spec.group}`, doc.metadata!.name)
      assert.strictEqual(spec.versions.length, 1)
      const version = spec.versions[0]
      assert.strictEqual(version.name, "v1alpha1")
      assert.isTrue(version.served && version.storage)
      assert.strictEqual(version.schema.openAPIV3Schema.type, "object")
      // apiextensions/v1: a structural schema; preserve-unknown objects are typed.
      for (const [name, prop] of Object.entries<any>(version.schema.openAPIV3Schema.properties)) {
        assert.isString(prop.type, `${doc.metadata!.name}.${name}`)
      }
      // only the artifact GC tasks have a status subresource, as upstream's: their GC pod patches `status`
      assert.deepStrictEqual(
        version.subresources ?? {},
        doc.metadata!.name === "workflowartifactgctasks.argoproj.io" ? { status: {} } : {},
        `${doc.metadata!.name}: status subresource`
      )
    }
    const wf = crds.find((c) => c.doc.metadata!.name === "workflows.argoproj.io")!.doc.spec!
    assert.deepStrictEqual(wf.names.shortNames, ["wf"])
    assert.strictEqual(wf.scope, "Namespaced")
    const props = wf.versions[0].schema.openAPIV3Schema.properties
    for (const key of ["spec", "status"]) {
      assert.strictEqual(props[key].type, "object")
      assert.isTrue(props[key]["x-kubernetes-preserve-unknown-fields"])
      assert.strictEqual(props[key]["x-kubernetes-map-type"], "atomic")
    }
    assert.deepStrictEqual(
      wf.versions[0].additionalPrinterColumns.map((c: any) => [c.name, c.jsonPath]),
      [["Status", ".status.phase"], ["Age", ".status.startedAt"], ["Message", ".status.message"]]
    )
    const cwft = crds.find((c) => c.doc.metadata!.name === "clusterworkflowtemplates.argoproj.io")!.doc.spec!
    assert.strictEqual(cwft.scope, "Cluster")
  })

  it("the remote cluster gets the same task-result CRD and no create on pods for the controller", () => {
    const remote = all.find((f) => f.file === path.join("rbac", "remote-cluster.yaml"))!.docs
    const local = all.find((f) => f.file === path.join("crd", "argoproj.io_workflowtaskresults.yaml"))!.docs[0]
    assert.deepStrictEqual(remote.find((d) => d.kind === "CustomResourceDefinition" && d.metadata!.name === "workflowtaskresults.argoproj.io"), local)
    const gcTasks = all.find((f) => f.file === path.join("crd", "argoproj.io_workflowartifactgctasks.yaml"))!.docs[0]
    assert.deepStrictEqual(remote.find((d) => d.kind === "CustomResourceDefinition" && d.metadata!.name === "workflowartifactgctasks.argoproj.io"), gcTasks)
    const role = remote.find((d) => d.kind === "ClusterRole" && d.metadata!.name === "flotilla-remote") as any
    const verbsOn = (resource: string) => role.rules.filter((r: any) => r.resources.includes(resource)).flatMap((r: any) => r.verbs).sort()
    assert.deepStrictEqual(verbsOn("pods"), ["delete", "list", "watch"])
    assert.deepStrictEqual(verbsOn("workflowtaskresults"), ["delete", "deletecollection", "list", "watch"])
    const userRole = remote.find((d) => d.kind === "Role" && d.metadata!.name === "remote") as any
    assert.deepStrictEqual(userRole.rules, [
      { apiGroups: [""], resources: ["pods"], verbs: ["create"] },
      // artifact GC: the tasks its GC pods read are made with the user's credentials, as the pods
      { apiGroups: ["argoproj.io"], resources: ["workflowartifactgctasks"], verbs: ["create"] }
    ])
    assert.deepStrictEqual(verbsOn("workflowartifactgctasks"), ["delete", "get", "list", "watch"])
    const executor = remote.find((d) => d.kind === "Role" && d.metadata!.name === "executor") as any
    const executorVerbs = (resource: string) => executor.rules.filter((r: any) => r.resources.includes(resource)).flatMap((r: any) => r.verbs).sort()
    assert.deepStrictEqual(executorVerbs("workflowartifactgctasks"), ["list", "watch"])
    assert.deepStrictEqual(executorVerbs("workflowartifactgctasks/status"), ["patch"])
  })

  it("the controller's local role covers what it does", () => {
    const role = byKind("ClusterRole").find((r) => r.doc.metadata!.name === "flotilla-controller")!.doc as any
    const verbs = (group: string, resource: string) =>
      role.rules.filter((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r: any) => r.verbs)
    for (const v of ["create", "get", "list", "watch", "update", "patch", "delete"]) assert.include(verbs("", "pods"), v)
    for (const v of ["get", "list", "watch"]) {
      assert.include(verbs("", "configmaps"), v)
      assert.include(verbs("", "secrets"), v)
    }
    for (const v of ["get", "list", "watch", "create", "update", "patch", "delete"]) {
      assert.include(verbs("argoproj.io", "workflows"), v)
      assert.include(verbs("argoproj.io", "workflows/finalizers"), v)
    }
    for (const v of ["list", "watch", "delete", "deletecollection"]) assert.include(verbs("argoproj.io", "workflowtaskresults"), v)
    assert.include(verbs("", "events"), "create")
    // http templates' secrets: asking whether the workflow's service account may read them
    assert.deepStrictEqual(verbs("authorization.k8s.io", "subjectaccessreviews"), ["create"])
    const lease = byKind("Role").find((r) => r.doc.metadata!.name === "flotilla-leader-election")!.doc as any
    assert.include(lease.rules[0].resources, "leases")
    const identity = byKind("Role").find((r) => r.doc.metadata!.name === "flotilla-pod-identity")!.doc as any
    assert.deepStrictEqual([identity.metadata.namespace, identity.rules[0].resources, identity.rules[0].verbs], ["argo", ["secrets"], ["create"]])
  })

  it("the manager runs `flotilla controller` with /healthz on 6060 and the configmap names the cluster", () => {
    const deploy = byKind("Deployment")[0]!.doc as any
    const c = deploy.spec.template.spec.containers[0]
    assert.deepStrictEqual(c.command, ["flotilla", "controller"])
    assert.strictEqual(c.livenessProbe.httpGet.path, "/healthz")
    assert.strictEqual(c.livenessProbe.httpGet.port, 6060)
    assert.strictEqual(deploy.spec.template.spec.serviceAccountName, "flotilla-controller")
    const cm = byKind("ConfigMap").find((m) => m.doc.metadata!.name === "workflow-controller-configmap")!.doc as any
    assert.strictEqual(cm.data.cluster, "main")
    assert.deepStrictEqual(YAML.parse(cm.data.images)["docker/whalesay"], { cmd: ["cowsay"] })
  })

  it("the sample is the seed's multi-cluster workflow", () => {
    const wf = byKind("Workflow")[0]!.doc as any
    assert.strictEqual(wf.metadata.name, "multi-cluster")
    assert.strictEqual(wf.metadata.namespace, "local")
    assert.strictEqual(wf.spec.serviceAccountName, "workflow")
    assert.deepStrictEqual(wf.spec.templates[0], {
      name: "main",
      cluster: "cluster-1",
      namespace: "remote",
      container: { image: "docker/whalesay" }
    })
  })
})
