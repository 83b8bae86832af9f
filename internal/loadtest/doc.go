// Package loadtest is the project's load generator and the engine of `mage loadtest`.
//
// The engine (Run) is an open-model, constant-arrival-rate generator: a pacer schedules the
// n-th arrival of each stage at the exact time the stage's (constant or linearly ramping) rate
// calls for, whatever the response times; a bounded pool of workers sends the requests, and an
// arrival that finds no free worker is counted as dropped instead of being delayed, so a slow
// target shows up as dropped iterations rather than as a silently lower rate. Latencies go
// into HDR-style log-linear histograms (1.6% resolution, mergeable, serialisable) per stage,
// region and class, and optionally per time window.
//
// On top of it: the request mix with a controllable cache-hit ratio (mix.go), classification
// of responses from CloudFront's headers (classify.go), region latency profiles shared with the
// twin's edge (regions.go, loadtest/regions.json), thresholds (thresholds.go,
// loadtest/thresholds.txt), scenarios (scenario.go, loadtest/scenarios.json), reports
// (report.go), and production runners on EC2 driven through SSM with results in S3 (remote.go).
//
// go.k6.io/k6 is AGPL and not used; this package replaces the k6 build with its extension.
//
// # Using it from another tool (the release bench)
//
// To send a steady load through the edge while something else happens, and read latency and
// failures per second afterwards:
//
//	plan := loadtest.Steady("http://127.0.0.1:17443", 500, 60*time.Second, "/api/zmanim?lat=31.7683&lon=35.2137&date=2026-12-01", "/api/publishers")
//	done := make(chan struct{})
//	var res *loadtest.Result
//	var err error
//	go func() { res, err = loadtest.Run(ctx, plan); close(done) }()
//	// ... swap the binary ...
//	<-done
//	for _, w := range res.Windows { // one per second
//		fmt.Println(w.Start, w.Requests, w.Failed, w.Dropped, w.P50, w.P95, w.P99)
//	}
//	for _, ph := range res.Phases { fmt.Println(ph.Name, ph.Errors) } // "connection refused" etc.
//
// Run returns an error only when the run could not be made (invalid plan, unreachable target);
// failed requests are results. Cancelling ctx stops the run early with the results so far.
package loadtest
