package hosttest

import (
	"bytes"
	"io"
	"os/exec"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	interop "github.com/tandem-rs/tandem/interop/go"
)

// SyncBuffer is a goroutine-safe bytes.Buffer for SyncStdout, SyncStderr and logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Options shape a host for one plugin start.
type Options struct {
	Cmd         *exec.Cmd
	AutoMTLS    bool
	Versions    []int                   // VersionedPlugins keys; empty means Handshake.ProtocolVersion (1)
	Handshake   *plugin.HandshakeConfig // nil means tandem's default
	StartTimout time.Duration
}

// Host is a real go-plugin client plus the buffers it writes into.
type Host struct {
	Client     *plugin.Client
	SyncStdout *SyncBuffer // what the plugin printed to fd 1 after the handshake
	SyncStderr *SyncBuffer // what the plugin printed to fd 2 after the handshake
	Stderr     *SyncBuffer // raw stderr lines (the plugin's hclog JSON)
	Logs       *SyncBuffer // the host logger's output
}

// NewHost builds a plugin.Client for o (gRPC only), not yet started.
func NewHost(o Options) *Host {
	h := &Host{SyncStdout: &SyncBuffer{}, SyncStderr: &SyncBuffer{}, Stderr: &SyncBuffer{}, Logs: &SyncBuffer{}}
	hs := interop.Handshake
	if o.Handshake != nil {
		hs = *o.Handshake
	}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  hs,
		Cmd:              o.Cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         o.AutoMTLS,
		SyncStdout:       h.SyncStdout,
		SyncStderr:       h.SyncStderr,
		Stderr:           h.Stderr,
		StartTimeout:     o.StartTimout,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "host",
			Level:  hclog.Trace,
			Output: io.Writer(h.Logs),
		}),
	}
	if len(o.Versions) == 0 {
		cfg.Plugins = PluginSet()
	} else {
		cfg.VersionedPlugins = map[int]plugin.PluginSet{}
		for _, v := range o.Versions {
			cfg.VersionedPlugins[v] = PluginSet()
		}
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	h.Client = plugin.NewClient(cfg)
	return h
}
