/**
 * Follows a bench cluster's audit log (kube-apiserver's `--audit-log-path`, rotated at
 * 50 MB into one backup, scripts/clusters/lib.sh) from a point on, keeping the events
 * of one identity only: for runs long enough to rotate the log more than once, where
 * reading audit.log and its backup at the end (compare.ts's `readAudit`) would miss
 * the run's first requests, and whose whole log would be too much to parse at once.
 *
 * `poll` reads what each `audit*.log` file gained since the last poll (by inode, so a
 * file renamed by rotation is read to its end and the new audit.log from its start);
 * call it more often than the log can rotate twice (10 s is ample: 100 MB in between).
 * Complete lines only: a line still being written is read again, whole, at the next poll.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { AuditLine } from "./compare.js"

/**
 * The complete lines at the start of `bytes` and how many bytes they take (through the last
 * newline): the rest, a line still being written, is left to be read again once it ends (never
 * decoded half, which could cut a UTF-8 character).
 */
export const completeLines = (bytes: Uint8Array): { readonly lines: ReadonlyArray<string>; readonly used: number } => {
  const end = bytes.lastIndexOf(0x0a)
  if (end < 0) return { lines: [], used: 0 }
  return { lines: Buffer.from(bytes.buffer, bytes.byteOffset, end).toString("utf8").split("\n").filter((l) => l.trim() !== ""), used: end + 1 }
}

/** The audit events among `lines` whose user is `user` (a substring test before the parse: most lines are others'). */
export const eventsOf = (lines: Iterable<string>, user: string): Array<AuditLine> => {
  const needle = JSON.stringify(user)
  const out: Array<AuditLine> = []
  for (const line of lines) {
    if (!line.includes(needle)) continue
    try {
      const e = JSON.parse(line) as AuditLine
      if (e.user?.username === user) out.push(e)
    } catch {
      // a line cut by rotation
    }
  }
  return out
}

export interface AuditTail {
  /** Reads what the files gained since the last poll. */
  readonly poll: () => void
  /** The identity's events read so far. */
  readonly events: () => ReadonlyArray<AuditLine>
}

/** Follows `dir`'s audit logs from now on (what they hold already is skipped), keeping `user`'s events. */
export const followAudit = (dir: string, user: string): AuditTail => {
  const offsets = new Map<number, number>()
  const events: Array<AuditLine> = []
  const files = () => {
    try {
      return fs.readdirSync(dir).filter((f) => f.startsWith("audit") && f.endsWith(".log")).map((f) => path.join(dir, f))
    } catch {
      return []
    }
  }
  for (const file of files()) {
    try {
      const st = fs.statSync(file)
      offsets.set(st.ino, st.size)
    } catch {
      // gone since the listing
    }
  }
  const poll = () => {
    for (const file of files()) {
      let fd: number | undefined
      try {
        fd = fs.openSync(file, "r")
        const st = fs.fstatSync(fd)
        let from = offsets.get(st.ino) ?? 0
        if (st.size < from) from = 0 // truncated: read it anew
        if (st.size === from) continue
        const buffer = Buffer.alloc(st.size - from)
        const read = fs.readSync(fd, buffer, 0, buffer.length, from)
        const { lines, used } = completeLines(buffer.subarray(0, read))
        offsets.set(st.ino, from + used)
        for (const e of eventsOf(lines, user)) events.push(e)
      } catch {
        // renamed by rotation between the listing and the open: the next poll finds it under
        // its new name (same inode, same offset)
      } finally {
        if (fd !== undefined) fs.closeSync(fd)
      }
    }
  }
  return { poll, events: () => events }
}
