package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/gc"
)

// GCConfig schedules garbage collection and the upload purge, both
// leader-only jobs (package gc, docs/design.md "Garbage collection").
//
// A run is online and safe at any moment, so Interval ("every 6h") was
// the first schedule; Schedule (cron) came after, because operators want
// runs at a quiet hour ("0 3 * * *"). Interval stays for configurations
// that use it; setting both is refused rather than guessing which wins.
// Neither set (the default) runs GC only on demand (POST
// /admin/v1/gc/run, clusterctl gc run).
type GCConfig struct {
	// Schedule is a cron expression (gc.ParseSchedule): five fields or a
	// descriptor such as @daily, in the node's time zone unless it starts
	// with CRON_TZ=Zone.
	Schedule string `yaml:"schedule"`
	// Interval between scheduled runs, measured from the last run's start.
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

// schedule is when scheduled runs are due, or nil when only on demand.
// Validate has checked the expression.
func (c GCConfig) schedule() (gc.Schedule, error) {
	switch {
	case c.Schedule != "":
		return gc.ParseSchedule(c.Schedule)
	case c.Interval > 0:
		return gc.IntervalSchedule(c.Interval), nil
	}
	return nil, nil
}

func (c GCConfig) validate() []error {
	var errs []error
	if c.Schedule != "" {
		if _, err := gc.ParseSchedule(c.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("gc.schedule: %w", err))
		}
		if c.Interval != 0 {
			errs = append(errs, errors.New("gc.schedule and gc.interval are both set: keep one (gc.schedule \"@every 6h\" replaces gc.interval: 6h)"))
		}
	}
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
