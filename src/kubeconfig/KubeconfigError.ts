/**
 * The one error the kubeconfig module fails with. It says where the problem
 * is (the secret it came from, the context, the field path such as
 * `users[0].user.exec`) and what is wrong. It must never carry a token, a key,
 * an exec env value or any other secret: callers log it and put it in
 * workflow node messages.
 */
import { Schema } from "effect"

export class KubeconfigError extends Schema.TaggedError<KubeconfigError>()("KubeconfigError", {
  /** Where the kubeconfig came from, e.g. `secret argo/argo-kubeconfig`. */
  source: Schema.String,
  /** The kubeconfig context concerned, when known. */
  context: Schema.optional(Schema.String),
  /** Field path inside the document, e.g. `users[0].user.exec`. */
  field: Schema.optional(Schema.String),
  /** What is wrong. Never contains a secret value. */
  detail: Schema.String
}) {
  override get message(): string {
    const where = [
      this.source,
      this.context !== undefined ? `context ${JSON.stringify(this.context)}` : undefined,
      this.field
    ].filter((part): part is string => part !== undefined && part !== "").join(": ")
    return `${where}: ${this.detail}`
  }
}

/** `secret <namespace>/<name>`: the conventional `source` for a kubeconfig read from a Secret. */
export const secretSource = (namespace: string, name: string): string => `secret ${namespace}/${name}`

/** Renders a path such as `["users", 0, "user", "exec"]` as `users[0].user.exec`. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const segment of path) {
    if (typeof segment === "number") {
      out += `[${segment}]`
    } else {
      const key = String(segment)
      out += /^[A-Za-z0-9_-]+$/.test(key)
        ? (out === "" ? key : `.${key}`)
        : `[${JSON.stringify(key)}]`
    }
  }
  return out
}
