package vault

// SetMaxVersions lowers how many versions that are not destroyed a secret
// of s may have, for tests of that limit.
func (s *Service) SetMaxVersions(n int) { s.maxVersions = n }
