package node

import (
	"errors"
	"time"
)

// GCConfig schedules garbage collection and the upload purge, both
// leader-only jobs (package gc, docs/design.md "Garbage collection").
//
// The schedule is a plain interval rather than a cron expression: a run
// is online and safe at any moment, so "every 6h" says all that matters,
// and it needs no parser dependency or time-zone rules.
type GCConfig struct {
	// Interval between scheduled runs; 0 (the default) runs GC only on
	// demand (POST /admin/v1/gc/run, clusterctl gc run).
	Interval time.Duration `yaml:"interval"`
	// DeleteUntagged makes scheduled runs collect untagged manifests.
	DeleteUntagged bool `yaml:"deleteuntagged"`
	// UploadMaxAge is the grace period: upload sessions older than it are
	// purged, and a blob link or untagged manifest must be older than it
	// before nothing referencing it makes it garbage.
	UploadMaxAge time.Duration `yaml:"uploadmaxage"`
	// PurgeInterval is how often the leader purges old upload sessions,
	// whether GC is scheduled or not.
	PurgeInterval time.Duration `yaml:"purgeinterval"`
}

func defaultGCConfig() GCConfig {
	return GCConfig{UploadMaxAge: 24 * time.Hour, PurgeInterval: time.Hour}
}

func (c GCConfig) validate() []error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, errors.New("gc.interval: must be 0 (off) or positive"))
	}
	if c.Interval > 0 && c.Interval < time.Minute {
		errs = append(errs, errors.New("gc.interval: at least 1m"))
	}
	if c.UploadMaxAge < time.Minute {
		errs = append(errs, errors.New("gc.uploadmaxage: at least 1m (an upload in progress must not be purged)"))
	}
	if c.PurgeInterval < time.Minute {
		errs = append(errs, errors.New("gc.purgeinterval: at least 1m"))
	}
	return errs
}
