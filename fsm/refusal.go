package fsm

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Code classifies why Apply refused an event. The HTTP layer maps each to
// an OCI error code.
type Code string

const (
	CodeManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestUnknown     Code = "MANIFEST_UNKNOWN"
	CodeTagUnknown          Code = "TAG_UNKNOWN"
	CodeNameUnknown         Code = "NAME_UNKNOWN"
	CodeBlobUnknown         Code = "BLOB_UNKNOWN"
	CodeInvalid             Code = "INVALID"
	CodeResourceUnknown     Code = "RESOURCE_UNKNOWN"
)

// Refusal is what Apply returns when an event fails a check that depends
// on state (rule 2). A refused event changes nothing. It travels as JSON
// from the leader to a follower that forwarded the proposal.
type Refusal struct {
	Code    Code            `json:"code"`
	Message string          `json:"message"`
	Missing []digest.Digest `json:"missing,omitempty"`
}

func (r *Refusal) Error() string {
	if len(r.Missing) == 0 {
		return r.Message
	}
	ms := make([]string, len(r.Missing))
	for i, d := range r.Missing {
		ms[i] = d.String()
	}
	return fmt.Sprintf("%s: %s", r.Message, strings.Join(ms, ", "))
}

func refuse(code Code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}
