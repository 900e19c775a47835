//! The configuration loaders: `tessera.toml` (raw, then validated) and `gateway.toml` (parsed,
//! then checked); any text, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(raw) = toml::from_str::<tessera_server::config::RawConfig>(text) {
        let _ = tessera_server::config::Config::from_raw(raw);
    }
    if let Ok(gateway) = toml::from_str::<tessera_gateway::GatewayConfig>(text) {
        let _ = gateway.check();
    }
});
