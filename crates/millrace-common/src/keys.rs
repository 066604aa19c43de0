//! Path and object-key segments built from data or from names a client chose. Every such
//! segment goes through [`escape_segment`], so a value can never be a path step (`..`, `.`,
//! `a/b`, `/etc`, NUL): it maps to exactly one folder inside its prefix, distinct values stay
//! distinct, and [`unescape_segment`] reads the value back. The escaping is Hive's (as Spark and
//! Athena write and read partition folders: `%2F` for `/`, `%3D` for `=`, …), plus `.` and `..`
//! as `%2E` and `%2E%2E`, and the empty value as Hive's `__HIVE_DEFAULT_PARTITION__`.

/// Hive's name for a NULL or empty partition value.
pub const NULL_SEGMENT: &str = "__HIVE_DEFAULT_PARTITION__";

/// The longest escaped segment accepted: file systems refuse names over 255 bytes, and the
/// object name beside it needs room. A longer value is the record's fault, not the store's.
pub const MAX_SEGMENT_BYTES: usize = 200;

/// Bytes Hive escapes in partition paths (`FileUtils.escapePathName`), and `%` itself.
fn needs_escape(b: u8) -> bool {
    b < 0x20
        || b == 0x7F
        || matches!(
            b,
            b'"' | b'#'
                | b'%'
                | b'\''
                | b'*'
                | b'/'
                | b':'
                | b'='
                | b'?'
                | b'\\'
                | b'{'
                | b'['
                | b']'
                | b'^'
        )
}

/// `value` as one path segment (see the module docs).
pub fn escape_segment(value: &str) -> String {
    match value {
        "" => return NULL_SEGMENT.to_owned(),
        ".." => return "%2E%2E".to_owned(),
        _ => {}
    }
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        // A leading `.` or `_` would make the folder hidden to lake readers (and `.` a path
        // step); escaped, the literal `__HIVE_DEFAULT_PARTITION__` also keeps its own folder.
        let hidden = i == 0 && matches!(c, '.' | '_');
        if c.is_ascii() && (hidden || needs_escape(c as u8)) {
            out.push_str(&format!("%{:02X}", c as u8));
        } else {
            out.push(c);
        }
    }
    out
}

/// The value an escaped segment stands for (`%XX` undone; Hive's default name is empty).
pub fn unescape_segment(segment: &str) -> String {
    if segment == NULL_SEGMENT {
        return String::new();
    }
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |at: usize| b.get(at).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why an object key cannot be written under a folder, if it cannot: a segment that is empty,
/// `.` or `..`, holds a NUL or is over 255 bytes, or a key that starts with `/`. The last line
/// of defence for keys put together from templates and configuration.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("the key is empty".into());
    }
    if key.starts_with('/') {
        return Some("the key starts with `/`".into());
    }
    key.split('/').find_map(|seg| match seg {
        "" => Some("the key has an empty segment (`//`)".to_owned()),
        "." | ".." => Some(format!("the key has a `{seg}` segment")),
        s if s.contains('\0') => Some("the key holds a NUL byte".to_owned()),
        s if s.len() > 255 => Some(format!("a segment is {} bytes (255 at most)", s.len())),
        _ => None,
    })
}

/// Checks a name a client or an operator chose that becomes a folder (delivery, scoring, job
/// names): 1-128 characters of `[A-Za-z0-9_.-]`, not starting with `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: 1-128 characters of [A-Za-z0-9_.-], not starting with `.`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn path_steps_and_separators_become_one_distinct_folder() {
        let values = [
            "..",
            ".",
            "a/b",
            "a_b",
            "a%2Fb",
            "a\0b",
            "/etc",
            "",
            NULL_SEGMENT,
            "k=v",
            "_x",
            ".y",
        ];
        let escaped: Vec<String> = values.iter().map(|v| escape_segment(v)).collect();
        assert_eq!(escaped[0], "%2E%2E");
        assert_eq!(escaped[1], "%2E");
        assert_eq!(escaped[2], "a%2Fb");
        assert_eq!(escaped[4], "a%252Fb");
        assert_eq!(escaped[5], "a%00b");
        assert_eq!(escaped[7], NULL_SEGMENT);
        let distinct: std::collections::BTreeSet<&String> = escaped.iter().collect();
        assert_eq!(distinct.len(), values.len());
        for (v, e) in values.iter().zip(&escaped) {
            assert_eq!(&unescape_segment(e), v);
            assert_eq!(key_problem(&format!("raw/{e}/x.json")), None, "{e}");
        }
    }

    #[test]
    fn keys_that_leave_their_folder_are_refused() {
        for bad in [
            "",
            "/etc/x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/b\0c",
            &"x".repeat(256),
        ] {
            assert!(key_problem(bad).is_some(), "{bad:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "/etc",
            "a\\b",
            "a\0b",
            &"n".repeat(129),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("churn-raw_1.v2").is_ok());
    }

    proptest! {
        #[test]
        fn escaping_round_trips_and_is_one_safe_segment(s in "\\PC{0,30}|[./%=_\\x00-\\x1f]{0,8}") {
            let e = escape_segment(&s);
            prop_assert_eq!(unescape_segment(&e), s.clone());
            prop_assert!(!e.contains('/') && !e.contains('\0'));
            prop_assert!(e != "." && e != ".." && !e.is_empty());
            prop_assert!(e == NULL_SEGMENT || !(e.starts_with('.') || e.starts_with('_')));
            prop_assert!(key_problem(&e).is_none());
        }
    }
}
