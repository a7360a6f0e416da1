package digest

// SetCacheChunks makes New's Digesters hold n chunks in memory (a power
// of two), so that tests reach the temporary file with small streams. It
// returns a function that restores the default.
func SetCacheChunks(n int) (restore func()) {
	old := cacheChunks
	cacheChunks = n
	return func() { cacheChunks = old }
}
