//! Fuzzes the chat server (examples/src/chat.rs) through the public test kit only: peers join,
//! talk, stall and leave in any order, and every invariant of `StreamCheck` must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomwork::testing::StreamCheck;
use loomwork_examples::chat::{connection_config, ChatConfig, ChatFactory};

fuzz_target!(|data: &[u8]| {
    StreamCheck::server(|| ChatFactory::new(ChatConfig::default()))
        .config(connection_config())
        .fuzz(data)
});
