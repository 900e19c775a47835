//! `tessera audit verify|tail|query|export`: the audit log through the admin API.
//! `verify` exits 1 at a break and names its position; `query` and `export` page through the
//! whole selection; `--json` (always for `export`) prints one JSON object per line.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use tessera_proto::admin::{AuditEntry, AuditPage, AuditVerification};

use crate::admin::{AdminSession, Common, emit, parse, path_segment};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain; exit 1 and name the first broken record if it does not hold.
    Verify {
        #[command(flatten)]
        common: Common,
        /// `SEQ:HASH` printed by an earlier check, which the log must still contain.
        #[arg(long)]
        anchor: Option<String>,
    },
    /// Print the newest records.
    Tail {
        #[command(flatten)]
        common: Common,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep printing new records as they are written.
        #[arg(long)]
        follow: bool,
    },
    /// Print the records of a user, a client, an event or a time range, oldest first.
    Query {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: Filter,
    },
    /// Print every record (or a selection) as JSON lines.
    Export {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        filter: Filter,
    },
}

#[derive(clap::Args, Default)]
pub(crate) struct Filter {
    /// Records whose subject or actor is this user id.
    #[arg(long, allow_hyphen_values = true)]
    user: Option<String>,
    /// Records of this client.
    #[arg(long, allow_hyphen_values = true)]
    client: Option<String>,
    /// One event: token.issued, token.refreshed, token.reuse_detected, token.revoked,
    /// introspection.inactive, client.auth_failed, user.login, user.login_failed,
    /// user.locked_out, user.logout, consent.granted, key.created, key.activated,
    /// api_key.created, api_key.revoked, admin.change.
    #[arg(long)]
    event: Option<String>,
    /// From this time (seconds since the epoch).
    #[arg(long)]
    since: Option<u64>,
    /// Until this time (seconds since the epoch).
    #[arg(long)]
    until: Option<u64>,
}

impl Filter {
    fn query(&self, after: u64) -> String {
        let mut query = format!("/admin/audit?limit=1000&after={after}");
        for (name, value) in [("user", &self.user), ("client", &self.client), ("event", &self.event)] {
            if let Some(value) = value {
                query.push_str(&format!("&{name}={}", path_segment(value)));
            }
        }
        for (name, value) in [("since", self.since), ("until", self.until)] {
            if let Some(value) = value {
                query.push_str(&format!("&{name}={value}"));
            }
        }
        query
    }
}

pub(crate) async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { common, anchor } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = match &anchor {
                Some(anchor) => format!("/admin/audit/verify?anchor={}", path_segment(anchor)),
                None => "/admin/audit/verify".to_owned(),
            };
            let result: AuditVerification = parse(session.send(reqwest::Method::GET, &path, None).await?).await?;
            let intact = result.first_break.is_none();
            emit(common.json, &result, |result| match &result.first_break {
                None => {
                    println!("audit log intact: {} records verified", result.verified);
                    println!("anchor: {}:{}", result.head_seq, result.head_hash);
                }
                Some(broken) => {
                    println!("audit log BROKEN at record {}: {}", broken.seq, broken.reason);
                    println!("records 1 to {} verify", result.verified);
                }
            })?;
            Ok(if intact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        AuditCommand::Tail { common, lines, follow } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/audit?tail=true&limit={}", lines.clamp(1, 1_000));
            let page: AuditPage = parse(session.send(reqwest::Method::GET, &path, None).await?).await?;
            print_entries(common.json, &page.entries)?;
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            let mut after = page.next_after;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let path = Filter::default().query(after);
                let page: AuditPage = parse(session.send(reqwest::Method::GET, &path, None).await?).await?;
                print_entries(common.json, &page.entries)?;
                after = page.next_after;
            }
        }
        AuditCommand::Query { common, filter } => {
            page_through(&common, &filter, common.json).await?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { common, filter } => {
            page_through(&common, &filter, true).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn page_through(common: &Common, filter: &Filter, json: bool) -> anyhow::Result<()> {
    let session = AdminSession::open(&common.admin_config).await?;
    let mut after = 0;
    loop {
        let page: AuditPage = parse(session.send(reqwest::Method::GET, &filter.query(after), None).await?).await?;
        if page.entries.is_empty() {
            return Ok(());
        }
        print_entries(json, &page.entries)?;
        after = page.next_after;
    }
}

fn print_entries(json: bool, entries: &[AuditEntry]) -> anyhow::Result<()> {
    for entry in entries {
        if json {
            println!("{}", serde_json::to_string(entry)?);
        } else {
            let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            println!(
                "{:>8} {} {:<22} {:<7} {:<28} subject={} client={} ip={} request={} {}",
                entry.seq,
                entry.at,
                entry.event,
                entry.outcome,
                entry.actor,
                or_dash(&entry.subject),
                or_dash(&entry.client_id),
                or_dash(&entry.ip),
                or_dash(&entry.request_id),
                entry.details
            );
        }
    }
    Ok(())
}
