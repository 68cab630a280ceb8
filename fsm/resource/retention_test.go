package resource

import (
	"strings"
	"testing"
	"time"
)

func TestRetentionAndImmutabilityValidation(t *testing.T) {
	cases := []struct {
		name, doc string
		problems  []string // substrings; empty: valid
	}{
		{"retention", "kind: RetentionPolicy\nmetadata: {name: keep}\nspec:\n  repositories: [\"team-a/**\", \"!team-a/tmp/**\"]\n  keepLast: 10\n  keepPushedWithin: 30d\n  keepPulledWithin: 12h\n  keepTags: [latest, \"v*\"]\n  deleteUntagged: true\n  schedule: \"0 3 * * *\"\n", nil},
		{"no keep rule", "kind: RetentionPolicy\nmetadata: {name: all}\nspec: {repositories: [\"**\"], deleteUntagged: true}\n", []string{"no keep rule"}},
		{"bad values", "kind: RetentionPolicy\nmetadata: {name: bad}\nspec: {repositories: [\"[\"], keepLast: -1, keepPushedWithin: 3w, keepPulledWithin: 5, schedule: \"every day\", keepTags: []}\n",
			[]string{"spec.repositories[0]", "spec.keepLast", "spec.keepPushedWithin", "spec.keepPulledWithin", "spec.schedule", "spec.keepTags"}},
		{"no repositories", "kind: RetentionPolicy\nmetadata: {name: r}\nspec: {keepLast: 3}\n", []string{"spec.repositories: required"}},
		{"immutability", "kind: ImmutabilityRule\nmetadata: {name: releases}\nspec: {repositories: [\"**\"], tags: [\"v*\", \"!v*-rc*\"]}\n", nil},
		{"immutability without tags", "kind: ImmutabilityRule\nmetadata: {name: x}\nspec: {repositories: [\"**\"], extra: 1}\n", []string{"spec.tags: required", "spec.extra"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ParseYAML(strings.NewReader("apiVersion: berth.dev/v1\n" + tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			norm, err := Normalize(docs[0])
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				// What is stored decodes again.
				switch docs[0].Kind {
				case "RetentionPolicy":
					_, err = DecodeRetentionPolicy(norm)
				default:
					_, err = DecodeImmutabilityRule(norm)
				}
				if err != nil {
					t.Fatalf("stored form does not decode: %v\n%s", err, norm)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid document accepted: %s", norm)
			}
			for _, want := range tc.problems {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("problems %q lack %q", err, want)
				}
			}
		})
	}
}

func TestImmutabilityProtects(t *testing.T) {
	s := ImmutabilitySpec{Repositories: []string{"team-a/**"}, Tags: []string{"v*", "!v*-rc*"}}
	for _, tc := range []struct {
		repo, tag string
		want      bool
	}{
		{"team-a/app", "v1.2", true},
		{"team-a/app", "v1.2-rc1", false},
		{"team-a/app", "latest", false},
		{"team-b/app", "v1.2", false},
	} {
		if got := s.Protects(tc.repo, tc.tag); got != tc.want {
			t.Errorf("Protects(%s, %s) = %v", tc.repo, tc.tag, got)
		}
	}
	r := RetentionSpec{KeepPushedWithin: "30d", KeepPulledWithin: "12h", Schedule: "@daily"}
	if r.PushedWithin() != 30*24*time.Hour || r.PulledWithin() != 12*time.Hour {
		t.Errorf("ages %s %s", r.PushedWithin(), r.PulledWithin())
	}
	t0 := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)
	if next, ok := r.NextRun(t0); !ok || !next.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("NextRun = %s %v", next, ok)
	}
}
