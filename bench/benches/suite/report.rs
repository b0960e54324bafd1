//! The suite's output: one markdown table of medians with min–max, and the ratio of each
//! loomwork server to each peer in the same measurement, then the issues' targets (7, 17).

use crate::load::Run;

/// One contender's runs in one measurement.
struct Row {
    name: String,
    runs: Vec<Run>,
}

/// One measurement: a title, a unit and a row per contender.
pub(crate) struct Measurement {
    title: String,
    unit: &'static str,
    rows: Vec<Row>,
}

impl Measurement {
    /// An empty measurement.
    pub(crate) fn new(title: &str, unit: &'static str) -> Self {
        Measurement {
            title: title.to_owned(),
            unit,
            rows: Vec::new(),
        }
    }

    /// Adds a contender's runs.
    pub(crate) fn add(&mut self, name: &str, runs: Vec<Run>) {
        self.rows.push(Row {
            name: name.to_owned(),
            runs,
        });
    }

    fn median_of(&self, name: &str, pick: fn(&Run) -> f64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| median(r.runs.iter().map(pick).collect()))
    }
}

/// Every measurement of a run of the suite.
#[derive(Default)]
pub(crate) struct Table {
    measurements: Vec<Measurement>,
}

/// One target of issue 7: `ours ÷ peer` of `pick` in the measurement titled `title` must be at
/// least `at_least` (or, with `lower_is_better`, at most 1 / `at_least`).
struct Target {
    title: &'static str,
    ours: &'static str,
    peer: &'static str,
    what: &'static str,
    pick: fn(&Run) -> f64,
    lower_is_better: bool,
}

const TARGETS: &[Target] = &[
    // Issue 14: loomwork's TLS layer against tokio-rustls, both on rustls with ring.
    Target {
        title: "TLS echo, 32 conn",
        ours: "loomwork-smol+tls",
        peer: "tokio-rustls",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TLS echo, 32 conn",
        ours: "loomwork-std+tls",
        peer: "tokio-rustls",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TLS full handshakes",
        ours: "loomwork-smol+tls",
        peer: "tokio-rustls",
        what: "conn/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TLS full handshakes",
        ours: "loomwork-std+tls",
        peer: "tokio-rustls",
        what: "conn/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "server RSS per idle TLS connection",
        ours: "loomwork-smol+tls",
        peer: "tokio-rustls",
        what: "bytes",
        pick: rate,
        lower_is_better: true,
    },
    // Issue 17: loomwork-tokio against plain tokio and tokio-util, on the same runtime.
    Target {
        title: "TCP echo, 32 conn",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP echo, 1 conn",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP request/response, 32 conn",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "req/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP request/response, 32 conn",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "p99",
        pick: p99,
        lower_is_better: true,
    },
    Target {
        title: "TCP request/response, 1 conn",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "req/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP connection setup",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "conn/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "UDP pipelined",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "pkt/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "UDP request/response",
        ours: "loomwork-tokio",
        peer: "tokio",
        what: "pkt/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "framed int32 echo, 1 conn, 64 B",
        ours: "loomwork-tokio Framed",
        peer: "tokio-util Framed",
        what: "frames/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "framed line echo, 1 conn, 64 B",
        ours: "loomwork-tokio Framed",
        peer: "tokio-util Framed",
        what: "frames/s",
        pick: rate,
        lower_is_better: false,
    },
    // Issue 7.
    Target {
        title: "TCP echo, 32 conn",
        ours: "loomwork-smol",
        peer: "smol",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP echo, 32 conn",
        ours: "loomwork-std",
        peer: "std",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP echo, 32 conn",
        ours: "loomwork-smol",
        peer: "tokio",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP echo, 32 conn",
        ours: "loomwork-std",
        peer: "tokio",
        what: "MiB/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP request/response, 32 conn",
        ours: "loomwork-smol",
        peer: "tokio",
        what: "req/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "TCP request/response, 32 conn",
        ours: "loomwork-smol",
        peer: "tokio",
        what: "p99",
        pick: p99,
        lower_is_better: true,
    },
    Target {
        title: "framed int32 echo, 1 conn, 64 B",
        ours: "loomwork-smol Framed",
        peer: "tokio-util Framed",
        what: "frames/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "framed int32 echo, 1 conn, 64 B",
        ours: "loomwork-std Framed",
        peer: "tokio-util Framed",
        what: "frames/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "UDP pipelined",
        ours: "loomwork-std",
        peer: "std",
        what: "pkt/s",
        pick: rate,
        lower_is_better: false,
    },
    Target {
        title: "UDP pipelined",
        ours: "loomwork-smol",
        peer: "smol",
        what: "pkt/s",
        pick: rate,
        lower_is_better: false,
    },
];

