//! The SQLite backend's audit outbox: a file beside the database (`<database>-outbox`) where
//! the group-commit task appends the records it is given (an opaque or a stateless token issued,
//! a client refused, an inactive token introspected, a failed sign-in) before the request is
//! answered, and from which it moves them into the audit log in large batches.
//!
//! Why: each round of the group commit used to write its records into `audit_log` itself, and
//! at low concurrency a round is one or two records, so every token paid for the log's table,
//! index and head pages in its commit (BENCHMARKS.md). An append to the outbox is one `write`
//! into the page cache: it survives the process being killed, exactly as a `synchronous=NORMAL`
//! commit does, and a power loss can lose the newest records of either. A record of an opaque
//! token names the token (`token`), and the token names its record's number, so that start-up
//! can match the two after a power loss kept one without the other (`sqlite.rs`, `reconcile`).
//!
//! The file is JSON lines: a header naming the database it belongs to (`audit_outbox.database`,
//! random per database, so an outbox left beside a database created anew is set aside, never
//! moved into the new log), then one `{"n":…,"token":…,"record":{…}}` per record (`token` only
//! on a record of an opaque token's issuance), numbered without gaps. A batch
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
pub(in crate::store) struct Outbox {
    file: File,
    path: PathBuf,
    /// The first line: which database the records belong to.
    header: Vec<u8>,
    /// The number the next appended record gets (the numbers held run up to it, though records
    /// whose token was not committed are no longer held).
    next: u64,
    pub(in crate::store) records: Vec<Record>,
    /// The records' encodings ([`Record::encode`]), one after another: written into their lines
    /// and chained from here when they are moved, so a record is serialized once.
    encoded: Vec<u8>,
    /// Where each record's encoding ends in `encoded`.
    ends: Vec<usize>,
    /// For each record, its number and the opaque token whose issuance it records, if any
    /// (`records[i]` is numbered `held[i].0`).
    held: Vec<(u64, Option<u64>)>,
    /// The file's length after the last complete append.
    len: u64,
    /// Serialized lines of one append, reused.
    buffer: Vec<u8>,
}

/// One line after the header: a record, its number, and the id of the opaque token whose issuance
/// it records, if any. Read with serde; written by [`Outbox::append`] from the record's encoding,
/// byte for byte what serializing a `Line<&Record>` writes (a test checks it).
#[derive(Serialize, Deserialize)]
struct Line<R> {
    n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
    record: R,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    database: std::borrow::Cow<'a, str>,
}

impl Outbox {
    /// The outbox of the database file `database`, whose outbox id is `id`, with the records it
    /// holds that were not yet moved into the log (`drained` is the last number that was);
    /// `None` when another process owns it. An outbox left by another database (one deleted and
    /// created again beside it) is set aside as `<outbox>.<its id>`, never moved into this log.
    pub(in crate::store) fn open(database: &Path, id: &str, drained: u64) -> anyhow::Result<Option<Outbox>> {
        let mut path = database.as_os_str().to_owned();
        path.push("-outbox");
        let path = PathBuf::from(path);
        let Some(mut outbox) = Outbox::lock(&path, id, drained)? else { return Ok(None) };
        let Some(other) = outbox.read(id, drained)? else { return Ok(Some(outbox)) };
        let mut aside = path.clone().into_os_string();
        aside.push(format!(".{other}"));
        std::fs::rename(&path, &aside).with_context(|| format!("setting aside {}", path.display()))?;
        tracing::warn!(
            outbox = %path.display(),
            set_aside = %PathBuf::from(&aside).display(),
            "the audit outbox belongs to another database; set aside, its records are not moved into this log"
        );
        drop(outbox);
        let Some(mut outbox) = Outbox::lock(&path, id, drained)? else { return Ok(None) };
        outbox.read(id, drained)?;
        Ok(Some(outbox))
    }

