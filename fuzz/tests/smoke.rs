//! The fuzz targets on stable: each target's body over its seeds (built in code,
//! plus the files under `seeds/<target>/`, where inputs found by longer runs are
//! kept) and 10 000 mutated or random inputs, with a time bound per input. A few
//! seconds in CI; `PLAINT_FUZZ_ITERATIONS` and `PLAINT_FUZZ_SEED` make longer or
//! different runs (RELIABILITY.md).

use std::path::Path;

use plaint_fuzz::{seeds, smoke};

fn seeds_for(target: &str, built: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut all = built;
    all.extend(smoke::read_dir_inputs(&dir));
    all.extend(seeds::bombs());
    all
}

fn fuzz(target: &str, body: fn(&[u8]), built: Vec<Vec<u8>>) {
    let (iterations, seed) = smoke::settings();
    let report = smoke::run(target, body, seeds_for(target, built), iterations, seed);
    println!(
        "fuzz {}: {} seeds + {} generated inputs (seed {}) in {:.1?}; slowest input {:.1?} ({} bytes)",
        report.target,
        report.seeds,
        report.generated,
        report.seed,
        report.elapsed,
        report.slowest,
        report.slowest_len
    );
}

#[test]
fn fuzz_smoke_envelope_decoder_never_panics_nor_hangs_and_round_trips() {
    let mut built = seeds::envelopes();
    // The other target's inputs are fine food for this one too.
    built.extend(seeds::helpdesk());
    fuzz("envelope", plaint_fuzz::envelope, built);
}

#[test]
fn fuzz_smoke_helpdesk_decoders_never_panic_nor_hang_and_agree() {
    let mut built = seeds::helpdesk();
    built.extend(seeds::envelopes());
    fuzz("helpdesk", plaint_fuzz::helpdesk, built);
}

/// Writes the built-in seeds under `seeds/<target>/`, for libFuzzer runs to start
/// from: `cargo test -p plaint-fuzz -- --ignored write_seed_files`.
#[test]
#[ignore = "writes files; run by hand when the seeds change"]
fn write_seed_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, built) in [
        ("envelope", seeds::envelopes()),
        ("helpdesk", seeds::helpdesk()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (i, bytes) in built.iter().enumerate() {
            let path = dir.join(format!("seed-{i:02}"));
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
