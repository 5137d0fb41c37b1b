// Command echo is a go-plugin (v1.7.0) plugin serving tandem.v1.Call and adapter.ExternalAdapter,
// used by tandem's Rust host tests. Methods of tandem.v1.Call/Invoke:
//
//	echo      returns the payload unchanged
//	version   returns the negotiated app protocol version
//	pid       returns the process id
//	meta      returns "traceparent=<field>;grpc=<metadata>;deadline=<yes|no>"
//	print     writes the payload to stdout and stderr (after the handshake: GRPCStdio)
//	log       logs the payload at warn through hclog (JSON on the real stderr)
//	sleep     sleeps for the payload's number of milliseconds, then echoes it
//	fail      answers with a remote CallError
//	crash     exits the process with status 3
//
// ECHO_VERSIONS (e.g. "1,3") selects the app protocol versions it serves (default 1).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	interop "github.com/tandem-rs/tandem/interop/go"
	"github.com/tandem-rs/tandem/interop/go/gen/adapterpb"
	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

var logger = hclog.New(&hclog.LoggerOptions{Name: "echo", Level: hclog.Trace, JSONFormat: true, Output: os.Stderr})

type callServer struct {
	callpb.UnimplementedCallServer
	version int
}

func ok(data []byte, codec string) *callpb.CallReply {
	return &callpb.CallReply{Result: &callpb.CallReply_Ok{Ok: &callpb.Payload{Data: data, Codec: codec}}}
}

func (s *callServer) Invoke(ctx context.Context, req *callpb.CallRequest) (*callpb.CallReply, error) {
	switch req.Method {
	case "echo":
		return ok(req.Payload, req.Codec), nil
	case "version":
		return ok([]byte(strconv.Itoa(s.version)), "raw"), nil
	case "pid":
		return ok([]byte(strconv.Itoa(os.Getpid())), "raw"), nil
	case "meta":
		md, _ := metadata.FromIncomingContext(ctx)
		_, hasDeadline := ctx.Deadline()
		dl := "no"
		if hasDeadline {
			dl = "yes"
		}
		out := fmt.Sprintf("traceparent=%s;grpc=%s;deadline=%s", req.Traceparent, strings.Join(md.Get("traceparent"), ","), dl)
		return ok([]byte(out), "raw"), nil
	case "print":
		fmt.Fprintf(os.Stdout, "stdout: %s\n", req.Payload)
		fmt.Fprintf(os.Stderr, "stderr: %s\n", req.Payload)
		return ok(req.Payload, req.Codec), nil
	case "log":
		logger.Warn(string(req.Payload), "plugin", "echo")
		return ok(req.Payload, req.Codec), nil
	case "sleep":
		ms, _ := strconv.Atoi(string(req.Payload))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return ok(req.Payload, req.Codec), nil
	case "fail":
		return &callpb.CallReply{Result: &callpb.CallReply_Error{Error: &callpb.CallError{
			Kind: "remote", Type: "ValueError", Message: "bad value: " + string(req.Payload), Traceback: "echo.go: fail",
		}}}, nil
	case "crash":
		os.Exit(3)
	}
	return &callpb.CallReply{Result: &callpb.CallReply_Error{Error: &callpb.CallError{
		Kind: "bad_request", Message: "unknown method " + strconv.Quote(req.Method),
	}}}, nil
}

type adapterServer struct {
	adapterpb.UnimplementedExternalAdapterServer
}

func (adapterServer) Call(_ context.Context, req *adapterpb.CallRequest) (*adapterpb.CallResponse, error) {
	keys := make([]string, 0, len(req.Headers))
	for k := range req.Headers {
		keys = append(keys, k)
	}
	return &adapterpb.CallResponse{StatusCode: 200, Data: append([]byte(req.Method+" "+req.Endpoint+" "), req.Payload...)}, nil
}

func (adapterServer) HealthCheck(context.Context, *adapterpb.Empty) (*adapterpb.HealthResponse, error) {
	return &adapterpb.HealthResponse{Healthy: true, Message: "echo adapter ok"}, nil
}

// tandemPlugin registers the tandem services on the plugin's gRPC server.
type tandemPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	version int
}

func (p *tandemPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	callpb.RegisterCallServer(s, &callServer{version: p.version})
	adapterpb.RegisterExternalAdapterServer(s, adapterServer{})
	return nil
}

func (p *tandemPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("echo is a plugin only")
}

func main() {
	versions := map[int]plugin.PluginSet{}
	spec := os.Getenv("ECHO_VERSIONS")
	if spec == "" {
		spec = "1"
	}
	for _, v := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad ECHO_VERSIONS entry %q\n", v)
			os.Exit(2)
		}
		versions[n] = plugin.PluginSet{interop.PluginName: &tandemPlugin{version: n}}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  interop.Handshake,
		VersionedPlugins: versions,
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}
