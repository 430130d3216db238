/**
 * The `workflows.argoproj.io/` label, annotation and finalizer keys flotilla writes and reads, as
 * upstream Argo names them (flotilla's own additions say so). Spelled once here: a key spelled
 * twice is a key that drifts, and a pod whose labels the controller does not recognise is a pod it
 * leaks.
 */

/** The domain of every key here. */
export const argoKeyDomain = "workflows.argoproj.io"

// Labels on pods (and task results) --------------------------------------------------------------

/** The workflow a pod or task result belongs to (its name). */
export const labelWorkflow = "workflows.argoproj.io/workflow"
/** `"true"` once a pod's outcome is recorded in its workflow (pods), or once a workflow is done (workflows). */
export const labelCompleted = "workflows.argoproj.io/completed"
/** flotilla: the cluster whose controller owns a pod (upstream's multi-cluster design). */
export const labelCluster = "workflows.argoproj.io/cluster"
/** The controller instance (configmap `instanceID`) a workflow and its pods belong to. */
export const labelInstanceId = "workflows.argoproj.io/controller-instanceid"
/** `"true"` on the pods of exit handlers. */
export const labelOnExit = "workflows.argoproj.io/on-exit"
/** On a task result: `"true"` once the executor reported every output. */
export const labelReportOutputsCompleted = "workflows.argoproj.io/report-outputs-completed"

// Labels on workflows ----------------------------------------------------------------------------

/** A workflow's phase (`Running`, `Succeeded`...), for label selectors. */
export const labelPhase = "workflows.argoproj.io/phase"

// Annotations on pods ----------------------------------------------------------------------------

/** The id of the workflow node a pod runs. */
export const annotationNodeId = "workflows.argoproj.io/node-id"
/** The display name of the workflow node a pod runs. */
export const annotationNodeName = "workflows.argoproj.io/node-name"
/** flotilla: the namespace of a pod's workflow, when the pod runs in another namespace or cluster. */
export const annotationWorkflowNamespace = "workflows.argoproj.io/workflow-namespace"
/** The workflow's `podGC.strategy`, copied onto its pods. */
export const annotationPodGC = "workflows.argoproj.io/pod-gc-strategy"

// Annotations on workflows -----------------------------------------------------------------------

/** `v1` or `v2`: how pod names are formed. */
export const annotationPodNameFormat = "workflows.argoproj.io/pod-name-format"

// Finalizers -------------------------------------------------------------------------------------

/** flotilla: held on a workflow while it may have pods in other clusters. */
export const finalizerMultiCluster = "workflows.argoproj.io/multi-cluster"

/** The label and annotation keys the controller writes on pods and reads to know whose a pod is (no workflow may set them). */
export const podIdentityKeys: ReadonlyArray<string> = [
  labelWorkflow,
  annotationWorkflowNamespace,
  annotationNodeId,
  annotationNodeName,
  labelCluster,
  labelCompleted,
  labelInstanceId,
  labelOnExit,
  annotationPodGC,
  labelReportOutputsCompleted
]
