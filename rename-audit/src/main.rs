//! rename-audit's entry point: wires capture -> process table -> classify ->
//! rules -> output and sinks, and handles signals.
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use clap::Parser as _;
use rename_audit::{
    capture::Capture,
    classify::Classifier,
    cli::{Cli, Command, RunArgs},
    config::{self, Config},
    event::StopReason,
    identity::{self, Identity},
    metrics::Metrics,
    output::{JsonLinesWriter, OutputDest, OutputStream, OutputSummary},
    pipeline::{Control, Pipeline},
    proctable::{ProcRoot, ProcessTable},
    rules::RuleEngine,
    sinks::Sinks,
    state::{self, Tracker},
};
use tokio::signal::unix::{SignalKind, signal};

/// mimalloc, not glibc's malloc. Records are made on the pipeline thread and
/// freed on the sink threads once delivered. glibc returns such a free to the
/// arena it came from under that arena's lock, so the pipeline waited on its
/// own arena while a sink thread, niced below it and preempted, held the
/// lock (12,000 waits and stalls up to 60 ms in a 10 s alert burst).
/// mimalloc hands a block freed by another thread back without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Batches in flight between the drain and pipeline threads. Few: the rings
/// are the buffer. When the pipeline falls behind, the drain thread blocks
/// and the kernel counts what the full rings cannot take.
const BATCHES_IN_FLIGHT: usize = 4;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: under systemd stderr is the journal,
        // which would store the escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let success = |()| std::process::ExitCode::SUCCESS;
    let result = match cli.command {
        Command::Run(args) => run(args).map(success),
        Command::CheckConfig { file } => check_config(&file).map(success),
        Command::Search(args) => rename_audit::query::search(&args),
        Command::Report(args) => rename_audit::query::report(&args),
        Command::Generate { what, dir } => {
            rename_audit::generate::generate(what, &dir).map(success)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rename-audit: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check_config(file: &Path) -> Result<()> {
    config::check(file)?;
    println!("{}: ok", file.display());
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    if let Err(error) = rename_audit::util::sched::no_huge_pages() {
        tracing::warn!(%error, "cannot turn transparent huge pages off; memory grows in 2 MiB steps");
    }
    let cfg = args.settings()?;
    let dest = cfg.output_dest();
    // Under systemd, stdout is the journal: a `<N>` prefix gives alert lines
    // a priority that matches their severity.
    let journal = dest == OutputDest::Stdout && rename_audit::output::stdout_is_journal();
    let color = dest == OutputDest::Stdout && rename_audit::output::stdout_wants_color();
    let writer = JsonLinesWriter::open(&dest)?
        .with_syslog_prefix(journal)
        .with_format(cfg.output.format, color);
    let rules = RuleEngine::new(&cfg.rules, &cfg.allow);

    // Attach first, then snapshot /proc: whatever starts in between is in the
    // rings as a fork and merged by key, so nothing is missed or doubled.
    let mut capture = Capture::attach(&cfg.capture_options())?;
    let kernel = capture.kernel();
    tracing::info!(
        kernel = %kernel.release,
        exec_rename = kernel.exec_rename.as_str(),
        process_exit = kernel.process_exit.as_str(),
        kernel_workers = kernel.worker_flag_names(),
        mount_watch = capture.mount_watch().map_or("off", |w| w.as_str()),
        "kernel hooks attached"
    );
    let drainer = capture.drainer()?;
    let proc_root = ProcRoot::private().unwrap_or_else(|error| {
        tracing::warn!(
            %error,
            "reading the host's /proc instead of a private procfs: a process hidden by a \
             mount over its /proc/<pid> before start-up is still reported, but its executable, \
             arguments and parent cannot be read (grant CAP_SYS_ADMIN to see through such mounts)"
        );
        ProcRoot::host()
    });
    let mut table = ProcessTable::new(proc_root);
    table.snapshot();
    let processes = table.len();
    // Only once attached: a start that is refused leaves no state behind.
    let state_dir = state::resolve_dir(args.state_dir.as_deref());
    let (agent_id, state) = match state::agent_id(&state_dir) {
        Ok(id) => (id, Tracker::open_or_warn(&state_dir)),
        Err(error) => {
            // One warning for the directory and all it would have kept.
            tracing::warn!(
                %error,
                "the state directory cannot be written: agent.id is new for this run only, \
                 and a gap after a kill or crash cannot be reported"
            );
            (identity::new_agent_id(), Tracker::disabled())
        }
    };
    let identity = Identity::gather(&cfg.host, agent_id, &args.identity_sources());
    let host: Arc<str> = Arc::from(identity.name.as_str());
    tracing::info!(host.name = %identity.name, agent.id = %identity.agent_id, "identity");
    identity::install(identity);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rename-audit-io")
        // The sinks run here: below capture's priority (util::sched).
        .on_thread_start(|| {
            if let Err(error) = rename_audit::util::sched::deprioritize_this_thread() {
                tracing::debug!(%error, "cannot lower a sink thread's priority");
            }
        })
        .build()
        .context("starting the async runtime")?;
    // Before "ready": systemd may stop or reload the daemon the moment it is
    // told so, and until these are installed SIGTERM and SIGHUP kill the
    // process outright (no drain, no flush).
    let signals = {
        let _in_runtime = runtime.enter();
        Signals::install()?
    };
    let metrics = Metrics::new();
    for rule in rename_audit::rules::RuleId::ALL {
        metrics.declare_rule(rule.as_str(), rule.severity());
    }
    let sinks = Sinks::start(&cfg.sinks, metrics.clone(), host.clone(), runtime.handle())?;
    let secrets = sinks.secrets();

    let stop = Arc::new(AtomicBool::new(false));
    let (batch_tx, batch_rx) = crossbeam_channel::bounded(BATCHES_IN_FLIGHT);
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    let (fatal_tx, fatal_rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = std::thread::Builder::new()
        .name("ra-drain".into())
        .spawn({
            let stop = stop.clone();
            move || drainer.run(batch_tx, stop)
        })
        .context("starting the drain thread")?;
    let metrics_for_reload = metrics.clone();
    let pipeline = Pipeline {
        classifier: Classifier::new(table, host, cfg.filter()),
        rules,
        noise: cfg.noise(),
        output: OutputStream::new(writer, metrics.clone(), cfg.output.unwritable_timeout),
        sinks,
        metrics,
        fatal: fatal_tx,
        state,
    };
    let pipeline = std::thread::Builder::new()
        .name("ra-pipeline".into())
        .spawn(move || pipeline.run(batch_rx, control_rx))
        .context("starting the pipeline thread")?;

    let (priority_ring, thread_ring) = capture.ring_bytes();
    tracing::info!(processes, priority_ring, thread_ring, "attached; ready");
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready])
    {
        tracing::warn!(%error, "could not notify systemd");
    }

    let (reason, fatal) = runtime.block_on(wait_for_stop(
        signals,
        Reloader {
            args,
            started: cfg,
            secrets,
        },
        control_tx.clone(),
        fatal_rx,
        metrics_for_reload,
    ));
    // Told before the capture side stops, for the last record.
    let _ = control_tx.send(Control::Stopping(reason, fatal.clone()));

    // Stop: detach first, so the rings hold a finite amount; the drain thread
    // then empties them and takes every pending storm count, and the
    // pipeline writes them out. The maps live on in the drain thread.
    drop(capture);
    stop.store(true, Ordering::Release);
    drain
        .join()
        .map_err(|_| anyhow::anyhow!("the drain thread panicked"))?;
    let (sinks, output) = pipeline
        .join()
        .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))?;
    runtime.block_on(sinks.shutdown(Duration::from_millis(700)));
    runtime.shutdown_timeout(Duration::from_millis(100));
    tracing::info!("stopped");
    exit_status(fatal, &output)
}

