package admin

import (
	"net/http"

	"github.com/berth-registry/berth/node/httperr"
)

// statusOf maps a proposal or read error to an HTTP status, the same way
// as every other admin and internal endpoint (node/httperr).
func statusOf(err error) int { return httperr.Status(err) }

// fail answers an error from the log or the state.
func (s *server) fail(w http.ResponseWriter, what string, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.logger.Error("admin request failed", "op", what, "err", err)
	}
	writeErr(w, code, what+": "+err.Error())
}

func writeErr(w http.ResponseWriter, code int, msg string) { httperr.Write(w, code, msg) }

func writeJSON(w http.ResponseWriter, code int, v any) { httperr.JSON(w, code, v) }
