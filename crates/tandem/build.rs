//! Compiles the wire contracts in `proto/` with protox (pure Rust: no protoc on the machine).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a build-script binary reused from another checkout
    // must not look for the protos there.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "tandem/call.proto",
        "adapter.proto",
        "inference.proto",
        "goplugin/grpc_controller.proto",
        "goplugin/grpc_stdio.proto",
        "goplugin/grpc_broker.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
