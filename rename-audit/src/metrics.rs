//! The daemon's counters and gauges, exported by the Prometheus sink.
//!
//! Every label value comes from a fixed vocabulary (actions, methods, classes,
//! rule ids, severities, sink names) and never from a task name or a path:
//! prometheus-client writes label values verbatim, so a name in a label could
//! forge series or break the exposition. Values given as plain `&str` are
//! reduced to a safe alphabet before they become labels.
//!
//! Counters are registered without their `_total` suffix because the crate
//! appends it itself: the exposition shows exactly the contract's names.

use std::borrow::Cow;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::capture::KernelState;
use crate::event::{Body, Class, Event, LostReason, Method, Severity};

/// Sink names that may appear in `{sink}` labels; anything else is `other`.
/// `output` is the event stream itself (stdout or the output file).
pub const SINK_NAMES: [&str; 4] = ["output", "alertmanager", "syslog", "prometheus"];

/// Reasons that may appear in `renames_filtered_total{reason}`: the rename
/// method that a filter left out, or the thread-rename setting
/// ([`crate::noise`]) and its executable allow-list; anything else is
/// `other`.
const FILTER_REASONS: [&str; 7] = [
    "prctl",
    "procfs",
    "exec",
    "kernel",
    crate::noise::REASON_SETTING,
    crate::noise::REASON_ALLOW,
    crate::noise::REASON_UNCHANGED,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RenameLabels {
    action: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    rule: Cow<'static, str>,
    severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LostLabels {
    class: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    fault: &'static str,
}

/// `{sink}`, and `{sink, replica}` for a sink that delivers to several
/// servers (Alertmanager's replicas).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct SinkLabels {
    sink: &'static str,
    replica: Option<Arc<str>>,
}

impl SinkLabels {
    fn of(sink: &str, replica: Option<&Arc<str>>) -> SinkLabels {
        SinkLabels {
            sink: sink_label(sink),
            replica: replica.cloned(),
        }
    }
}

impl EncodeLabelSet for SinkLabels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel as _;
        ("sink", self.sink).encode(encoder.encode_label())?;
        if let Some(replica) = &self.replica {
            ("replica", &**replica).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchdogLabels {
    replica: Arc<str>,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLostLabels {
    sink: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    renames: Family<RenameLabels, Counter>,
    alerts: Family<AlertLabels, Counter>,
    lost: Family<ClassLabels, Counter>,
    lost_by_reason: Family<LostLabels, Counter>,
    kernel_faults: Family<FaultLabels, Counter>,
    storm_slots_in_use: Gauge,
    /// Last totals of the kernel's fault counters, to turn them into increments.
    kernel_seen: std::sync::Mutex<KernelState>,
    summarized: Counter,
    summarized_by_class: Family<ClassLabels, Counter>,
    processes_tracked: Gauge,
    events: Family<ActionLabels, Counter>,
    sink_errors: Family<SinkLabels, Counter>,
    sink_dropped: Family<SinkLabels, Counter>,
    sink_sent: Family<SinkLabels, Counter>,
    sink_failed: Family<SinkLabels, Counter>,
    sink_lost: Family<SinkLostLabels, Counter>,
    /// Sink losses not yet in an `events-lost` record, by sink and reason.
    sink_lost_unreported: std::sync::Mutex<Vec<(&'static str, LostReason, u64)>>,
    watchdog_posts: Family<WatchdogLabels, Counter>,
    alerts_suppressed: Family<RuleLabels, Counter>,
    config_reloads: Family<ResultLabels, Counter>,
    /// 1 while the configuration in force is the one the last reload read
    /// (or the start-up one, before any reload); 0 after a refused reload.
    /// A counter cannot say whether the latest reload failed, and this is
    /// the shape Prometheus and Alertmanager use for their own reloads.
    config_last_reload_ok: Gauge,
    renames_filtered: Family<ReasonLabels, Counter>,
}

const ACTIONS: [&str; 2] = ["process-renamed", "thread-renamed"];
/// `kernel_faults_total{fault}` values.
const FAULT_RATE_UNTRACKED: &str = "rate-untracked";
const FAULT_SLOT_RACE: &str = "slot-race";

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut m = Metrics {
            renames: Family::default(),
            alerts: Family::default(),
            lost: Family::default(),
            lost_by_reason: Family::default(),
            kernel_faults: Family::default(),
            storm_slots_in_use: Gauge::default(),
            kernel_seen: std::sync::Mutex::new(KernelState::default()),
            summarized: Counter::default(),
            summarized_by_class: Family::default(),
            processes_tracked: Gauge::default(),
            events: Family::default(),
            sink_errors: Family::default(),
            sink_dropped: Family::default(),
            sink_sent: Family::default(),
            sink_failed: Family::default(),
            sink_lost: Family::default(),
            sink_lost_unreported: std::sync::Mutex::new(Vec::new()),
            watchdog_posts: Family::default(),
            alerts_suppressed: Family::default(),
            config_reloads: Family::default(),
            config_last_reload_ok: Gauge::default(),
            renames_filtered: Family::default(),
            registry: Registry::default(),
        };
        let registry = &mut m.registry;
        registry.register(
            "rename_audit_renames",
            "Renames reported one by one, by action and method",
            m.renames.clone(),
        );
        registry.register(
            "rename_audit_alerts",
            "Alerts raised by rules, by rule and severity",
            m.alerts.clone(),
        );
        registry.register(
            "rename_audit_events_lost",
            "Records the kernel could not send, by accounting class; class output: records the daemon could not write to its output",
            m.lost.clone(),
        );
        registry.register(
            "rename_audit_events_lost_by_reason",
            "Records the kernel could not send, by accounting class and reason; class output, reason write-failed: records the daemon could not write to its output",
            m.lost_by_reason.clone(),
        );
        registry.register(
            "rename_audit_kernel_faults",
            "Kernel-side faults that lost no record: rate-untracked (a rename sent without a rate limit because the rate map was full), slot-race (a storm-slot claim given back after a racing rename of the same thread won)",
            m.kernel_faults.clone(),
        );
        registry.register(
            "rename_audit_storm_slots_in_use",
            "Storm slots held by a thread",
            m.storm_slots_in_use.clone(),
        );
        registry.register(
            "rename_audit_renames_summarized",
            "Renames counted inside storm summaries instead of reported one by one",
            m.summarized.clone(),
        );
        registry.register(
            "rename_audit_renames_summarized_by_class",
            "Renames counted inside storm summaries, by accounting class",
            m.summarized_by_class.clone(),
        );
        registry.register(
            "rename_audit_processes_tracked",
            "Processes in the process table",
            m.processes_tracked.clone(),
        );
        registry.register(
            "rename_audit_events",
            "Output records, by event action",
            m.events.clone(),
        );
        registry.register(
            "rename_audit_sink_errors",
            "Failed sink operations (connect, send, HTTP error, timeout), retries included",
            m.sink_errors.clone(),
        );
        registry.register(
            "rename_audit_sink_queue_dropped",
            "Records a sink never got because its queue was full or shutdown cut it off",
            m.sink_dropped.clone(),
        );
        registry.register(
            "rename_audit_sink_sent",
            "Records a sink delivered",
            m.sink_sent.clone(),
        );
        registry.register(
            "rename_audit_sink_failed",
            "Records a sink gave up on after its retries",
            m.sink_failed.clone(),
        );
        registry.register(
            "rename_audit_sink_lost",
            "Records a sink could not deliver, by sink and reason (queue-full, send-failed, too-big, shutdown); also in rename_audit_events_lost_total{class=\"sink\"}",
            m.sink_lost.clone(),
        );
        registry.register(
            "rename_audit_alertmanager_watchdog_posts",
            "Posts of the always-firing RenameAuditWatchdog alert, per replica and result",
            m.watchdog_posts.clone(),
        );
        registry.register(
            "rename_audit_alerts_suppressed",
            "Repeated alerts not posted to Alertmanager by deduplication, by rule",
            m.alerts_suppressed.clone(),
        );
        registry.register(
            "rename_audit_config_reloads",
            "Configuration reloads, by result",
            m.config_reloads.clone(),
        );
        registry.register(
            "rename_audit_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1; also before any reload) or was refused (0)",
            m.config_last_reload_ok.clone(),
        );
        m.config_last_reload_ok.set(1);
        registry.register(
            "rename_audit_renames_filtered",
            "Renames seen but not reported, by reason",
            m.renames_filtered.clone(),
        );
        let build_info: Family<VersionLabels, Gauge> = Family::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "rename_audit_build_info",
            "Build information; the value is always 1",
            build_info,
        );

        // Series that exist from the start read 0 instead of being absent, so
        // PromQL's increase() sees the first rename.
        for action in ACTIONS {
            for method in Method::ALL {
                m.renames.get_or_create_owned(&RenameLabels {
                    action,
                    method: method.as_str(),
                });
            }
        }
        for action in [
            "process-renamed",
            "thread-renamed",
            "renames-summarized",
            "events-lost",
        ] {
            m.events.get_or_create_owned(&ActionLabels { action });
        }
        for result in ["success", "failure"] {
            m.config_reloads
                .get_or_create_owned(&ResultLabels { result });
        }
        for reason in [
            "exec",
            "kernel",
            crate::noise::REASON_SETTING,
            crate::noise::REASON_ALLOW,
        ] {
            m.renames_filtered
                .get_or_create_owned(&ReasonLabels { reason });
        }
        // The event stream is always there; its write errors count here.
        m.sink_errors
            .get_or_create_owned(&SinkLabels::of("output", None));
        for fault in [FAULT_RATE_UNTRACKED, FAULT_SLOT_RACE] {
            m.kernel_faults.get_or_create_owned(&FaultLabels { fault });
        }
        // Every pair a loss can have: each kernel class with each kernel
        // reason, and output/write-failed.
        let kernel_pairs = Class::KERNEL
            .into_iter()
            .flat_map(|class| LostReason::KERNEL.map(|reason| (class, reason)));
        let daemon_pairs = std::iter::once((Class::Output, LostReason::WriteFailed))
            .chain(LostReason::SINK.map(|reason| (Class::Sink, reason)));
        for (class, reason) in kernel_pairs.chain(daemon_pairs) {
            m.lost_by_reason.get_or_create_owned(&LostLabels {
                class: class.as_str(),
                reason: reason.as_str(),
            });
        }
        for class in Class::ALL {
            m.lost.get_or_create_owned(&ClassLabels {
                class: class.as_str(),
            });
            m.summarized_by_class.get_or_create_owned(&ClassLabels {
                class: class.as_str(),
            });
        }
        Arc::new(m)
    }

    /// Count one output record (call it once for every record written).
    pub fn observe(&self, ev: &Event) {
        let action = ev.body.action();
        self.events.get_or_create(&ActionLabels { action }).inc();
        match &ev.body {
            Body::Rename(r) => {
                self.renames
                    .get_or_create(&RenameLabels {
                        action,
                        method: r.method.as_str(),
                    })
                    .inc();
            }
            Body::Summary(s) => {
                self.summarized.inc_by(s.count);
                self.summarized_by_class
                    .get_or_create(&ClassLabels {
                        class: s.class.as_str(),
                    })
                    .inc_by(s.count);
            }
            // Output and sink losses are counted when they happen
            // (`output_lost`, `sink_lost`): their record may come much
            // later, or never.
            Body::Lost(l) if matches!(l.class, Class::Output | Class::Sink) => {}
            Body::Hidden(_) | Body::Agent(_) | Body::Found(_) => {}
            Body::Lost(l) => {
                self.lost
                    .get_or_create(&ClassLabels {
                        class: l.class.as_str(),
                    })
                    .inc_by(l.count);
                self.lost_by_reason
                    .get_or_create(&LostLabels {
                        class: l.class.as_str(),
                        reason: l.reason.as_str(),
                    })
                    .inc_by(l.count);
            }
        }
        if let Some(alert) = &ev.alert {
            self.alerts
                .get_or_create(&AlertLabels {
                    rule: Cow::Borrowed(alert.rule_id),
                    severity: alert.severity.as_str(),
                })
                .inc();
        }
    }

    /// Count records given up by the output (written neither whole nor
    /// at all).
    pub fn output_lost(&self, n: u64) {
        self.lost
            .get_or_create(&ClassLabels {
                class: Class::Output.as_str(),
            })
            .inc_by(n);
        self.lost_by_reason
            .get_or_create(&LostLabels {
                class: Class::Output.as_str(),
                reason: LostReason::WriteFailed.as_str(),
            })
            .inc_by(n);
    }

    /// Count records `sink` could not deliver, and keep them for the next
    /// `events-lost` record ([`Metrics::take_sink_losses`]).
    pub fn sink_lost(&self, sink: &str, reason: LostReason, n: u64) {
        if n == 0 {
            return;
        }
        let sink = sink_label(sink);
        self.sink_lost
            .get_or_create(&SinkLostLabels {
                sink,
                reason: reason.as_str(),
            })
            .inc_by(n);
        self.lost
            .get_or_create(&ClassLabels {
                class: Class::Sink.as_str(),
            })
            .inc_by(n);
        self.lost_by_reason
            .get_or_create(&LostLabels {
                class: Class::Sink.as_str(),
                reason: reason.as_str(),
            })
            .inc_by(n);
        let mut pending = self
            .sink_lost_unreported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pending
            .iter_mut()
            .find(|(s, r, _)| *s == sink && *r == reason)
        {
            Some((_, _, count)) => *count += n,
            None => pending.push((sink, reason, n)),
        }
    }

    /// Sink losses counted since the last call, by sink and reason, for the
    /// pipeline to report as `events-lost` records of class `sink`.
    pub fn take_sink_losses(&self) -> Vec<(&'static str, LostReason, u64)> {
        std::mem::take(
            &mut *self
                .sink_lost_unreported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Make a rule's alert series exist (at 0) before it first fires.
    pub fn declare_rule(&self, rule: &'static str, severity: Severity) {
        self.alerts.get_or_create_owned(&AlertLabels {
            rule: Cow::Borrowed(rule),
            severity: severity.as_str(),
        });
        self.alerts_suppressed.get_or_create_owned(&RuleLabels {
            rule: Cow::Borrowed(rule),
        });
    }

    /// Make a sink's series exist (at 0) from its start.
    pub fn declare_sink(&self, sink: &str) {
        let labels = SinkLabels::of(sink, None);
        for family in [
            &self.sink_errors,
            &self.sink_dropped,
            &self.sink_sent,
            &self.sink_failed,
        ] {
            family.get_or_create_owned(&labels);
        }
        for reason in LostReason::SINK {
            self.sink_lost.get_or_create_owned(&SinkLostLabels {
                sink: sink_label(sink),
                reason: reason.as_str(),
            });
        }
    }

    /// Make the series of one replica of a sink exist (at 0) from its
    /// start: its deliveries are counted under `{sink, replica}`.
    pub fn declare_replica(&self, sink: &str, replica: &Arc<str>) {
        let labels = SinkLabels::of(sink, Some(replica));
        for family in [
            &self.sink_errors,
            &self.sink_dropped,
            &self.sink_sent,
            &self.sink_failed,
        ] {
            family.get_or_create_owned(&labels);
        }
    }

    /// Make a replica's watchdog series exist (at 0) from its start.
    pub fn declare_watchdog(&self, replica: &Arc<str>) {
        for result in ["sent", "failed"] {
            self.watchdog_posts.get_or_create_owned(&WatchdogLabels {
                replica: Arc::clone(replica),
                result,
            });
        }
    }

    /// One post of the watchdog alert to `replica`.
    pub fn watchdog_post(&self, replica: &Arc<str>, ok: bool) {
        self.watchdog_posts
            .get_or_create(&WatchdogLabels {
                replica: Arc::clone(replica),
                result: if ok { "sent" } else { "failed" },
            })
            .inc();
    }

    /// The kernel side's storm slots and fault counters (totals).
    pub fn kernel_state(&self, now: &KernelState) {
        self.storm_slots_in_use
            .set(i64::try_from(now.storm_slots_in_use).unwrap_or(i64::MAX));
        let mut seen = self
            .kernel_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (fault, total, before) in [
            (
                FAULT_RATE_UNTRACKED,
                now.rate_untracked,
                seen.rate_untracked,
            ),
            (FAULT_SLOT_RACE, now.slot_races, seen.slot_races),
        ] {
            self.kernel_faults
                .get_or_create(&FaultLabels { fault })
                .inc_by(total.saturating_sub(before));
        }
        *seen = *now;
    }

    pub fn set_processes_tracked(&self, n: i64) {
        self.processes_tracked.set(n);
    }

    pub fn sink_error(&self, sink: &str) {
        self.replica_error(sink, None);
    }

    /// One record that did not fit `sink`'s queue: lost (`queue-full`).
    pub fn sink_dropped(&self, sink: &str) {
        self.replica_dropped(sink, None, 1);
        self.sink_lost(sink, LostReason::QueueFull, 1);
    }

    /// `n` records `sink` was still holding when told to stop: lost
    /// (`shutdown`).
    pub fn sink_dropped_n(&self, sink: &str, n: u64) {
        self.replica_dropped(sink, None, n);
        self.sink_lost(sink, LostReason::Shutdown, n);
    }

    pub fn sink_sent(&self, sink: &str, n: u64) {
        self.replica_sent(sink, None, n);
    }

    /// `n` records `sink` gave up on: lost for `reason` (`send-failed`,
    /// `too-big`). Not for a replica of a sink that has several: one
    /// replica failing loses nothing while another delivers.
    pub fn sink_failed(&self, sink: &str, n: u64, reason: LostReason) {
        self.replica_failed(sink, None, n);
        self.sink_lost(sink, reason, n);
    }

    /// A failed attempt of `sink`, to `replica` when it has several.
    pub fn replica_error(&self, sink: &str, replica: Option<&Arc<str>>) {
        self.sink_errors
            .get_or_create(&SinkLabels::of(sink, replica))
            .inc();
    }

    pub fn replica_dropped(&self, sink: &str, replica: Option<&Arc<str>>, n: u64) {
        self.sink_dropped
            .get_or_create(&SinkLabels::of(sink, replica))
            .inc_by(n);
    }

    pub fn replica_sent(&self, sink: &str, replica: Option<&Arc<str>>, n: u64) {
        self.sink_sent
            .get_or_create(&SinkLabels::of(sink, replica))
            .inc_by(n);
    }

    pub fn replica_failed(&self, sink: &str, replica: Option<&Arc<str>>, n: u64) {
        self.sink_failed
            .get_or_create(&SinkLabels::of(sink, replica))
            .inc_by(n);
    }

    pub fn alert_suppressed(&self, rule: &str) {
        self.alerts_suppressed
            .get_or_create(&RuleLabels {
                rule: safe_label(rule),
            })
            .inc();
    }

    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.config_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
        self.config_last_reload_ok.set(i64::from(ok));
    }

    /// A rename seen but not reported; `reason` is the rename method the
    /// filter left out (`exec` without `--include-exec`, `kernel` ...).
    pub fn filtered(&self, reason: &str) {
        let reason = FILTER_REASONS
            .iter()
            .copied()
            .find(|r| *r == reason)
            .unwrap_or("other");
        self.renames_filtered
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The registry in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

/// A replica's label value, from its configured URL: only characters a URL
/// keeps unescaped and that need no escaping in the exposition, at most 200.
pub fn replica_label(url: &str) -> Arc<str> {
    url.chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ":/._-[]%+~@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .into()
}

fn sink_label(sink: &str) -> &'static str {
    SINK_NAMES
        .iter()
        .copied()
        .find(|s| *s == sink)
        .unwrap_or("other")
}

/// A label value from a caller's string: rule ids are short ASCII words, so
/// anything outside that alphabet is replaced and the length is capped.
fn safe_label(s: &str) -> Cow<'static, str> {
    let cleaned: String = s
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Cow::Owned(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Alert, Lost, LostReason, ProcessContext, Rename, Summary, Writer};
    use crate::names::Name;
    use time::OffsetDateTime;

    fn rename_event(main_thread: bool, method: Method) -> Event {
        Event {
            sequence: 1,
            timestamp: OffsetDateTime::UNIX_EPOCH,
            host: Arc::from("h"),
            process: Some(ProcessContext::default()),
            body: Body::Rename(Rename {
                tid: 2,
                old_name: Name::from("a"),
                new_name: Name::from("b\n\"}x 1"),
                main_thread,
                method,
                writer: Writer {
                    pid: 2,
                    tid: 2,
                    name: Name::from("a"),
                },
                original_name: Name::from("a"),
                count: 1,
            }),
            alert: None,
        }
    }

    fn sample(exposition: &str, series: &str) -> Option<f64> {
        exposition.lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("numeric sample"))
        })
    }

    #[test]
    fn exposition_has_the_contract_names() {
        let m = Metrics::new();
        m.declare_sink("alertmanager");
        m.declare_rule("kernel-thread-mimic", Severity::Critical);
        let text = m.encode();
        for family in [
            "# TYPE rename_audit_renames counter",
            "# TYPE rename_audit_alerts counter",
            "# TYPE rename_audit_events_lost counter",
            "# TYPE rename_audit_renames_summarized counter",
            "# TYPE rename_audit_processes_tracked gauge",
            "# TYPE rename_audit_sink_errors counter",
            "# TYPE rename_audit_sink_queue_dropped counter",
            "# TYPE rename_audit_build_info gauge",
            "# TYPE rename_audit_alerts_suppressed counter",
        ] {
            assert!(text.contains(family), "missing {family:?} in:\n{text}");
        }
        for series in [
            "rename_audit_renames_total{action=\"process-renamed\",method=\"prctl\"}",
            "rename_audit_renames_total{action=\"thread-renamed\",method=\"kernel\"}",
            "rename_audit_alerts_total{rule=\"kernel-thread-mimic\",severity=\"critical\"}",
            "rename_audit_events_lost_total{class=\"thread\"}",
            "rename_audit_events_lost_total{class=\"output\"}",
            "rename_audit_events_lost_by_reason_total{class=\"unknown\",reason=\"task-unreadable\"}",
            "rename_audit_events_lost_by_reason_total{class=\"output\",reason=\"write-failed\"}",
            "rename_audit_renames_summarized_total",
            "rename_audit_processes_tracked",
            "rename_audit_sink_errors_total{sink=\"alertmanager\"}",
            "rename_audit_sink_queue_dropped_total{sink=\"alertmanager\"}",
            "rename_audit_alerts_suppressed_total{rule=\"kernel-thread-mimic\"}",
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series} in:\n{text}");
        }
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(
                &text,
                &format!("rename_audit_build_info{{version=\"{version}\"}}")
            ),
            Some(1.0)
        );
        assert!(!text.contains("_total_total"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn observe_counts_each_kind_of_record() {
        let m = Metrics::new();
        m.observe(&rename_event(true, Method::Prctl));
        m.observe(&rename_event(true, Method::Prctl));
        m.observe(&rename_event(false, Method::Procfs));
        let mut alert = rename_event(true, Method::Procfs);
        alert.alert = Some(Alert {
            rule_id: "sibling-renamed-main",
            rule_name: "Sibling renamed main thread",
            severity: Severity::Medium,
            technique: None,
            message: "x".into(),
            matched: vec!["sibling-renamed-main"],
            judged: None,
        });
        m.observe(&alert);
        let mut summary = rename_event(false, Method::Prctl);
        summary.body = Body::Summary(Summary {
            class: Class::Thread,
            tid: 3,
            count: 500,
            first_seen: OffsetDateTime::UNIX_EPOCH,
            last_seen: OffsetDateTime::UNIX_EPOCH,
            last_name: Name::from("x"),
            thread_exited: false,
        });
        m.observe(&summary);
        let mut lost = rename_event(false, Method::Prctl);
        lost.process = None;
        lost.body = Body::Lost(Lost {
            class: Class::Process,
            reason: LostReason::NoStormSlot,
            count: 7,
            sink: None,
        });
        m.observe(&lost);
        m.set_processes_tracked(42);

        let text = m.encode();
        let at = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in:\n{text}"));
        assert_eq!(
            at("rename_audit_renames_total{action=\"process-renamed\",method=\"prctl\"}"),
            2.0
        );
        assert_eq!(
            at("rename_audit_renames_total{action=\"thread-renamed\",method=\"procfs\"}"),
            1.0
        );
        assert_eq!(
            at("rename_audit_renames_total{action=\"process-renamed\",method=\"procfs\"}"),
            1.0
        );
        assert_eq!(
            at("rename_audit_alerts_total{rule=\"sibling-renamed-main\",severity=\"medium\"}"),
            1.0
        );
        assert_eq!(at("rename_audit_renames_summarized_total"), 500.0);
        assert_eq!(
            at("rename_audit_renames_summarized_by_class_total{class=\"thread\"}"),
            500.0
        );
        assert_eq!(at("rename_audit_events_lost_total{class=\"process\"}"), 7.0);
        assert_eq!(
            at(
                "rename_audit_events_lost_by_reason_total{class=\"process\",reason=\"no-storm-slot\"}"
            ),
            7.0
        );
        assert_eq!(
            at("rename_audit_events_lost_by_reason_total{class=\"process\",reason=\"ring-full\"}"),
            0.0
        );
        m.kernel_state(&KernelState {
            storm_slots_in_use: 3,
            rate_untracked: 5,
            slot_races: 1,
            ktime_ns: 0,
        });
        m.kernel_state(&KernelState {
            storm_slots_in_use: 2,
            rate_untracked: 9,
            slot_races: 1,
            ktime_ns: 0,
        });
        let text = m.encode();
        let at = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in:\n{text}"));
        assert_eq!(at("rename_audit_storm_slots_in_use"), 2.0);
        assert_eq!(
            at("rename_audit_kernel_faults_total{fault=\"rate-untracked\"}"),
            9.0
        );
        assert_eq!(
            at("rename_audit_kernel_faults_total{fault=\"slot-race\"}"),
            1.0
        );
        assert_eq!(at("rename_audit_processes_tracked"), 42.0);
        assert_eq!(at("rename_audit_events_total{action=\"events-lost\"}"), 1.0);
        // The odd new name never reaches the exposition.
        assert!(!text.contains("}x 1"), "{text}");
    }

    #[test]
    fn output_losses_count_by_class_and_by_reason() {
        let m = Metrics::new();
        m.output_lost(4);
        m.output_lost(1);
        let text = m.encode();
        let at = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in:\n{text}"));
        assert_eq!(at("rename_audit_events_lost_total{class=\"output\"}"), 5.0);
        assert_eq!(
            at(
                "rename_audit_events_lost_by_reason_total{class=\"output\",reason=\"write-failed\"}"
            ),
            5.0
        );
        // The output has no kernel reasons, the kernel no write-failed.
        assert!(
            !text.contains("class=\"output\",reason=\"ring-full\""),
            "{text}"
        );
        assert!(
            !text.contains("class=\"thread\",reason=\"write-failed\""),
            "{text}"
        );
    }

    #[test]
    fn the_last_reload_gauge_follows_the_latest_reload() {
        let m = Metrics::new();
        let ok = |m: &Metrics| sample(&m.encode(), "rename_audit_config_last_reload_successful");
        assert_eq!(
            ok(&m),
            Some(1.0),
            "before any reload the start-up configuration is in force"
        );
        m.config_reload(false);
        assert_eq!(ok(&m), Some(0.0));
        m.config_reload(false);
        assert_eq!(ok(&m), Some(0.0));
        m.config_reload(true);
        assert_eq!(ok(&m), Some(1.0));
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                "rename_audit_config_reloads_total{result=\"failure\"}"
            ),
            Some(2.0)
        );
        assert!(
            text.contains("# TYPE rename_audit_config_last_reload_successful gauge"),
            "{text}"
        );
    }

    #[test]
    fn caller_strings_cannot_break_labels() {
        let m = Metrics::new();
        m.alert_suppressed("evil\"} 1\nrename_audit_fake_total 9");
        m.sink_error("no-such-sink\n");
        m.sink_dropped("syslog");
        m.config_reload(false);
        m.filtered("exec");
        m.filtered("rm -rf");
        let text = m.encode();
        assert!(!text.contains("rename_audit_fake_total 9"), "{text}");
        assert_eq!(
            sample(
                &text,
                "rename_audit_alerts_suppressed_total{rule=\"evil___1_rename_audit_fake_total_9\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "rename_audit_sink_errors_total{sink=\"other\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "rename_audit_sink_queue_dropped_total{sink=\"syslog\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "rename_audit_config_reloads_total{result=\"failure\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "rename_audit_renames_filtered_total{reason=\"exec\"}"
            ),
            Some(1.0)
        );
    }
}
