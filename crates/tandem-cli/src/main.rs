//! The `tandem` command. This crate only parses arguments, formats output and maps errors to
//! exit codes; everything else lives in the `tandem` library.

fn main() {
    std::process::exit(0);
}
