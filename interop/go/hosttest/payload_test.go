package hosttest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

// A payload well above gRPC's 4 MiB default goes both ways, through the TLS relay too.
func TestLargePayloadsCrossBothWays(t *testing.T) {
	big := strings.Repeat("x", 6<<20)
	payload, err := json.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	for _, mtls := range []bool{false, true} {
		h := NewHost(Options{Cmd: pluginCmd(t, "echoapp:app"), AutoMTLS: mtls})
		call := dispenseCall(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		reply, err := call.Invoke(ctx, &callpb.CallRequest{Method: "ping", Payload: payload, Codec: "json"})
		cancel()
		if err != nil {
			t.Fatalf("Invoke 6 MiB (mtls=%v): %v", mtls, err)
		}
		if !bytes.Equal(reply.GetOk().GetData(), payload) {
			t.Errorf("mtls=%v: reply of %d bytes differs from the %d-byte payload", mtls, len(reply.GetOk().GetData()), len(payload))
		}
		killAndCheck(t, h)
	}
}