fn rate(run: &Run) -> f64 {
    run.rate
}

fn p99(run: &Run) -> f64 {
    run.p99_us
}

impl Table {
    /// Adds a finished measurement.
    pub(crate) fn push(&mut self, measurement: Measurement) {
        self.measurements.push(measurement);
    }

    /// Prints the table, then every target whose measurement ran.
    pub(crate) fn print(&self, caption: &str) {
        println!("\n{caption}\n");
        println!(
            "| measurement | server | median | min–max | p50 / p99 µs | loss | loomwork ÷ peer |"
        );
        println!("|---|---|--:|--:|--:|--:|---|");
        for m in &self.measurements {
            for (i, row) in m.rows.iter().enumerate() {
                let rates: Vec<f64> = row.runs.iter().map(rate).collect();
                let (lo, hi) = min_max(&rates);
                let latency = if row.runs.iter().any(|r| r.p99_us > 0.0) {
                    format!(
                        "{:.0} / {:.0}",
                        median(row.runs.iter().map(|r| r.p50_us).collect()),
                        median(row.runs.iter().map(p99).collect())
                    )
                } else {
                    String::new()
                };
                let loss = if m.unit == "pkt/s" {
                    format!(
                        "{:.2}%",
                        median(row.runs.iter().map(|r| r.loss_pct).collect())
                    )
                } else {
                    String::new()
                };
                let ratios = if row.name.starts_with("loomwork") {
                    let ours = median(rates.clone());
                    m.rows
                        .iter()
                        .filter(|peer| !peer.name.starts_with("loomwork"))
                        .map(|peer| {
                            let theirs = median(peer.runs.iter().map(rate).collect());
                            format!("{:.2}x {}", ours / theirs, peer.name)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    String::new()
                };
                println!(
                    "| {} | {} | {} {} | {}–{} | {} | {} | {} |",
                    if i == 0 { m.title.as_str() } else { "" },
                    row.name,
                    number(median(rates.clone())),
                    m.unit,
                    number(lo),
                    number(hi),
                    latency,
                    loss,
                    ratios
                );
            }
        }
        println!("\nTargets of issues 14, 17 and 7 (medians of this run):\n");
        for t in TARGETS {
            let Some(m) = self
                .measurements
                .iter()
                .find(|m| m.title.starts_with(t.title))
            else {
                continue;
            };
            let (Some(ours), Some(theirs)) =
                (m.median_of(t.ours, t.pick), m.median_of(t.peer, t.pick))
            else {
                continue;
            };
            let ratio = ours / theirs;
            let met = if t.lower_is_better {
                ratio <= 1.0
            } else {
                ratio >= 1.0
            };
            println!(
                "- {}: {} ÷ {} {} = {:.2}x (target {} 1.00x): {}",
                m.title,
                t.ours,
                t.peer,
                t.what,
                ratio,
                if t.lower_is_better { "≤" } else { "≥" },
                if met { "met" } else { "MISSED" }
            );
        }
        if let Some(m) = self
            .measurements
            .iter()
            .find(|m| m.title.starts_with("server RSS"))
        {
            for ours in ["loomwork-smol", "loomwork-tokio"] {
                if let Some(bytes) = m.median_of(ours, rate) {
                    println!(
                        "- {}: {ours} {:.0} bytes (target ≤ 2048): {}",
                        m.title,
                        bytes,
                        if bytes <= 2048.0 { "met" } else { "MISSED" }
                    );
                }
            }
            if let (Some(ours), Some(theirs)) = (
                m.median_of("loomwork-tokio", rate),
                m.median_of("tokio", rate),
            ) {
                println!(
                    "- {}: loomwork-tokio {:.0} bytes ≤ tokio {:.0} bytes: {}",
                    m.title,
                    ours,
                    theirs,
                    if ours <= theirs { "met" } else { "MISSED" }
                );
            }
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Three significant figures, thousands as `k`, millions as `M`.
fn number(value: f64) -> String {
    if !value.is_finite() {
        "n/a".to_owned()
    } else if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
