//! Names of well-known system programs, as `ps` shows them (cut to the 15
//! bytes a comm holds).
//!
//! A process renaming itself to one of these, when it is not that program,
//! is hiding among the daemons an operator expects to see: the T1036.004
//! pattern of a payload renamed to `sshd` or `cron`. The list holds daemons,
//! shells and login programs of Debian and other common distributions, the
//! usual servers, and container and cluster agents; `system-name-mimic`
//! also takes extra names from the configuration.
pub const WELL_KNOWN: &[&str] = &[
    // init and systemd (names as the kernel cuts them)
    "init",
    "systemd",
    "(sd-pam)",
    "(udev-worker)",
    "systemd-journal",
    "systemd-logind",
    "systemd-udevd",
    "systemd-network",
    "systemd-resolve",
    "systemd-timesyn",
    "systemd-userdbd",
    "systemd-homed",
    "udevd",
    // login, privilege and shells
    "sshd",
    "sshd-session",
    "login",
    "agetty",
    "getty",
    "sudo",
    "su",
    "polkitd",
    "bash",
    "sh",
    "dash",
    "zsh",
    "ksh",
    "screen",
    // scheduling, logging, messaging
    "cron",
    "crond",
    "atd",
    "anacron",
    "rsyslogd",
    "syslogd",
    "syslog-ng",
    "auditd",
    "dbus-daemon",
    "dbus-broker",
    "dbus-broker-lau",
    "irqbalance",
    "acpid",
    // time and network
    "chronyd",
    "ntpd",
    "timesyncd",
    "dhclient",
    "dhcpcd",
    "NetworkManager",
    "wpa_supplicant",
    "ModemManager",
    "avahi-daemon",
    "dnsmasq",
    "named",
    "unbound",
    "rpcbind",
    "rpc.statd",
    "rpc.mountd",
    "sssd",
    "nscd",
    "nslcd",
    "winbindd",
    "smbd",
    "nmbd",
    "firewalld",
    "snmpd",
    // servers
    "nginx",
    "apache2",
    "httpd",
    "lighttpd",
    "haproxy",
    "squid",
    "mysqld",
    "mariadbd",
    "postgres",
    "postmaster",
    "redis-server",
    "memcached",
    "mongod",
    "exim4",
    "sendmail",
    "dovecot",
    "cupsd",
    "php-fpm",
    // desktop session daemons
    "udisksd",
    "upowerd",
    "accounts-daemon",
    "gdm",
    "lightdm",
    "Xorg",
    // containers and clusters
    "dockerd",
    "containerd",
    "containerd-shim",
    "kubelet",
    "kube-proxy",
    "kube-apiserver",
    "etcd",
    "snapd",
    "lxcfs",
    "fail2ban-server",
];

/// The program name `name` claims: the part before a `:` when there is one
/// (`sshd: root@pts/0`, `sshd:` are sshd's own setproctitle shapes, and
/// `pgrep sshd` matches them), else the whole name.
pub fn claimed(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b':') {
        Some(colon) => &name[..colon],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suffix_after_a_colon_claims_the_name_before_it() {
        assert_eq!(claimed(b"sshd: root@pts/0"), b"sshd");
        assert_eq!(claimed(b"sshd:"), b"sshd");
        assert_eq!(claimed(b"sshd"), b"sshd");
        assert_eq!(claimed(b"in:imuxsock"), b"in");
    }

    #[test]
    fn every_name_fits_a_comm_and_appears_once() {
        let mut seen = std::collections::HashSet::new();
        for n in WELL_KNOWN {
            assert!(!n.is_empty() && n.len() <= 15, "{n:?} cannot be a comm");
            assert!(seen.insert(n), "{n:?} listed twice");
        }
    }
}
