//! The state file that makes a sweep resumable: JSON lines, a header that
//! names the sweep, then one row per repository as each finishes. A rerun
//! with the same file reuses every clean or found row whose repository has
//! had no push since; what failed or was not read whole is scanned again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::listing::Repository;
use super::report::{Mode, Row, Status};
use crate::Error;

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    keyguard_sweep: u32,
    organisation: String,
    mode: Mode,
    /// The version and options the rows were scanned with.
    #[serde(default)]
    settings: String,
}

/// Rows a state file holds, by lower-case repository name.
pub type Done = HashMap<String, Row>;

/// Reads the rows of an earlier run of the same sweep (none when the file
/// does not exist). A torn last line (a run killed mid-write) is skipped.
pub fn load(path: &Path, organisation: &str, mode: Mode, settings: &str) -> Result<Done, Error> {
    let io = |source| Error::Io {
        what: format!("reading the state file {}", path.display()),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Done::new()),
        Err(e) => return Err(io(e)),
    };
    let mut lines = BufReader::new(file).lines();
    let Some(first) = lines.next().transpose().map_err(io)? else {
        return Ok(Done::new());
    };
    let header: Header = serde_json::from_str(&first).map_err(|_| {
        Error::Usage(format!(
            "{} is no keyguard sweep state file",
            path.display()
        ))
    })?;
    if !header.organisation.eq_ignore_ascii_case(organisation) || header.mode != mode {
        return Err(Error::Usage(format!(
            "the state file {} is of another sweep ({} {:?}); use another file",
            path.display(),
            header.organisation,
            header.mode
        )));
    }
    if header.settings != settings {
        // Rows of another version or other options prove nothing now.
        eprintln!(
            "keyguard: the state file {} was written with other settings ({}): every repository is scanned again",
            path.display(),
            header.settings
        );
        return Ok(Done::new());
    }
    let mut done = Done::new();
    for line in lines {
        if let Ok(row) = serde_json::from_str::<Row>(&line.map_err(io)?) {
            done.insert(row.repository.to_ascii_lowercase(), row);
        }
    }
    Ok(done)
}

/// Pure: rows the state answers for, and the repositories still to scan.
pub fn plan(repos: Vec<Repository>, done: &Done) -> (Vec<Row>, Vec<Repository>) {
    let mut reused = Vec::new();
    let mut to_scan = Vec::new();
    for repo in repos {
        match done.get(&repo.full_name.to_ascii_lowercase()) {
            Some(row)
                if matches!(row.status, Status::Clean | Status::Found)
                    && row.pushed_at.is_some()
                    && row.pushed_at == repo.pushed_at =>
            {
                reused.push(row.clone())
            }
            _ => to_scan.push(repo),
        }
    }
    (reused, to_scan)
}

/// Appends each row as it finishes, one whole line per write.
pub struct Writer {
    file: Mutex<File>,
}

impl Writer {
    /// Opens the file for appending; a new file starts with the header.
    /// A file of other settings starts afresh.
    pub fn open(
        path: &Path,
        organisation: &str,
        mode: Mode,
        settings: &str,
    ) -> Result<Writer, Error> {
        let io = |source| Error::Io {
            what: format!("writing the state file {}", path.display()),
            source,
        };
        let stale = read_header(path).is_some_and(|h| h.settings != settings);
        let fresh = stale || std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if stale {
            file.set_len(0).map_err(io)?;
        }
        if fresh {
            let header = Header {
                keyguard_sweep: 1,
                organisation: organisation.to_string(),
                mode,
                settings: settings.to_string(),
            };
            let line = serde_json::to_string(&header).expect("a header serializes") + "\n";
            file.write_all(line.as_bytes()).map_err(io)?;
        } else if !ends_with_newline(path).map_err(io)? {
            // A torn last line: the next row starts on its own line.
            file.write_all(b"\n").map_err(io)?;
        }
        Ok(Writer {
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, row: &Row) -> std::io::Result<()> {
        let line = serde_json::to_string(row)? + "\n";
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())?;
        file.flush()
    }
}

fn read_header(path: &Path) -> Option<Header> {
    let file = File::open(path).ok()?;
    let first = BufReader::new(file).lines().next()?.ok()?;
    serde_json::from_str(&first).ok()
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, pushed: &str) -> Repository {
        Repository {
            full_name: name.into(),
            archived: false,
            fork: false,
            disabled: false,
            pushed_at: Some(pushed.into()),
            clone_url: format!("https://github.com/{name}.git"),
            html_url: String::new(),
        }
    }

