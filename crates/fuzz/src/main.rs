//! `eos-fuzz <target|all> [--iters N] [--seed S] [--time-limit-ms T] [--from I]
//! [--max-seconds M] [--out DIR]`: runs the fuzz targets and prints one line per
//! target (inputs, accepted, rejected, failures, time); exit code 1 when any input
//! failed. `eos-fuzz replay <target> <file>…` runs saved inputs; `eos-fuzz list`
//! names the targets.

use std::path::PathBuf;
use std::time::Duration;

use eos_fuzz::driver::{self, check_one, verdict};
use eos_fuzz::{Config, Report, TARGETS};

const USAGE: &str = "usage: eos-fuzz <target|all> [--iters N] [--seed S] [--time-limit-ms T] \
                     [--from I] [--max-seconds M] [--out DIR]\n       \
                     eos-fuzz replay <target> <file>…\n       eos-fuzz list";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("list") => {
            for t in &TARGETS {
                println!("{:<13} {}", t.name, t.about);
            }
            0
        }
        Some("replay") => replay(&args[1..]),
        Some(_) => match parse(&args) {
            Ok((names, cfg)) => fuzz(&names, &cfg),
            Err(e) => {
                eprintln!("eos-fuzz: {e}\n{USAGE}");
                2
            }
        },
        None => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

/// The targets and the configuration of the command line.
fn parse(args: &[String]) -> Result<(Vec<&'static str>, Config), String> {
    let names: Vec<&'static str> = match args[0].as_str() {
        "all" => TARGETS.iter().map(|t| t.name).collect(),
        n => vec![
            eos_fuzz::target(n)
                .ok_or_else(|| format!("unknown target `{n}`"))?
                .name,
        ],
    };
    let mut cfg = Config {
        iters: 10_000,
        from: 0,
        seed: 1,
        time_limit: Duration::from_millis(2000),
        max_time: None,
        save_dir: PathBuf::from("target/fuzz-failures"),
        max_failures: 20,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: `{value}` is not a non-negative integer"))
        };
        match flag.as_str() {
            "--iters" => cfg.iters = num()?,
            "--seed" => cfg.seed = num()?,
            "--from" => cfg.from = num()?,
            "--time-limit-ms" => cfg.time_limit = Duration::from_millis(num()?.max(1)),
            "--max-seconds" => cfg.max_time = Some(Duration::from_secs(num()?)),
            "--out" => cfg.save_dir = PathBuf::from(value),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok((names, cfg))
}

fn fuzz(names: &[&'static str], cfg: &Config) -> i32 {
    driver::install_panic_hook();
    println!(
        "eos-fuzz: seed {} inputs {}..{} per-input limit {:?}",
        cfg.seed,
        cfg.from,
        cfg.from.saturating_add(cfg.iters),
        cfg.time_limit
    );
    let mut failed = false;
    for name in names {
        let Some(t) = eos_fuzz::target(name) else {
            continue;
        };
        let r = driver::run_target(t, cfg);
        print_report(&r);
        failed |= !r.failures.is_empty();
    }
    i32::from(failed)
}

fn print_report(r: &Report) {
    println!(
        "{:<13} inputs {:>9}  accepted {:>8}  rejected {:>9}  failures {}  {:.1} s  \
         (slowest input {:.1} ms, largest {} B, max heap {} B)",
        r.target,
        r.inputs,
        r.accepted,
        r.rejected,
        r.failures.len(),
        r.elapsed.as_secs_f64(),
        r.max_input_time.as_secs_f64() * 1e3,
        r.max_len,
        r.max_peak
    );
    for f in &r.failures {
        let saved = f
            .saved
            .as_ref()
            .map_or_else(|| "(not saved)".into(), |p| p.display().to_string());
        println!(
            "  FAIL input #{} seed {}: {} [saved: {saved}]",
            f.index, r.seed, f.message
        );
    }
}

/// Runs saved inputs through a target; exit 1 when one fails.
fn replay(args: &[String]) -> i32 {
    let Some(t) = args.first().and_then(|n| eos_fuzz::target(n)) else {
        eprintln!("eos-fuzz replay: name a target (eos-fuzz list)\n{USAGE}");
        return 2;
    };
    driver::install_panic_hook();
    let mut failed = false;
    for file in &args[1..] {
        let input = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("eos-fuzz replay: {file}: cannot read: {e}");
                return 2;
            }
        };
        let (result, peak, len) = check_one(t, &input);
        match verdict(result, peak, len, t.extra_base) {
            Ok(o) => println!("{file}: {o:?} (heap peak {peak} B)"),
            Err(e) => {
                println!("{file}: FAIL: {e}");
                failed = true;
            }
        }
    }
    i32::from(failed)
}
