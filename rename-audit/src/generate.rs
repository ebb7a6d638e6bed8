//! `rename-audit generate man|completions DIR`: the man pages and shell
//! completions, generated from the clap definition in [`crate::cli`] so they
//! can never disagree with `--help`. Hidden from `--help`; `cargo xtask
//! package` runs it and installs the results. `generate hook-table DIR`
//! writes docs/kernels.md's hook table, from [`crate::capture::hooks`].
//!
//! Pages: `rename-audit.8` (the overview, listing the commands), one
//! `rename-audit-<command>.8` per command (as git does), and
//! `rename-audit.toml.5`, the configuration file, whose body is the
//! commented example `deploy/config.toml` (the one place every key and
//! default is documented).

use std::fs;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::Shell;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::cli::{Cli, Generate};

/// The configuration file page's name (section 5).
pub const CONFIG_PAGE: &str = "rename-audit.toml";
const EXAMPLE_CONFIG: &str = include_str!("../../deploy/config.toml");

pub fn generate(what: Generate, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    match what {
        Generate::Man => man_pages(dir),
        Generate::Completions => completions(dir),
        Generate::HookTable => write(
            &dir.join("hook-table.md"),
            crate::capture::hooks::markdown().as_bytes(),
        ),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn man_pages(dir: &Path) -> Result<()> {
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)?;
    write(&dir.join("rename-audit.8"), &page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("rename-audit-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).section("8").render(&mut page)?;
        write(&dir.join(format!("{name}.8")), &page)?;
    }
    write(
        &dir.join(format!("{CONFIG_PAGE}.5")),
        config_page().as_bytes(),
    )
}

/// rename-audit.toml(5): what the file is, how it is read, and the
/// documented example.
fn config_page() -> String {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "RENAME-AUDIT.TOML",
            "5",
            "",
            &format!("rename-audit {}", env!("CARGO_PKG_VERSION")),
            "File Formats",
        ],
    )
    .control("SH", ["NAME"])
    .text([roman(
        "rename-audit.toml - configuration file of rename-audit(8)",
    )])
    .control("SH", ["SYNOPSIS"])
    .text([bold("/etc/rename-audit/config.toml")])
    .control("SH", ["DESCRIPTION"])
    .text([
        roman("rename-audit reads a TOML file, by default "),
        italic("/etc/rename-audit/config.toml"),
        roman(" or the file given with "),
        bold("--config"),
        roman(
            ". Every key is optional: a missing key takes its default, and a missing \
             default file means all defaults. Command-line flags override the file. ",
        ),
        bold("rename-audit check-config FILE"),
        roman(
            " prints every problem of a file as path:line:column: message. SIGHUP \
             (systemctl reload rename-audit) re-reads the file and keeps the old \
             configuration when the new one is invalid.",
        ),
    ])
    .control("SH", ["KEYS"])
    .text([roman(
        "The file below is the installed default; it documents every key with its \
         default value. Lines such as #listen = ... are settings to uncomment.",
    )])
    .control("PP", [])
    .control("nf", [])
    .control("RS", ["4"]);
    for line in EXAMPLE_CONFIG.lines() {
        roff.text([roman(line)]);
    }
    roff.control("RE", [])
        .control("fi", [])
        .control("SH", ["SEE ALSO"])
        .text([roman("rename-audit(8), rename-audit-run(8)")]);
    roff.to_roff()
}

/// Completion scripts under the names the shells look for in their vendor
/// directories: `rename-audit` (bash), `_rename-audit` (zsh),
/// `rename-audit.fish` (fish).
fn completions(dir: &Path) -> Result<()> {
    for (shell, file) in [
        (Shell::Bash, "rename-audit"),
        (Shell::Zsh, "_rename-audit"),
        (Shell::Fish, "rename-audit.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "rename-audit", &mut script);
        let path = dir.join(file);
        let mut f =
            fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(&script)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_table_is_written_as_the_code_has_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(Generate::HookTable, dir.path()).expect("hook table");
        let written = fs::read_to_string(dir.path().join("hook-table.md")).expect("written");
        assert_eq!(written, crate::capture::hooks::markdown());
        assert!(
            written.starts_with("| program | attaches to |"),
            "{written}"
        );
    }

    #[test]
    fn pages_and_completions_cover_every_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(Generate::Man, dir.path()).expect("man pages");
        generate(Generate::Completions, dir.path()).expect("completions");
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "_rename-audit",
                "rename-audit",
                "rename-audit-check-config.8",
                "rename-audit-report.8",
                "rename-audit-run.8",
                "rename-audit-search.8",
                "rename-audit.8",
                "rename-audit.fish",
                "rename-audit.toml.5",
            ]
        );
        let main = fs::read_to_string(dir.path().join("rename-audit.8")).expect("page");
        assert!(main.starts_with(".ie \\n(.g .ds Aq"), "{main}");
        assert!(main.contains("rename\\-audit\\-search(8)"), "{main}");
        assert!(
            !main.contains("generate"),
            "the hidden command stays hidden"
        );
        let run = fs::read_to_string(dir.path().join("rename-audit-run.8")).expect("page");
        assert!(run.contains("\\-\\-thread\\-renames"), "{run}");
        assert!(
            !run.contains("machine\\-id") && !run.contains("os\\-release"),
            "the test-only flags stay hidden"
        );
        for page in ["rename-audit-search.8", "rename-audit-report.8"] {
            let text = fs::read_to_string(dir.path().join(page)).expect("page");
            assert!(text.contains("\\-\\-host"), "{page} documents --host");
        }
        let config = fs::read_to_string(dir.path().join("rename-audit.toml.5")).expect("page");
        assert!(config.contains("thread_renames = \"alerts\""), "{config}");
        assert!(config.contains("#[host]"), "{config}");
        let bash = fs::read_to_string(dir.path().join("rename-audit")).expect("bash");
        assert!(
            bash.contains("--process-only"),
            "bash completes search flags"
        );
    }
}
