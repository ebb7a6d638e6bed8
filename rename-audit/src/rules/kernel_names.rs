//! Names shaped like kernel threads.
//!
//! A user-space process has no reason to take one of these names: they are
//! what `ps` shows for kernel threads, and what "Executable Masquerading as
//! Kernel Process" detections look for. The list follows the threads of
//! current kernels (6.x: `kworker/R-<wq>` rescuers, `rcu_exp_gp_kthread_worker`,
//! `pool_workqueue_release`) and older ones (`kblockd`, `writeback` rescuers),
//! cut to 15 bytes where the kernel cuts them.
//!
//! Lookalikes (`kw0rker`, homoglyphs) are out of scope: they are caught, if at
//! all, by `process-renamed`.

/// Prefixes no user-space name starts with. A per-CPU or per-device suffix
/// follows (`kworker/0:1H-kblockd`, `kswapd0`, `irq/24-ACPI:Ged`).
const PREFIXES: &[&str] = &[
    "kworker",
    "ksoftirqd",
    "kthreadd",
    "migration/",
    "watchdog/",
    "cpuhp/",
    "idle_inject/",
    "irq/",
    "jbd2/",
    "rcu_",
    "rcuog/",
    "rcuop/",
    "rcuos/",
    "rcub/",
    "rcuc/",
    "kswapd",
    "kcompactd",
    "kdamond",
    "khugepaged",
    "xfsaild/",
    "kdmflush",
    "kcryptd",
    "dmcrypt_write",
    "napi/",
    "kvm-pit/",
    "scsi_eh_",
    "scsi_tmf_",
    "kipmi",
    "pr/",
];

/// Whole names of single kernel threads and workqueue rescuers.
const EXACT: &[&str] = &[
    "migration",
    "watchdogd",
    "ksmd",
    "kauditd",
    "kdevtmpfs",
    "khungtaskd",
    "oom_reaper",
    "writeback",
    "kblockd",
    "kintegrityd",
    "kthrotld",
    "kstrp",
    "khvcd",
    "ipv6_addrconf",
    "mm_percpu_wq",
    "inet_frag_wq",
    "edac-poller",
    "kpsmoused",
    "ata_sff",
    "zswap-shrink",
    "blkcg_punt_bio",
    "tpm_dev_wq",
    "devfreq_wq",
    "pool_workqueue_",
    "psimon",
    "hwrng",
    "ksgxd",
    "ext4-rsv-conver",
    "nfsd",
    "lockd",
    "kjournald",
    "kjournald2",
    "kmpathd",
    "kmpath_handlerd",
    "ecryptfs-kthrea",
    "krfcommd",
    "kacpid",
    "kacpi_notify",
    "kacpi_hotplug",
    "cryptd",
    "rpciod",
    "xprtiod",
    "nvme-wq",
    "nvme-reset-wq",
    "nvme-delete-wq",
    "bioset",
    "charger_manager",
];

/// True when `name` looks like a kernel thread's name, including a name in
/// `[brackets]` the way `ps` prints kernel threads.
pub fn is_kernel_thread_shaped(name: &[u8]) -> bool {
    if let Some(rest) = name.strip_prefix(b"[") {
        return bracketed(rest);
    }
    plain(name)
}

fn plain(name: &[u8]) -> bool {
    PREFIXES.iter().any(|p| name.starts_with(p.as_bytes()))
        || EXACT.iter().any(|e| name == e.as_bytes())
}

/// `rest` is what follows a leading `[`. `[anything]` is a disguise on its
/// own; a name cut at 15 bytes may have lost its `]`, so `[kworker/0:1H-kb`
/// counts when the part inside is kernel-shaped. Names that only start with a
/// bracketed word, like Pango's `[pango] fontcon` thread, do not count.
fn bracketed(rest: &[u8]) -> bool {
    match rest.iter().position(|&b| b == b']') {
        Some(end) if end + 1 == rest.len() => end > 0,
        Some(end) => plain(&rest[..end]),
        None => plain(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_thread_names_of_a_running_6_x_kernel_match() {
        for name in [
            "kworker/0:1",
            "kworker/u8:2-ext4-rsv-conversion",
            "kworker/R-rcu_g",
            "kthreadd",
            "ksoftirqd/1",
            "migration/0",
            "rcu_preempt",
            "rcu_sched",
            "rcu_gp",
            "rcuog/3",
            "rcuop/0",
            "watchdog/0",
            "watchdogd",
            "irq/24-ACPI:Ged",
            "jbd2/sda1-8",
            "kswapd0",
            "khugepaged",
            "kcompactd0",
            "cpuhp/1",
            "idle_inject/0",
            "oom_reaper",
            "kdevtmpfs",
            "kauditd",
            "migration",
            "writeback",
            "kblockd",
            "pool_workqueue_",
            "kdamond.0",
        ] {
            assert!(
                is_kernel_thread_shaped(name.as_bytes()),
                "{name:?} should be kernel-shaped"
            );
        }
    }

    #[test]
    fn bracketed_names_match_and_cut_ones_when_kernel_shaped_inside() {
        for name in [
            "[kworker/0:1]",
            "[x]",
            "[totally_legit]",
            "[kworker/0:1H-kb",
        ] {
            assert!(is_kernel_thread_shaped(name.as_bytes()), "{name:?}");
        }
        for name in ["[pango] fontcon", "[", "[]", "[abc", "x[kworker]"] {
            assert!(!is_kernel_thread_shaped(name.as_bytes()), "{name:?}");
        }
    }

    #[test]
    fn ordinary_process_and_thread_names_do_not_match() {
        for name in [
            "sshd",
            "totally_legit",
            "watchdog",
            "irqbalance",
            "kerneloops",
            "migrate",
            "gmain",
            "in:imuxsock",
            "rs:main Q:Reg",
            "tokio-runtime-w",
            "(sd-pam)",
            "GC Thread#0",
            "iou-wrk-1234",
            "",
        ] {
            assert!(!is_kernel_thread_shaped(name.as_bytes()), "{name:?}");
        }
    }

    #[test]
    fn lists_hold_only_names_a_comm_can_hold() {
        for n in PREFIXES.iter().chain(EXACT) {
            assert!(!n.is_empty() && n.len() <= 15, "{n:?} cannot be a comm");
        }
    }
}
