package config

import "time"

// Defaults returns the built-in configuration: the spec's values for prod and the twin on
// loopback for local. It is the one place defaults live.
func Defaults() *File {
	return &File{
		Default: "local",
		Environments: map[string]*Env{
			"local": localEnv(),
			"prod":  prodEnv("prod"),
		},
	}
}

func prodEnv(name string) *Env {
	return &Env{
		Name:       name,
		Kind:       KindAWS,
		Region:     "eu-west-1",
		Domain:     "zmanim.shtetl.io",
		APIDomain:  "api.zmanim.shtetl.io",
		HostedZone: "shtetl.io",
		Buckets: Buckets{
			Backups:  "zmanim-backups-" + name,
			Releases: "zmanim-releases-" + name,
			Static:   "zmanim-static-" + name,
		},
		SSMPrefix: "/zmanim/" + name,
		Instance: Instance{
			Type:         "m7g.medium",
			Arch:         "arm64",
			RootVolumeGB: 10,
			DataVolumeGB: 20,
			AMIParameter: "/zmanim/" + name + "/" + ParamAMI,
			AdminCIDR:    "203.0.113.0/24",
			Port:         8080,
		},
		Load: Traffic{ExpectedRPS: 50, Multiplier: 10},
		Backup: Backup{
			Schedule:       "*-*-* 03:00:00 UTC",
			KeepDaily:      7,
			WALInterval:    Duration(5 * time.Minute),
			BaseBackupDay:  "Sun",
			VerifySchedule: "*-*-* 05:00:00 UTC", // daily: --read-data-subset n/7 reads every pack each week
			MinDumpBytes:   64 << 10,
			Repository:     "restic",
		},
		Release: Release{
			Keep:          10,
			HealthTimeout: Duration(30 * time.Second),
			LockTimeout:   Duration(15 * time.Minute),
			Package:       "./examples/zmanim-api",
			Binary:        "zmanim-api",
		},
		Budget: Budget{MonthlyUSD: 44},
		Cost:   DefaultCostUsage(),
		Notify: Notify{From: "backups@zmanim.shtetl.io", To: "ops@shtetl.io"},
		Edge:   DefaultEdge(),
		API:    DefaultAPI("https://clerk.zmanim.shtetl.io", "https://zmanim.shtetl.io"),
	}
}

func localEnv() *Env {
	e := prodEnv("local")
	e.Kind = KindTwin
	e.Instance.Arch = "arm64" // the release still cross-compiles for the box; the twin runs the host build
	e.Backup.MinDumpBytes = 4 << 10
	e.Release.HealthTimeout = Duration(20 * time.Second)
	e.Twin = Twin{
		StateDir: ".state/twin",
		Host:     "127.0.0.1",
		Ports: Ports{
			S3:       17070,
			AWS:      17071,
			Postgres: 17432,
			Redis:    17379,
			JWT:      17072,
			Box:      17080,
			Gateway:  17073,
			Edge:     17443,
			Control:  17074,
		},
		Cities: "geonames",
	}
	// The twin's Clerk stand-in issues tokens with this issuer; the frontend origin stays the
	// production one so CORS behaves as in production.
	e.API = DefaultAPI("http://127.0.0.1:17072", "https://zmanim.shtetl.io")
	return e
}
