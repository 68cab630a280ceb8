//go:build race

package console

// raceDetector: the race detector slows template execution about tenfold,
// so timing bounds are scaled by it under -race.
const raceDetector = true
