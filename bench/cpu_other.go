//go:build !unix

package bench

import "time"

// selfCPU is 0 where getrusage is missing: the bench's own CPU figures
// read 0 there.
func selfCPU() time.Duration { return 0 }
