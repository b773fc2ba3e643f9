//! The benchmark, as a user runs it (`bench/run`): the real `entitle` binary as its own process,
//! driven by wrk, reported as ratios against baselines measured in the same run on the same
//! machine. `entitle-bench baseline` is the baselines' own process.

mod baseline;
mod mail;
mod run;
mod wrk;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((command, rest)) if command == "baseline" => baseline::main(rest),
        Some((command, rest)) if command == "run" => run::main(rest),
        _ => run::main(&args),
    }
}
