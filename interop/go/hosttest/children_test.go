package hosttest

import (
	"context"
	"strconv"
	"syscall"
	"testing"

	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

// A child process the plugin leaves behind holds only the plugin's own stdio pipes, never the
// host's stdout/stderr, so go-plugin's Kill() (which waits for those pipes to close) returns.
func TestKillDoesNotWaitForThePluginsChildren(t *testing.T) {
	h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app")})
	call := dispenseCall(t, h)
	reply, err := call.Invoke(context.Background(), &callpb.CallRequest{Method: "spawn", Payload: []byte("{}"), Codec: "json"})
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(string(reply.GetOk().GetData()))
	if err != nil || child <= 0 {
		t.Fatalf("spawn reply %v: %v", reply, err)
	}
	defer func() {
		_ = syscall.Kill(child, syscall.SIGKILL) // the test owns this orphan
	}()
	killAndCheck(t, h)
	if !alive(child) {
		t.Fatalf("the child %d should still be running for this test to mean anything", child)
	}
}