    /// Opens and locks the file, and gives an empty one its header.
    fn lock(path: &Path, id: &str, drained: u64) -> anyhow::Result<Option<Outbox>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening the audit outbox {}", path.display()))?;
        if file.try_lock().is_err() {
            return Ok(None);
        }
        let len = file.metadata().map(|m| m.len()).unwrap_or_default();
        let mut outbox = Outbox {
            file,
            path: path.to_owned(),
            header: Vec::new(),
            next: drained + 1,
            records: Vec::new(),
            encoded: Vec::new(),
            ends: Vec::new(),
            held: Vec::new(),
            len,
            buffer: Vec::new(),
        };
        serde_json::to_writer(&mut outbox.header, &Header { database: id.into() })?;
        outbox.header.push(b'\n');
        if len == 0 {
            outbox.start()?;
        }
        Ok(Some(outbox))
    }

    /// Empties the file and writes the header.
    fn start(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        self.file.write_all(&self.header)?;
        self.len = self.header.len() as u64;
        Ok(())
    }

    /// Reads the records after `drained`; the id of the database the file belongs to when that
    /// is not `id`.
    fn read(&mut self, id: &str, drained: u64) -> anyhow::Result<Option<String>> {
        let reader = BufReader::new(&self.file);
        let mut lines = reader.split(b'\n').enumerate().peekable();
        let damaged = |path: &Path, line: usize| {
            anyhow::anyhow!(
                "the audit outbox {} is damaged at line {line}: move it aside to start without its records",
                path.display()
            )
        };
        if let Some((_, header)) = lines.next() {
            let header = header.with_context(|| format!("reading the audit outbox {}", self.path.display()))?;
            match serde_json::from_slice::<Header<'_>>(&header) {
                Ok(Header { database }) if database != id => return Ok(Some(database.into_owned())),
                Ok(_) => {}
                // Cut short by a kill while it was written, before any record.
                Err(_) if lines.peek().is_none() => {
                    drop(lines);
                    self.start()?;
                    return Ok(None);
                }
                Err(_) => return Err(damaged(&self.path, 1)),
            }
        }
        let mut kept = Vec::new();
        while let Some((index, line)) = lines.next() {
            let line = line.with_context(|| format!("reading the audit outbox {}", self.path.display()))?;
            let last = lines.peek().is_none();
            let Ok(Line { n, token, record }) = serde_json::from_slice::<Line<Record>>(&line) else {
                if last {
                    // Cut short by a kill while it was written: never acknowledged.
                    break;
                }
                return Err(damaged(&self.path, index + 1));
            };
            if n <= drained {
                continue;
            }
            if n != self.next {
                bail!(
                    "the audit outbox {} holds record {n} where record {} belongs (line {}): move it aside to start \
                     without its records",
                    self.path.display(),
                    self.next,
                    index + 1
                );
            }
            self.next += 1;
            kept.push((record, n, token));
        }
        drop(lines);
        for (record, n, token) in kept {
            self.hold(record, n, token);
        }
        Ok(None)
    }

    /// Keeps `record` (numbered `n`, about the opaque token `token`) with its encoding.
    fn hold(&mut self, record: Record, n: u64, token: Option<u64>) {
        record.encode(&mut self.encoded);
        self.ends.push(self.encoded.len());
        self.records.push(record);
        self.held.push((n, token));
    }

    /// The encoding of `records[index]`.
    pub(in crate::store) fn encoding(&self, index: usize) -> &[u8] {
        &self.encoded[self.span(index)]
    }

    /// Where the encoding of `records[index]` lies in `encoded`.
    fn span(&self, index: usize) -> std::ops::Range<usize> {
        index.checked_sub(1).map_or(0, |before| self.ends[before])..self.ends[index]
    }

    /// The number the next appended record gets.
    pub(in crate::store) fn next(&self) -> u64 {
        self.next
    }

    /// The number of the last record appended (what `drained` becomes once they are moved).
    pub(in crate::store) fn last(&self) -> u64 {
        self.next - 1
    }

    /// Appends `records`, record `i` about the opaque token `tokens[i]` if any, in one write; once
    /// it returns they survive the process being killed. They get the numbers from
    /// [`Outbox::next`] on.
    pub(in crate::store) fn append(&mut self, records: Vec<Record>, tokens: &[Option<u64>]) -> std::io::Result<()> {
        debug_assert_eq!(records.len(), tokens.len());
        let kept = self.records.len();
        let count = records.len() as u64;
        for ((n, record), token) in (self.next..).zip(records).zip(tokens) {
            self.hold(record, n, *token);
        }
        // Each line is what serializing a `Line` writes, with the record's encoding as `record`.
        self.buffer.clear();
        for index in kept..self.records.len() {
            let (n, token) = self.held[index];
            write!(self.buffer, "{{\"n\":{n},")?;
            if let Some(token) = token {
                write!(self.buffer, "\"token\":{token},")?;
            }
            self.buffer.extend_from_slice(b"\"record\":");
            let span = self.span(index);
            self.buffer.extend_from_slice(&self.encoded[span]);
            self.buffer.extend_from_slice(b"}\n");
        }
        if let Err(err) = self.file.write_all(&self.buffer) {
            // These records are refused and their numbers used again: cut off what was written.
            let _ = self.file.set_len(self.len);
            self.truncate(kept);
            return Err(err);
        }
        self.len += self.buffer.len() as u64;
        self.next += count;
        Ok(())
    }

    /// Forgets the last `count` records appended, whose tokens were not committed: they are not
    /// moved into the log. Their lines stay in the file until it is emptied; should the process
    /// die before that, start-up finds no token for them and drops them too ([`Outbox::retain`]).
    pub(in crate::store) fn forget_last(&mut self, count: usize) {
        self.truncate(self.records.len().saturating_sub(count));
    }

    /// Keeps the first `keep` records held.
    fn truncate(&mut self, keep: usize) {
        self.records.truncate(keep);
        self.held.truncate(keep);
        self.ends.truncate(keep);
        self.encoded.truncate(self.ends.last().copied().unwrap_or_default());
    }

    /// The opaque tokens, with their records' numbers, whose records are held.
    pub(in crate::store) fn tokens(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.held.iter().filter_map(|&(n, token)| Some((token?, n)))
    }

    /// Keeps, of the records about an opaque token, those for which `committed(token, number)`
    /// holds; returns how many were dropped. Used at start-up, before anything is appended.
    pub(in crate::store) fn retain(&mut self, mut committed: impl FnMut(u64, u64) -> bool) -> usize {
        let before = self.records.len();
        let (records, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.records)
            .into_iter()
            .zip(std::mem::take(&mut self.held))
            .filter(|&(_, (n, token))| token.is_none_or(|t| committed(t, n)))
            .unzip();
        self.truncate(0);
        for (record, (n, token)) in records.into_iter().zip(held) {
            self.hold(record, n, token);
        }
        before - self.records.len()
    }

    /// Forgets the records held, once they are committed to the log: the file is emptied.
    pub(in crate::store) fn moved(&mut self) -> std::io::Result<()> {
        self.truncate(0);
        self.start()
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
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        outbox.append(vec![record(1), record(2)], &[None, None]).unwrap();
        outbox.append(vec![record(3)], &[None]).unwrap();
        assert_eq!(outbox.last(), 3);
        drop(outbox);

        // Nothing moved yet: all three come back, and numbering goes on after them.
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        assert_eq!(ats(&outbox), [1, 2, 3]);
        outbox.append(vec![record(4)], &[None]).unwrap();
        drop(outbox);
        // A crash after the move committed (`drained` = 3) but before the file was emptied.
        let mut outbox = Outbox::open(&db, "db-1", 3).unwrap().unwrap();
        assert_eq!(ats(&outbox), [4]);
        assert_eq!(outbox.last(), 4);
        outbox.moved().unwrap();
        outbox.append(vec![record(5)], &[None]).unwrap();
        assert_eq!(outbox.last(), 5);
        drop(outbox);
        let outbox = Outbox::open(&db, "db-1", 4).unwrap().unwrap();
        assert_eq!(ats(&outbox), [5]);
    }

    #[test]
    fn a_last_line_cut_short_is_dropped_and_a_damaged_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let path = dir.path().join("tessera.db-outbox");
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        outbox.append(vec![record(1), record(2)], &[None, None]).unwrap();
        drop(outbox);
        let whole = std::fs::read(&path).unwrap();

        // Killed in the middle of writing record 2: it was never acknowledged.
        std::fs::write(&path, &whole[..whole.len() - 10]).unwrap();
        let outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        assert_eq!(ats(&outbox), [1]);
        drop(outbox);

        // Record 1 edited into something unreadable, with record 2 after it.
        let header = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut damaged = whole.clone();
        damaged[header + 5] = b'#';
        std::fs::write(&path, &damaged).unwrap();
        let err = Outbox::open(&db, "db-1", 0).err().unwrap().to_string();
        assert!(err.contains("damaged at line 2"), "{err}");

        // Record 1 removed: the numbers skip.
        let second = header + whole[header..].iter().position(|&b| b == b'\n').unwrap() + 1;
        std::fs::write(&path, [&whole[..header], &whole[second..]].concat()).unwrap();
        let err = Outbox::open(&db, "db-1", 0).err().unwrap().to_string();
        assert!(err.contains("holds record 2 where record 1 belongs (line 2)"), "{err}");

        // Killed while the header of a new outbox was written.
        std::fs::write(&path, &whole[..header - 4]).unwrap();
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        assert!(outbox.records.is_empty());
        outbox.append(vec![record(1)], &[None]).unwrap();
        drop(outbox);
        assert_eq!(ats(&Outbox::open(&db, "db-1", 0).unwrap().unwrap()), [1]);
    }

    #[test]
    fn records_name_their_tokens_and_those_of_tokens_not_committed_are_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        outbox.append(vec![record(1), record(2)], &[Some(10), None]).unwrap();
        outbox.append(vec![record(3)], &[Some(11)]).unwrap();
        // The commit of token 11 failed: its record is not moved, and its number stays used.
        outbox.forget_last(1);
        assert_eq!(ats(&outbox), [1, 2]);
        assert_eq!(outbox.last(), 3);
        drop(outbox);

        // Killed before the outbox was moved: every line comes back with its token, and start-up
        // keeps the records of the tokens it finds committed.
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        assert_eq!(outbox.tokens().collect::<Vec<_>>(), [(10, 1), (11, 3)]);
        assert_eq!(outbox.retain(|token, n| (token, n) == (10, 1)), 1);
        assert_eq!(ats(&outbox), [1, 2]);
        assert_eq!(outbox.tokens().collect::<Vec<_>>(), [(10, 1)]);
        outbox.append(vec![record(4)], &[None]).unwrap();
        assert_eq!(outbox.last(), 4);
    }

    #[test]
    fn an_outbox_of_another_database_is_set_aside_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let mut old = Outbox::open(&db, "db-old", 0).unwrap().unwrap();
        old.append(vec![record(1), record(2)], &[None, None]).unwrap();
        drop(old);
        // The database was deleted and created again; its outbox stayed.
        let mut outbox = Outbox::open(&db, "db-new", 0).unwrap().unwrap();
        assert!(outbox.records.is_empty());
        outbox.append(vec![record(3)], &[None]).unwrap();
        drop(outbox);
        assert_eq!(ats(&Outbox::open(&db, "db-new", 0).unwrap().unwrap()), [3]);
        let aside = std::fs::read_to_string(dir.path().join("tessera.db-outbox.db-old")).unwrap();
        assert_eq!(aside.lines().count(), 3, "{aside}");
    }

    /// The lines written are those serde writes for a `Line`, and each record's encoding is that of
    /// the record read back, also after records are forgotten and the outbox reopened.
    #[test]
    fn lines_and_encodings_are_the_records_serialized() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let tricky = |i: u64| record(i).detail("text", format!("\"quoted\" \\ ü 😀 \u{1}{i}")).subject("s").client("c");
        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        outbox.append(vec![tricky(1), tricky(2)], &[Some(10), None]).unwrap();
        outbox.append(vec![tricky(3)], &[Some(11)]).unwrap();
        outbox.forget_last(1);
        outbox.append(vec![tricky(4)], &[None]).unwrap();
        let check = |outbox: &Outbox| {
            assert_eq!(outbox.records.len(), outbox.ends.len());
            for (index, record) in outbox.records.iter().enumerate() {
                assert_eq!(outbox.encoding(index), serde_json::to_vec(record).unwrap(), "record {index}");
            }
        };
        check(&outbox);
        drop(outbox);
        let text = std::fs::read_to_string(dir.path().join("tessera.db-outbox")).unwrap();
        let expected: Vec<String> = [(1, Some(10)), (2, None), (3, Some(11)), (4, None)]
            .into_iter()
            .map(|(n, token)| serde_json::to_string(&Line { n, token, record: &tricky(n) }).unwrap())
            .collect();
        assert_eq!(text.lines().skip(1).collect::<Vec<_>>(), expected);

        let mut outbox = Outbox::open(&db, "db-1", 0).unwrap().unwrap();
        assert_eq!(ats(&outbox), [1, 2, 3, 4]);
        check(&outbox);
        outbox.retain(|token, _| token == 10);
        assert_eq!(ats(&outbox), [1, 2, 4]);
        check(&outbox);
    }

    #[test]
    fn one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let owner = Outbox::open(&db, "db-1", 0).unwrap();
        assert!(owner.is_some());
        assert!(Outbox::open(&db, "db-1", 0).unwrap().is_none(), "a second owner");
        drop(owner);
        assert!(Outbox::open(&db, "db-1", 0).unwrap().is_some());
    }
}
