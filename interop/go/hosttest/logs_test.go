package hosttest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

// The plugin's hclog JSON lines reach the Go host's logger at their own levels.
func TestPluginLogsKeepTheirLevelsInTheGoHost(t *testing.T) {
	cmd := pluginCmd(t, "echoapp:app")
	cmd.Env = append(os.Environ(), "TANDEM_LOG=debug")
	h := NewHost(Options{Cmd: cmd})
	call := dispenseCall(t, h)
	if _, err := call.Invoke(context.Background(), &callpb.CallRequest{Method: "log", Payload: []byte("{}"), Codec: "json"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"[DEBUG] host.python: level check debug",
		"[INFO]  host.python: level check info",
		"[WARN]  host.python: level check warn",
		"[ERROR] host.python: level check error",
		"[ERROR] host.python: level check traceback",
	}
	waitFor(t, "all log lines", 10*time.Second, func() bool {
		logs := h.Logs.String()
		for _, w := range want {
			if !strings.Contains(logs, w) {
				return false
			}
		}
		return true
	})
	if logs := h.Logs.String(); !strings.Contains(logs, "RuntimeError: level check exception") {
		t.Errorf("the traceback should travel with the error record:\n%s", logs)
	}
	killAndCheck(t, h)
}
