import { assert, describe, it } from "@effect/vitest"
import { isTransient, KubeError } from "../../src/kube/api/KubeError.js"

const forbidden = (detail: string) =>
  new KubeError({ reason: "Forbidden", cluster: "cluster-1", verb: "create", resource: "pods", namespace: "remote", detail })

describe("which API errors are worth retrying", () => {
  it("a 403 naming an RBAC role the authorizer cannot find (an API server whose RBAC cache has not synced yet) is transient", () => {
    // as kube-apiserver words it right after a restart, before its RBAC informers synced
    assert.isTrue(isTransient(forbidden(
      "pods is forbidden: User \"system:serviceaccount:chaos-local:workflow\" cannot create resource \"pods\" in API group \"\" in the namespace \"chaos-remote\": RBAC: role.rbac.authorization.k8s.io \"chaos-user-pods\" not found"
    )))
    assert.isTrue(isTransient(forbidden("... : RBAC: clusterrole.rbac.authorization.k8s.io \"edit\" not found")))
  })

  it("a plain 403 (the identity may not do it) is not", () => {
    assert.isFalse(isTransient(forbidden("pods is forbidden: User \"workflow\" cannot create resource \"pods\" in API group \"\" in the namespace \"remote\"")))
  })
})
