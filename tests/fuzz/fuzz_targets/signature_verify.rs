//! The subscriber's verifier on any headers and body: never a panic; what we sign
//! always verifies, and a changed body never does.
#![no_main]

use arbitrary::Arbitrary;
use hookrelay_signature::{Secret, Verifier};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a str,
    id: &'a str,
    timestamp: &'a str,
    signature: &'a str,
    body: &'a [u8],
    now: i64,
    tolerance: i64,
}

fuzz_target!(|i: Input<'_>| {
    let _ = Secret::from_whsec(i.secret);
    let secret = Secret::from_bytes(vec![7; 32]).expect("a 32-byte key");
    let verifier = Verifier::new(vec![secret.clone()]).with_tolerance_secs(i.tolerance);
    let _ = verifier.verify_at(i.id, i.timestamp, i.signature, i.body, i.now);

    // Our own signature, at the verifier's clock, verifies; another body does not.
    let now = i.now.clamp(0, 32_503_680_000); // up to year 3000
    let plain = Verifier::new(vec![secret.clone()]);
    let header = secret.sign(i.id, now, i.body);
    assert!(plain.verify_at(i.id, &now.to_string(), &header, i.body, now).is_ok());
    let mut other = i.body.to_vec();
    other.push(b'!');
    assert!(plain.verify_at(i.id, &now.to_string(), &header, &other, now).is_err());
});
