//! Compiles `proto/` with the system's `protoc` and writes the descriptor set
//! that the servers expose through gRPC reflection.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "plaint/access/v1/access.proto",
        "plaint/events/v1/events.proto",
        "plaint/intake/v1/intake.proto",
        "plaint/router/v1/router.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("plaint_descriptor.bin"))
        .compile_protos(&files.map(|f| root.join(f)), &[root])?;
    Ok(())
}
