// Command misbehave breaks the go-plugin handshake in the way MISBEHAVE_MODE names, for tandem's
// Rust host tests:
//
//	garbage   prints a line that is no handshake, then waits
//	silent    prints nothing and exits 0
//	exit      writes a message to stderr and exits 1 at once
//	hang      prints nothing and waits forever
//	cert      prints a handshake carrying a certificate although none was asked for
//	netrpc    prints a handshake for the netrpc protocol
//	core      prints a handshake with core protocol version 2
//
// MISBEHAVE_PIDFILE, if set, names a file the process writes its pid to first.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if path := os.Getenv("MISBEHAVE_PIDFILE"); path != "" {
		_ = os.WriteFile(path, []byte(fmt.Sprint(os.Getpid())), 0o600)
	}
	switch os.Getenv("MISBEHAVE_MODE") {
	case "garbage":
		fmt.Println("hello from a program that is not a plugin")
	case "silent":
		os.Exit(0)
	case "exit":
		fmt.Fprintln(os.Stderr, "misbehave: missing configuration file /etc/misbehave.conf")
		os.Exit(1)
	case "hang":
	case "cert":
		fmt.Printf("1|1|unix|/nonexistent/plugin.sock|grpc|%s\n", strings.Repeat("QUJD", 30))
	case "netrpc":
		fmt.Println("1|1|unix|/nonexistent/plugin.sock|netrpc|")
	case "core":
		fmt.Println("2|1|unix|/nonexistent/plugin.sock|grpc|")
	default:
		fmt.Fprintln(os.Stderr, "misbehave: set MISBEHAVE_MODE")
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "misbehave: waiting")
	time.Sleep(time.Hour)
}
