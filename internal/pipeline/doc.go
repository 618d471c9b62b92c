// Package pipeline runs CI pipelines: a repository's .rampart/pipeline.yaml
// is parsed and validated (Parse), runs are created from pushes, pull
// requests, manual requests and schedules, queued durably in the store and
// executed job by job in containers (package container, through runc) or
// as host processes, with logs stored, streamed and masked.
package pipeline
