package blob

// EmptySessions is how many sessions without bytes s keeps in memory.
func EmptySessions(s *FS) int { return s.pending.len() }

// LockedSessions is how many sessions have a lock held or waited for.
func LockedSessions(s *FS) int { return s.locks.held() }
