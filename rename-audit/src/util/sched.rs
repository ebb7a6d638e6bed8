//! Keeping the daemon's own side work out of capture's way.

/// The niceness of the threads that deliver to sinks (Alertmanager, syslog,
/// `/metrics`): below capture's drain and pipeline threads, which keep the
/// default 0. Under a rename storm on every core, TLS to three replicas
/// costs about three times what judging and writing an alert does
/// (docs/benchmarks.md); at equal priority it took CPU from the ring drain
/// and the kernel lost records. Niced, a sink falls behind instead: its
/// bounded queue fills and what does not fit is counted, never capture.
pub const SINK_NICENESS: i32 = 10;

/// Lower the calling thread's priority to [`SINK_NICENESS`]. On Linux
/// `setpriority(PRIO_PROCESS, tid)` applies to that one thread. Raising
/// one's own niceness needs no privilege; if it fails anyway (a seccomp
/// filter, say) the thread keeps running at the default and the failure is
/// returned for the caller to log.
pub fn deprioritize_this_thread() -> std::io::Result<()> {
    let tid = rustix::thread::gettid();
    rustix::process::setpriority_process(Some(tid), SINK_NICENESS)?;
    Ok(())
}

/// Keeps the daemon off transparent huge pages. The allocator asks for
/// them on its larger regions; each first touch then zeroes 2 MiB, which was
/// a fifth of the Alertmanager sink's CPU in an alert burst, and the RSS
/// moves in 2 MiB steps against its bound. A failure leaves them on (the
/// caller logs it).
pub fn no_huge_pages() -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_is_niced() {
        let before = rustix::process::getpriority_process(None).expect("getpriority");
        let niced = std::thread::spawn(|| {
            deprioritize_this_thread().expect("setpriority");
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                .expect("getpriority of the thread")
        })
        .join()
        .unwrap();
        assert_eq!(niced, SINK_NICENESS);
        assert_eq!(
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                .expect("getpriority"),
            before,
            "the test's own thread keeps its niceness"
        );
    }

    #[test]
    fn huge_pages_are_off_after_asking() {
        no_huge_pages().expect("prctl");
        assert!(rustix::thread::transparent_huge_pages_are_disabled().expect("prctl"));
    }
}
