//! The settings reader on any values of the declared `HOOKRELAY_*` variables:
//! settings or a clear error naming the setting, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use hookrelay_core::Config;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    values: Vec<(u8, &'a str)>,
}

fuzz_target!(|i: Input<'_>| {
    let names: Vec<String> = Config::command()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    let set: Vec<(String, String)> = i
        .values
        .iter()
        .map(|(n, v)| (names[usize::from(*n) % names.len()].clone(), v.to_string()))
        .collect();
    let lookup = |name: &str| {
        set.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| (name == "HOOKRELAY_ENCRYPTION_KEY").then(|| "A".repeat(43) + "="))
    };
    if let Err(e) = Config::from_lookup(lookup) {
        assert!(e.to_string().contains("HOOKRELAY_"), "{e}");
    }
});
