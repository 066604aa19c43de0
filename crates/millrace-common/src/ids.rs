//! Random identifiers in the form AWS uses for request ids and resource ids: version 4 UUIDs
//! (`uuid`, the field's crate), lowercase and hyphenated.

/// A random (version 4) UUID: `x-amzn-RequestId`, inference ids, the ids of channels and
/// delivery streams.
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// This process, for leases and reservations other machines see: `HOST-PID-RANDOM`, the host
/// name kept to letters, digits, `-` and `.` (so it can be part of an object key).
pub fn worker_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_else(|_| "host".into())
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
            .take(64)
            .collect();
        let host = if host.is_empty() { "host".into() } else { host };
        format!("{host}-{}-{}", std::process::id(), &uuid_v4()[..8])
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_version_4_form() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(
            a.match_indices('-').map(|(i, _)| i).collect::<Vec<_>>(),
            [8, 13, 18, 23]
        );
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a, a.to_lowercase());
        assert_ne!(a, uuid_v4());
    }
}
