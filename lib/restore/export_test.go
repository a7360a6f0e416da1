package restore

// SetMaxEarly sets the bound on emulator records held before the domain
// is made, and returns what puts it back.
func SetMaxEarly(n int64) (restore func()) {
	old := maxEarly
	maxEarly = n
	return func() { maxEarly = old }
}
