package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/fsm"
)

// OCI error codes (spec, "Error Codes"). UNAVAILABLE and UNKNOWN are not in
// the spec's table: they are answered with 503, 507 and 500 only, which are
// not the client's fault.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDenied              = "DENIED"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnsupported         = "UNSUPPORTED"
	codeUnavailable         = "UNAVAILABLE"
	codeUnknown             = "UNKNOWN"
)

// apiError is one OCI error with the HTTP status it is sent with.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newErr(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// writeError answers with the OCI error JSON. Errors that are not the
// client's fault are logged with their cause and answered generically.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	e := toAPIError(err)
	if e.Status >= 500 && e.Status != http.StatusServiceUnavailable && logger != nil {
		logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []*apiError{e}})
}

// toAPIError maps errors from the store, the FSM and the node to OCI codes.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ref *fsm.Refusal
	if errors.As(err, &ref) {
		switch ref.Code {
		case fsm.CodeManifestBlobUnknown:
			e := newErr(http.StatusBadRequest, codeManifestBlobUnknown, ref.Error())
			if len(ref.Missing) > 0 {
				e.Detail = map[string]any{"missing": ref.Missing}
			}
			return e
		case fsm.CodeManifestUnknown, fsm.CodeTagUnknown:
			return newErr(http.StatusNotFound, codeManifestUnknown, ref.Message)
		case fsm.CodeNameUnknown:
			return newErr(http.StatusNotFound, codeNameUnknown, ref.Message)
		case fsm.CodeBlobUnknown:
			return newErr(http.StatusNotFound, codeBlobUnknown, ref.Message)
		case fsm.CodeReadOnly, fsm.CodeImmutable, fsm.CodeQuotaExceeded:
			// Refused whole, nothing stored: read-only mode, a protected
			// tag, or a full namespace (fsm/quota.go).
			return newErr(http.StatusForbidden, codeDenied, ref.Message)
		case fsm.CodeBlobSweeping:
			// Garbage collection deleted, or is deleting, bytes this
			// request wrote: a retry uploads them again (gclink.go).
			return newErr(http.StatusServiceUnavailable, codeUnavailable, ref.Error()+" (garbage collection; retry the upload)")
		default:
			return newErr(http.StatusBadRequest, codeUnsupported, ref.Message)
		}
	}
	var off *blob.OffsetError
	switch {
	case errors.As(err, &off):
		return newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk out of order")
	case errors.Is(err, blob.ErrUploadUnknown):
		return newErr(http.StatusNotFound, codeBlobUploadUnknown, "upload session not found; start a new upload")
	case errors.Is(err, blob.ErrNotFound):
		return newErr(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry")
	case errors.Is(err, blob.ErrDigestMismatch):
		return newErr(http.StatusBadRequest, codeDigestInvalid, err.Error())
	case errors.Is(err, blob.ErrDigestInvalid), errors.Is(err, blob.ErrUnsupported):
		return newErr(http.StatusBadRequest, codeDigestInvalid, err.Error())
	case errors.Is(err, blob.ErrSizeMismatch):
		return newErr(http.StatusBadRequest, codeSizeInvalid, err.Error())
	case blob.IsNoSpace(err):
		// ENOSPC/EDQUOT from the blob driver, the Raft log or the node's
		// free-space guard. The cause (with paths) is logged, not sent.
		return newErr(http.StatusInsufficientStorage, codeUnavailable,
			"the registry's disk is full; free space or grow the volume, then retry (reads still work)")
	case blob.IsUnavailable(err):
		return newErr(http.StatusServiceUnavailable, codeUnavailable,
			"the registry's object storage is not answering; retry later (operators: check the S3/MinIO service)")
	}
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		return newErr(http.StatusServiceUnavailable, codeUnavailable, err.Error())
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "request body too large")
	}
	return newErr(http.StatusInternalServerError, codeUnknown, "internal error")
}
