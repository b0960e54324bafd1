//! Shared plumbing for loomwork's benchmarks: interleaved runs and a table of medians.
//!
//! Benchmarks here print ratios; they never assert on time (docs/architecture.md, "Testing").
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.

use std::time::{Duration, Instant};

/// One contender: a name and a run that returns how many frames it produced.
pub struct Contender<'a> {
    /// Shown in the table.
    pub name: &'static str,
    /// Prepares its input untimed, then runs the timed part; returns (frames, elapsed).
    pub run: Box<dyn FnMut() -> (u64, Duration) + 'a>,
}

/// Timings of one contender over all rounds.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The contender's name.
    pub name: &'static str,
    /// Frames per run (the same every round).
    pub frames: u64,
    /// Elapsed time of each round.
    pub times: Vec<Duration>,
}

impl Sample {
    /// The median run time.
    pub fn median(&self) -> Duration {
        let mut times = self.times.clone();
        times.sort();
        times[times.len() / 2]
    }

    /// The fastest run.
    pub fn min(&self) -> Duration {
        self.times.iter().copied().min().unwrap_or_default()
    }

    /// The slowest run.
    pub fn max(&self) -> Duration {
        self.times.iter().copied().max().unwrap_or_default()
    }
}

/// Runs the contenders interleaved (A B C A B C ...) for `rounds` rounds, or until `budget`
/// has passed (at least 3 rounds), so that drift in machine load hits every contender alike.
///
/// Setting `LOOMWORK_BENCH_ONLY=word` runs only the contenders whose name contains `word`
/// (for profiling one of them under `perf`).
pub fn interleave(
    contenders: &mut [Contender<'_>],
    rounds: usize,
    budget: Duration,
) -> Vec<Sample> {
    if let Ok(only) = std::env::var("LOOMWORK_BENCH_ONLY") {
        for c in contenders
            .iter_mut()
            .filter(|c| !c.name.contains(only.as_str()))
        {
            c.run = Box::new(|| (0, Duration::ZERO));
        }
    }
    let mut samples: Vec<Sample> = contenders
        .iter()
        .map(|c| Sample {
            name: c.name,
            frames: 0,
            times: Vec::new(),
        })
        .collect();
    // One untimed warm-up round (page faults, caches, branch predictors).
    for c in contenders.iter_mut() {
        let _ = (c.run)();
    }
    let start = Instant::now();
    for round in 0..rounds {
        for (c, s) in contenders.iter_mut().zip(samples.iter_mut()) {
            let (frames, elapsed) = (c.run)();
            s.frames = frames;
            s.times.push(elapsed);
        }
        if round >= 2 && start.elapsed() > budget {
            break;
        }
    }
    samples
}

/// Prints one table: median time, min–max, frames/s and MB/s, and each row's ratio to the
/// row named `baseline`.
pub fn print_table(title: &str, bytes: usize, samples: &[Sample], baseline: &str) {
    let base = samples
        .iter()
        .find(|s| s.name == baseline)
        .map(|s| s.median());
    println!(
        "\n{title} ({} MiB, {} rounds)",
        bytes >> 20,
        samples.first().map_or(0, |s| s.times.len())
    );
    println!(
        "  {:<28} {:>10} {:>21} {:>12} {:>10} {:>8}",
        "contender", "median", "min-max", "frames/s", "MB/s", "speed"
    );
    for s in samples {
        let median = s.median().as_secs_f64();
        let ratio = base.map(|b| b.as_secs_f64() / median).unwrap_or(f64::NAN);
        println!(
            "  {:<28} {:>8.2}ms {:>9.2}-{:<9.2}ms {:>12.0} {:>10.0} {:>7.2}x",
            s.name,
            median * 1e3,
            s.min().as_secs_f64() * 1e3,
            s.max().as_secs_f64() * 1e3,
            s.frames as f64 / median,
            bytes as f64 / median / 1e6,
            ratio,
        );
    }
}

/// `numerator`'s speed over `denominator`'s (ratio of median times), for the summary.
pub fn speedup(samples: &[Sample], numerator: &str, denominator: &str) -> f64 {
    ratio(samples, numerator, denominator, Sample::median)
}

/// The same ratio over the fastest runs: less sensitive to other load on a shared machine.
pub fn speedup_of_best(samples: &[Sample], numerator: &str, denominator: &str) -> f64 {
    ratio(samples, numerator, denominator, Sample::min)
}

fn ratio(
    samples: &[Sample],
    numerator: &str,
    denominator: &str,
    pick: fn(&Sample) -> Duration,
) -> f64 {
    let find = |name| {
        samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| pick(s).as_secs_f64())
    };
    match (find(numerator), find(denominator)) {
        (Some(n), Some(d)) => d / n,
        _ => f64::NAN,
    }
}
