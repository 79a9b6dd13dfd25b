//! The ingest body reader (single events and batches): any bytes earn an answer
//! from 200 to 499, never a 5xx or a panic.
#![no_main]

use hookrelay_gateway::routes::{batch_body_status, event_body_status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for status in [event_body_status(body, 1024), batch_body_status(body, 1024)] {
        assert!((200..500).contains(&status), "{status} for {body:?}");
    }
});
