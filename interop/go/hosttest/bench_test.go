package hosttest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

// BenchmarkInvoke measures one tandem.v1.Call/Invoke round trip from a real go-plugin host into
// the Python plugin, without TLS (the baseline) and with AutoMTLS (through the OpenSSL front).
// Compare the two in the same run: the ratio is the cost of mutual TLS plus the local relay.
//
//	go test -run '^$' -bench Invoke ./hosttest/
func BenchmarkInvoke(b *testing.B) {
	for _, mtls := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "automtls"}[mtls]
		b.Run(name, func(b *testing.B) {
			cmd, err := PluginCommand(mustAbs(b, "testdata"), "echoapp:app")
			if err != nil {
				b.Fatal(err)
			}
			h := NewHost(Options{Cmd: cmd, AutoMTLS: mtls})
			defer h.Client.Kill()
			rpc, err := h.Client.Client()
			if err != nil {
				b.Fatal(err)
			}
			raw, err := rpc.Dispense("tandem")
			if err != nil {
				b.Fatal(err)
			}
			call := raw.(callpb.CallClient)
			req := &callpb.CallRequest{Method: "ping", Payload: []byte(`{"n":1}`), Codec: "json"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				reply, err := call.Invoke(context.Background(), req)
				if err != nil || reply.GetOk() == nil {
					b.Fatalf("Invoke: %v %v", reply, err)
				}
			}
		})
	}
}

func mustAbs(b *testing.B, rel string) string {
	b.Helper()
	dir, err := filepath.Abs(rel)
	if err != nil {
		b.Fatal(err)
	}
	return dir
}
