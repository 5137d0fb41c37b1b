package hosttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	interop "github.com/tandem-rs/tandem/interop/go"
	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

const notAPlugin = "This binary is a plugin. These are not meant to be executed directly.\n" +
	"Please execute the program that consumes these plugins, which will\n" +
	"load any plugins automatically\n"

func testdata(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func pluginCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd, err := PluginCommand(testdata(t), args...)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startFailed reports whether err is go-plugin's error for a plugin that exited before its
// handshake: depending on which it notices first, the host says the process exited or that
// stdout closed without a line.
func startFailed(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "plugin exited before we could connect") ||
		strings.Contains(msg, "Failed to read any lines from plugin's stdout")
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// killAndCheck kills the plugin through go-plugin and checks it left nothing behind.
func killAndCheck(t *testing.T, h *Host) {
	t.Helper()
	rc := h.Client.ReattachConfig()
	start := time.Now()
	h.Client.Kill()
	elapsed := time.Since(start)
	t.Logf("Kill() took %s", elapsed)
	if strings.Contains(h.Logs.String(), "plugin failed to exit gracefully") {
		t.Errorf("the plugin ignored Shutdown; host logs:\n%s", h.Logs.String())
	}
	if elapsed >= 2*time.Second {
		t.Errorf("Kill() took %s, go-plugin's graceful limit is 2s", elapsed)
	}
	if rc == nil {
		return
	}
	if alive(rc.Pid) {
		t.Errorf("plugin pid %d still alive after Kill()", rc.Pid)
	}
	if rc.Addr != nil && rc.Addr.Network() == "unix" {
		if _, err := os.Stat(rc.Addr.String()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s not removed after Shutdown (stat: %v)", rc.Addr.String(), err)
		}
	}
}

func dispenseCall(t *testing.T, h *Host) callpb.CallClient {
	t.Helper()
	rpc, err := h.Client.Client()
	if err != nil {
		t.Fatalf("Client(): %v\nstderr:\n%s", err, h.Stderr.String())
	}
	raw, err := rpc.Dispense(interop.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(callpb.CallClient)
}

func TestGoHostLoadsPythonPlugin(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "automtls"}[mtls]
		t.Run(name, func(t *testing.T) {
			h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app"), AutoMTLS: mtls})
			defer h.Client.Kill()
			call := dispenseCall(t, h)
			rpc, _ := h.Client.Client()
			if err := rpc.Ping(); err != nil {
				t.Fatalf("Ping: %v", err)
			}

			tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", tp)
			reply, err := call.Invoke(ctx, &callpb.CallRequest{Method: "echo", Payload: []byte(`{"n":7}`), Codec: "json"})
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			var got struct {
				Echo        map[string]int `json:"echo"`
				HasDeadline bool           `json:"has_deadline"`
				Traceparent string         `json:"traceparent"`
				Transport   string         `json:"transport"`
			}
			if err := json.Unmarshal(reply.GetOk().GetData(), &got); err != nil {
				t.Fatalf("reply %v: %v", reply, err)
			}
			if got.Echo["n"] != 7 || !got.HasDeadline || got.Traceparent != tp || got.Transport != "plugin" {
				t.Errorf("unexpected reply %+v", got)
			}

			reply, err = call.Invoke(context.Background(), &callpb.CallRequest{Method: "fail", Payload: []byte(`"x"`), Codec: "json"})
			if err != nil {
				t.Fatalf("Invoke fail: %v", err)
			}
			e := reply.GetError()
			if e == nil || e.Kind != "remote" || e.Type != "ValueError" || !strings.Contains(e.Message, "bad input: x") || !strings.Contains(e.Traceback, "raise ValueError") {
				t.Errorf("want a remote ValueError with traceback, got %v", reply)
			}
			reply, err = call.Invoke(context.Background(), &callpb.CallRequest{Method: "nope", Codec: "json", Payload: []byte("{}")})
			if err != nil || reply.GetError().GetKind() != "bad_request" || !strings.Contains(reply.GetError().GetMessage(), "nope") {
				t.Errorf("want bad_request naming the method, got %v %v", reply, err)
			}

			waitFor(t, "SyncStdout", 10*time.Second, func() bool { return strings.Contains(h.SyncStdout.String(), "stdout from echo 7\n") })
			waitFor(t, "SyncStderr", 10*time.Second, func() bool { return strings.Contains(h.SyncStderr.String(), "stderr from echo 7\n") })
			waitFor(t, "the handler's log line", 10*time.Second, func() bool {
				return strings.Contains(h.Logs.String(), "[WARN]  host.python: echo handled")
			})
			if !strings.Contains(h.Logs.String(), "this import-time print must not reach the handshake") {
				t.Errorf("the import-time print should be logged by the host from stderr; logs:\n%s", h.Logs.String())
			}
			if strings.Contains(h.SyncStdout.String(), "import-time") {
				t.Errorf("the import-time print went to stdout")
			}
			killAndCheck(t, h)
		})
	}
}

