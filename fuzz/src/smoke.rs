//! A small fuzzer that runs on stable: a target's body over its seeds, then over
//! mutated seeds and random bytes, each input within a time bound. Deterministic for
//! a given seed, so a failure can be replayed; the failing input is printed in hex
//! (save it under `seeds/<target>/` to keep it as a regression input).
//!
//! Environment: `PLAINT_FUZZ_ITERATIONS` (generated inputs per target, default
//! 10 000), `PLAINT_FUZZ_SEED` (a number, or `random`; default fixed).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generated inputs per target when `PLAINT_FUZZ_ITERATIONS` is unset.
pub const DEFAULT_ITERATIONS: u64 = 10_000;
/// The PRNG seed when `PLAINT_FUZZ_SEED` is unset.
pub const DEFAULT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Longest any single input may take before the run is declared hung.
pub const HANG_LIMIT: Duration = Duration::from_secs(5);

/// Tokens the mutator splices in: JSON syntax and awkward values, protobuf
/// framing that lies about lengths, enum names the helpdesk knows.
const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"\"\\ud800\"",
    b"\"\\u0000\"",
    b"\"type\":\"submit\"",
    b"\"complaint_id\":\"\"",
    b"PUBLIC_SOCIAL",
    b"LETTER_TO_CEO",
    b"PLATINUM",
    b"REFUNDED",
    b"\xff\xff\xff\xff\x0f",
    b"\x0a\x00",
    b"\x0a\x7f",
    b"\x12\x80\x01",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
];

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target's name.
    pub target: String,
    /// Seeds run as they are.
    pub seeds: usize,
    /// Inputs generated and run.
    pub generated: u64,
    /// The PRNG seed (to replay the run).
    pub seed: u64,
    /// The slowest input's time.
    pub slowest: Duration,
    /// The slowest input's length.
    pub slowest_len: usize,
    /// The whole run's time.
    pub elapsed: Duration,
}

/// xorshift64*: small, fast, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift cannot leave it).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { DEFAULT_SEED } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The iterations and seed the environment asks for.
pub fn settings() -> (u64, u64) {
    let iterations = std::env::var("PLAINT_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let seed = match std::env::var("PLAINT_FUZZ_SEED").ok().as_deref() {
        None | Some("") => DEFAULT_SEED,
        Some("random") => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            nanos ^ u64::from(std::process::id())
        }
        Some(v) => v.parse().unwrap_or(DEFAULT_SEED),
    };
    (iterations, seed)
}

/// Every file under `dir` (none when it does not exist).
pub fn read_dir_inputs(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// One mutation of `input` (which may grow, shrink or change).
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let at = |rng: &mut Rng, v: &Vec<u8>| rng.below(v.len() + 1);
    match rng.below(10) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = [0x00, 0x01, 0x7f, 0x80, 0xff, b'"', b'\\', b'{'][rng.below(8)];
        }
        2 => {
            let i = at(rng, input);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            input.splice(i..i, bytes);
        }
        3 if !input.is_empty() => {
            let i = rng.below(input.len());
            let n = 1 + rng.below((input.len() - i).min(16));
            input.drain(i..i + n);
        }
        4 => {
            let i = at(rng, input);
            input.truncate(i);
        }
        5 if !input.is_empty() => {
            let from = rng.below(input.len());
            let n = 1 + rng.below((input.len() - from).min(64));
            let chunk = input[from..from + n].to_vec();
            let to = at(rng, input);
            input.splice(to..to, chunk);
        }
        6 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let keep = at(rng, input);
            let from = rng.below(other.len() + 1);
            input.truncate(keep);
            input.extend_from_slice(&other[from..]);
        }
        7 | 8 => {
            let token = DICTIONARY[rng.below(DICTIONARY.len())];
            let i = at(rng, input);
            input.splice(i..i, token.iter().copied());
        }
        _ => {
            if input.is_empty() {
                input.push(rng.next_u64() as u8);
            } else {
                let i = rng.below(input.len());
                let n = 1 + rng.below((input.len() - i).min(8));
                for b in &mut input[i..i + n] {
                    *b = rng.next_u64() as u8;
                }
            }
        }
    }
}

/// The next generated input: mostly a seed with a few stacked mutations, sometimes
/// plain random bytes.
pub fn generate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(8) == 0 {
        let n = rng.below(256);
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let mut input = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut input, seeds);
    }
    input
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes.iter().take(4096) {
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > 4096 {
        s.push_str("...");
    }
    s
}

/// Runs `body` over every seed, then over `iterations` generated inputs, on a worker
/// thread watched by the caller's: an input running longer than [`HANG_LIMIT`] fails
/// the run (a hang), as does a panic; both name the input in hex.
///
/// # Panics
///
/// When the body panics or hangs on some input.
pub fn run(
    target: &str,
    body: fn(&[u8]),
    seeds: Vec<Vec<u8>>,
    iterations: u64,
    seed: u64,
) -> Report {
    // Which input is running (u64::MAX: none yet), and the input itself.
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let input: Arc<Mutex<Vec<u8>>> = Arc::default();
    let started = Instant::now();
    let worker = {
        let current = current.clone();
        let input = input.clone();
        let seeds = seeds.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{target}"))
            .spawn(move || {
                let mut rng = Rng::new(seed);
                let mut slowest = (Duration::ZERO, 0);
                let total = seeds.len() as u64 + iterations;
                for n in 0..total {
                    let data = match usize::try_from(n).ok().and_then(|i| seeds.get(i)) {
                        Some(s) => s.clone(),
                        None => generate(&mut rng, &seeds),
                    };
                    if let Ok(mut slot) = input.lock() {
                        slot.clone_from(&data);
                    }
                    current.store(n, Ordering::SeqCst);
                    let t = Instant::now();
                    body(&data);
                    let took = t.elapsed();
                    if took > slowest.0 {
                        slowest = (took, data.len());
                    }
                }
                current.store(total, Ordering::SeqCst);
                slowest
            })
            .unwrap_or_else(|e| panic!("cannot start the fuzz worker: {e}"))
    };
    let mut last = (u64::MAX, Instant::now());
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
        let now = current.load(Ordering::SeqCst);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > HANG_LIMIT {
            let data = input.lock().map(|d| d.clone()).unwrap_or_default();
            panic!(
                "{target}: input #{now} ran over {HANG_LIMIT:?} (seed {seed}); {} bytes: {}",
                data.len(),
                hex(&data)
            );
        }
    }
    match worker.join() {
        Ok((slowest, slowest_len)) => Report {
            target: target.to_owned(),
            seeds: seeds.len(),
            generated: iterations,
            seed,
            slowest,
            slowest_len,
            elapsed: started.elapsed(),
        },
        Err(_) => {
            let n = current.load(Ordering::SeqCst);
            let data = input
                .lock()
                .map(|d| d.clone())
                .unwrap_or_else(|p| p.into_inner().clone());
            panic!(
                "{target}: input #{n} panicked (seed {seed}, see the message above); {} bytes: {}",
                data.len(),
                hex(&data)
            );
        }
    }
}
