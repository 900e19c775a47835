//! The gateway's path canonicaliser (RFC 3986 §6.2.2): any path, no panic; what it accepts is a
//! fixed point (canonicalising again changes nothing), starts with `/`, and holds no encoded
//! separator, percent sign or dot segment an upstream could decode into another route.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    let Ok(canonical) = tessera_gateway::canonical_path(path) else { return };
    assert_eq!(tessera_gateway::canonical_path(&canonical).as_deref(), Ok(canonical.as_str()), "{path}");
    let lower = canonical.to_ascii_lowercase();
    for bad in ["%2f", "%5c", "%25", "%2e", "%3b", "/../", "/./", "//", "\\"] {
        assert!(!lower.contains(bad), "{path} -> {canonical}");
    }
    assert!(!lower.ends_with("/..") && !lower.ends_with("/."), "{path} -> {canonical}");
});
