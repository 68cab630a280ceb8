//go:build !linux && !darwin

package node

// statfsFree cannot tell here: only failed log writes stop proposals.
func statfsFree(string) (uint64, bool) { return 0, false }
