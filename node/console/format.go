package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// age is how long ago t was, in the largest unit that fits ("3m", "2d").
func (c *Console) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := c.cfg.Now().Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d.Seconds()), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d < 730*24*time.Hour:
		return fmt.Sprintf("%dmo", int(d.Hours()/24/30))
	}
	return fmt.Sprintf("%dy", int(d.Hours()/24/365))
}

// humanBytes prints a size in binary units, as docker and crane do.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// shortDigest is the algorithm and the first 12 hex digits, enough to tell
// manifests apart on screen (the full digest is in the title and link).
func shortDigest(d digest.Digest) string {
	s := string(d)
	if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
		return s[:i+13]
	}
	return s
}

// referrerLabel names a referrer's artifact type the way people talk
// about them: a signature, an SBOM, an attestation; else the type itself.
func referrerLabel(artifactType string) string {
	t := strings.ToLower(artifactType)
	switch {
	case strings.Contains(t, "signature") || strings.Contains(t, "cosign") || strings.Contains(t, "notary"):
		return "signature"
	case strings.Contains(t, "spdx") || strings.Contains(t, "cyclonedx") || strings.Contains(t, "sbom") || strings.Contains(t, "syft"):
		return "sbom"
	case strings.Contains(t, "in-toto") || strings.Contains(t, "attestation") || strings.Contains(t, "provenance"):
		return "attestation"
	case t == "":
		return "artifact"
	}
	return artifactType
}
