// Package interop holds Go programs built on the real hashicorp/go-plugin that tandem's tests run
// against: Go hosts that load tandem's Python plugins, and Go plugins that tandem's Rust host loads.
package interop

import plugin "github.com/hashicorp/go-plugin"

// Handshake is tandem's default go-plugin handshake: the same cookie the Python SDK
// (tandem.plugin) and the Rust host (tandem::plugin) use by default.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "TANDEM_PLUGIN",
	MagicCookieValue: "5f0b7c2e-tandem-go-plugin",
}

// PluginName is the name under which interop hosts and plugins register the tandem call service.
const PluginName = "tandem"
