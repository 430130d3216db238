/**
 * An artifact store on a local directory, behind the same interface as the
 * S3 store: the object `<bucket>/<key>` of the repository whose endpoint is
 * `endpoint` is the file `<root>/<bucket>/<key>`. It is what `flotilla run`
 * uses when no artifact repository is configured, so that artifacts work on
 * a machine with no S3 server (no credentials are checked: the directory is
 * the user's own).
 *
 * Keys behave as on S3 as far as argoexec relies on them: a key naming no
 * file but a folder of files is loaded as a "directory" of objects
 * (relative names), a key ending in `/` deletes every object under it, and
 * a missing object is `NotFound`, a missing bucket `BucketNotFound` (unless
 * `createBucketIfNotPresent`). A target of any other endpoint goes to
 * `fallback` (the S3 store), so that a workflow naming its own S3 server
 * still reaches it. Keys may not leave the bucket (`..`, absolute).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { type ArtifactStore, ArtifactStoreError, defaultMaxListedKeys, type Downloaded, type Loaded, type S3Target, tooManyKeys } from "./S3Store.js"

/** The files under `dir` (relative names, sorted), links and others skipped. */
const namesUnder = (dir: string, prefix = ""): Array<{ rel: string; file: string }> =>
  fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)).flatMap((e) => {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`
    const full = path.join(dir, e.name)
    if (e.isDirectory()) return namesUnder(full, rel)
    return e.isFile() ? [{ rel, file: full }] : []
  })

/** Copies a host file (the kernel's copy, never held in memory) to `dest` through a temporary name, then renames it. */
const copyInto = async (file: string, dest: string) => {
  await fsp.mkdir(path.dirname(dest), { recursive: true })
  const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  try {
    await fsp.copyFile(file, tmp)
    await fsp.rename(tmp, dest)
  } finally {
    await fsp.rm(tmp, { force: true })
  }
}

export interface DirectoryStoreOptions {
  /** The folder holding one subfolder per bucket. */
  readonly root: string
  /** The repository endpoint this store serves (the configmap's `s3.endpoint`). */
  readonly endpoint: string
  /** Where the targets of other endpoints go; none: they fail `Unavailable`. */
  readonly fallback?: ArtifactStore | undefined
  /** Bound on one object's size when downloading (bytes). Default 10 GiB. */
  readonly maxObjectBytes?: number | undefined
  /** Bound on the keys `list` may hold, as S3Store's. Default 100,000. */
  readonly maxListedKeys?: number | undefined
}

/** The relative names of the files under `dir` (links skipped), failing past `cap` of them, never reading a file. */
const namesUpTo = (dir: string, cap: number, tooMany: () => Error): Array<string> => {
  const out: Array<string> = []
  const walk = (d: string, prefix: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const rel = prefix === "" ? e.name : `${prefix}/${e.name}`
      if (e.isDirectory()) walk(path.join(d, e.name), rel)
      else if (e.isFile()) {
        out.push(rel)
        if (out.length > cap) throw tooMany()
      }
    }
  }
  walk(dir, "")
  return out
}

type File = { readonly rel: string; readonly data: Uint8Array }

const filesUnder = (dir: string, prefix = ""): Array<File> =>
  fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)).flatMap((e): Array<File> => {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`
    const full = path.join(dir, e.name)
    if (e.isDirectory()) return filesUnder(full, rel)
    return e.isFile() ? [{ rel, data: fs.readFileSync(full) }] : []
  })

const isNotFound = (e: unknown) => (e as { code?: string } | null)?.code === "ENOENT" || (e as { code?: string } | null)?.code === "ENOTDIR"

