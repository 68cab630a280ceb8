package replication

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// hookReceiver records the CloudEvents a Webhook delivers.
type hookReceiver struct {
	url string
	mu  sync.Mutex
	got map[string]hookEvent // by id: deliveries may repeat
}

type hookEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Repository string   `json:"repository"`
		Digest     string   `json:"digest"`
		Tags       []string `json:"tags"`
		Job        struct {
			Policy string `json:"policy"`
			Mode   string `json:"mode"`
			Job    string `json:"job"`
			Bytes  int64  `json:"bytes"`
			Error  string `json:"error"`
		} `json:"job"`
	} `json:"data"`
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{url: "http://" + ln.Addr().String() + "/hook", got: map[string]hookEvent{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev hookEvent
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if json.Unmarshal(body, &ev) == nil && ev.ID != "" {
			r.mu.Lock()
			r.got[ev.ID] = ev
			r.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// of returns the events of one type (dev.berth.replication.<kind>) for
// one policy.
func (r *hookReceiver) of(typ, policy string) []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hookEvent
	for _, ev := range r.got {
		if ev.Type == typ && ev.Data.Job.Policy == policy {
			out = append(out, ev)
		}
	}
	return out
}
