package hosttest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-rs/tandem/interop/go/gen/adapterpb"
)

const webhookSecret = "go-host-webhook-secret"

// verifyingReceiver answers 200 only for bodies signed as the adapter's webhook provider does.
func verifyingReceiver(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fields := map[string]string{}
		for _, part := range strings.Split(r.Header.Get("X-Signature"), ",") {
			if k, v, ok := strings.Cut(part, "="); ok {
				fields[k] = v
			}
		}
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write([]byte(fields["t"] + "."))
		mac.Write(body)
		if fields["t"] == "" || !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(fields["v1"])) {
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"verified":true}`))
	}))
}

func TestGoHostLoadsAdapterPlugin(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	receiver := verifyingReceiver(t)
	defer receiver.Close()

	cmd, err := PluginCommand(filepath.Join(root, "examples", "plugin-adapter"), "service:app", "--servicers", "service:servicers")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "ADAPTER_WEBHOOK_SECRET="+webhookSecret)
	h := NewHost(Options{Cmd: cmd, AutoMTLS: true})
	defer h.Client.Kill()
	rpc, err := h.Client.Client()
	if err != nil {
		t.Fatalf("Client(): %v\nstderr:\n%s", err, h.Stderr.String())
	}
	raw, err := rpc.Dispense("adapter")
	if err != nil {
		t.Fatal(err)
	}
	adapter := raw.(adapterpb.ExternalAdapterClient)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	health, err := adapter.HealthCheck(ctx, &adapterpb.Empty{})
	if err != nil || !health.Healthy {
		t.Fatalf("HealthCheck: %v %v", health, err)
	}
	for _, c := range []struct {
		provider string
		status   int32
	}{{"webhook", 200}, {"json", 401}} {
		resp, err := adapter.Call(ctx, &adapterpb.CallRequest{
			Method:   "POST",
			Endpoint: receiver.URL + "/hook",
			Payload:  []byte(`{"event":"paid"}`),
			Headers:  map[string]string{"x-adapter-provider": c.provider, "Authorization": "Bearer go-host-token"},
		})
		if err != nil {
			t.Fatalf("Call(%s): %v", c.provider, err)
		}
		if resp.StatusCode != c.status {
			t.Errorf("provider %s: status %d (error %q, data %s), want %d", c.provider, resp.StatusCode, resp.Error, resp.Data, c.status)
		}
	}
	killAndCheck(t, h)
	logs := h.Stderr.String()
	if strings.Contains(logs, "go-host-token") || strings.Contains(logs, webhookSecret) {
		t.Errorf("a secret reached the plugin's logs:\n%s", logs)
	}
}