/// The daemon's end in one message: a fatal output failure, or events
/// that could not be written and are reported nowhere but in the metrics.
/// Either is a failure, so that systemd's `Restart=on-failure` acts.
fn exit_status(fatal: Option<String>, output: &OutputSummary) -> Result<()> {
    let lost = match output.unreported_lost {
        0 => String::new(),
        n => format!(
            "{n} events could not be written to {} and are not in it ({} lost in all)",
            output.dest, output.lost
        ),
    };
    match (fatal, lost.is_empty()) {
        (None, true) => Ok(()),
        (None, false) => Err(anyhow::anyhow!(lost)),
        (Some(fatal), true) => Err(anyhow::anyhow!(fatal)),
        (Some(fatal), false) => Err(anyhow::anyhow!("{fatal}; {lost}")),
    }
}

/// The daemon's signal streams; installing them replaces the default
/// actions (which end the process) at once.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Must run inside the runtime.
    fn install() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }
}

/// Waits for SIGTERM or SIGINT, or a fatal output failure (returned with
/// its message); returns why it stopped. On
/// SIGHUP reopens the output file (log rotation) and reloads the
/// configuration, keeping the old one when the new file is invalid.
///
/// The reload runs on the blocking pool, never in this loop: whatever
/// reading the file does, SIGTERM and the next SIGHUP's reopen are still
/// acted on. One reload runs at a time; SIGHUPs that come during one ask
/// for a single further reload, so the file read last is the newest.
async fn wait_for_stop(
    mut signals: Signals,
    reloader: Reloader,
    control: crossbeam_channel::Sender<Control>,
    mut fatal: tokio::sync::mpsc::UnboundedReceiver<String>,
    metrics: std::sync::Arc<Metrics>,
) -> (StopReason, Option<String>) {
    let reloader = Arc::new(reloader);
    let start_reload = || {
        let reloader = reloader.clone();
        tokio::task::spawn_blocking(move || reloader.reload())
    };
    let mut reloading: Option<tokio::task::JoinHandle<Result<Control>>> = None;
    let mut again = false;
    loop {
        tokio::select! {
            _ = signals.term.recv() => return (StopReason::Sigterm, None),
            _ = signals.int.recv() => return (StopReason::Sigint, None),
            // Printed once, as the exit message.
            Some(message) = fatal.recv() => return (StopReason::OutputFailed, Some(message)),
            _ = signals.hup.recv() => {
                // Reopen first and whatever the configuration says: the
                // rotated file must be let go of even if the new file is bad.
                let _ = control.send(Control::ReopenOutput);
                if reloading.is_some() {
                    again = true;
                    tracing::warn!("SIGHUP during a reload: the configuration is read again after it");
                } else {
                    reloading = Some(start_reload());
                }
            }
            done = async { reloading.as_mut().expect("guarded").await }, if reloading.is_some() => {
                reloading = None;
                match done {
                    Ok(Ok(msg)) => {
                        let _ = control.send(msg);
                        metrics.config_reload(true);
                        tracing::info!("configuration reloaded");
                    }
                    Ok(Err(error)) => {
                        metrics.config_reload(false);
                        tracing::error!(error = format!("{error:#}"), "configuration not reloaded; keeping the old one");
                    }
                    Err(error) => {
                        metrics.config_reload(false);
                        tracing::error!(%error, "the reload failed; keeping the old configuration");
                    }
                }
                if std::mem::take(&mut again) {
                    reloading = Some(start_reload());
                }
            }
        }
    }
}

/// Re-reads the configuration on SIGHUP.
struct Reloader {
    args: RunArgs,
    /// What the daemon started with: the parts a reload cannot change.
    started: Config,
    /// The sinks' secret files, read again by every reload.
    secrets: rename_audit::sinks::SecretFiles,
}

impl Reloader {
    fn reload(&self) -> Result<Control> {
        // Read first, put in use last: a reload that fails keeps the
        // secrets in use along with the rest.
        let secrets = self
            .secrets
            .read()
            .context("reading the sinks' secret files again")?;
        let cfg = self.args.settings()?;
        let restart = self.started.needs_restart(&cfg);
        if !restart.is_empty() {
            // The rest of the file still applies; say plainly what does not.
            tracing::warn!(
                settings = restart.join(", "),
                "these settings changed but only take effect at the next start"
            );
        }
        let rules = RuleEngine::new(&cfg.rules, &cfg.allow);
        self.secrets.install(secrets);
        Ok(Control::Reload {
            rules: Box::new(rules),
            filter: cfg.filter(),
            noise: cfg.noise(),
        })
    }
}
