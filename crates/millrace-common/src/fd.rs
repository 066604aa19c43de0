//! The process's open-file limit (RLIMIT_NOFILE): reading it, raising the soft limit to the hard
//! one at start, and telling a refused descriptor (EMFILE, ENFILE) from other I/O errors.
//!
//! A store of many shards opens many files; the soft limit many systems start processes with
//! (1,024) is far below the hard one, which an unprivileged process may raise itself to.

/// The soft and hard open-file limits of this process; `None` where they cannot be read.
pub fn nofile_limit() -> Option<(u64, u64)> {
    get_nofile().map(|lim| limits_of(&lim))
}

/// (soft, hard) as u64 (`rlim_t` is narrower on some targets).
#[allow(clippy::useless_conversion)]
fn limits_of(lim: &libc::rlimit) -> (u64, u64) {
    (u64::from(lim.rlim_cur), u64::from(lim.rlim_max))
}

fn get_nofile() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer and keeps nothing.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim)
}

/// Raises the soft open-file limit to the hard limit (a no-op when they are equal) and logs the
/// outcome at debug. Returns the soft limit in force afterwards, `None` where it is unknown.
/// Failing to raise it is not an error: the process keeps the limit it was given.
pub fn raise_nofile_limit() -> Option<u64> {
    let lim = get_nofile()?;
    let (soft, hard) = limits_of(&lim);
    if soft >= hard {
        tracing::debug!(soft, hard, "open-file limit already at the hard limit");
        return Some(soft);
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer and keeps nothing.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        tracing::debug!(soft, hard, error = %e, "could not raise the open-file limit");
        return Some(soft);
    }
    tracing::debug!(
        from = soft,
        to = hard,
        "raised the open-file limit to the hard limit"
    );
    Some(hard)
}

/// Whether `e` is the OS refusing a new descriptor: this process's limit (EMFILE) or the
/// system's (ENFILE).
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_ends_at_the_hard_limit() {
        let (_, hard) = nofile_limit().unwrap();
        assert_eq!(raise_nofile_limit(), Some(hard));
        assert_eq!(nofile_limit(), Some((hard, hard)));
    }

    #[test]
    fn descriptor_errors_are_told_apart() {
        assert!(is_out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(is_out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!is_out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::ENOENT
        )));
    }
}
