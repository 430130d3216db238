/**
 * Timestamps as Kubernetes writes them. Time is always an argument here, never read from a clock.
 */

/** RFC 3339 at second precision (milliseconds dropped, not rounded), as Kubernetes serialises metav1.Time: `2024-05-01T12:00:03Z`. */
export const isoSeconds = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")
