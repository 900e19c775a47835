//! The SQLite backend's audit outbox: a file beside the database (`<database>-outbox`) where
//! the records of events that change nothing in the database (a stateless JWT issued, a client
//! refused, an inactive token introspected, a failed sign-in) are appended before the request
//! is answered, and from which the group-commit task moves them into the audit log in large
//! batches.
//!
//! Why: such a record used to be a commit of its own (grouped per round), and at low
//! concurrency a round is one or two records, so every stateless token paid for a SQLite commit
//! and two thread hand-offs (BENCHMARKS.md). An append to the outbox is one `write` into the
//! page cache: it survives the process being killed, exactly as a `synchronous=NORMAL` commit
//! does, and a power loss can lose the newest records of either.
//!
//! The file is JSON lines, one `{"n":…,"record":{…}}` per record, numbered without gaps. A batch
//! is moved in one transaction that also stores the last number moved (`audit_outbox.drained`),
//! so a crash between that commit and truncating the file moves nothing twice: at start-up the
//! lines up to `drained` are skipped and the rest are moved before anything else. A last line
//! cut short by a kill was never acknowledged and is dropped; any other unreadable line stops
//! the start-up (the file was damaged or edited). Records are hash-chained when they are moved,
//! so the chain's order is the order in which records reached the log.
//!
//! One process owns the outbox (an exclusive lock on the file). A second process opening the
//! same database (a tool, a test) gets none and writes such records directly.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::audit::Record;

/// Records waiting in the outbox: the file, and the same records in memory.
pub(super) struct Outbox {
    file: File,
    path: PathBuf,
    /// The number of `records[0]` (the next number when `records` is empty).
    first: u64,
    pub(super) records: Vec<Record>,
    /// The file's length after the last complete append.
    len: u64,
    /// Serialized lines of one append, reused.
    buffer: Vec<u8>,
}

#[derive(Serialize)]
struct Line<'a> {
    n: u64,
    record: &'a Record,
}

#[derive(Deserialize)]
struct OwnedLine {
    n: u64,
    record: Record,
}

impl Outbox {
    /// The outbox of the database file `database`, with the records it holds that were not yet
    /// moved into the log (`drained` is the last number that was); `None` when another process
    /// owns it.
    pub(super) fn open(database: &Path, drained: u64) -> anyhow::Result<Option<Outbox>> {
        let mut path = database.as_os_str().to_owned();
        path.push("-outbox");
        let path = PathBuf::from(path);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening the audit outbox {}", path.display()))?;
        if file.try_lock().is_err() {
            return Ok(None);
        }
        let len = file.metadata().map(|m| m.len()).unwrap_or_default();
        let mut outbox = Outbox { file, path, first: drained + 1, records: Vec::new(), len, buffer: Vec::new() };
        outbox.read(drained)?;
        Ok(Some(outbox))
    }

    fn read(&mut self, drained: u64) -> anyhow::Result<()> {
        let reader = BufReader::new(&self.file);
        let mut lines = reader.split(b'\n').enumerate().peekable();
        while let Some((index, line)) = lines.next() {
            let line = line.with_context(|| format!("reading the audit outbox {}", self.path.display()))?;
            let last = lines.peek().is_none();
            let Ok(OwnedLine { n, record }) = serde_json::from_slice::<OwnedLine>(&line) else {
                if last {
                    // Cut short by a kill while it was written: never acknowledged.
                    break;
                }
                bail!(
                    "the audit outbox {} is damaged at line {}: move it aside to start without its records",
                    self.path.display(),
                    index + 1
                );
            };
            if n <= drained {
                continue;
            }
            if n != self.next() {
                bail!(
                    "the audit outbox {} holds record {n} where record {} belongs (line {}): move it aside to start \
                     without its records",
                    self.path.display(),
                    self.next(),
                    index + 1
                );
            }
            self.records.push(record);
        }
        Ok(())
    }