func TestVersionNegotiation(t *testing.T) {
	cases := []struct {
		host   []int
		plugin string
		want   int
	}{
		{[]int{1}, "1", 1},
		{[]int{1, 2, 3}, "1,3", 3},
		{[]int{1, 3, 5}, "1,3", 3},
		{[]int{2, 5}, "1,5,7", 5},
		{[]int{4}, "2,4,6", 4},
	}
	for _, c := range cases {
		c := c
		t.Run(fmt.Sprintf("host%v/plugin%s", c.host, c.plugin), func(t *testing.T) {
			h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app", "--versions", c.plugin), Versions: c.host, AutoMTLS: true})
			defer killAndCheck(t, h)
			call := dispenseCall(t, h)
			if got := h.Client.NegotiatedVersion(); got != c.want {
				t.Errorf("host %v, plugin %s: negotiated %d, want %d", c.host, c.plugin, got, c.want)
			}
			if _, err := call.Invoke(context.Background(), &callpb.CallRequest{Method: "echo", Payload: []byte("{}"), Codec: "json"}); err != nil {
				t.Errorf("Invoke: %v", err)
			}
		})
	}
}

func TestNoCommonVersionFailsClearly(t *testing.T) {
	h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app", "--versions", "1,2"), Versions: []int{3, 4}})
	defer h.Client.Kill()
	_, err := h.Client.Client()
	if err == nil {
		t.Fatal("Client() succeeded without a common version")
	}
	if !startFailed(err) {
		t.Errorf("unexpected host error: %v", err)
	}
	stderr := h.Stderr.String()
	for _, want := range []string{"no common plugin protocol version", "[3, 4]", "[1, 2]", `"@level": "error"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("plugin stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestWrongCookie(t *testing.T) {
	t.Run("host with another cookie", func(t *testing.T) {
		hs := interop.Handshake
		hs.MagicCookieValue = "not-the-tandem-cookie"
		h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app"), Handshake: &hs})
		defer h.Client.Kill()
		_, err := h.Client.Client()
		if !startFailed(err) {
			t.Fatalf("want a failed start, got %v", err)
		}
		if !strings.Contains(h.Stderr.String(), "This binary is a plugin.") {
			t.Errorf("plugin stderr lacks go-plugin's message:\n%s", h.Stderr.String())
		}
	})
	t.Run("run by hand", func(t *testing.T) {
		cmd := pluginCmd(t, "echoapp:app")
		cmd.Env = append(os.Environ(), "TANDEM_PLUGIN=")
		var stdout, stderr SyncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("want exit status 1, got %v", err)
		}
		if stderr.String() != notAPlugin {
			t.Errorf("stderr = %q, want go-plugin's message %q", stderr.String(), notAPlugin)
		}
		if stdout.String() != "" {
			t.Errorf("stdout must stay empty, got %q", stdout.String())
		}
	})
}

func TestUnixSocketDirAndTCPRange(t *testing.T) {
	t.Run("PLUGIN_UNIX_SOCKET_DIR", func(t *testing.T) {
		dir := t.TempDir()
		cmd := pluginCmd(t, "echoapp:app")
		cmd.Env = append(os.Environ(), "PLUGIN_UNIX_SOCKET_DIR="+dir)
		h := NewHost(Options{Cmd: cmd, AutoMTLS: true})
		dispenseCall(t, h)
		addr := h.Client.ReattachConfig().Addr
		if addr.Network() != "unix" || filepath.Dir(addr.String()) != dir {
			t.Errorf("socket %s %s not in %s", addr.Network(), addr, dir)
		}
		killAndCheck(t, h)
	})
	t.Run("tcp", func(t *testing.T) {
		for _, mtls := range []bool{false, true} {
			h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app", "--network", "tcp"), AutoMTLS: mtls})
			call := dispenseCall(t, h)
			addr := h.Client.ReattachConfig().Addr
			tcp, ok := addr.(*net.TCPAddr)
			if !ok || !tcp.IP.IsLoopback() || tcp.Port < 10000 || tcp.Port > 25000 {
				t.Errorf("want 127.0.0.1 within go-plugin's default 10000..25000, got %v", addr)
			}
			if _, err := call.Invoke(context.Background(), &callpb.CallRequest{Method: "echo", Payload: []byte("{}"), Codec: "json"}); err != nil {
				t.Errorf("Invoke over tcp (mtls=%v): %v", mtls, err)
			}
			killAndCheck(t, h)
		}
	})
}
