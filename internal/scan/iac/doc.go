// Package iac finds misconfigurations in infrastructure as code:
// Terraform files, Kubernetes manifests and Dockerfiles. Checks are Rego
// policies (Rego v1) run by an embedded OPA; Rampart ships more than
// fifty of them (checks/) and users add their own from a directory.
//
// # Lifecycle
//
// New parses and compiles every check once and prepares one OPA query per
// input kind that evaluates all the checks of that kind together. The
// orchestrator in package scan walks a target once and hands each file
// for which Applies (a test of the name alone) is true to Scan, from as
// many goroutines as it likes. Scan parses the file once into an input
// document, evaluates the prepared query on it, and turns each result
// into a report.Finding. A file that cannot be parsed becomes a
// report.Note and the scan goes on; so does a check that fails while it
// runs (the other checks then run one by one, and only its findings are
// lost).
//
// # Files
//
//   - Terraform: *.tf, parsed with github.com/hashicorp/hcl/v2 (native
//     syntax; *.tf.json is not read).
//   - Kubernetes: *.yaml and *.yml. Every YAML document with apiVersion
//     and kind is an object (the items of a List each count as one);
//     other YAML files give no findings and no notes.
//   - Dockerfiles: Dockerfile, *.Dockerfile, Dockerfile.* (and the same
//     names with Containerfile), parsed with BuildKit's
//     frontend/dockerfile/parser.
//
// Each check judges one file: a Terraform resource configured in another
// file of the same module (an encryption configuration next to the
// bucket, say) is not seen.
//
// # Input documents
//
// Every input document has "kind" ("terraform", "kubernetes" or
// "dockerfile") and "path" (the path given to Scan). Lines are 1-based
// lines of the file.
//
// Terraform:
//
//	{"kind": "terraform", "path": "infra/main.tf",
//	 "attributes": {name: Attribute},          // top-level attributes
//	 "blocks": [Block]}                        // top-level blocks
//	Block = {"type": "resource", "labels": ["aws_s3_bucket", "logs"],
//	         "address": "aws_s3_bucket.logs", // top-level blocks only
//	         "line": 3, "end_line": 12,
//	         "attributes": {name: Attribute}, "blocks": [Block]}
//	Attribute = {"value": any, "known": bool, "line": 4, "end_line": 4,
//	             "refs": ["var.region", "aws_s3_bucket.logs.id"]}
//
// An attribute's value is evaluated where it is constant: literals,
// operators, templates, and the functions jsonencode, jsondecode, lower,
// upper, trimspace, concat, merge, coalesce and the to* conversions.
// Variables, references, other functions and for expressions are unknown:
// such a value is null and known is false. Lists and objects are
// evaluated element by element, so ["0.0.0.0/0", var.extra] is
// ["0.0.0.0/0", null] with known false. refs lists the references the
// expression makes, so checks can tell which resource another names.
//
// Kubernetes:
//
//	{"kind": "kubernetes", "path": "deploy/web.yaml",
//	 "documents": [{"index": 0, "line": 1, "end_line": 40,
//	                "resource": "Deployment/shop/web", // kind/namespace/name
//	                "object": {...},                    // the object as JSON
//	                "lines": {"": 1, "/spec/template/spec/containers/0": 20, ...}}]}
//
// lines maps the JSON pointer (RFC 6901) of every value in the object to
// its line (for a mapping entry, the line of its key). Aliases and merge
// keys are resolved, and plain yes/no/on/off are booleans, as Kubernetes
// reads them.
//
// Dockerfile:
//
//	{"kind": "dockerfile", "path": "Dockerfile",
//	 "instructions": [Instruction],            // all, in order
//	 "stages": [{"index": 0, "name": "build", "base": "golang:1.22",
//	             "base_known": true, "base_stage": false, "base_scratch": false,
//	             "platform": "", "line": 3, "end_line": 9, "last": false,
//	             "instructions": [Instruction]}]}
//	Instruction = {"cmd": "run", "line": 5, "end_line": 6, "stage": 0,
//	               "original": "RUN …", "flags": ["--mount=type=cache,…"],
//	               "args": [...], "value": "args joined by spaces",
//	               "json": false, "heredocs": [{"name": "EOF", "content": "…"}],
//	               "vars": [{"key": "A", "value": "x y", "has_value": true, "refs": []}],
//	               "trigger": Instruction}
//
// cmd is lower case. stage is -1 for the ARGs before the first FROM. vars
// is set for ENV, LABEL and ARG, with values unquoted and refs naming the
// variables a value uses (then value is kept as written). A stage's base
// has the defaults of the global ARGs substituted; base_known is false
// when a variable is left unresolved, base_stage is true when the base is
// an earlier stage. trigger is the instruction an ONBUILD wraps.
//
// # Check contract
//
// A check is one .rego file in Rego v1 syntax whose package is
// rampart.checks.<kind>.<name>, with <kind> one of dockerfile, kubernetes
// and terraform, and <name> an identifier no other check uses. It
// defines:
//
//   - metadata, a literal object with the strings "id" (unique, e.g.
//     ACME-001), "severity" (info, low, medium, high or critical), "title"
//     and "remediation";
//   - deny, a set of objects ("deny contains {…} if {…}") with "message"
//     (the finding's description), "line" (where the finding is; omitted
//     or outside the file, the finding has no line) and optionally
//     "end_line" and "resource", the identity of what is wrong (e.g.
//     "Deployment/shop/web/containers/app"). Fingerprints hash the check
//     id, the path and the resource (the message when there is none), so
//     a resource should not contain a secret and should not change when
//     lines move.
//
// The checks read input only. Other packages may be loaded beside them
// (helpers of the user's own); the helpers Rampart's checks use are
// available too: data.rampart.lib.kubernetes (pods, containers, setting,
// line), data.rampart.lib.terraform (resources, is_true, not_true, value,
// line, companion, …), data.rampart.lib.dockerfile (final_stage,
// final_chain, runs, script), data.rampart.lib.image (tag, unpinned) and
// data.rampart.lib.secrets (secret_name). The built-ins http.send,
// net.lookup_ip_addr and opa.runtime are not available: checks run
// offline and do not see the scanner's environment. New refuses a file
// that does not parse, compile or follow this contract, naming it and the
// line at fault; files ending in _test.rego are not loaded.
package iac