    /// The number the next appended record gets.
    fn next(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    /// The number of the last record held (what `drained` becomes once they are moved).
    pub(super) fn last(&self) -> u64 {
        self.next() - 1
    }

    /// Appends `records` in one write; once it returns they survive the process being killed.
    pub(super) fn append(&mut self, records: Vec<Record>) -> std::io::Result<()> {
        self.buffer.clear();
        for (n, record) in (self.next()..).zip(&records) {
            serde_json::to_writer(&mut self.buffer, &Line { n, record })?;
            self.buffer.push(b'\n');
        }
        if let Err(err) = self.file.write_all(&self.buffer) {
            // These records are refused and their numbers used again: cut off what was written.
            let _ = self.file.set_len(self.len);
            return Err(err);
        }
        self.len += self.buffer.len() as u64;
        self.records.extend(records);
        Ok(())
    }

    /// Forgets the records held, once they are committed to the log: the file is emptied.
    pub(super) fn moved(&mut self) -> std::io::Result<()> {
        self.first = self.next();
        self.records.clear();
        self.len = 0;
        self.file.set_len(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;

    fn record(i: u64) -> Record {
        Record::new(Event::TokenIssued, 1_700_000_000 + i, "client:c").detail("jti", format!("jti-{i}"))
    }

    fn ats(outbox: &Outbox) -> Vec<u64> {
        outbox.records.iter().map(|r| r.at - 1_700_000_000).collect()
    }

    #[test]
    fn records_survive_a_reopen_until_moved_and_none_is_moved_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let mut outbox = Outbox::open(&db, 0).unwrap().unwrap();
        outbox.append(vec![record(1), record(2)]).unwrap();
        outbox.append(vec![record(3)]).unwrap();
        assert_eq!(outbox.last(), 3);
        drop(outbox);

        // Nothing moved yet: all three come back, and numbering goes on after them.
        let mut outbox = Outbox::open(&db, 0).unwrap().unwrap();
        assert_eq!(ats(&outbox), [1, 2, 3]);
        outbox.append(vec![record(4)]).unwrap();
        drop(outbox);
        // A crash after the move committed (`drained` = 3) but before the file was emptied.
        let mut outbox = Outbox::open(&db, 3).unwrap().unwrap();
        assert_eq!(ats(&outbox), [4]);
        assert_eq!(outbox.last(), 4);
        outbox.moved().unwrap();
        outbox.append(vec![record(5)]).unwrap();
        assert_eq!(outbox.last(), 5);
        drop(outbox);
        let outbox = Outbox::open(&db, 4).unwrap().unwrap();
        assert_eq!(ats(&outbox), [5]);
    }

    #[test]
    fn a_last_line_cut_short_is_dropped_and_a_damaged_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let path = dir.path().join("tessera.db-outbox");
        let mut outbox = Outbox::open(&db, 0).unwrap().unwrap();
        outbox.append(vec![record(1), record(2)]).unwrap();
        drop(outbox);
        let whole = std::fs::read(&path).unwrap();

        // Killed in the middle of writing record 2: it was never acknowledged.
        std::fs::write(&path, &whole[..whole.len() - 10]).unwrap();
        let outbox = Outbox::open(&db, 0).unwrap().unwrap();
        assert_eq!(ats(&outbox), [1]);
        drop(outbox);

        // Record 1 edited into something unreadable, with record 2 after it.
        let mut damaged = whole.clone();
        damaged[5] = b'#';
        std::fs::write(&path, &damaged).unwrap();
        let err = Outbox::open(&db, 0).err().unwrap().to_string();
        assert!(err.contains("damaged at line 1"), "{err}");

        // Record 1 removed: the numbers skip.
        let second = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
        std::fs::write(&path, &whole[second..]).unwrap();
        let err = Outbox::open(&db, 0).err().unwrap().to_string();
        assert!(err.contains("holds record 2 where record 1 belongs (line 1)"), "{err}");
    }

    #[test]
    fn one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let owner = Outbox::open(&db, 0).unwrap();
        assert!(owner.is_some());
        assert!(Outbox::open(&db, 0).unwrap().is_none(), "a second owner");
        drop(owner);
        assert!(Outbox::open(&db, 0).unwrap().is_some());
    }
}
