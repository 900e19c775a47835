//! `tessera admin …`: the CLI's own admin client (the one `admin.json` holds). Rotating its
//! secret through the API alone would leave `admin.json` holding a secret that no longer works
//! and lock every CLI out; `tessera admin rotate-secret` rotates it and rewrites the file it
//! read (0600, atomically). The server rewrites its own `admin.json` too when its admin client's
//! secret is rotated by any caller.

use anyhow::Context as _;
use clap::Subcommand;
use tessera_proto::admin::{AdminConfig, ClientInfo};

use crate::admin::{AdminSession, Common, emit, parse, path_segment};

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Replace the admin client's secret and write it into the admin.json used.
    RotateSecret {
        #[command(flatten)]
        common: Common,
    },
}

pub(crate) async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::RotateSecret { common } => {
            let path = &common.admin_config;
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let file: AdminConfig =
                serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
            let session = AdminSession::open(path).await?;
            let route = format!("/admin/clients/{}/secret", path_segment(&file.client_id));
            let rotated: ClientInfo = parse(session.send(reqwest::Method::POST, &route, None).await?).await?;
            let secret = rotated.client_secret.clone().context("the server answered without a secret")?;
            let updated = AdminConfig { client_secret: secret, ..file };
            write_private(path, &serde_json::to_vec_pretty(&updated)?)?;
            let shown =
                serde_json::json!({ "client_id": updated.client_id, "admin_config": path.display().to_string() });
            emit(common.json, &shown, |_| {
                println!("rotated the secret of {}; {} holds the new one", updated.client_id, path.display());
            })
        }
    }
}

/// Writes `bytes` to `path` readable by its owner only, through a temporary file and a rename.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
