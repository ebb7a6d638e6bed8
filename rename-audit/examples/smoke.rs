fn main() {
    let mut cap = rename_audit::capture::Capture::attach(&Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let d = cap.drainer().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(8);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let h = std::thread::spawn(move || d.run(tx, s2));
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < 3 {
        if let Ok(b) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            for r in b {
                if let rename_audit::capture::Record::Rename(x) = &r {
                    println!(
                        "tid={} tgid={} wt={} wp={} m={} old={:?} new={:?}",
                        x.tid,
                        x.tgid,
                        x.writer_tid,
                        x.writer_tgid,
                        x.method,
                        String::from_utf8_lossy(&x.old_name),
                        String::from_utf8_lossy(&x.new_name)
                    );
                }
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    for b in rx.iter() {
        for r in b {
            if let rename_audit::capture::Record::Rename(x) = &r {
                println!(
                    "tid={} tgid={} wt={} wp={} m={} old={:?} new={:?}",
                    x.tid,
                    x.tgid,
                    x.writer_tid,
                    x.writer_tgid,
                    x.method,
                    String::from_utf8_lossy(&x.old_name),
                    String::from_utf8_lossy(&x.new_name)
                );
            }
        }
    }
    h.join().unwrap();
}
