//! `Trace`: the latest operations of a run, kept cheaply (formatted only when a violation
//! reports them), since a fuzzer runs thousands of schedules a second and nearly all pass.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;

/// How many operations a trace keeps (the latest ones).
const TRACE_LEN: usize = 64;

/// One line of a trace.
enum Entry<T> {
    /// Operation number `n`, kept as it is.
    Op(usize, T),
    /// Operation number `n`, formatted when it ran (its message was handed on).
    Formatted(usize, String),
    /// A note between operations (the start, the ending).
    Note(&'static str),
}

/// The latest operations of a run. `T` is the operation without its message (messages move
/// into the machine, so an operation carrying one is formatted when it runs).
pub(crate) struct Trace<T> {
    entries: VecDeque<Entry<T>>,
    ops: usize,
}

impl<T: Debug> Trace<T> {
    pub(crate) fn new() -> Self {
        Trace {
            entries: VecDeque::new(),
            ops: 0,
        }
    }

    fn push(&mut self, entry: Entry<T>) {
        if self.entries.len() == TRACE_LEN {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Records the next operation: kept as it is, or, for one that carries a message, as
    /// the text `Err` gives.
    pub(crate) fn op(&mut self, op: Result<T, String>) {
        let n = self.ops;
        self.ops += 1;
        self.push(match op {
            Ok(op) => Entry::Op(n, op),
            Err(text) => Entry::Formatted(n, text),
        });
    }

    /// Records a note between operations.
    pub(crate) fn note(&mut self, note: &'static str) {
        self.push(Entry::Note(note));
    }

    /// The trace as a violation shows it, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|entry| match entry {
                Entry::Op(n, op) => format!("#{n} {op:?}"),
                Entry::Formatted(n, text) => format!("#{n} {text}"),
                Entry::Note(note) => format!("({note})"),
            })
            .collect()
    }
}
