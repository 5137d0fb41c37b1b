// Package gen holds Go code generated from the repository's proto/ contracts (tandem.v1.Call and
// adapter.ExternalAdapter) for the interop programs. Regenerate with interop/go/gen.sh.
package gen
