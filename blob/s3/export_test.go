package s3

import "time"

// SetClock lets tests move a store's time, to see signed upload IDs expire.
func SetClock(s *Store, now func() time.Time) { s.clock = now }
