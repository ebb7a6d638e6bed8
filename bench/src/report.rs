//! Where a run's results go: `bench/runs/<YYYY-MM-DD>-<host>/`, with a
//! `summary.md` of every table (readable figures, the run's machine and
//! date) and one `<table>.csv` per table with the same figures unrounded.
//! Each table is written as soon as it is measured, so an interrupted run
//! keeps what it had, and shown on stderr.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};

/// One value: unrounded in the CSV, rounded in the summary.
pub struct Cell {
    raw: String,
    shown: String,
}

impl Cell {
    /// A measurement shown with `decimals` digits after the point.
    pub fn num(value: f64, decimals: usize) -> Self {
        Self {
            raw: value.to_string(),
            shown: format!("{value:.decimals$}"),
        }
    }

    pub fn int(value: impl ToString) -> Self {
        Self::text(value.to_string())
    }

    pub fn text(value: impl Into<String>) -> Self {
        let value = value.into();
        Self {
            raw: value.clone(),
            shown: value,
        }
    }
}

/// A table of the summary and its CSV file.
pub struct Table {
    /// The CSV's file stem.
    name: &'static str,
    title: String,
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(name: &'static str, title: impl Into<String>, columns: &[&'static str]) -> Self {
        Self {
            name,
            title: title.into(),
            columns: columns.to_vec(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{}", self.name);
        self.rows.push(cells);
    }

    /// A line printed under the table in the summary.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn markdown(&self) -> String {
        let line = |cells: Vec<&str>| format!("| {} |\n", cells.join(" | "));
        let mut text = format!("## {}\n\n", self.title);
        text.push_str(&line(self.columns.clone()));
        text.push_str(&line(vec!["---"; self.columns.len()]));
        for row in &self.rows {
            text.push_str(&line(row.iter().map(|c| c.shown.as_str()).collect()));
        }
        for note in &self.notes {
            text.push_str(&format!("\n{note}\n"));
        }
        text + "\n"
    }
}

pub struct Report {
    dir: PathBuf,
    summary: String,
}

impl Report {
    /// Starts `<root>/bench/runs/<date>-<host>/`, or with a `part` (a run of
    /// one part of the benchmark) `<date>-<host>-<part>/`, so that it does
    /// not replace the day's whole run. Emptied if it exists: a second run
    /// on the same day replaces the first.
    pub fn new(root: &Path, part: Option<&str>, title: &str, machine: &str) -> Result<Self> {
        let now = time::OffsetDateTime::now_utc();
        let host = hostname::get()
            .context("cannot read the host name")?
            .to_string_lossy()
            .into_owned();
        let mut name = run_name(now.date(), &host);
        if let Some(part) = part {
            name = format!("{name}-{part}");
        }
        let dir = root.join("bench/runs").join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let date = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let summary = format!("# {title}\n\nmachine: {machine}\n\ndate: {date}\n\n");
        let report = Self { dir, summary };
        report.write_summary()?;
        eprintln!("results: {}", report.dir.display());
        Ok(report)
    }

    /// Adds a paragraph to the summary.
    pub fn text(&mut self, text: impl AsRef<str>) -> Result<()> {
        self.summary.push_str(text.as_ref());
        self.summary.push_str("\n\n");
        self.write_summary()
    }

    /// Adds `table` to the summary and writes its CSV.
    pub fn table(&mut self, table: Table) -> Result<()> {
        let path = self.dir.join(format!("{}.csv", table.name));
        let mut csv = csv::Writer::from_path(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        csv.write_record(&table.columns)?;
        for row in &table.rows {
            csv.write_record(row.iter().map(|cell| &cell.raw))?;
        }
        csv.flush()?;
        let markdown = table.markdown();
        eprint!("\n{markdown}");
        self.summary.push_str(&markdown);
        self.write_summary()
    }

    fn write_summary(&self) -> Result<()> {
        let path = self.dir.join("summary.md");
        fs::write(&path, &self.summary).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// `<YYYY-MM-DD>-<host>`, with anything but letters, digits, `-` and `.`
/// in the host name replaced: it becomes a directory name.
fn run_name(date: time::Date, host: &str) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{:04}-{:02}-{:02}-{host}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_named_by_date_and_host() {
        let date = time::Date::from_calendar_date(2026, time::Month::March, 7).expect("a date");
        assert_eq!(run_name(date, "bench-1"), "2026-03-07-bench-1");
        assert_eq!(run_name(date, "a/b c"), "2026-03-07-a_b_c");
    }

    #[test]
    fn the_summary_rounds_and_the_csv_does_not() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        let mut report = Report {
            dir: dir.clone(),
            summary: String::new(),
        };
        fs::create_dir_all(&dir).expect("create");
        let mut table = Table::new("t", "A table", &["label", "rate /s"]);
        table.row(vec![Cell::text("x, with a comma"), Cell::num(1234.5678, 1)]);
        table.note("(a note)");
        report.table(table).expect("write");
        let csv = fs::read_to_string(dir.join("t.csv")).expect("csv");
        let summary = fs::read_to_string(dir.join("summary.md")).expect("summary");
        fs::remove_dir_all(&dir).expect("remove");
        assert_eq!(csv, "label,rate /s\n\"x, with a comma\",1234.5678\n");
        assert_eq!(
            summary,
            "## A table\n\n| label | rate /s |\n| --- | --- |\n| x, with a comma | 1234.6 |\n\n(a note)\n\n"
        );
    }
}
