// Package hosttest holds the host side of tandem's Go interop: go-plugin GRPCPlugin
// implementations whose clients call a tandem Python plugin, helpers to build a real
// plugin.Client for it, and (in *_test.go) the tests that run them against
// `python -m tandem plugin`.
package hosttest

import (
	"context"
	"errors"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tandem-rs/tandem/interop/go/gen/adapterpb"
	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
)

// errHostOnly is returned when a host-side plugin type is asked to serve: these types only
// dispense clients for plugins written with tandem's Python SDK.
var errHostOnly = errors.New("hosttest plugins are host-side only; serve with python -m tandem plugin")

// CallPlugin dispenses a tandem.v1.Call client (the generic call into a tandem App).
type CallPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

// GRPCServer is not supported: the server is the Python plugin.
func (CallPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return errHostOnly }

// GRPCClient returns a callpb.CallClient over the plugin's connection.
func (CallPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return callpb.NewCallClient(c), nil
}

// AdapterPlugin dispenses an adapter.ExternalAdapter client.
type AdapterPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

// GRPCServer is not supported: the server is the Python plugin.
func (AdapterPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return errHostOnly }

// GRPCClient returns an adapterpb.ExternalAdapterClient over the plugin's connection.
func (AdapterPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return adapterpb.NewExternalAdapterClient(c), nil
}

// PluginSet is the set every interop host registers: "tandem" (Call) and "adapter".
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{"tandem": CallPlugin{}, "adapter": AdapterPlugin{}}
}
