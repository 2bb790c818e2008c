package watch

import "time"

// maxWaitFactor caps a burst at this many Debounce after its first event,
// so that a file rewritten without pause still produces a Change.
const maxWaitFactor = 10

// settleAt is when a burst that began at first and whose latest event came
// at last is over: Debounce of quiet (trailing edge), capped.
func settleAt(first, last time.Time, debounce time.Duration) time.Time {
	t := last.Add(debounce)
	if limit := first.Add(maxWaitFactor * debounce); t.After(limit) {
		return limit
	}
	return t
}
