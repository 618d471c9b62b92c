//go:build !linux

package policy

import "time"

// threadCPU is not measured outside Linux: the CPU percentiles read 0.
func threadCPU() time.Duration { return 0 }
