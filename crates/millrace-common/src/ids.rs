//! Random identifiers in the form AWS uses for request ids and resource ids: version 4 UUIDs
//! (`uuid`, the field's crate), lowercase and hyphenated.

/// A random (version 4) UUID: `x-amzn-RequestId`, inference ids, the ids of channels and
/// delivery streams.
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
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