    fn row(name: &str, pushed: &str, status: Status) -> Row {
        let mut row = Row::failed(name, "", Some(pushed.into()), String::new());
        row.status = status;
        row
    }

    #[test]
    fn only_finished_rows_of_unchanged_repositories_are_reused() {
        let done: Done = [
            row("acme/same", "t1", Status::Clean),
            row("acme/found", "t1", Status::Found),
            row("acme/pushed", "t1", Status::Clean),
            row("acme/failed", "t1", Status::Failed),
            row("acme/partial", "t1", Status::Incomplete),
        ]
        .into_iter()
        .map(|r| (r.repository.clone(), r))
        .collect();
        let repos = vec![
            repo("acme/same", "t1"),
            repo("Acme/Found", "t1"),
            repo("acme/pushed", "t2"),
            repo("acme/failed", "t1"),
            repo("acme/partial", "t1"),
            repo("acme/new", "t1"),
        ];
        let (reused, to_scan) = plan(repos, &done);
        let reused: Vec<_> = reused.iter().map(|r| r.repository.as_str()).collect();
        let to_scan: Vec<_> = to_scan.iter().map(|r| r.full_name.as_str()).collect();
        assert_eq!(reused, ["acme/same", "acme/found"]);
        assert_eq!(
            to_scan,
            ["acme/pushed", "acme/failed", "acme/partial", "acme/new"]
        );
    }

    #[test]
    fn a_state_file_round_trips_and_refuses_another_sweep() {
        let dir = std::env::temp_dir().join(format!("keyguard-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.jsonl");
        let _ = std::fs::remove_file(&path);
        let writer = Writer::open(&path, "acme", Mode::Tree, "v1").unwrap();
        writer.append(&row("acme/a", "t1", Status::Clean)).unwrap();
        drop(writer);
        // A run killed mid-line leaves a torn row: skipped, not fatal.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"repository\":\"acme/b\",\"sta").unwrap();
        drop(file);
        let done = load(&path, "ACME", Mode::Tree, "v1").unwrap();
        assert_eq!(done.keys().collect::<Vec<_>>(), ["acme/a"]);
        // The next run's rows start on a line of their own.
        let writer = Writer::open(&path, "acme", Mode::Tree, "v1").unwrap();
        writer.append(&row("acme/c", "t1", Status::Clean)).unwrap();
        let loaded = load(&path, "acme", Mode::Tree, "v1").unwrap();
        let mut names: Vec<_> = loaded.into_keys().collect();
        names.sort();
        assert_eq!(names, ["acme/a", "acme/c"]);
        assert!(load(&path, "acme", Mode::History, "v1").is_err());
        assert!(load(&path, "other", Mode::Tree, "v1").is_err());
        let none = dir.join("none");
        assert!(load(&none, "acme", Mode::Tree, "v1").unwrap().is_empty());
        // Other settings (a new version, other options): nothing is reused,
        // and the file starts afresh.
        assert!(load(&path, "acme", Mode::Tree, "v2").unwrap().is_empty());
        drop(Writer::open(&path, "acme", Mode::Tree, "v2").unwrap());
        assert!(load(&path, "acme", Mode::Tree, "v2").unwrap().is_empty());
        assert!(load(&path, "acme", Mode::Tree, "v1").unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
