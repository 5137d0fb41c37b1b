// Command host is a go-plugin host (github.com/hashicorp/go-plugin) that loads a tandem Python
// plugin, calls one App method through tandem.v1.Call/Invoke and prints the answer.
//
//	go run ./cmd/host -dir examples/x -app service:app -method echo -payload '{"n":1}' -automtls
//
// Whatever the plugin prints after the handshake is shown with SYNC-STDOUT / SYNC-STDERR
// prefixes; the plugin's logs go through the host's hclog logger on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	interop "github.com/tandem-rs/tandem/interop/go"
	"github.com/tandem-rs/tandem/interop/go/gen/callpb"
	"github.com/tandem-rs/tandem/interop/go/hosttest"
)

// prefixWriter prints each complete line it receives with a prefix.
type prefixWriter struct {
	prefix  string
	partial string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.partial += string(p)
	for {
		i := strings.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Printf("%s: %s\n", w.prefix, w.partial[:i])
		w.partial = w.partial[i+1:]
	}
}

func main() {
	dir := flag.String("dir", ".", "working directory of the plugin (where its module lives)")
	app := flag.String("app", "service:app", "the App spec passed to python -m tandem plugin")
	method := flag.String("method", "echo", "the App method to call")
	payload := flag.String("payload", "{}", "the JSON payload")
	autoMTLS := flag.Bool("automtls", true, "turn on go-plugin AutoMTLS")
	versions := flag.String("versions", "1", "protocol versions the host offers, comma-separated")
	pluginVersions := flag.String("plugin-versions", "1", "versions passed to the plugin's --versions")
	flag.Parse()
	if err := run(*dir, *app, *method, *payload, *autoMTLS, *versions, *pluginVersions); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
}

func run(dir, app, method, payload string, autoMTLS bool, versions, pluginVersions string) error {
	cmd, err := hosttest.PluginCommand(dir, app, "--versions", pluginVersions)
	if err != nil {
		return err
	}
	sets := map[int]plugin.PluginSet{}
	for _, v := range strings.Split(versions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("bad -versions entry %q: %w", v, err)
		}
		sets[n] = hosttest.PluginSet()
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  interop.Handshake,
		VersionedPlugins: sets,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         autoMTLS,
		SyncStdout:       &prefixWriter{prefix: "SYNC-STDOUT"},
		SyncStderr:       &prefixWriter{prefix: "SYNC-STDERR"},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Debug, Output: os.Stderr}),
	})
	defer func() {
		start := time.Now()
		client.Kill()
		fmt.Printf("kill took %s\n", time.Since(start).Round(time.Millisecond))
	}()
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	if err := rpc.Ping(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	raw, err := rpc.Dispense(interop.PluginName)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := raw.(callpb.CallClient).Invoke(ctx, &callpb.CallRequest{Method: method, Payload: []byte(payload), Codec: "json"})
	if err != nil {
		return err
	}
	fmt.Printf("negotiated version %d\n", client.NegotiatedVersion())
	if e := reply.GetError(); e != nil {
		return fmt.Errorf("%s error %s: %s", e.Kind, e.Type, e.Message)
	}
	fmt.Printf("reply: %s\n", reply.GetOk().GetData())
	time.Sleep(100 * time.Millisecond) // let the stdio stream deliver the handler's prints
	return nil
}