export const makeDirectoryStore = (options: DirectoryStoreOptions): ArtifactStore => {
  const root = path.resolve(options.root)
  const sameEndpoint = (t: S3Target) => t.endpoint.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "") === options.endpoint

  const fail = (verb: string, t: S3Target, reason: ArtifactStoreError["reason"], text: string) =>
    new ArtifactStoreError({ reason, verb, detail: `${text} (bucket "${t.bucket}", key "${t.key}", directory ${root})` })

  /** The bucket's folder and the key's path in it; a key that would leave the bucket fails. */
  const locate = (verb: string, t: S3Target) =>
    Effect.gen(function*() {
      if (t.bucket === "" || t.bucket.includes("/") || t.bucket === "." || t.bucket === "..") {
        return yield* Effect.fail(fail(verb, t, "Unknown", "InvalidBucketName"))
      }
      const bucket = path.join(root, t.bucket)
      const file = path.resolve(bucket, t.key.replace(/^\/+/, ""))
      if (file !== bucket && !file.startsWith(bucket + path.sep)) return yield* Effect.fail(fail(verb, t, "Unknown", "InvalidKey: the key leaves the bucket"))
      if (!fs.existsSync(bucket)) {
        if (t.createBucketIfNotPresent === true && verb.startsWith("put")) fs.mkdirSync(bucket, { recursive: true })
        else return yield* Effect.fail(fail(verb, t, "BucketNotFound", "NoSuchBucket: the specified bucket does not exist"))
      }
      return { bucket, file }
    })

  const io = <A>(verb: string, t: S3Target, f: () => A) =>
    Effect.try({
      try: f,
      catch: (e) =>
        e instanceof ArtifactStoreError
          ? e
          : isNotFound(e)
          ? fail(verb, t, "NotFound", "NoSuchKey: the specified key does not exist")
          : fail(verb, t, "Unknown", e instanceof Error ? e.message : String(e))
    })

  const write = (file: string, data: Uint8Array) => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, data)
  }

  const maxObjectBytes = options.maxObjectBytes ?? 10 * 1024 ** 3
  const maxListedKeys = options.maxListedKeys ?? defaultMaxListedKeys

  const ioAsync = <A>(verb: string, t: S3Target, f: () => Promise<A>) =>
    Effect.tryPromise({
      try: f,
      catch: (e) =>
        e instanceof ArtifactStoreError
          ? e
          : isNotFound(e)
          ? fail(verb, t, "NotFound", "NoSuchKey: the specified key does not exist")
          : fail(verb, t, "Unknown", e instanceof Error ? e.message : String(e))
    })

  const tooLarge = (t: S3Target, size: number) => fail("get file", t, "Unknown", `object of ${size} bytes is larger than the limit of ${maxObjectBytes} bytes`)

  const local: ArtifactStore = {
    download: (t, dest) =>
      locate("get file", t).pipe(Effect.flatMap(({ bucket, file }) =>
        ioAsync("get file", t, async (): Promise<Downloaded> => {
          const stat = await fsp.stat(file)
          if (stat.isFile()) {
            if (stat.size > maxObjectBytes) throw tooLarge(t, stat.size)
            await copyInto(file, dest)
            return "File"
          }
          const files = file === bucket ? [] : namesUnder(file)
          if (files.length === 0) throw Object.assign(new Error("no objects"), { code: "ENOENT" })
          for (const f of files) {
            const size = (await fsp.stat(f.file)).size
            if (size > maxObjectBytes) throw tooLarge(t, size)
            await copyInto(f.file, path.join(dest, f.rel))
          }
          return "Directory"
        })
      )),
    upload: (t, source) => locate("put file", t).pipe(Effect.flatMap(({ file }) => ioAsync("put file", t, () => copyInto(source, file)))),
    uploadDirectory: (t, files) =>
      locate("put file", t).pipe(Effect.flatMap(({ file }) =>
        ioAsync("put file", t, async () => {
          for (const f of files) await copyInto(f.file, path.join(file, f.rel))
        })
      )),
    get: (t) =>
      locate("get file", t).pipe(Effect.flatMap(({ bucket, file }) =>
        io("get file", t, (): Loaded => {
          const stat = fs.statSync(file)
          if (stat.isFile()) return { _tag: "File", data: fs.readFileSync(file) }
          const files = file === bucket ? [] : filesUnder(file)
          if (files.length === 0) throw Object.assign(new Error("no objects"), { code: "ENOENT" })
          return { _tag: "Directory", files }
        })
      )),
    put: (t, data) => locate("put file", t).pipe(Effect.flatMap(({ file }) => io("put file", t, () => write(file, data)))),
    putDirectory: (t, files) =>
      locate("put file", t).pipe(Effect.flatMap(({ file }) =>
        io("put file", t, () => {
          for (const f of files) write(path.join(file, f.rel), f.data)
        })
      )),
    delete: (t) =>
      locate("delete", t).pipe(Effect.flatMap(({ bucket, file }) =>
        io("delete", t, () => {
          if (t.key.endsWith("/")) {
            if (file !== bucket) fs.rmSync(file, { recursive: true, force: true })
          } else {
            // as S3: deleting an object that is not there is no error
            try {
              if (fs.statSync(file).isFile()) fs.rmSync(file)
            } catch (e) {
              if (!isNotFound(e)) throw e
            }
          }
        })
      )),
    exists: (t) =>
      locate("stat", t).pipe(Effect.flatMap(({ bucket, file }) =>
        io("stat", t, () => {
          try {
            const stat = fs.statSync(file)
            return stat.isFile() || (file !== bucket && stat.isDirectory() && filesUnder(file).length > 0)
          } catch (e) {
            if (isNotFound(e)) return false
            throw e
          }
        })
      )),
    list: (t) =>
      locate("list", t).pipe(Effect.flatMap(({ bucket, file }) =>
        io("list", t, () => {
          const prefix = file === bucket ? "" : `${path.relative(bucket, file).split(path.sep).join("/")}/`
          try {
            if (!fs.statSync(file).isDirectory()) return []
          } catch (e) {
            if (isNotFound(e)) return []
            throw e
          }
          // S3 lists keys in byte order, not folder by folder
          return namesUpTo(file, maxListedKeys, () => tooManyKeys("list", t, maxListedKeys))
            .map((rel) => `${prefix}${rel}`).sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
        })
      ))
  }

  const route = <A>(t: S3Target, f: (store: ArtifactStore) => Effect.Effect<A, ArtifactStoreError>, verb: string) =>
    sameEndpoint(t)
      ? f(local)
      : options.fallback !== undefined
      ? f(options.fallback)
      : Effect.fail(new ArtifactStoreError({ reason: "Unavailable", verb, detail: `no store for endpoint ${t.endpoint} (bucket "${t.bucket}", key "${t.key}")` }))

  return {
    download: (t, dest) => route(t, (s) => s.download(t, dest), "get file"),
    upload: (t, file) => route(t, (s) => s.upload(t, file), "put file"),
    uploadDirectory: (t, files) => route(t, (s) => s.uploadDirectory(t, files), "put file"),
    get: (t) => route(t, (s) => s.get(t), "get file"),
    put: (t, data) => route(t, (s) => s.put(t, data), "put file"),
    putDirectory: (t, files) => route(t, (s) => s.putDirectory(t, files), "put file"),
    delete: (t) => route(t, (s) => s.delete(t), "delete"),
    exists: (t) => route(t, (s) => s.exists(t), "stat"),
    list: (t) => route(t, (s) => s.list(t), "list")
  }
}
