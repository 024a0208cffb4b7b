//! The process's open-file budget and the admin API's share of it.
//!
//! Many systems start a process with a soft `RLIMIT_NOFILE` of 1,024 under a far higher
//! hard limit. trunkline raises the soft limit to the hard one at start, then gives the
//! admin API at most a quarter of it (and never more than [`MAX_ADMIN_CONNECTIONS`]):
//! the admin side holds its connections plus the listener and one connection being
//! evicted, so at least three quarters of the descriptors always stay for the SIP
//! socket, the backend client, DNS and the state file, whatever the admin side is sent.

/// The cap on admin connections when descriptors are plentiful. Probes, a scraper and
/// a few operators need a handful; 256 idle connections cost ≈4.6 MB at ≈18 KB each.
pub const MAX_ADMIN_CONNECTIONS: usize = 256;

/// The admin API's share of `open_files` descriptors: a quarter, at most
/// [`MAX_ADMIN_CONNECTIONS`], at least one.
pub fn admin_connection_cap(open_files: u64) -> usize {
    let quarter = usize::try_from(open_files / 4).unwrap_or(usize::MAX);
    quarter.clamp(1, MAX_ADMIN_CONNECTIONS)
}

/// Raises the soft open-file limit to the hard limit and logs the figure in force;
/// returns the soft limit now in force (the old one when raising failed).
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            // Unknown: size the admin share for the common default.
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE); assuming 1024");
            return 1024;
        }
    };
    let target = if hard == nix::sys::resource::RLIM_INFINITY {
        // Linux refuses an infinite soft limit: the kernel's ceiling is fs.nr_open.
        kernel_ceiling().unwrap_or(1 << 20)
    } else {
        hard
    };
    if soft >= target {
        log_limit(soft, hard);
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => {
            log_limit(target, hard);
            target
        }
        Err(e) => {
            tracing::warn!(
                soft, hard, error = %e,
                "cannot raise the open-file limit (RLIMIT_NOFILE) to the hard limit; \
                 raise it with `ulimit -n` or LimitNOFILE= if many connections are expected"
            );
            log_limit(soft, hard);
            soft
        }
    }
}

/// `fs.nr_open`, the most descriptors the kernel lets one process have.
fn kernel_ceiling() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn log_limit(soft: u64, hard: u64) {
    tracing::info!(
        open_files = soft,
        hard_limit = hard,
        admin_connections = admin_connection_cap(soft),
        "open-file limit (RLIMIT_NOFILE) in force; the admin API takes at most admin_connections of it"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_share_is_a_quarter_capped() {
        assert_eq!(admin_connection_cap(1024), 256);
        assert_eq!(admin_connection_cap(1_048_576), MAX_ADMIN_CONNECTIONS);
        assert_eq!(admin_connection_cap(256), 64);
        assert_eq!(admin_connection_cap(2), 1);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
        // Start below the hard limit, as under the common default of 1,024.
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
        if hard != RLIM_INFINITY && hard >= 512 {
            setrlimit(Resource::RLIMIT_NOFILE, hard / 2, hard).unwrap_or(());
        }
        let in_force = raise_open_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
        assert_eq!(soft, in_force);
        if hard != RLIM_INFINITY {
            assert_eq!(soft, hard, "the soft limit should now be the hard one");
        }
    }
}
